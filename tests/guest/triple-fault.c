/* triple-fault: with an empty IDT a divide error cannot be delivered, so the CPU shuts down.
 *
 * #DE finds no gate (IDT limit 0) -> #GP, which finds none either -> #DF,
 * which finds none -> triple fault (SDM vol. 3 6.15, interrupt 8). KVM reports
 * KVM_EXIT_SHUTDOWN; QEMU resets the machine, or stops with -no-reboot.
 * A divide rather than ud2 or int3: instruction emulators implement div and
 * its #DE, not always the other two.
 * Output: "triple-fault: faulting\n" before the fault.
 * Exit (debug-exit value): none on success (the VM stops);
 *   1  execution continued after the fault
 */
#include "guest.h"

struct triple_fault_idtr {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

int main(const char *cmdline)
{
    static const struct triple_fault_idtr empty = {0, 0};
    uint32_t eax = 1, edx = 0, zero = 0;

    serial_puts("triple-fault: faulting\n");
    __asm__ volatile("lidt %0" : : "m"(empty));
    __asm__ volatile("divl %2" : "+a"(eax), "+d"(edx) : "r"(zero) : "cc");
    return 1;
}
