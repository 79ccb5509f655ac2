/* shutdown-now: the boot CPU loads the GDT and at once writes debug-exit 0; nothing else.
 *
 * No UART, no APs, no C runtime: only multiboot.o is linked in.
 * Exit (debug-exit value): 0 (host status 1). If debug-exit is missing, the
 * CPU halts forever.
 */
#include "guest.h"

    .section .text, "ax"
    .code32
    .globl _start
_start:
    cli
    lgdt guest_gdt_desc
    ljmp $GUEST_SEL_CODE, $1f
1:  movl $GUEST_SEL_DATA, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw $GUEST_DEBUG_EXIT_PORT, %dx
    outl %eax, %dx
2:  cli
    hlt
    jmp 2b

    .section .note.GNU-stack, "", @progbits
