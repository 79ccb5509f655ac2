/* The test-guest library: boot, port and MMIO access, UART output and SMP bring-up for payloads. */
#ifndef KVMLOOP_GUEST_H
#define KVMLOOP_GUEST_H

/*
 * Payloads are 32-bit freestanding ELF images loaded at 1 MiB by a Multiboot
 * v1 loader (QEMU's -kernel, kvmloop's multiboot_load()). They run in flat
 * protected mode with paging and interrupts off. crt0.S enters main() on CPU 0
 * (APIC ID 0); smp_start_aps() brings the other CPUs up.
 *
 * The constants below are shared with the assembly files, so this part of the
 * header holds only #defines.
 */

#define GUEST_MAX_CPUS    16
#define GUEST_STACK_SHIFT 13 /* 8 KiB per CPU */
#define GUEST_STACK_SIZE  (1 << GUEST_STACK_SHIFT)

/* Selectors of the flat GDT in multiboot.S. */
#define GUEST_SEL_CODE  0x08
#define GUEST_SEL_DATA  0x10
#define GUEST_GDT_LIMIT (3 * 8 - 1)

/* Where smp_start_aps() copies the AP start-up code. A SIPI vector names a
 * 4 KiB page below 1 MiB; 0x8000 lies in conventional memory that neither the
 * loaders (they put the boot information above the kernel) nor the payload
 * (at 1 MiB) use. */
#define GUEST_TRAMPOLINE_ADDR 0x8000

#define MULTIBOOT_HEADER_MAGIC     0x1BADB002
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002
#define MULTIBOOT_PAGE_ALIGN       0x00000001
#define MULTIBOOT_MEMORY_INFO      0x00000002
#define MULTIBOOT_INFO_CMDLINE     0x00000004

#define X86_CR0_PE 0x00000001

/* Local APIC (xAPIC MMIO), register offsets as in the Intel SDM vol. 3 ch. 11. */
#define APIC_DEFAULT_PHYS_BASE 0xFEE00000
#define APIC_ID                0x020
#define APIC_SPIV              0x0F0
#define APIC_ICR               0x300
#define APIC_ICR2              0x310
#define APIC_SPIV_APIC_ENABLED (1 << 8)
#define APIC_ICR_BUSY          (1 << 12)
#define APIC_INT_ASSERT        (1 << 14)
#define APIC_DM_INIT           0x00500
#define APIC_DM_STARTUP        0x00600
#define APIC_DEST_ALLBUT       0xC0000

/* The machine's fixed devices (see tests/guest/README.md). */
#define GUEST_UART_BASE       0x3F8
#define GUEST_DEBUG_EXIT_PORT 0xF4
#define FW_CFG_PORT_SEL       0x510
#define FW_CFG_PORT_DATA      0x511
#define FW_CFG_SIGNATURE      0x0000
#define FW_CFG_NB_CPUS        0x0005
#define TESTDEV_PIO_BASE      0x700
#define TESTDEV_MMIO_BASE     0xFE000000

#ifndef __ASSEMBLER__

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Entry point -------------------------------------------------------- */

/* Provided by each payload. Runs on CPU 0 with @cmdline the Multiboot command
 * line (QEMU puts the kernel's path first, then -append's text) or "" when
 * the loader gave none. Returning from main() ends the VM through
 * debug_exit() with the returned value. */
int main(const char *cmdline);

/* Called by crt0.S on the boot CPU with the loader's EAX and EBX. */
void __attribute__((noreturn)) guest_start(uint32_t magic, const void *mbi);

/* Called by the trampoline on each AP, on its own stack. */
void __attribute__((noreturn)) smp_ap_entry(int cpu);

/* ---- Port I/O ----------------------------------------------------------- */
/* Arguments are (port, value), unlike Linux's outb(value, port). */

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

/* ---- MMIO --------------------------------------------------------------- */
/* Each access is one mov of exactly the named width (the volatile pointer keeps
 * the compiler from merging or splitting it), except the 64-bit pair: without
 * SSE a 32-bit guest has no plain 8-byte mov, so it is two 4-byte accesses,
 * low half first. Paging is off, so @addr is the physical address. */

