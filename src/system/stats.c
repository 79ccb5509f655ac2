/* Statistics reports: lock sites and holders, vCPUs, regions, disks, NICs, as tables or as one JSON
 * document. */
#include "kvmloop/stats.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvmloop/bql.h"
#include "kvmloop/config.h"
#include "kvmloop/cpus.h"
#include "kvmloop/device.h"
#include "kvmloop/kvm.h"
#include "kvmloop/lockstat.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"
#include "kvmloop/virtio.h"

/* Holders listed under each site in the table (the JSON has them all). */
#define STATS_TABLE_HOLDERS 3

static const char *fmt_ns(char *buf, size_t len, uint64_t ns)
{
    if (ns < 1000) {
        g_snprintf(buf, len, "%" G_GUINT64_FORMAT "ns", ns);
    } else if (ns < 1000000) {
        g_snprintf(buf, len, "%.1fus", ns / 1e3);
    } else if (ns < 1000000000) {
        g_snprintf(buf, len, "%.1fms", ns / 1e6);
    } else {
        g_snprintf(buf, len, "%.1fs", ns / 1e9);
    }
    return buf;
}

/* Quantile @q of @hist as the bounds of its bucket: "<BOUND", ">=FLOOR" for
 * the open-ended last bucket, "-" for an empty histogram. */
static const char *fmt_quantile(char *buf, size_t len, const uint64_t hist[LOCKSTAT_BUCKETS],
                                double q)
{
    uint64_t total = 0, seen = 0;
    for (unsigned b = 0; b < LOCKSTAT_BUCKETS; b++) {
        total += hist[b];
    }
    if (total == 0) {
        return "-";
    }
    uint64_t rank = (uint64_t)(q * (double)total);
    unsigned b = 0;
    for (; b + 1 < LOCKSTAT_BUCKETS; b++) {
        seen += hist[b];
        if (seen > rank) {
            break;
        }
    }
    char v[16];
    if (b + 1 < LOCKSTAT_BUCKETS) {
        g_snprintf(buf, len, "<%s", fmt_ns(v, sizeof(v), lockstat_bucket_floor(b + 1)));
    } else {
        g_snprintf(buf, len, ">=%s", fmt_ns(v, sizeof(v), lockstat_bucket_floor(b)));
    }
    return buf;
}

/* "exit io:serial0.serial" -> reason "io", region "serial0.serial". */
static bool exit_site_split(const char *site, char **reason, const char **region)
{
    const char *colon = strchr(site, ':');
    if (!g_str_has_prefix(site, "exit ") || !colon) {
        return false;
    }
    *reason = g_strndup(site + 5, (gsize)(colon - site - 5));
    *region = colon + 1;
    return true;
}

/* The -stats-collect spelling of @mode. */
static const char *stats_mode_name(LockStatMode mode)
{
    switch (mode) {
    case LOCKSTAT_OFF:
        return "off";
    case LOCKSTAT_SAMPLED:
        return "on";
    case LOCKSTAT_FULL:
        return "full";
    }
    return "?";
}

/* ---- Table --------------------------------------------------------------- */

static void print_lock(FILE *f, const LockStatSnapshot *s, unsigned lock)
{
    LockStatCounters t = lockstat_snapshot_lock_total(s, lock);
    fprintf(f,
            "%s: %" G_GUINT64_FORMAT " acquisitions, %" G_GUINT64_FORMAT
            " contended, wait %.3f ms, hold %.3f ms\n",
            lockstat_lock_name(lock), t.acquisitions, t.contended, t.wait_ns / 1e6,
            t.hold_ns / 1e6);
    fprintf(f, "  %-36s %10s %10s %10s %9s %10s %9s\n", "site", "acquired", "contended", "wait ms",
            "p99 wait", "hold ms", "p99 hold");
    for (guint i = 0; i < s->locks->len; i++) {
        const LockStatLockEntry *e = &g_array_index(s->locks, LockStatLockEntry, i);
        if (e->lock != lock) {
            continue;
        }
        char w[16], h[16];
        fprintf(f,
                "  %-36s %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT " %10.3f %9s %10.3f %9s\n",
                lockstat_site_name(e->site), e->c.acquisitions, e->c.contended, e->c.wait_ns / 1e6,
                fmt_quantile(w, sizeof(w), e->c.wait_hist, 0.99), e->c.hold_ns / 1e6,
                fmt_quantile(h, sizeof(h), e->c.hold_hist, 0.99));
        unsigned shown = 0;
        for (guint j = 0; j < s->holders->len && shown < STATS_TABLE_HOLDERS; j++) {
            const LockStatHolderEntry *hd = &g_array_index(s->holders, LockStatHolderEntry, j);
            if (hd->lock == lock && hd->site == e->site) {
                fprintf(f, "      waited for %s: %" G_GUINT64_FORMAT " times, %.3f ms\n",
                        lockstat_site_name(hd->holder), hd->waits, hd->wait_ns / 1e6);
                shown++;
            }
        }
    }
}

