/* Multiboot (v1) kernel loading, with the boot information QEMU gives such kernels. */
#ifndef KVMLOOP_MULTIBOOT_H
#define KVMLOOP_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/guest_mem.h"

/* Where and how to enter a loaded kernel: 32-bit protected mode, paging off,
 * EAX = 0x2BADB002, EBX = @mbi_addr, EIP = @entry. */
typedef struct MultibootBoot {
    uint32_t entry;
    uint32_t mbi_addr;
    gpa_t load_end; /* first byte after everything the loader placed */
} MultibootBoot;

/* True if the first 8 KiB of @buf hold a valid multiboot v1 header. */
bool multiboot_probe(const uint8_t *buf, size_t len);

/* Load the multiboot kernel at @kernel_path into @gm with @cmdline (may be
 * NULL) and @nmodules modules, each "PATH[ ARGS]" (QEMU's -initrd list split
 * at commas). Boot information: mem_lower/mem_upper, an mmap matching @gm's
 * blocks (with the legacy VGA/BIOS hole reserved), the command line, the
 * modules and the boot loader name, placed above the kernel and modules.
 * Returns false and sets @errp (naming the file and what is wrong) on a
 * missing file, a file without a multiboot header, a malformed ELF, a 64-bit
 * ELF, or a kernel that does not fit in RAM. Main thread, start-up. */
bool multiboot_load(GuestMem *gm, const char *kernel_path, const char *cmdline,
                    const char *const *modules, size_t nmodules, MultibootBoot *out, GError **errp);

#endif
