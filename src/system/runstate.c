/* Running a VM: the main loop with the BQL around callbacks, signals, exit status, statistics. */
#include <time.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "kvmloop/bql.h"
#include "kvmloop/config.h"
#include "kvmloop/cpus.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/iothread.h"
#include "kvmloop/lockstat.h"
#include "kvmloop/machine.h"
#include "kvmloop/net.h"
#include "kvmloop/qmp.h"
#include "kvmloop/rcu.h"
#include "kvmloop/stats.h"

/* The lock site of the main-loop callback named @name: "loop:NAME". The
 * hooks run on the main loop's thread only, so the cache takes no lock; it
 * is keyed by the name's text because a name may be freed with its timer. */
static LockSite main_loop_site(const char *name)
{
    static GHashTable *cache;
    gpointer id;
    if (!cache) {
        cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    if (g_hash_table_lookup_extended(cache, name, NULL, &id)) {
        return GPOINTER_TO_UINT(id);
    }
    g_autofree char *site = g_strconcat("loop:", name, NULL);
    LockSite s = lockstat_site_intern(site);
    g_hash_table_insert(cache, g_strdup(name), GUINT_TO_POINTER(s));
    return s;
}

/* The main loop runs each callback under the BQL and sleeps without it. */
static void main_loop_enter(void *opaque, const char *site)
{
    bql_lock_site(main_loop_site(site));
}

static void main_loop_leave(void *opaque, const char *site)
{
    bql_unlock();
}

static const EventLoopHooks main_loop_hooks = {
    .enter = main_loop_enter,
    .leave = main_loop_leave,
};

typedef struct SignalWatch {
    Machine *machine;
    const VmConfig *cfg;
    int fd;
} SignalWatch;

/* SIGUSR1: a snapshot of the statistics, to the -stats-file or as tables on
 * stderr, while the VM runs on. */
static void stats_snapshot_signal(SignalWatch *sw)
{
    if (!sw->cfg->stats_file) {
        stats_print(sw->machine, stderr);
        return;
    }
    g_autoptr(GError) err = NULL;
    if (!stats_write_json(sw->machine, sw->cfg->stats_file, &err)) {
        fprintf(stderr, "kvmloop: %s\n", err->message);
    }
}

static void host_signal(void *opaque, int fd, unsigned revents)
{
    SignalWatch *sw = opaque;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si)) {
        return;
    }
    if (si.ssi_signo == SIGUSR1) {
        stats_snapshot_signal(sw);
        return;
    }
    fprintf(stderr, "kvmloop: terminating on signal %u\n", si.ssi_signo);
    /* As QEMU: a clean stop asked for by the host is not an error. */
    machine_request_exit_cause(sw->machine, 0, MACHINE_CAUSE_HOST_SIGNAL);
}

/* Create and start the iothreads of -object iothread, into @out. Before the
 * machine: devices bind to them while they are realized. */
static bool iothreads_start(const VmConfig *cfg, GPtrArray *out, GError **errp)
{
    for (guint i = 0; cfg->iothreads && i < cfg->iothreads->len; i++) {
        const IOThreadConfig *io = cfg->iothreads->pdata[i];
        IOThread *t = iothread_new(io->id, io->backend, errp);
        if (!t) {
            return false;
        }
        g_ptr_array_add(out, t);
        if (!iothread_start(t, errp)) {
            return false;
        }
    }
    return true;
}

/* Stop every iothread first, then wait for each, so that they wind down
 * together. */
static void iothreads_stop(GPtrArray *iothreads)
{
    for (guint i = 0; i < iothreads->len; i++) {
        iothread_stop(iothreads->pdata[i]);
    }
    for (guint i = 0; i < iothreads->len; i++) {
        iothread_join(iothreads->pdata[i]);
    }
}

static void iothreads_free(GPtrArray *iothreads)
{
    iothreads_stop(iothreads);
    for (guint i = iothreads->len; i > 0; i--) {
        iothread_free(iothreads->pdata[i - 1]);
    }
    g_ptr_array_free(iothreads, true);
}

int vm_run(const VmConfig *cfg)
{
    return vm_run_hooked(cfg, NULL);
}

/* With wait=on, serve the main loop (the signal watch and the monitor)
 * until the first client arrived or an exit was asked for. Main thread,
 * BQL held (released while waiting). */
static void wait_for_qmp_clients(Machine *m, EventLoop *loop, QmpMonitor *mon)
{
    int status;
    bql_unlock();
    while (qmp_monitor_waiting(mon) && !machine_exit_requested(m, &status)) {
        event_loop_iterate(loop, true);
    }
    bql_lock();
}