static void print_cpu(FILE *f, CpuState *cpu, uint64_t *by_site)
{
    CpuStats st = cpu_stats(cpu);
    uint64_t exits = 0, user = 0, sys = 0;
    for (int r = 0; r < VCPU_EXIT__MAX; r++) {
        exits += st.exits[r];
    }
    bool times = cpu_thread_times(cpu, &user, &sys);
    fprintf(f, "  %4d %10" G_GUINT64_FORMAT " %12.3f %12.3f %12.3f", cpu_index(cpu), exits,
            st.run_ns / 1e6, st.handle_ns / 1e6, st.lock_wait_ns / 1e6);
    if (times) {
        fprintf(f, " %9.0f %9.0f %12.0f\n", user / 1e6, sys / 1e6,
                exits ? (double)user / exits : 0);
    } else {
        fprintf(f, " %9s %9s %12s\n", "?", "?", "?");
    }
    fprintf(f, "       by reason:");
    for (int r = 0; r < VCPU_EXIT__MAX; r++) {
        if (st.exits[r]) {
            fprintf(f, " %s %" G_GUINT64_FORMAT, vcpu_exit_reason_names[r], st.exits[r]);
        }
    }
    fprintf(f, "\n");
    cpu_exits_by_site(cpu, by_site, LOCKSTAT_MAX_SITES);
    bool any = false;
    for (unsigned site = 0; site < LOCKSTAT_MAX_SITES; site++) {
        if (by_site[site]) {
            fprintf(f, "%s %s %" G_GUINT64_FORMAT,
                    any ? "," : "       by site:", lockstat_site_name(site), by_site[site]);
            any = true;
        }
    }
    if (any) {
        fprintf(f, "\n");
    }
}

typedef struct RegionPrint {
    FILE *f;
    const LockStatSnapshot *s;
    const char *space;
} RegionPrint;

static void print_region(MemoryRegion *mr, void *opaque)
{
    RegionPrint *rp = opaque;
    LockStatAccesses a = lockstat_snapshot_access(rp->s, mr->site, bql_klock()->id);
    fprintf(rp->f, "  %-28s %-7s %-7s %12" G_GUINT64_FORMAT " %12" G_GUINT64_FORMAT "\n", mr->name,
            rp->space, lock_policy_name(memory_region_lock_policy(mr)), a.accesses, a.bql_accesses);
}

/* ns from kvmloop's start to the first KVM_RUN of any vCPU; false before it. */
static bool first_guest_entry(int64_t *ns)
{
    int64_t t = kvm_first_entry_ns();
    *ns = t ? MAX(t - kvmloop_start_ns(), 0) : 0;
    return t != 0;
}

/* The instructions kvmloop finished for an emulating host's KVM, per vCPU,
 * and when the guest first ran. */
static void print_host(Machine *m, FILE *f)
{
    uint64_t n[KVM_ASSIST__MAX];
    if (machine_emulation_assists(m, 0, n)) {
        fprintf(f, "emulation assists:\n  %-6s", "vcpu");
        for (int a = 0; a < KVM_ASSIST__MAX; a++) {
            fprintf(f, " %10s", kvm_assist_names[a]);
        }
        fprintf(f, "\n");
        for (int i = 0; machine_emulation_assists(m, i, n); i++) {
            fprintf(f, "  %-6d", i);
            for (int a = 0; a < KVM_ASSIST__MAX; a++) {
                fprintf(f, " %10" G_GUINT64_FORMAT, n[a]);
            }
            fprintf(f, "\n");
        }
    }
    int64_t entry;
    if (first_guest_entry(&entry)) {
        fprintf(f, "boot: first guest entry %.1f ms after kvmloop started\n", entry / 1e6);
    }
}

