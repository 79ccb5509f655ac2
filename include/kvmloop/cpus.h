/* vCPU threads: KVM_RUN without the BQL, the kick protocol, pause/resume and run_on_cpu. */
#ifndef KVMLOOP_CPUS_H
#define KVMLOOP_CPUS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>
#include "kvmloop/kvm.h"

typedef struct CpuState CpuState;
typedef void (*run_on_cpu_fn)(CpuState *cpu, void *data);
/* Called on the vCPU thread with the BQL held when an exit needs the machine:
 * VCPU_POWEROFF, VCPU_RESET or VCPU_FATAL. The vCPU then parks until resumed. */
typedef void (*cpu_event_fn)(void *opaque, CpuState *cpu, VcpuVerdict verdict);

/* The kick signal: SIGUSR2 (SIGUSR1 is left for users). */
#define SIG_IPI SIGUSR2

/* A vCPU's counters since cpu_new() or its last cpu_stats_reset(). */
typedef struct CpuStats {
    uint64_t exits[VCPU_EXIT__MAX];
    uint64_t kicks_seen; /* returns to the outer loop because of an exit request */
    /* Counted only while statistics are on (lockstat_enabled()). */
    uint64_t lock_wait_ns; /* waiting for any lock, on this vCPU's thread */
    uint64_t timed_exits;  /* exits whose wall time was measured (lockstat_sample()) */
    /* Wall time in kvmloop from KVM_RUN's return to the next entry (exit
     * handling): its lock waits exact, the rest exact with LOCKSTAT_FULL and
     * else estimated from the timed exits. And inside KVM_RUN: the vCPU
     * thread's time in its run loop (exact) less the handling. */
    uint64_t run_ns;
    uint64_t handle_ns;
} CpuStats;

/* Install the SIG_IPI handler. Main thread, before any vCPU starts; idempotent. */
void cpus_init_signals(void);

/* Wrap @vcpu in a CpuState (not started). BQL held. */
CpuState *cpu_new(KvmVcpu *vcpu, cpu_event_fn on_event, void *opaque);
/* Start the vCPU thread. The vCPU runs unless it was paused. BQL held.
 * Returns false and sets @errp if the thread cannot be created. */
bool cpu_start(CpuState *cpu, GError **errp);
/* Stop and join every started vCPU thread (from any exit path, also those not
 * yet in KVM_RUN), then unregister and free them. Main thread, BQL held
 * (released while joining). */
void cpus_destroy_all(void);

/* Make @cpu leave KVM_RUN promptly and look at its requests. BQL held. */
void cpu_kick(CpuState *cpu);

/* Called on @cpu's thread, without any lock, when it sees the exit request of
 * a kick: @kick_ns is when cpu_kick() was called (the first of several kicks
 * that the vCPU saw as one), @ack_ns now; both klock_now_ns(). Must be quick. */
typedef void (*cpu_kick_ack_fn)(CpuState *cpu, int64_t kick_ns, int64_t ack_ns, void *opaque);
/* Record the latency of every kick from now on through @fn (NULL: stop, the
 * default). While it is on, cpu_kick() reads the clock once more. Switch it
 * off before setting another @fn. Any thread. */
void cpu_set_kick_recorder(cpu_kick_ack_fn fn, void *opaque);
/* Stop every vCPU and wait until all are out of the guest. BQL held; not
 * from a vCPU thread. */
void pause_all_vcpus(void);
void resume_all_vcpus(void);
bool all_vcpus_paused(void);
/* Run @fn(@cpu, @data) on @cpu's thread with the BQL held and wait for it.
 * BQL held. From @cpu's own thread it runs at once. */
void run_on_cpu(CpuState *cpu, run_on_cpu_fn fn, void *data);

int cpu_index(const CpuState *cpu);
pid_t cpu_thread_id(const CpuState *cpu);
KvmVcpu *cpu_kvm_vcpu(CpuState *cpu);
bool cpu_is_self(const CpuState *cpu);
/* A snapshot of @cpu's counters. Any thread. */
CpuStats cpu_stats(const CpuState *cpu);
/* @cpu's exits per exit site (lockstat.h; counted while statistics are on):
 * @counts[s] for every site s < @n. Any thread. */
void cpu_exits_by_site(const CpuState *cpu, uint64_t *counts, unsigned n);
/* User and system CPU time of @cpu's thread (clock-tick resolution), also
 * after it exited. False if it never ran or /proc cannot tell. Any thread. */
bool cpu_thread_times(const CpuState *cpu, uint64_t *user_ns, uint64_t *sys_ns);
/* Count @cpu's statistics from zero again: later reads show only what
 * happens after this call, exactly, while the vCPU runs. Any thread. */
void cpu_stats_reset(CpuState *cpu);
/* The registered vCPUs, in index order. BQL held. */
CpuState *cpu_by_index(int index);
int cpus_count(void);

#endif
