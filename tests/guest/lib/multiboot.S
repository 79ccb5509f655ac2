/* The Multiboot v1 header and the flat GDT that every payload, C or assembly, links in. */
#include "guest.h"

/* Multiboot spec 3.1.1: the header lies 4-byte aligned in the first 8 KiB of
 * the image; link.ld puts this section first. Without flag 16 the loader takes
 * addresses and entry point from the ELF headers. */
#define MB_FLAGS (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO)

    .section .multiboot, "a"
    .p2align 2
    .long MULTIBOOT_HEADER_MAGIC
    .long MB_FLAGS
    .long -(MULTIBOOT_HEADER_MAGIC + MB_FLAGS)

/* Null, 32-bit code, 32-bit data: base 0, limit 4 GiB, DPL 0. The accessed
 * bit is preset (types 0x9B and 0x93) so loading a selector never has to write
 * the descriptor back. The loader's GDTR may point anywhere (Multiboot 3.2),
 * so every entry path loads guest_gdt_desc before reloading a segment. */
    .section .data.guest_gdt, "aw"
    .p2align 3
    .globl guest_gdt
guest_gdt:
    .quad 0
    .quad 0x00CF9B000000FFFF
    .quad 0x00CF93000000FFFF

    .p2align 2
    .globl guest_gdt_desc
guest_gdt_desc:
    .word GUEST_GDT_LIMIT
    .long guest_gdt

    .section .note.GNU-stack, "", @progbits
