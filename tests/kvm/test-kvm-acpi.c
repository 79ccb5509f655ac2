/* ACPI on real KVM: a guest finds kvmloop's tables, checks them and powers off through acpi-pm. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "kvmloop/acpi.h"
#include "kvmloop/bql.h"
#include "kvmloop/chardev.h"
#include "kvmloop/config.h"
#include "kvmloop/device.h"
#include "kvmloop/guest_mem.h"
#include "kvmloop/machine.h"

#include "kvm-test-run.h"

/* Where the pc machine's firmware tables live (the BIOS area OSes scan). */
#define ACPI_TABLES_GPA 0xe0000

typedef struct AcpiRun {
    int status;
    char *serial;
    bool press_button;
    Machine *machine;
    Device *pm; /* the acpi-pm device the guest talks to */
    pthread_t presser;
    int stop; /* atomic: the presser ends */
} AcpiRun;

static const char *guest_dir;

/* The machine provides the acpi-pm device and the tables at 0xE0000. */
static void find_acpi(AcpiRun *r, Machine *m)
{
    r->pm = machine_find_device(m, "acpi-pm");
    g_assert_nonnull(r->pm);
    const uint8_t *rsdp = guest_mem_ptr(machine_guest_mem(m), ACPI_TABLES_GPA, 8);
    g_assert_nonnull(rsdp);
    g_assert_cmpmem(rsdp, 8, "RSD PTR ", 8);
}

/* Press the power button every 20 ms until the machine stops: the guest
 * clears stale status before it enables the event, so it needs a later press. */
static void *presser(void *arg)
{
    AcpiRun *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        int status;
        bql_lock();
        if (!machine_exit_requested(r->machine, &status)) {
            acpi_pm_power_button(r->pm);
        }
        bql_unlock();
        g_usleep(20000);
    }
    return NULL;
}

static void on_started(Machine *m, EventLoop *loop, void *opaque)
{
    AcpiRun *r = opaque;
    r->machine = m;
    find_acpi(r, m);
    if (r->press_button) {
        g_assert_cmpint(pthread_create(&r->presser, NULL, presser, r), ==, 0);
    }
}

static void on_stopped(Machine *m, int status, void *opaque)
{
    AcpiRun *r = opaque;
    if (r->press_button) {
        __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
        bql_unlock();
        pthread_join(r->presser, NULL);
        bql_lock();
    }
    Chardev *chr = machine_serial(m, 0);
    size_t len;
    const uint8_t *buf = chardev_captured(chr, &len);
    r->serial = g_strndup((const char *)buf, len);
}

static void run_vm(AcpiRun *r, const char *const *args)
{
    g_autofree char *kernel = g_strdup_printf("%s/acpi-poweroff.elf", guest_dir);
    VmHooks hooks = {.started = on_started, .stopped = on_stopped, .opaque = r};
    r->status = kvm_test_run((const char *[]){"-kernel", kernel, NULL}, args, &hooks);
}

static void assert_serial(const AcpiRun *r, const char *line)
{
    if (!strstr(r->serial, line)) {
        g_error("serial output lacks '%s':\n%s", line, r->serial);
    }
}

/* The payload finds every table, and S5 ends the run with status 0. */
static void test_poweroff(gconstpointer data)
{
    const char *smp = data;
    AcpiRun r = {0};
    run_vm(&r, (const char *[]){"-smp", smp, NULL});
    if (r.status != 0) {
        g_error("status %d, expected 0; serial output:\n%s", r.status, r.serial);
    }
    assert_serial(&r, "acpi-poweroff: RSDP at 0xe0000, revision 2, XSDT at 0x");
    assert_serial(&r, "PM1a_EVT 0x600 PM1a_CNT 0x604 PM_TMR 0x608 SCI 9");
    assert_serial(&r, "\\_S5 SLP_TYP 5");
    /* kvmloop's hardware is always in ACPI mode (SMI_CMD 0, SCI_EN set). */
    g_assert_null(strstr(r.serial, "enabling ACPI mode"));
    g_autofree char *cpus = g_strdup_printf(": %s CPUs", smp);
    assert_serial(&r, cpus);
    assert_serial(&r, "acpi-poweroff: powering off (SLP_TYP 5)");
    g_free(r.serial);
}

/* acpi_pm_power_button() raises the SCI through the in-kernel IOAPIC. */
static void test_power_button(void)
{
    AcpiRun r = {.press_button = true};
    run_vm(&r, (const char *[]){"-append", "button=1", NULL});
    if (r.status != 0) {
        g_error("status %d, expected 0; serial output:\n%s", r.status, r.serial);
    }
    assert_serial(&r, "waiting for the power button on SCI 9");
    assert_serial(&r, "acpi-poweroff: power button pressed");
    assert_serial(&r, "powering off");
    g_free(r.serial);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    guest_dir = kvm_test_init();
    g_test_add_data_func("/kvm/acpi/poweroff", "1", test_poweroff);
    g_test_add_data_func("/kvm/acpi/poweroff-smp", "4", test_poweroff);
    g_test_add_func("/kvm/acpi/power-button", test_power_button);
    return g_test_run();
}
