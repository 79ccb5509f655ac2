/* Local APIC access and AP bring-up with INIT-SIPI-SIPI. */
#include "guest.h"

/* Delays in TSC cycles. The MP spec (B.4) asks for 10 ms after INIT and
 * 200 us after each SIPI; that is these counts at 1 GHz and less at faster
 * TSCs, which virtual CPUs do not mind: they act on an IPI at once. */
#define SMP_INIT_DELAY 10000000ull
#define SMP_SIPI_DELAY 200000ull
/* How long APs may take to check in (several seconds at any likely TSC
 * rate), and how long the ICR may stay busy. */
#define SMP_CHECKIN_TIMEOUT (1ull << 34)
#define SMP_ICR_TIMEOUT     100000000ull

extern const char smp_tramp_start[], smp_tramp_end[];

/* Written by the BSP before the first IPI, read by APs after they start. */
static smp_ap_main_fn volatile smp_ap_main;
/* CPUs that have checked in, the BSP included. */
static volatile uint32_t smp_online;

uint32_t lapic_read(uint32_t reg)
{
    return mmio_read32(APIC_DEFAULT_PHYS_BASE + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
    mmio_write32(APIC_DEFAULT_PHYS_BASE + reg, v);
}

int smp_cpu_id(void)
{
    return (int)(lapic_read(APIC_ID) >> 24);
}

int smp_cpu_count(void)
{
    unsigned int n = fw_cfg_cpu_count();

    return n == 0 ? 1 : (int)n;
}

/* Sends the IPI described by @icr_low (the destination is in its shorthand)
 * and waits, bounded, for the local APIC to accept it. */
static void smp_send_ipi(uint32_t icr_low)
{
    uint64_t start = rdtsc();

    lapic_write(APIC_ICR2, 0);
    lapic_write(APIC_ICR, icr_low); /* the write of the low half sends it */
    while ((lapic_read(APIC_ICR) & APIC_ICR_BUSY) && rdtsc() - start < SMP_ICR_TIMEOUT) {
        cpu_pause();
    }
}

void smp_ap_entry(int cpu)
{
    smp_ap_main_fn fn = smp_ap_main;

    atomic_add32(&smp_online, 1);
    fn(cpu);
    cpu_halt_forever();
}

int smp_start_aps(smp_ap_main_fn ap_main)
{
    int n = smp_cpu_count();
    uint32_t sipi = APIC_DEST_ALLBUT | APIC_DM_STARTUP | (GUEST_TRAMPOLINE_ADDR >> 12);
    int i;

    if (n > GUEST_MAX_CPUS) {
        return -1;
    }
    smp_online = 1;
    if (n == 1) {
        return 0;
    }
    smp_ap_main = ap_main;
    memcpy((void *)GUEST_TRAMPOLINE_ADDR, smp_tramp_start,
           (size_t)(smp_tramp_end - smp_tramp_start));
    /* The trampoline and smp_ap_main must be in memory before an AP can run;
     * partner: the APs' instruction fetch and their read of smp_ap_main in
     * smp_ap_entry(), which come after the SIPI. */
    mb();

    lapic_write(APIC_SPIV, lapic_read(APIC_SPIV) | APIC_SPIV_APIC_ENABLED);
    smp_send_ipi(APIC_DEST_ALLBUT | APIC_INT_ASSERT | APIC_DM_INIT);
    tsc_delay(SMP_INIT_DELAY);
    for (i = 0; i < 2; i++) {
        /* An AP already running ignores the second SIPI. */
        smp_send_ipi(sipi);
        tsc_delay(SMP_SIPI_DELAY);
    }
    return tsc_wait_ge32(&smp_online, (uint32_t)n, SMP_CHECKIN_TIMEOUT) ? 0 : -1;
}