static bool stats_is_disk(const Device *d)
{
    return strcmp(d->cls->name, "virtio-blk-pci") == 0;
}

static bool stats_is_nic(const Device *d)
{
    return strcmp(d->cls->name, "virtio-net-pci") == 0;
}

static void print_nic(Device *d, void *opaque)
{
    if (!stats_is_nic(d)) {
        return;
    }
    VirtioNetStats n = virtio_net_stats(d);
    VirtioStats v = virtio_device_stats(d);
    fprintf(opaque,
            "  %-12s %-12s %10" G_GUINT64_FORMAT " %9" G_GUINT64_FORMAT " %9" G_GUINT64_FORMAT
            " %10" G_GUINT64_FORMAT " %9" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT
            " %10" G_GUINT64_FORMAT " %6" G_GUINT64_FORMAT "\n",
            d->id, virtio_net_ifname(d), n.rx_frames, n.rx_oversized, n.rx_stalls, n.tx_frames,
            n.tx_errors, v.notifies, v.notifies_bql, v.broken);
}

static void print_disk(Device *d, void *opaque)
{
    if (!stats_is_disk(d)) {
        return;
    }
    VirtioBlkStats b = virtio_blk_stats(d);
    VirtioStats v = virtio_device_stats(d);
    fprintf(opaque,
            "  %-12s %10" G_GUINT64_FORMAT " %7" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT
            " %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT " %11" G_GUINT64_FORMAT
            " %5" G_GUINT64_FORMAT " %6" G_GUINT64_FORMAT "\n",
            d->id, b.requests, b.errors, b.completions_bql, v.notifies, v.notifies_bql,
            b.reset_waits, b.late_completions, v.broken);
}

void stats_print(Machine *m, FILE *f)
{
    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    fprintf(f, "kvmloop statistics: %.3f s since reset, collection %s\n", s->interval_ns / 1e9,
            stats_mode_name(s->mode));

    fprintf(f, "locks (p99: upper bound of the histogram bucket of the 99th percentile%s)\n",
            s->mode == LOCKSTAT_SAMPLED ? "; hold times estimated from the timed holds" : "");
    unsigned bql = bql_klock()->id;
    print_lock(f, s, bql);
    for (guint i = 0; i < s->locks->len; i++) {
        unsigned lock = g_array_index(s->locks, LockStatLockEntry, i).lock;
        bool first = i == 0 || g_array_index(s->locks, LockStatLockEntry, i - 1).lock != lock;
        if (lock != bql && first) {
            print_lock(f, s, lock);
        }
    }

    fprintf(f, "vCPUs (wall ms while collection is on%s; CPU time at clock-tick resolution)\n",
            s->mode == LOCKSTAT_SAMPLED ? ", kvmloop's share estimated from the timed exits" : "");
    fprintf(f, "  %4s %10s %12s %12s %12s %9s %9s %12s\n", "vcpu", "exits", "KVM_RUN ms",
            "kvmloop ms", "lock wait ms", "user ms", "sys ms", "user ns/exit");
    g_autofree uint64_t *by_site = g_new(uint64_t, LOCKSTAT_MAX_SITES);
    for (int i = 0; i < cpus_count(); i++) {
        print_cpu(f, cpu_by_index(i), by_site);
    }

    fprintf(f, "regions\n  %-28s %-7s %-7s %12s %12s\n", "name", "space", "lock", "accesses",
            "with BQL");
    RegionPrint rp = {.f = f, .s = s, .space = address_space_name(machine_pio(m))};
    address_space_foreach(machine_pio(m), print_region, &rp);
    rp.space = address_space_name(machine_mmio(m));
    address_space_foreach(machine_mmio(m), print_region, &rp);
    AddressSpaceStats io = address_space_stats(machine_pio(m));
    AddressSpaceStats mem = address_space_stats(machine_mmio(m));
    fprintf(f,
            "unassigned: io %" G_GUINT64_FORMAT " reads %" G_GUINT64_FORMAT
            " writes, memory %" G_GUINT64_FORMAT " reads %" G_GUINT64_FORMAT
            " writes; bad size: io %" G_GUINT64_FORMAT ", memory %" G_GUINT64_FORMAT "\n",
            io.unassigned_reads, io.unassigned_writes, mem.unassigned_reads, mem.unassigned_writes,
            io.bad_size, mem.bad_size);
    fprintf(f, "disks\n  %-12s %10s %7s %10s %10s %10s %11s %5s %6s\n", "id", "requests", "errors",
            "done BQL", "doorbells", "bells BQL", "reset waits", "late", "broken");
    machine_foreach_device(m, print_disk, f);
    fprintf(f, "nics\n  %-12s %-12s %10s %9s %9s %10s %9s %10s %10s %6s\n", "id", "tap",
            "rx frames", "rx too big", "rx stalls", "tx frames", "tx errors", "doorbells",
            "bells BQL", "broken");
    machine_foreach_device(m, print_nic, f);
    print_host(m, f);
}

