/* virtio-pci on real KVM: payload drivers against the devices, on the main loop and an iothread. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "kvmloop/bql.h"
#include "kvmloop/chardev.h"
#include "kvmloop/config.h"
#include "kvmloop/device.h"
#include "kvmloop/machine.h"
#include "kvmloop/virtio.h"

typedef struct Run {
    int status;
    char *serial;
    const char *dev_id;
    VirtioStats stats;
    bool broken;
} Run;

static const char *guest_dir;

static void on_stopped(Machine *m, int status, void *opaque)
{
    Run *r = opaque;
    Chardev *chr = machine_serial(m, 0);
    if (chr) {
        size_t len;
        const uint8_t *buf = chardev_captured(chr, &len);
        r->serial = g_strndup((const char *)buf, len);
    }
    Device *d = machine_find_device(m, r->dev_id);
    g_assert_nonnull(d);
    r->stats = virtio_device_stats(d);
    r->broken = virtio_device_broken(d);
}

/* kvmloop on @args plus a capturing serial port and debug-exit. */
static void run_vm(Run *r, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    const char *fixed[] = {"kvmloop", "-serial", "capture", "-device",
                           "isa-debug-exit,iobase=0xf4,iosize=0x4"};
    for (unsigned i = 0; i < G_N_ELEMENTS(fixed); i++) {
        g_ptr_array_add(argv, (char *)fixed[i]);
    }
    for (; *args; args++) {
        g_ptr_array_add(argv, (char *)*args);
    }
    VmConfig cfg;
    g_autoptr(GError) err = NULL;
    if (!vm_config_parse(&cfg, (int)argv->len, (char **)argv->pdata, &err)) {
        g_error("bad test command line: %s", err->message);
    }
    VmHooks hooks = {.stopped = on_stopped, .opaque = r};
    r->status = vm_run_hooked(&cfg, &hooks);
    vm_config_clear(&cfg);
}

static char *payload(const char *name)
{
    return g_strdup_printf("%s/%s.elf", guest_dir, name);
}

/* The payload reads 64 random bytes with MSI-X; the data plane is the main
 * loop (under the BQL) or an iothread (never under it). */
static void test_rng(gconstpointer data)
{
    bool iothread = GPOINTER_TO_INT(data);
    g_autofree char *k = payload("virtio-rng");
    Run r = {.dev_id = "rng0"};
    if (iothread) {
        run_vm(&r, (const char *[]){"-kernel", k, "-object", "iothread,id=io0", "-device",
                                    "virtio-rng-pci,id=rng0,iothread=io0", NULL});
    } else {
        run_vm(&r, (const char *[]){"-kernel", k, "-device", "virtio-rng-pci,id=rng0", NULL});
    }
    g_assert_cmpint(r.status, ==, 1);
    g_assert_nonnull(strstr(r.serial, "virtio-rng: ok"));
    g_assert_cmpuint(r.stats.notifies, >=, 1);
    g_assert_cmpuint(r.stats.interrupts, >=, 1);
    g_assert_cmpuint(r.stats.broken, ==, 0);
    if (iothread) {
        g_assert_cmpuint(r.stats.notifies_bql, ==, 0);
    } else {
        g_assert_cmpuint(r.stats.notifies_bql, ==, r.stats.notifies);
    }
    g_free(r.serial);
}

/* A hostile driver breaks the device, kvmloop goes on, and after a reset
 * the same device serves a proper request. */
static void test_hostile(gconstpointer data)
{
    const char *mode = data;
    g_autofree char *k = payload("virtio-rng");
    g_autofree char *append = g_strdup_printf("mode=%s", mode);
    Run r = {.dev_id = "virtio-rng-pci"};
    run_vm(&r,
           (const char *[]){"-kernel", k, "-append", append, "-device", "virtio-rng-pci", NULL});
    g_assert_cmpint(r.status, ==, 1);
    g_autofree char *ok = g_strdup_printf("virtio-rng: ok (mode %s)", mode);
    g_assert_nonnull(strstr(r.serial, ok));
    /* Mode 5 (a request after reset) is ignored, not a violation. */
    g_assert_cmpuint(r.stats.broken, ==, strcmp(mode, "5") ? 1 : 0);
    g_assert_false(r.broken); /* the reset cleared it */
    g_free(r.serial);
}

static void test_bad_iothread(void)
{
    g_autofree char *k = payload("virtio-rng");
    const char *argv[] = {"kvmloop", "-kernel", k, "-device", "virtio-rng-pci,iothread=nope"};
    VmConfig cfg;
    g_assert_true(vm_config_parse(&cfg, G_N_ELEMENTS(argv), (char **)argv, NULL));
    /* A start-up error: one line, exit status 1, no guest run. */
    g_assert_cmpint(vm_run(&cfg), ==, 1);
    vm_config_clear(&cfg);
}

static void require_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return;
    }
    if (g_getenv("CI")) {
        fprintf(stderr, "FAIL: /dev/kvm is not usable (%s) and CI needs these tests\n",
                g_strerror(errno));
        exit(1);
    }
    fprintf(stderr, "SKIP: /dev/kvm is not usable: %s\n", g_strerror(errno));
    exit(77);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    require_kvm();
    guest_dir = g_getenv("KVMLOOP_GUEST_DIR");
    if (!guest_dir) {
        g_error("KVMLOOP_GUEST_DIR is not set");
    }
    g_test_add_data_func("/kvm/virtio/rng/main-loop", GINT_TO_POINTER(0), test_rng);
    g_test_add_data_func("/kvm/virtio/rng/iothread", GINT_TO_POINTER(1), test_rng);
    static const char *const modes[] = {"1", "2", "3", "4", "5", "6"};
    static const char *const names[] = {"loop",      "past-ram",    "head-range",
                                        "mmio-ring", "after-reset", "avail-ahead"};
    for (unsigned i = 0; i < G_N_ELEMENTS(modes); i++) {
        g_autofree char *path = g_strdup_printf("/kvm/virtio/hostile/%s", names[i]);
        g_test_add_data_func(path, modes[i], test_hostile);
    }
    g_test_add_func("/kvm/virtio/bad-iothread", test_bad_iothread);
    return g_test_run();
}
