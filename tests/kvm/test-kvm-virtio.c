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
#include "kvmloop/iothread.h"
#include "kvmloop/klock.h"
#include "kvmloop/machine.h"
#include "kvmloop/virtio.h"

#include "kvm-test-run.h"

typedef struct Run {
    int status;
    char *serial;
    const char *dev_id;
    VirtioStats stats;
    bool broken;
    bool blk;
    VirtioBlkStats blk_stats;
    unsigned resets;
    /* Optional: after the vCPUs started, with this Run as @opaque. */
    void (*started)(Machine *m, EventLoop *loop, void *opaque);
    void *started_data;
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
    if (r->blk) {
        r->blk_stats = virtio_blk_stats(d);
    }
    r->resets = machine_reset_count(m);
}

/* kvmloop on @args plus a capturing serial port and debug-exit. */
static void run_vm(Run *r, const char *const *args)
{
    VmHooks hooks = {.started = r->started, .stopped = on_stopped, .opaque = r};
    r->status = kvm_test_run(args, NULL, &hooks);
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

/* ---- virtio-blk ---------------------------------------------------------- */

#define BLK_IMAGE_SIZE (1 << 20)

typedef struct BlkCase {
    const char *name;
    const char *drive; /* -drive options after file=IMG */
    const char *append;
    bool iothread;
    int smp;
    int queues;        /* regions written */
    bool ro;           /* image must stay as it was */
    long broken;       /* times the device must have been broken */
    bool errors;       /* IOERR/UNSUPP answers expected */
    const char *env;   /* KVMLOOP_NO_IO_URING */
    bool reset;        /* mode=3: sectors 512-551 hold the pattern too */
    const char *delay; /* KVMLOOP_TEST_IO_DELAY_MS: a reset must wait for the writes */
} BlkCase;

static char *blk_image(void)
{
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("kvmloop-vblk-XXXXXX.img", &path, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_autofree uint8_t *fill = g_malloc(BLK_IMAGE_SIZE);
    memset(fill, 0xee, BLK_IMAGE_SIZE);
    g_assert_cmpint(write(fd, fill, BLK_IMAGE_SIZE), ==, BLK_IMAGE_SIZE);
    close(fd);
    return g_steal_pointer(&path);
}

/* The pattern the payload writes: byte i of sector s is s * 13 + i. */
static void blk_check_image(const char *path, int regions, bool untouched, bool reset)
{
    g_autofree char *data = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, ==, BLK_IMAGE_SIZE);
    for (gsize i = 0; i < len; i++) {
        uint64_t sector = i / 512;
        uint8_t want = 0xee;
        if (!untouched && (sector < 64ULL * regions || (reset && sector >= 512 && sector < 552))) {
            want = (uint8_t)(sector * 13 + i % 512);
        }
        if ((uint8_t)data[i] != want) {
            g_error("image byte %" G_GSIZE_FORMAT " is 0x%02x, expected 0x%02x", i,
                    (uint8_t)data[i], want);
        }
    }
}

/* The payload writes, flushes, reads back and powers off; the host then
 * reads the image itself. */
static void test_blk(gconstpointer data)
{
    const BlkCase *c = data;
    g_autofree char *k = payload("virtio-blk");
    g_autofree char *img = blk_image();
    g_autofree char *drive = g_strdup_printf("file=%s,if=virtio,format=raw,id=disk0%s%s", img,
                                             c->iothread ? ",iothread=io0" : "", c->drive);
    g_autofree char *smp = g_strdup_printf("%d", c->smp ? c->smp : 1);
    Run r = {.dev_id = "disk0", .blk = true};
    if (c->env) {
        g_setenv("KVMLOOP_NO_IO_URING", "1", TRUE);
    }
    if (c->delay) {
        g_setenv("KVMLOOP_TEST_IO_DELAY_MS", c->delay, TRUE);
    }
    run_vm(&r, (const char *[]){"-kernel", k, "-smp", smp, "-append", c->append, "-object",
                                "iothread,id=io0", "-drive", drive, NULL});
    g_unsetenv("KVMLOOP_NO_IO_URING");
    g_unsetenv("KVMLOOP_TEST_IO_DELAY_MS");
    if (r.status != 1) {
        g_error("exit status %d, serial: %s", r.status, r.serial);
    }
    g_assert_nonnull(strstr(r.serial, "virtio-blk: id disk0"));
    g_assert_nonnull(strstr(r.serial, "virtio-blk: ok"));
    blk_check_image(img, c->queues, c->ro, c->reset);
    if (c->delay) {
        /* The writes were in flight at the reset, which waited for them. */
        g_assert_cmpuint(r.blk_stats.reset_waits, >=, 1);
    }
    g_assert_cmpuint(r.blk_stats.late_completions, ==, 0);
    g_assert_cmpuint(r.stats.broken, ==, c->broken);
    g_assert_false(r.broken);
    g_assert_cmpuint(r.blk_stats.requests, >=, 3);
    if (c->errors) {
        g_assert_cmpuint(r.blk_stats.errors, >=, 1);
    } else {
        g_assert_cmpuint(r.blk_stats.errors, ==, 0);
    }
    if (c->iothread) {
        /* Doorbells in by ioeventfd, completions out by MSI: never the BQL. */
        g_assert_cmpuint(r.stats.notifies_bql, ==, 0);
        g_assert_cmpuint(r.blk_stats.completions_bql, ==, 0);
    } else {
        g_assert_cmpuint(r.stats.notifies_bql, ==, r.stats.notifies);
    }
    unlink(img);
    g_free(r.serial);
}

static const BlkCase blk_cases[] = {
    {"write/main-loop", "", "mode=0", .queues = 1},
    {"write/io_uring", ",aio=io_uring", "mode=0", .queues = 1},
    {"write/threads", ",aio=threads", "mode=0", .queues = 1},
    {"write/fallback", "", "mode=0", .queues = 1, .env = "1"},
    {"write/cache-none", ",cache=none", "mode=0", .queues = 1},
    {"write/iothread", "", "mode=0", .iothread = true, .queues = 1},
    {"write/iothread-threads", ",aio=threads", "mode=0", .iothread = true, .queues = 1},
    {"write/two-queues", ",num-queues=2", "mode=0 queues=2", .smp = 2, .queues = 2},
    {"write/two-queues-iothread", ",num-queues=2,cache=none", "mode=0 queues=2", .iothread = true,
     .smp = 2, .queues = 2},
    {"readonly", ",readonly=on", "mode=1", .ro = true, .errors = true},
    {"reset-in-flight/io_uring", "", "mode=3", .queues = 1, .reset = true},
    {"reset-in-flight/main-loop", ",aio=threads", "mode=3", .queues = 1, .reset = true,
     .delay = "100"},
    {"reset-in-flight/iothread", ",aio=threads", "mode=3", .iothread = true, .queues = 1,
     .reset = true, .delay = "100"},
    {"reset-in-flight/cache-none", ",aio=threads,cache=none", "mode=3", .queues = 1, .reset = true,
     .delay = "100"},
    {"hostile/short-header", "", "mode=10", .queues = 1, .broken = 1},
    {"hostile/past-end", "", "mode=11", .queues = 1, .errors = true},
    {"hostile/mmio-buffer", "", "mode=12", .queues = 1, .broken = 1},
    {"hostile/status-readonly", "", "mode=13", .queues = 1, .broken = 1},
    {"hostile/unsupported", "", "mode=14", .queues = 1, .errors = true},
};

/* A machine reset (as QMP system_reset makes) while the guest keeps a slow
 * write in flight: the main thread resets the disk with the BQL held. */
#define MACHINE_RESET_TRIES 5

typedef struct MachineReset {
    Machine *m;
    Timer *timer;
    unsigned resets; /* requested so far */
    unsigned ticks;
} MachineReset;

static unsigned count_flushed(Machine *m)
{
    size_t len;
    const uint8_t *buf = chardev_captured(machine_serial(m, 0), &len);
    g_autofree char *text = g_strndup(len ? (const char *)buf : "", len);
    unsigned n = 0;
    for (const char *p = text; (p = strstr(p, "virtio-blk: flushed")); p++) {
        n++;
    }
    return n;
}

/* Main loop, BQL held. Each time the payload has flushed (its rewrites of
 * sector 256 then keep a request in flight most of the time), reset the
 * machine, until a reset caught a request in flight (the guest's own work
 * between two requests is slow here, so one may miss). */
static void machine_reset_tick(void *opaque)
{
    MachineReset *mr = opaque;
    if (count_flushed(mr->m) > mr->resets) {
        Device *d = machine_find_device(mr->m, "disk0");
        if (virtio_blk_stats(d).reset_waits > 0 || mr->resets == MACHINE_RESET_TRIES) {
            machine_request_exit(mr->m, 0);
            return;
        }
        machine_request_reset(mr->m);
        mr->resets++;
    }
    if (++mr->ticks > 12000) {
        machine_request_exit(mr->m, 3); /* 120 s */
        return;
    }
    timer_mod(mr->timer, clock_get_ns(CLOCK_TYPE_REALTIME) + 10 * 1000 * 1000);
}

static void machine_reset_started(Machine *m, EventLoop *loop, void *opaque)
{
    MachineReset *mr = ((Run *)opaque)->started_data;
    mr->m = m;
    mr->timer = timer_new(loop, CLOCK_TYPE_REALTIME, "test-reset", machine_reset_tick, mr);
    timer_mod(mr->timer, clock_get_ns(CLOCK_TYPE_REALTIME));
}

static void test_blk_machine_reset(gconstpointer data)
{
    bool iothread = GPOINTER_TO_INT(data);
    g_autofree char *k = payload("virtio-blk");
    g_autofree char *img = blk_image();
    g_autofree char *drive = g_strdup_printf("file=%s,if=virtio,format=raw,id=disk0,aio=threads%s",
                                             img, iothread ? ",iothread=io0" : "");
    MachineReset mr = {0};
    Run r = {.dev_id = "disk0", .blk = true, .started = machine_reset_started, .started_data = &mr};
    g_setenv("KVMLOOP_TEST_IO_DELAY_MS", "50", TRUE);
    run_vm(&r, (const char *[]){"-kernel", k, "-append", "mode=2", "-object", "iothread,id=io0",
                                "-drive", drive, NULL});
    g_unsetenv("KVMLOOP_TEST_IO_DELAY_MS"); /* the main loop freed the timer */
    if (r.status != 0) {
        g_error("exit status %d, serial: %s", r.status, r.serial);
    }
    g_assert_cmpuint(r.resets, ==, mr.resets);
    g_assert_cmpuint(r.blk_stats.reset_waits, >=, 1);
    g_assert_cmpuint(r.blk_stats.late_completions, ==, 0);
    g_assert_cmpuint(r.blk_stats.errors, ==, 0);
    g_assert_cmpuint(r.stats.broken, ==, 0);
    unlink(img);
    g_free(r.serial);
}

/* Start-up errors: one line, exit status 1, no guest run. */
static void test_blk_bad(void)
{
    g_autofree char *k = payload("virtio-blk");
    static const char *const drives[] = {
        "file=/nonexistent/kvmloop.img,if=virtio,format=raw",
        "file=/dev/null,if=virtio,format=raw", /* not a file or block device */
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(drives); i++) {
        const char *argv[] = {"kvmloop", "-kernel", k, "-drive", drives[i]};
        VmConfig cfg;
        g_assert_true(vm_config_parse(&cfg, G_N_ELEMENTS(argv), (char **)argv, NULL));
        g_assert_cmpint(vm_run(&cfg), ==, 1);
        vm_config_clear(&cfg);
    }
    g_autofree char *img = blk_image();
    g_autofree char *bad_io = g_strdup_printf("file=%s,iothread=nope", img);
    const char *argv[] = {"kvmloop", "-kernel", k, "-drive", bad_io};
    VmConfig cfg;
    g_assert_true(vm_config_parse(&cfg, G_N_ELEMENTS(argv), (char **)argv, NULL));
    g_assert_cmpint(vm_run(&cfg), ==, 1);
    vm_config_clear(&cfg);
    unlink(img);
}

/* -drive options kvmloop refuses while parsing. */
static void test_blk_parse(void)
{
    static const struct {
        const char *drive, *msg;
    } cases[] = {
        {"if=virtio", "no image given"},
        {"file=x,if=ide", "if=ide is not supported"},
        {"file=x,format=qcow2", "format=qcow2 is not supported"},
        {"file=x,readonly=maybe", "readonly=maybe is not one of"},
        {"file=x,cache=unsafe", "cache=unsafe is not one of"},
        {"file=x,media=cdrom", "unknown option 'media'"},
        {"file=x,file=y", "'file' given twice"},
        {"file", "expected key=value"},
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *argv[] = {"kvmloop", "-kernel", "k", "-drive", cases[i].drive};
        VmConfig cfg;
        g_autoptr(GError) err = NULL;
        g_assert_false(vm_config_parse(&cfg, G_N_ELEMENTS(argv), (char **)argv, &err));
        g_assert_nonnull(strstr(err->message, cases[i].msg));
        vm_config_clear(&cfg);
    }
    /* ",," is a comma in the file name; ids default to drive<N>. */
    const char *argv[] = {"kvmloop", "-kernel", "k", "-drive", "file=a,,b", "-drive", "file=c"};
    VmConfig cfg;
    g_assert_true(vm_config_parse(&cfg, G_N_ELEMENTS(argv), (char **)argv, NULL));
    g_assert_cmpuint(cfg.drives->len, ==, 2);
    g_assert_cmpstr(g_hash_table_lookup(cfg.drives->pdata[0], "file"), ==, "a,b");
    g_assert_cmpstr(g_hash_table_lookup(cfg.drives->pdata[1], "id"), ==, "drive1");
    vm_config_clear(&cfg);
}

/* ---- virtio-console ------------------------------------------------------ */

#define CON_INPUT "ping from the host\n"

typedef struct ConRun {
    const char *iothread; /* NULL: the main loop serves the device */
    int status;
    char *serial;
    char *console; /* what the guest wrote to hvc0 */
    VirtioStats stats;
    bool broken;
} ConRun;

static void con_deliver(void *opaque)
{
    Chardev *chr = opaque;
    g_assert_cmpuint(chardev_deliver(chr, (const uint8_t *)CON_INPUT, strlen(CON_INPUT)), ==,
                     strlen(CON_INPUT));
}

/* Input is typed while the guest may not have posted a buffer yet: the
 * device holds it. It is delivered on the device's data-plane thread. */
static void con_started(Machine *m, EventLoop *loop, void *opaque)
{
    ConRun *r = opaque;
    Chardev *chr = virtio_console_chardev(machine_find_device(m, "con0"));
    if (r->iothread) {
        iothread_run_sync(iothread_find(r->iothread), con_deliver, chr);
    } else {
        con_deliver(chr);
    }
}

static void con_stopped(Machine *m, int status, void *opaque)
{
    ConRun *r = opaque;
    Device *d = machine_find_device(m, "con0");
    size_t len;
    const uint8_t *buf = chardev_captured(machine_serial(m, 0), &len);
    r->serial = g_strndup((const char *)buf, len);
    /* The data plane writes the capture under the device lock. */
    klock_lock(&d->lock);
    buf = chardev_captured(virtio_console_chardev(d), &len);
    r->console = g_strndup((const char *)buf, len);
    klock_unlock(&d->lock);
    r->stats = virtio_device_stats(d);
    r->broken = virtio_device_broken(d);
}

static void con_run(ConRun *r, const char *append)
{
    g_autofree char *k = payload("virtio-console");
    g_autofree char *dev =
        g_strdup_printf("virtio-console-pci,id=con0,chardev=capture%s%s",
                        r->iothread ? ",iothread=" : "", r->iothread ? r->iothread : "");
    g_autofree char *obj = g_strdup_printf("iothread,id=%s", r->iothread ? r->iothread : "");
    const char *kernel[] = {"-kernel", k, "-append", append, NULL};
    const char *devices[] = {"-object", obj, "-device", dev, NULL};
    VmHooks hooks = {.started = con_started, .stopped = con_stopped, .opaque = r};
    r->status = kvm_test_run(kernel, r->iothread ? devices : devices + 2, &hooks);
}

/* A line each way: the guest's reaches the capture, the host's comes back on
 * the UART. Modes 1 and 2 first break the device and reset it. */
static void test_console(gconstpointer data)
{
    const char *const *c = data; /* {iothread or "", mode} */
    ConRun r = {.iothread = c[0][0] ? c[0] : NULL};
    g_autofree char *append = g_strdup_printf("mode=%s", c[1]);
    con_run(&r, append);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_cmpstr(r.console, ==, "hello from the guest over hvc\n");
    g_assert_nonnull(strstr(r.serial, "virtio-console: got " CON_INPUT));
    g_assert_cmpuint(r.stats.broken, ==, strcmp(c[1], "0") ? 1 : 0);
    g_assert_false(r.broken);
    g_assert_cmpuint(r.stats.interrupts, >=, 2);
    if (r.iothread) {
        g_assert_cmpuint(r.stats.notifies_bql, ==, 0);
    }
    g_free(r.serial);
    g_free(r.console);
}

static void con_expect_error(const char *dev, const char *serial)
{
    g_autofree char *k = payload("virtio-console");
    const char *argv[] = {"kvmloop", "-kernel", k, "-serial", serial, "-device", dev};
    VmConfig cfg;
    g_assert_true(vm_config_parse(&cfg, G_N_ELEMENTS(argv), (char **)argv, NULL));
    g_assert_cmpint(vm_run(&cfg), ==, 1);
    vm_config_clear(&cfg);
}

/* Start-up errors: no backend, an unknown one, stdin taken by the serial
 * port, an unknown iothread. */
static void test_console_bad(void)
{
    con_expect_error("virtio-console-pci", "null");
    con_expect_error("virtio-console-pci,chardev=bogus", "null");
    con_expect_error("virtio-console-pci,chardev=none", "null");
    con_expect_error("virtio-console-pci,chardev=stdio", "stdio");
    con_expect_error("virtio-console-pci,chardev=null,iothread=nope", "null");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    guest_dir = kvm_test_init();
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
    for (unsigned i = 0; i < G_N_ELEMENTS(blk_cases); i++) {
        g_autofree char *path = g_strdup_printf("/kvm/virtio/blk/%s", blk_cases[i].name);
        g_test_add_data_func(path, &blk_cases[i], test_blk);
    }
    g_test_add_data_func("/kvm/virtio/blk/machine-reset/main-loop", GINT_TO_POINTER(0),
                         test_blk_machine_reset);
    g_test_add_data_func("/kvm/virtio/blk/machine-reset/iothread", GINT_TO_POINTER(1),
                         test_blk_machine_reset);
    g_test_add_func("/kvm/virtio/blk/bad-image", test_blk_bad);
    g_test_add_func("/kvm/virtio/blk/parse", test_blk_parse);
    static const char *const con_cases[][2] = {{"", "0"}, {"io0", "0"}, {"", "1"}, {"", "2"}};
    static const char *const con_names[] = {"main-loop", "iothread", "hostile-tx-loop",
                                            "hostile-rx-readonly"};
    for (unsigned i = 0; i < G_N_ELEMENTS(con_cases); i++) {
        g_autofree char *path = g_strdup_printf("/kvm/virtio/console/%s", con_names[i]);
        g_test_add_data_func(path, con_cases[i], test_console);
    }
    g_test_add_func("/kvm/virtio/console/bad", test_console_bad);
    return g_test_run();
}
