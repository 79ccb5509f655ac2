/* C side of boot: find the command line, run main(), report its result through debug-exit. */
#include "guest.h"

/* The part of the Multiboot information structure (spec 3.3) read here. */
struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower;
    uint32_t mem_upper;
    uint32_t boot_device;
    uint32_t cmdline;
};

void guest_start(uint32_t magic, const void *mbi_ptr)
{
    const struct multiboot_info *mbi = mbi_ptr;
    const char *cmdline = "";

    if (magic == MULTIBOOT_BOOTLOADER_MAGIC && mbi != NULL &&
        (mbi->flags & MULTIBOOT_INFO_CMDLINE) && mbi->cmdline != 0) {
        cmdline = (const char *)(uintptr_t)mbi->cmdline;
    }
    debug_exit((uint32_t)main(cmdline));
}

void debug_exit(uint32_t code)
{
    outl(GUEST_DEBUG_EXIT_PORT, code);
    cpu_halt_forever();
}