static inline uint8_t mmio_read8(uintptr_t addr)
{
    return *(volatile uint8_t *)addr;
}

static inline uint16_t mmio_read16(uintptr_t addr)
{
    return *(volatile uint16_t *)addr;
}

static inline uint32_t mmio_read32(uintptr_t addr)
{
    return *(volatile uint32_t *)addr;
}

static inline uint64_t mmio_read64(uintptr_t addr)
{
    uint64_t lo = mmio_read32(addr);
    uint64_t hi = mmio_read32(addr + 4);
    return lo | (hi << 32);
}

static inline void mmio_write8(uintptr_t addr, uint8_t v)
{
    *(volatile uint8_t *)addr = v;
}

static inline void mmio_write16(uintptr_t addr, uint16_t v)
{
    *(volatile uint16_t *)addr = v;
}

static inline void mmio_write32(uintptr_t addr, uint32_t v)
{
    *(volatile uint32_t *)addr = v;
}

static inline void mmio_write64(uintptr_t addr, uint64_t v)
{
    mmio_write32(addr, (uint32_t)v);
    mmio_write32(addr + 4, (uint32_t)(v >> 32));
}

/* ---- CPU helpers, barriers and atomics ---------------------------------- */

static inline uint64_t rdtsc(void)
{
    uint64_t v;
    __asm__ volatile("rdtsc" : "=A"(v));
    return v;
}

static inline void cpu_pause(void)
{
    __asm__ volatile("pause" ::: "memory");
}

/* Stops this CPU for good: interrupts off, then hlt (a VMM sees an HLT exit). */
static inline void __attribute__((noreturn)) cpu_halt_forever(void)
{
    for (;;) {
        __asm__ volatile("cli; hlt" ::: "memory");
    }
}

/* Compiler-only barrier. On x86 (TSO) it is also the read barrier and the
 * write barrier for ordinary write-back memory: loads are not reordered with
 * loads, nor stores with stores. */
#define barrier() __asm__ volatile("" ::: "memory")
#define rmb()     barrier()
#define wmb()     barrier()

/* Full barrier, also ordering earlier stores before later loads. A locked OR
 * to the stack rather than mfence: it is older than SSE2 and every
 * instruction emulator knows it. */
static inline void mb(void)
{
    __asm__ volatile("lock; orl $0, (%%esp)" ::: "memory", "cc");
}

static inline uint32_t atomic_read32(const volatile uint32_t *p)
{
    return *p;
}

static inline void atomic_add32(volatile uint32_t *p, uint32_t v)
{
    __asm__ volatile("lock; addl %1, %0" : "+m"(*p) : "ir"(v) : "memory", "cc");
}

/* Adds @v to *@p and returns the old value; a full barrier. */
static inline uint32_t atomic_fetch_add32(volatile uint32_t *p, uint32_t v)
{
    __asm__ volatile("lock; xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory", "cc");
    return v;
}

/* Stores @v in *@p and returns the old value; xchg with memory is always
 * locked, so it is a full barrier. */
static inline uint32_t atomic_xchg32(volatile uint32_t *p, uint32_t v)
{
    __asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
    return v;
}

/* ---- Spinlock ----------------------------------------------------------- */

/* All-zero is unlocked, so a static spinlock_t needs no initializer. */
typedef struct spinlock {
    volatile uint32_t locked;
} spinlock_t;

/* Test-and-test-and-set: the xchg that takes the lock is the acquire barrier
 * whose partner is the release store in spin_unlock(). */
static inline void spin_lock(spinlock_t *l)
{
    while (atomic_xchg32(&l->locked, 1) != 0) {
        while (atomic_read32(&l->locked) != 0) {
            cpu_pause();
        }
    }
}

static inline void spin_unlock(spinlock_t *l)
{
    /* Release: under TSO a plain store is not reordered with the earlier
     * loads and stores of the critical section; barrier() keeps the compiler
     * from doing so. Partner: the xchg in spin_lock(). */
    barrier();
    l->locked = 0;
}

