/* Booting Linux: the x86 boot protocol (bzImage) and PVH direct boot (vmlinux), with the e820 map.
 */
#ifndef KVMLOOP_LINUX_BOOT_H
#define KVMLOOP_LINUX_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/guest_mem.h"

typedef enum {
    BOOT_PROTOCOL_MULTIBOOT, /* test kernels: 32-bit entry, multiboot info */
    BOOT_PROTOCOL_BZIMAGE,   /* Linux boot protocol, 64-bit entry */
    BOOT_PROTOCOL_PVH,       /* uncompressed ELF with XEN_ELFNOTE_PHYS32_ENTRY */
} BootProtocol;

const char *boot_protocol_name(BootProtocol p);

/* Which protocol boots @path, from its contents: a bzImage setup header, an
 * ELF with a PVH note, or a multiboot header. A one-line error otherwise
 * (missing file, not a kernel). */
bool kernel_probe(const char *path, BootProtocol *out, GError **errp);

/* e820 memory map types. */
enum {
    E820_RAM = 1,
    E820_RESERVED = 2,
    E820_ACPI = 3,
};

typedef struct E820Entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} E820Entry;

#define E820_MAX_ENTRIES 16

/* Guest-physical places the loaders use below 1 MiB. */
#define BOOT_GDT_ADDR        0x500ULL
#define BOOT_START_INFO_ADDR 0x6000ULL /* PVH start info, memory map, module list */
#define BOOT_ZERO_PAGE_ADDR  0x7000ULL /* Linux boot_params */
#define BOOT_PML4_ADDR       0x9000ULL /* identity page tables for the 64-bit entry */
#define BOOT_CMDLINE_ADDR    0x20000ULL
#define BOOT_CMDLINE_MAX     0x10000ULL
#define BOOT_EBDA_ADDR       0x9fc00ULL
#define BOOT_BIOS_ADDR       0xe0000ULL /* ACPI tables live here, as in a BIOS */

/* The pc machine's memory map for @gm: low RAM with the EBDA and the BIOS
 * area reserved, RAM above 4 GiB if any. Returns the entry count. */
size_t pc_e820_map(const GuestMem *gm, E820Entry *out, size_t max);

/* What the loader placed and how to enter it. */
typedef struct LinuxBoot {
    BootProtocol protocol;
    uint64_t entry;       /* bzImage: 64-bit RIP; PVH: 32-bit EIP */
    uint64_t boot_info;   /* bzImage: zero page (RSI); PVH: hvm_start_info (EBX) */
    uint64_t kernel_addr; /* where the kernel image starts */
    uint64_t kernel_end;
    uint64_t initrd_addr; /* 0 without an initrd */
    uint64_t initrd_size;
} LinuxBoot;

typedef struct LinuxBootArgs {
    const char *kernel;  /* path */
    const char *initrd;  /* path or NULL */
    const char *cmdline; /* NULL: empty */
    uint64_t rsdp_addr;  /* 0: none (the guest scans the BIOS area) */
} LinuxBootArgs;

/* Load a bzImage: validate the setup header (boot flag, "HdrS", protocol
 * 2.12 or later with a 64-bit entry point, loadable high, alignment, size),
 * place the protected-mode kernel at its preferred address, the zero page
 * (setup header, e820, command line, initrd, RSDP), the initrd as high as
 * initrd_addr_max and RAM allow, identity page tables for the first 4 GiB and
 * a flat GDT. One-line errors name the file and the problem. */
bool linux_load_bzimage(GuestMem *gm, const LinuxBootArgs *args, LinuxBoot *out, GError **errp);

/* Load an ELF vmlinux through PVH: its PT_LOAD segments at their physical
 * addresses, an hvm_start_info (version 1) with the e820 map, the command
 * line, the initrd as module 0, and the RSDP address. */
bool linux_load_pvh(GuestMem *gm, const LinuxBootArgs *args, LinuxBoot *out, GError **errp);

/* Identity page tables for the first 4 GiB at BOOT_PML4_ADDR (2 MiB pages)
 * and a GDT at BOOT_GDT_ADDR with 64-bit code at 0x10 and data at 0x18. */
void linux_boot_write_page_tables(GuestMem *gm);

#endif