int vm_run_hooked(const VmConfig *cfg, const VmHooks *hooks)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) stats_err = NULL;
    int status = 1;

    /* Termination signals and SIGUSR1 (a statistics snapshot) arrive through
     * a signalfd in the main loop; every thread created from here on
     * inherits the blocked mask. */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    sigaddset(&term, SIGHUP);
    sigaddset(&term, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    cpus_init_signals();
    rcu_thread_online();
    /* Statistics cover this run only. */
    lockstat_set_mode((LockStatMode)cfg->stats_collect);
    lockstat_reset();
    lockstat_thread_set_site(lockstat_site_intern("main"));

    EventLoop *loop = event_loop_new(EVENT_LOOP_GLIB, &main_loop_hooks, &err);
    if (!loop) {
        fprintf(stderr, "kvmloop: %s\n", err->message);
        goto out_rcu;
    }
    bql_lock();
    GPtrArray *iothreads = g_ptr_array_new();
    Machine *m = NULL;
    QmpMonitor *mon = NULL;
    /* The monitor listens before the machine is built (a bad socket path
     * costs no VM) and serves it before the vCPUs run (no event is missed). */
    if (iothreads_start(cfg, iothreads, &err) && net_init(cfg->netdevs, &err) &&
        (!cfg->qmp || cfg->qmp->len == 0 || (mon = qmp_monitor_new(cfg, loop, &err)))) {
        m = machine_new(cfg, loop, &err);
    }
    if (mon && m) {
        qmp_monitor_attach(mon, m);
    }
    if (!m) {
        qmp_monitor_free(mon);
        bql_unlock();
        fprintf(stderr, "kvmloop: %s\n", err->message);
        goto out_iothreads;
    }
    SignalWatch sw = {
        .machine = m, .cfg = cfg, .fd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK)};
    EventWatch *sigwatch = NULL;
    if (sw.fd >= 0) {
        sigwatch = event_loop_add_fd(loop, sw.fd, EVENT_IN, "signal", host_signal, &sw);
    }
    /* A first, empty document: a bad -stats-file fails now, not at the end. */
    bool stats_file_ok = !cfg->stats_file || stats_write_json(m, cfg->stats_file, &err);
    if (stats_file_ok && mon && qmp_monitor_waiting(mon)) {
        wait_for_qmp_clients(m, loop, mon);
    }
    /* -S: the vCPU threads start and wait at once; the virtual clock stands
     * still until QMP cont. */
    clock_virtual_set_enabled(!cfg->start_paused);
    if (cfg->start_paused) {
        pause_all_vcpus();
    }
    if (!stats_file_ok) {
        fprintf(stderr, "kvmloop: %s\n", err->message);
        machine_request_exit_cause(m, 1, MACHINE_CAUSE_HOST_ERROR);
    } else if (machine_exit_requested(m, &status)) {
        /* Stopped by a signal while waiting for a QMP client. */
    } else if (!machine_start(m, &err)) {
        fprintf(stderr, "kvmloop: %s\n", err->message);
        machine_request_exit_cause(m, 1, MACHINE_CAUSE_HOST_ERROR);
    } else if (hooks && hooks->started) {
        hooks->started(m, loop, hooks->opaque);
    }
    bql_unlock();

    event_loop_run(loop);

    bql_lock();
    if (!machine_exit_requested(m, &status)) {
        status = 1;
    }
    pause_all_vcpus();
    /* Before the stopped hook, which may wait for a client that waits for
     * the end of its connection. */
    qmp_monitor_free(mon);
    /* After the vCPUs (no guest write can ring a doorbell any more), before
     * the devices whose handlers the iothreads run. */
    iothreads_stop(iothreads);
    if (cfg->stats) {
        stats_print(m, stderr);
    }
    if (cfg->stats_file && stats_file_ok && !stats_write_json(m, cfg->stats_file, &stats_err)) {
        fprintf(stderr, "kvmloop: %s\n", stats_err->message);
    }
    if (hooks && hooks->stopped) {
        hooks->stopped(m, status, hooks->opaque);
    }
    machine_destroy(m);
    bql_unlock();
    if (sigwatch) {
        event_watch_remove(sigwatch);
    }
    if (sw.fd >= 0) {
        close(sw.fd);
    }
out_iothreads:
    net_cleanup();
    iothreads_free(iothreads);
    event_loop_free(loop);
out_rcu:
    rcu_thread_offline();
    return status;
}

static int64_t process_start_ns;

/* As early as the process can note the time: before main(). */
__attribute__((constructor)) static void note_process_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    process_start_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t kvmloop_start_ns(void)
{
    return process_start_ns;
}