/* ---- JSON ----------------------------------------------------------------- */

static void json_member_int(JsonBuilder *b, const char *name, uint64_t v)
{
    json_builder_set_member_name(b, name);
    json_builder_add_int_value(b, (gint64)MIN(v, (uint64_t)G_MAXINT64));
}

static void json_member_str(JsonBuilder *b, const char *name, const char *v)
{
    json_builder_set_member_name(b, name);
    json_builder_add_string_value(b, v);
}

static void json_histogram(JsonBuilder *b, const char *name, const uint64_t hist[LOCKSTAT_BUCKETS])
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (unsigned i = 0; i < LOCKSTAT_BUCKETS; i++) {
        json_builder_add_int_value(b, (gint64)hist[i]);
    }
    json_builder_end_array(b);
}

static void json_counters(JsonBuilder *b, const LockStatCounters *c)
{
    json_member_int(b, "acquisitions", c->acquisitions);
    json_member_int(b, "contended", c->contended);
    json_member_int(b, "wait_ns", c->wait_ns);
    json_member_int(b, "timed_holds", c->timed_holds);
    json_member_int(b, "hold_ns", c->hold_ns);
}

static void json_lock_site(JsonBuilder *b, const LockStatSnapshot *s, const LockStatLockEntry *e)
{
    json_builder_begin_object(b);
    json_member_str(b, "site", lockstat_site_name(e->site));
    json_counters(b, &e->c);
    json_histogram(b, "wait_histogram", e->c.wait_hist);
    json_histogram(b, "hold_histogram", e->c.hold_hist);
    json_builder_set_member_name(b, "waited_for");
    json_builder_begin_array(b);
    for (guint j = 0; j < s->holders->len; j++) {
        const LockStatHolderEntry *h = &g_array_index(s->holders, LockStatHolderEntry, j);
        if (h->lock == e->lock && h->site == e->site) {
            json_builder_begin_object(b);
            json_member_str(b, "holder", lockstat_site_name(h->holder));
            json_member_int(b, "waits", h->waits);
            json_member_int(b, "wait_ns", h->wait_ns);
            json_builder_end_object(b);
        }
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
}

static void json_locks(JsonBuilder *b, const LockStatSnapshot *s)
{
    json_builder_set_member_name(b, "locks");
    json_builder_begin_array(b);
    for (guint i = 0; i < s->locks->len;) {
        unsigned lock = g_array_index(s->locks, LockStatLockEntry, i).lock;
        LockStatCounters total = lockstat_snapshot_lock_total(s, lock);
        json_builder_begin_object(b);
        json_member_str(b, "name", lockstat_lock_name(lock));
        json_counters(b, &total);
        json_builder_set_member_name(b, "sites");
        json_builder_begin_array(b);
        for (; i < s->locks->len && g_array_index(s->locks, LockStatLockEntry, i).lock == lock;
             i++) {
            json_lock_site(b, s, &g_array_index(s->locks, LockStatLockEntry, i));
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void json_cpu(JsonBuilder *b, Machine *m, CpuState *cpu, uint64_t *by_site)
{
    CpuStats st = cpu_stats(cpu);
    uint64_t total = 0, user, sys, assists[KVM_ASSIST__MAX];
    json_builder_begin_object(b);
    json_member_int(b, "index", (uint64_t)cpu_index(cpu));
    json_member_int(b, "thread_id", (uint64_t)MAX(cpu_thread_id(cpu), 0));
    json_builder_set_member_name(b, "exits");
    json_builder_begin_object(b);
    for (int r = 0; r < VCPU_EXIT__MAX; r++) {
        json_member_int(b, vcpu_exit_reason_names[r], st.exits[r]);
        total += st.exits[r];
    }
    json_builder_end_object(b);
    json_member_int(b, "exits_total", total);
    json_member_int(b, "kicks_seen", st.kicks_seen);
    json_member_int(b, "timed_exits", st.timed_exits);
    json_member_int(b, "run_ns", st.run_ns);
    json_member_int(b, "handle_ns", st.handle_ns);
    json_member_int(b, "lock_wait_ns", st.lock_wait_ns);
    if (cpu_thread_times(cpu, &user, &sys)) {
        json_member_int(b, "user_cpu_ns", user);
        json_member_int(b, "sys_cpu_ns", sys);
    }
    if (machine_emulation_assists(m, cpu_index(cpu), assists)) {
        json_builder_set_member_name(b, "emulation_assists");
        json_builder_begin_object(b);
        for (int a = 0; a < KVM_ASSIST__MAX; a++) {
            json_member_int(b, kvm_assist_names[a], assists[a]);
        }
        json_builder_end_object(b);
    }
    json_builder_set_member_name(b, "exits_by_site");
    json_builder_begin_array(b);
    cpu_exits_by_site(cpu, by_site, LOCKSTAT_MAX_SITES);
    for (unsigned site = 0; site < LOCKSTAT_MAX_SITES; site++) {
        if (!by_site[site]) {
            continue;
        }
        const char *name = lockstat_site_name(site), *region;
        g_autofree char *reason = NULL;
        json_builder_begin_object(b);
        json_member_str(b, "site", name);
        if (exit_site_split(name, &reason, &region)) {
            json_member_str(b, "reason", reason);
            json_member_str(b, "region", region);
        }
        json_member_int(b, "exits", by_site[site]);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
}

typedef struct RegionJson {
    JsonBuilder *b;
    const LockStatSnapshot *s;
    const char *space;
} RegionJson;

static void json_region(MemoryRegion *mr, void *opaque)
{
    RegionJson *rj = opaque;
    JsonBuilder *b = rj->b;
    LockStatAccesses a = lockstat_snapshot_access(rj->s, mr->site, bql_klock()->id);
    json_builder_begin_object(b);
    json_member_str(b, "name", mr->name);
    json_member_str(b, "space", rj->space);
    json_member_int(b, "base", mr->base);
    json_member_int(b, "size", mr->size);
    json_member_str(b, "lock", lock_policy_name(memory_region_lock_policy(mr)));
    json_member_str(b, "site", lockstat_site_name(mr->site));
    json_member_int(b, "accesses", a.accesses);
    json_member_int(b, "bql_accesses", a.bql_accesses);
    json_builder_end_object(b);
}

static void json_space(JsonBuilder *b, AddressSpace *as)
{
    AddressSpaceStats st = address_space_stats(as);
    json_builder_begin_object(b);
    json_member_str(b, "name", address_space_name(as));
    json_member_int(b, "unassigned_reads", st.unassigned_reads);
    json_member_int(b, "unassigned_writes", st.unassigned_writes);
    json_member_int(b, "bad_size", st.bad_size);
    json_builder_end_object(b);
}

static void json_disk(Device *d, void *opaque)
{
    JsonBuilder *b = opaque;
    if (!stats_is_disk(d)) {
        return;
    }
    VirtioBlkStats st = virtio_blk_stats(d);
    VirtioStats v = virtio_device_stats(d);
    json_builder_begin_object(b);
    json_member_str(b, "id", d->id);
    json_member_int(b, "requests", st.requests);
    json_member_int(b, "errors", st.errors);
    json_member_int(b, "completions_bql", st.completions_bql);
    json_member_int(b, "notifies", v.notifies);
    json_member_int(b, "notifies_bql", v.notifies_bql);
    json_member_int(b, "interrupts", v.interrupts);
    json_member_int(b, "broken", v.broken);
    json_member_int(b, "reset_waits", st.reset_waits);
    json_member_int(b, "late_completions", st.late_completions);
    json_builder_end_object(b);
}

static void json_nic(Device *d, void *opaque)
{
    JsonBuilder *b = opaque;
    if (!stats_is_nic(d)) {
        return;
    }
    VirtioNetStats st = virtio_net_stats(d);
    VirtioStats v = virtio_device_stats(d);
    json_builder_begin_object(b);
    json_member_str(b, "id", d->id);
    json_member_str(b, "tap", virtio_net_ifname(d));
    json_member_int(b, "rx_frames", st.rx_frames);
    json_member_int(b, "rx_oversized", st.rx_oversized);
    json_member_int(b, "rx_stalls", st.rx_stalls);
    json_member_int(b, "tx_frames", st.tx_frames);
    json_member_int(b, "tx_errors", st.tx_errors);
    json_member_int(b, "notifies", v.notifies);
    json_member_int(b, "notifies_bql", v.notifies_bql);
    json_member_int(b, "interrupts", v.interrupts);
    json_member_int(b, "broken", v.broken);
    json_builder_end_object(b);
}

JsonNode *stats_to_json(Machine *m)
{
    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_member_str(b, "schema", "kvmloop-stats");
    json_member_int(b, "version", STATS_SCHEMA_VERSION);
    json_member_int(b, "time_unix_ns", (uint64_t)g_get_real_time() * 1000);
    json_member_int(b, "interval_ns", (uint64_t)MAX(s->interval_ns, 0));
    json_member_str(b, "collection", stats_mode_name(s->mode));
    json_member_int(b, "sample_rate", s->mode == LOCKSTAT_SAMPLED ? LOCKSTAT_SAMPLE_RATE : 1);
    int64_t entry;
    if (first_guest_entry(&entry)) {
        json_member_int(b, "first_guest_entry_ns", (uint64_t)entry);
    }
    json_builder_set_member_name(b, "histogram_floors_ns");
    json_builder_begin_array(b);
    for (unsigned i = 0; i < LOCKSTAT_BUCKETS; i++) {
        json_builder_add_int_value(b, (gint64)lockstat_bucket_floor(i));
    }
    json_builder_end_array(b);

    json_locks(b, s);

    json_builder_set_member_name(b, "vcpus");
    json_builder_begin_array(b);
    g_autofree uint64_t *by_site = g_new(uint64_t, LOCKSTAT_MAX_SITES);
    for (int i = 0; i < cpus_count(); i++) {
        json_cpu(b, m, cpu_by_index(i), by_site);
    }
    json_builder_end_array(b);

    json_builder_set_member_name(b, "regions");
    json_builder_begin_array(b);
    RegionJson rj = {.b = b, .s = s, .space = address_space_name(machine_pio(m))};
    address_space_foreach(machine_pio(m), json_region, &rj);
    rj.space = address_space_name(machine_mmio(m));
    address_space_foreach(machine_mmio(m), json_region, &rj);
    json_builder_end_array(b);

    json_builder_set_member_name(b, "address_spaces");
    json_builder_begin_array(b);
    json_space(b, machine_pio(m));
    json_space(b, machine_mmio(m));
    json_builder_end_array(b);

    json_builder_set_member_name(b, "disks");
    json_builder_begin_array(b);
    machine_foreach_device(m, json_disk, b);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "nics");
    json_builder_begin_array(b);
    machine_foreach_device(m, json_nic, b);
    json_builder_end_array(b);

    json_builder_end_object(b);
    return json_builder_get_root(b);
}

/* Write all of @len bytes of @buf to @fd; 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

bool stats_write_json(Machine *m, const char *path, GError **errp)
{
    g_autoptr(JsonNode) root = stats_to_json(m);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, true);
    gsize len;
    g_autofree char *text = json_generator_to_data(gen, &len);

    /* A temporary file next to @path, then rename(2): readers see the old
     * document or the new one. No fsync: this runs under the BQL, and a
     * statistics file need not survive a host crash. */
    g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", path);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e),
                    "cannot write statistics to '%s': %s", path, g_strerror(e));
        return false;
    }
    int r = write_all(fd, text, len);
    if (close(fd) < 0 && r == 0) {
        r = -errno;
    }
    if (r == 0 && rename(tmp, path) < 0) {
        r = -errno;
    }
    if (r < 0) {
        unlink(tmp);
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r),
                    "cannot write statistics to '%s': %s", path, g_strerror(-r));
        return false;
    }
    return true;
}

void stats_reset(Machine *m)
{
    lockstat_reset();
    for (int i = 0; i < cpus_count(); i++) {
        cpu_stats_reset(cpu_by_index(i));
    }
    address_space_stats_reset(machine_pio(m));
    address_space_stats_reset(machine_mmio(m));
}
