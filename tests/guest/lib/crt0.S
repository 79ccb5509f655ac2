/* Boot CPU entry for C payloads: flat GDT, stack, BSS, then guest_start(). */
#include "guest.h"

    .section .text.crt0, "ax"
    .code32
    .globl _start
_start:
    cli
    cld
    /* The hidden parts of the segment registers are still flat (Multiboot
     * 3.2), so DS can address guest_gdt_desc before anything is reloaded. */
    lgdt guest_gdt_desc
    ljmp $GUEST_SEL_CODE, $1f
1:  movl $GUEST_SEL_DATA, %ecx
    movw %cx, %ds
    movw %cx, %es
    movw %cx, %fs
    movw %cx, %gs
    movw %cx, %ss
    /* The boot CPU has APIC ID 0 and takes stack 0. */
    movl $(guest_stacks + GUEST_STACK_SIZE), %esp

    movl %eax, %esi             /* Multiboot magic */
    movl %ebx, %edx             /* Multiboot information */
    movl $guest_bss_start, %edi
    movl $guest_bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    /* i386 psABI: ESP is 16-byte aligned at the call. */
    subl $8, %esp
    pushl %edx
    pushl %esi
    call guest_start
2:  cli
    hlt
    jmp 2b

/* Per-CPU stacks, indexed by APIC ID. They sit after guest_bss_end (link.ld)
 * so that boot does not spend 128 KiB of emulated stores clearing them, but
 * inside the loaded image so that loaders place their boot information
 * above them. */
    .section .stack, "aw", @nobits
    .p2align 12
    .globl guest_stacks
guest_stacks:
    .skip GUEST_MAX_CPUS * GUEST_STACK_SIZE

    .section .note.GNU-stack, "", @progbits
