/* The VM configuration as the command line gives it, and its parser. */
#ifndef KVMLOOP_CONFIG_H
#define KVMLOOP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <glib.h>
#include "kvmloop/event_loop.h"
#include "kvmloop/x86_cpu.h"

#define KVMLOOP_MAX_CPUS   255
#define KVMLOOP_MAX_SERIAL 4
#define KVMLOOP_MIN_RAM    (2ULL << 20)
#define KVMLOOP_MAX_RAM    (1ULL << 40)

/* One -object iothread,id=NAME[,loop=glib|libevent]. */
typedef struct IOThreadConfig {
    char *id;
    EventLoopBackend backend; /* default glib */
} IOThreadConfig;

typedef struct VmConfig {
    char *machine;    /* "pc" */
    char *accel;      /* "kvm" */
    char *kvm_device; /* "/dev/kvm" */
    int smp;          /* vCPUs, = topology.cpus */
    CpuTopology topology;
    CpuModel cpu;
    int emulation_assists; /* -1 auto (on when the host emulates guest kernel code), 0 off, 1 on */
    uint64_t ram_size;
    char *kernel;
    char *initrd;
    char *append;
    char *serial[KVMLOOP_MAX_SERIAL];
    int nserial;
    GPtrArray *devices;   /* char *: -device specs */
    GPtrArray *iothreads; /* IOThreadConfig *: -object iothread, ids unique */
    GPtrArray *qmp;       /* QmpEndpoint *: -qmp, socket paths unique, stdio at most once */
    GPtrArray *drives;    /* GHashTable *: virtio-blk-pci properties, one per -drive */
    GPtrArray *netdevs;   /* NetdevConfig *: -netdev, ids unique, each used by one device */
    bool no_reboot;
    bool start_paused; /* -S: the vCPUs wait for QMP cont */
    bool nographic;
    bool stats;        /* -stats: print the tables at the end */
    char *stats_file;  /* -stats-file: JSON at start-up, on SIGUSR1 and at the end */
    int stats_collect; /* LockStatMode: -stats-collect on|full|off (default on) */
    bool help;
    bool version;
} VmConfig;

/* Fill @cfg from argv (QEMU's option spelling). Returns false with a one-line
 * error in @errp for an unknown option, a missing or malformed argument, or an
 * out-of-range value. @cfg must be freed with vm_config_clear() either way. */
bool vm_config_parse(VmConfig *cfg, int argc, char **argv, GError **errp);
void vm_config_clear(VmConfig *cfg);
void vm_config_print_help(FILE *f, const char *argv0);

/* Parse a size with an optional k/K, M, G, T suffix (default unit @unit). */
bool parse_size(const char *s, uint64_t unit, uint64_t *out);

/* Build the machine, run it to the end, tear it down: the whole of main()
 * after parsing. Returns the process exit status. Main thread. */
int vm_run(const VmConfig *cfg);

typedef struct Machine Machine;
typedef struct EventLoop EventLoop;

/* Observation points for tests and tools that drive a VM in-process. */
typedef struct VmHooks {
    /* After the vCPUs started, main thread, BQL held. */
    void (*started)(Machine *m, EventLoop *loop, void *opaque);
    /* After every vCPU stopped and before the machine is freed, main thread,
     * BQL held. */
    void (*stopped)(Machine *m, int status, void *opaque);
    void *opaque;
} VmHooks;

int vm_run_hooked(const VmConfig *cfg, const VmHooks *hooks);

/* CLOCK_MONOTONIC ns when the process started (before main()). */
int64_t kvmloop_start_ns(void);

#endif
