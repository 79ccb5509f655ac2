/* AP start-up code: copied below 1 MiB by smp_start_aps(), entered by SIPI in real mode. */
#include "guest.h"

/* The address a trampoline label will have once copied. */
#define TRAMP_ADDR(sym) (GUEST_TRAMPOLINE_ADDR + ((sym) - smp_tramp_start))

    .section .text.smp_tramp, "ax"

/* A SIPI with vector V starts the AP in real mode at CS = V << 8, IP = 0
 * (SDM vol. 3 8.4.4.1); smp_start_aps() uses V = GUEST_TRAMPOLINE_ADDR >> 12. */
    .code16
    .globl smp_tramp_start
smp_tramp_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl TRAMP_ADDR(smp_tramp_gdt_desc)
    movl %cr0, %eax
    orl $X86_CR0_PE, %eax
    movl %eax, %cr0
    /* The far jump loads CS from the new GDT; its 32-bit offset reaches the
     * payload at 1 MiB. */
    ljmpl $GUEST_SEL_CODE, $smp_ap_pm_entry

/* A copy of guest_gdt_desc that real mode can reach with DS = 0. */
    .p2align 2
smp_tramp_gdt_desc:
    .word GUEST_GDT_LIMIT
    .long guest_gdt
    .globl smp_tramp_end
smp_tramp_end:

/* Runs in place, in protected mode, with the payload's GDT. */
    .code32
smp_ap_pm_entry:
    movl $GUEST_SEL_DATA, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl (APIC_DEFAULT_PHYS_BASE + APIC_ID), %eax
    shrl $24, %eax
    cmpl $GUEST_MAX_CPUS, %eax
    jae 2f                      /* no stack for it: park */
    leal 1(%eax), %ecx
    shll $GUEST_STACK_SHIFT, %ecx
    addl $guest_stacks, %ecx
    movl %ecx, %esp
    /* i386 psABI: ESP is 16-byte aligned at the call. */
    subl $12, %esp
    pushl %eax
    call smp_ap_entry
2:  cli
    hlt
    jmp 2b

    .section .note.GNU-stack, "", @progbits
