/* kvm-floor: the raw KVM exit floor, a test payload on bare KVM with one counter per vCPU. */

/*
 * The exit benchmark compares kvmloop with this program: the same payload
 * (tests/guest/bench-exits.c) on the same KVM, but with no VMM around it.
 * Each vCPU thread loops on KVM_RUN; an exit that is a write to the counted
 * port or MMIO address adds one to that vCPU's own counter and goes straight
 * back into the guest: no lock, no region lookup, no handler, which is all
 * that work a write asks of userspace. Every other exit (boot-time UART,
 * fw_cfg, debug-exit) goes to the minimal PC of rawkvm.c.
 *
 * Usage: kvm-floor [-smp N] [-m MIB] -kernel FILE [-append CMDLINE]
 *                  [-count-port P] [-count-addr A] [-quiet]
 * The guest's UART goes to stdout; on debug-exit the process ends with the
 * status (value << 1) | 1, as kvmloop and QEMU do, after one stderr line
 * "kvm-floor: counted C exits (c0 c1 ...), other O".
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rawkvm.h"

#define FLOOR_MAX_CPUS 16

typedef struct Floor {
    RawVm vm;
    RawVcpu vcpu[FLOOR_MAX_CPUS];
    int ncpus;
    uint16_t port;
    uint64_t addr;
    /* Written by each vCPU thread only, read once at the end. */
    uint64_t counted[FLOOR_MAX_CPUS];
    uint64_t other[FLOOR_MAX_CPUS];
} Floor;

static Floor floor_vm;

/* All threads but the one that saw debug-exit are still in KVM_RUN, so
 * their counters are read racily: they are final for every exit the guest
 * finished before it wrote debug-exit, which is all the benchmark asks. */
static void __attribute__((noreturn)) floor_finish(Floor *f, int status)
{
    uint64_t total = 0, other = 0;
    GString *per = g_string_new(NULL);

    for (int i = 0; i < f->ncpus; i++) {
        uint64_t c = __atomic_load_n(&f->counted[i], __ATOMIC_RELAXED);
        total += c;
        other += __atomic_load_n(&f->other[i], __ATOMIC_RELAXED);
        g_string_append_printf(per, "%s%llu", i ? " " : "", (unsigned long long)c);
    }
    fprintf(stderr, "kvm-floor: counted %llu exits (%s), other %llu\n", (unsigned long long)total,
            per->str, (unsigned long long)other);
    g_string_free(per, true);
    fflush(stdout);
    fflush(stderr);
    /* The other vCPU threads are inside KVM_RUN and cannot be joined. */
    _exit(status);
}

static void *floor_vcpu_thread(void *arg)
{
    RawVcpu *v = arg;
    Floor *f = &floor_vm;
    struct kvm_run *run = v->run;
    uint64_t *counted = &f->counted[v->index];
    uint64_t *other = &f->other[v->index];
    const uint16_t port = f->port;
    const uint64_t addr = f->addr;

    for (;;) {
        int r = rawvm_vcpu_run(v);
        /* The counted exits: a compare, an increment, back in. */
        if (r == 0 && ((run->exit_reason == KVM_EXIT_IO && run->io.port == port &&
                        run->io.direction == KVM_EXIT_IO_OUT) ||
                       (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == addr &&
                        run->mmio.is_write))) {
            __atomic_store_n(counted, *counted + 1, __ATOMIC_RELAXED);
            continue;
        }
        __atomic_store_n(other, *other + 1, __ATOMIC_RELAXED);
        uint32_t code = 0;
        switch (rawvm_handle_exit(v, r, &code)) {
        case RAWVM_CONTINUE:
        case RAWVM_INTERRUPTED:
            break;
        case RAWVM_DEBUG_EXIT:
            floor_finish(f, (int)((code << 1) | 1) & 0xff);
        case RAWVM_ERROR:
            floor_finish(f, 2);
        }
    }
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: kvm-floor [-smp N] [-m MIB] -kernel FILE [-append CMDLINE]\n"
                 "                 [-count-port P] [-count-addr A] [-quiet]\n");
}

static bool parse_number(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || v > max) {
        fprintf(stderr, "kvm-floor: %s: '%s' is not a number from 0 to %llu\n", opt, s,
                (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    const char *kernel = NULL, *append = "";
    uint64_t smp = 1, mib = 64, port = 0x700, addr = 0xfe000000ULL;
    bool quiet = false;
    g_autoptr(GError) err = NULL;

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(o, "-quiet")) {
            quiet = true;
            continue;
        }
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!val) {
            fprintf(stderr, "kvm-floor: %s needs an argument\n", o);
            usage(stderr);
            return 2;
        }
        if (!strcmp(o, "-smp")) {
            ok = parse_number(o, val, FLOOR_MAX_CPUS, &smp) && smp > 0;
        } else if (!strcmp(o, "-m")) {
            ok = parse_number(o, val, 4096, &mib) && mib >= 4;
        } else if (!strcmp(o, "-count-port")) {
            ok = parse_number(o, val, 0xffff, &port);
        } else if (!strcmp(o, "-count-addr")) {
            ok = parse_number(o, val, UINT64_MAX, &addr);
        } else if (!strcmp(o, "-kernel")) {
            kernel = val;
        } else if (!strcmp(o, "-append")) {
            append = val;
        } else {
            fprintf(stderr, "kvm-floor: unknown option %s\n", o);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            if (smp == 0 || mib < 4) {
                fprintf(stderr, "kvm-floor: %s %s is too small\n", o, val);
            }
            return 2;
        }
        i++;
    }
    if (!kernel) {
        fprintf(stderr, "kvm-floor: -kernel FILE is required\n");
        usage(stderr);
        return 2;
    }

    Floor *f = &floor_vm;
    uint32_t entry, mbi;
    f->ncpus = (int)smp;
    f->port = (uint16_t)port;
    f->addr = addr;
    if (!rawvm_create(&f->vm, NULL, mib << 20, f->ncpus, &err) ||
        !rawvm_load_multiboot(&f->vm, kernel, append, &entry, &mbi, &err)) {
        fprintf(stderr, "kvm-floor: %s\n", err->message);
        return 2;
    }
    f->vm.quiet = quiet;
    for (int i = 0; i < f->ncpus; i++) {
        if (!rawvm_vcpu_create(&f->vm, i, &f->vcpu[i], &err)) {
            fprintf(stderr, "kvm-floor: vCPU %d: %s\n", i, err->message);
            return 2;
        }
    }
    if (!rawvm_vcpu_set_multiboot_entry(&f->vcpu[0], entry, mbi, &err)) {
        fprintf(stderr, "kvm-floor: %s\n", err->message);
        return 2;
    }
    for (int i = 0; i < f->ncpus; i++) {
        pthread_t t;
        int r = pthread_create(&t, NULL, floor_vcpu_thread, &f->vcpu[i]);
        if (r != 0) {
            fprintf(stderr, "kvm-floor: cannot create the thread of vCPU %d: %s\n", i,
                    g_strerror(r));
            return 2;
        }
        pthread_detach(t);
    }
    /* The vCPU threads end the process. */
    for (;;) {
        pause();
    }
}
