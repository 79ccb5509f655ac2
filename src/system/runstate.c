/* Running a VM: the main loop with the BQL around callbacks, signals, exit status, statistics. */
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
#include "kvmloop/machine.h"
#include "kvmloop/rcu.h"

/* The main loop runs each callback under the BQL and sleeps without it. */
static void main_loop_enter(void *opaque, const char *site)
{
    bql_lock();
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
    int fd;
} SignalWatch;

static void termination_signal(void *opaque, int fd, unsigned revents)
{
    SignalWatch *sw = opaque;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        fprintf(stderr, "kvmloop: terminating on signal %u\n", si.ssi_signo);
        /* As QEMU: a clean stop asked for by the host is not an error. */
        machine_request_exit(sw->machine, 0);
    }
}

int vm_run(const VmConfig *cfg)
{
    return vm_run_hooked(cfg, NULL);
}

int vm_run_hooked(const VmConfig *cfg, const VmHooks *hooks)
{
    g_autoptr(GError) err = NULL;
    int status = 1;

    /* Termination signals arrive through a signalfd in the main loop; every
     * thread created from here on inherits the blocked mask. */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    sigaddset(&term, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    cpus_init_signals();
    rcu_thread_online();

    EventLoop *loop = event_loop_new(EVENT_LOOP_GLIB, &main_loop_hooks, &err);
    if (!loop) {
        fprintf(stderr, "kvmloop: %s\n", err->message);
        goto out_rcu;
    }
    bql_lock();
    Machine *m = machine_new(cfg, loop, &err);
    if (!m) {
        bql_unlock();
        fprintf(stderr, "kvmloop: %s\n", err->message);
        goto out_loop;
    }
    SignalWatch sw = {.machine = m, .fd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK)};
    EventWatch *sigwatch = NULL;
    if (sw.fd >= 0) {
        sigwatch = event_loop_add_fd(loop, sw.fd, EVENT_IN, "signal", termination_signal, &sw);
    }
    if (!machine_start(m, &err)) {
        fprintf(stderr, "kvmloop: %s\n", err->message);
        machine_request_exit(m, 1);
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
    if (cfg->stats) {
        machine_print_stats(m, stderr);
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
out_loop:
    event_loop_free(loop);
out_rcu:
    rcu_thread_offline();
    return status;
}