/* ---- Time --------------------------------------------------------------- */
/* The guest does not know its TSC frequency; delays are in TSC cycles. Both
 * hosts count real time in the TSC (about 1-4 GHz), so a cycle budget bounds
 * wall-clock time however slowly the guest's instructions are emulated. */

/* Busy-waits for at least @cycles TSC cycles. */
void tsc_delay(uint64_t cycles);

/* Polls *@p until it is at least @target or @timeout_cycles TSC cycles pass.
 * Returns true if the target was reached. The volatile read that sees the
 * target pairs with the writer's locked add (atomic_add32()). */
bool tsc_wait_ge32(const volatile uint32_t *p, uint32_t target, uint64_t timeout_cycles);

/* ---- Debug exit --------------------------------------------------------- */

/* Ends the VM through isa-debug-exit: the host exits with (@code << 1) | 1.
 * If the device is missing, halts this CPU forever. Any CPU. */
void __attribute__((noreturn)) debug_exit(uint32_t code);

/* ---- Serial (16550 at 0x3F8, polled) ------------------------------------ */

/* Programs 115200 8N1 with FIFOs on and interrupts off. Optional: both hosts
 * accept output without it. Call before starting APs. */
void serial_init(void);

/* Writes one byte, waiting for LSR.THRE first. No lock, no '\n' translation. */
void serial_putc(char c);

/* Writes a string under the output lock, so lines from several CPUs stay whole. */
void serial_puts(const char *s);

/* A tiny printf to the UART under the output lock. Conversions: %d %u %x
 * %c %s %%, an 'l' modifier (long: 32 bits here) and an 'll' modifier
 * (64-bit, e.g. %llx for rdtsc()), a '0' flag and a field width ("%08x").
 * Does not translate '\n'. Safe on any CPU; not reentrant on one CPU. */
void serial_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void serial_vprintf(const char *fmt, va_list ap);

/* ---- Command line ------------------------------------------------------- */

/* Looks for a whitespace-separated word "@name=N" in @cmdline and returns N
 * (decimal, or hex with 0x; an optional leading '-'). Returns @def when the
 * word is missing or N is not a whole number. */
long cmdline_get_int(const char *cmdline, const char *name, long def);

/* ---- fw_cfg (QEMU's firmware configuration, I/O ports 0x510/0x511) ------ */

/* Copies the 4-byte signature (key 0x0000) into @sig: "QEMU" when present,
 * all-ones bytes when there is no fw_cfg device. */
void fw_cfg_read_signature(char sig[4]);

/* True if the signature reads "QEMU". */
bool fw_cfg_present(void);

/* The vCPU count (key FW_CFG_NB_CPUS), or 0 when fw_cfg is absent. */
unsigned int fw_cfg_cpu_count(void);

/* ---- Local APIC and SMP ------------------------------------------------- */

uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);

/* This CPU's APIC ID, which the machine makes equal to its vCPU index. */
int smp_cpu_id(void);

/* The number of vCPUs the machine has (fw_cfg's count; 1 without fw_cfg). */
int smp_cpu_count(void);

typedef void (*smp_ap_main_fn)(int cpu);

/* Starts every other CPU and has each call @ap_main(its APIC ID) on its own
 * stack; if @ap_main returns, that CPU halts. Copies the real-mode trampoline
 * to GUEST_TRAMPOLINE_ADDR, enables the local APIC, then sends INIT and two
 * SIPIs to all-excluding-self (MP spec B.4). Waits until smp_cpu_count() CPUs
 * (this one included) have checked in; an AP checks in just before calling
 * @ap_main. Returns 0 then, -1 if some AP did not arrive within a few seconds
 * or the machine has more than GUEST_MAX_CPUS CPUs. BSP only, at most once. */
int smp_start_aps(smp_ap_main_fn ap_main);

/* ---- Freestanding runtime ----------------------------------------------- */
/* The compiler may emit calls to these for struct copies and clears. */

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
size_t strlen(const char *s);

#endif /* __ASSEMBLER__ */

#endif /* KVMLOOP_GUEST_H */
