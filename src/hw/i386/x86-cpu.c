/* x86 CPU description: -smp topology, APIC IDs, CPUID models and feature edits. */
#include "kvmloop/x86_cpu.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool parse_count(const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max) {
        return false;
    }
    *out = v;
    return true;
}

bool cpu_topology_parse(const char *spec, int max_cpus, CpuTopology *out, GError **errp)
{
    long cpus = 0, sockets = 0, cores = 0, threads = 0, maxcpus = 0;
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);

    for (int i = 0; parts[i]; i++) {
        const char *p = parts[i];
        const char *eq = strchr(p, '=');
        long *dst;
        const char *val;
        if (!eq) {
            if (i != 0) {
                goto bad;
            }
            dst = &cpus;
            val = p;
        } else {
            g_autofree char *key = g_strndup(p, (size_t)(eq - p));
            val = eq + 1;
            if (!strcmp(key, "cpus")) {
                dst = &cpus;
            } else if (!strcmp(key, "sockets")) {
                dst = &sockets;
            } else if (!strcmp(key, "cores")) {
                dst = &cores;
            } else if (!strcmp(key, "threads")) {
                dst = &threads;
            } else if (!strcmp(key, "maxcpus")) {
                dst = &maxcpus;
            } else if (!strcmp(key, "dies")) {
                long dies;
                if (!parse_count(val, max_cpus, &dies) || dies != 1) {
                    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                "-smp: only one die per socket is supported ('%s')", spec);
                    return false;
                }
                continue;
            } else {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "-smp: unknown parameter '%s' (cpus, sockets, cores, threads, "
                            "maxcpus)",
                            key);
                return false;
            }
        }
        if (!parse_count(val, max_cpus, dst)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-smp: '%s' is not a count from 1 to %d", p, max_cpus);
            return false;
        }
    }
    /* QEMU's rules: absent counts are 1, except the one that makes the
     * product match; sockets are derived first. */
    if (cpus == 0) {
        cpus = (sockets ? sockets : 1) * (cores ? cores : 1) * (threads ? threads : 1);
    }
    if (!threads) {
        threads = 1;
    }
    if (!cores && !sockets) {
        cores = 1;
        sockets = cpus / threads;
    } else if (!cores) {
        cores = cpus / (sockets * threads);
    } else if (!sockets) {
        sockets = cpus / (cores * threads);
    }
    if (cpus > max_cpus || sockets < 1 || cores < 1 ||
        (long long)sockets * cores * threads != cpus) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-smp: %ld CPUs do not make %ld sockets x %ld cores x %ld threads "
                    "(at most %d CPUs)",
                    cpus, sockets, cores, threads, max_cpus);
        return false;
    }
    if (maxcpus && maxcpus != cpus) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-smp: maxcpus=%ld differs from cpus=%ld; CPU hotplug is not supported",
                    maxcpus, cpus);
        return false;
    }
    *out = (CpuTopology){
        .cpus = (int)cpus, .sockets = (int)sockets, .cores = (int)cores, .threads = (int)threads};
    /* The highest APIC ID must stay below the broadcast ID 0xff. */
    if (cpu_topology_apic_id(out, out->cpus - 1) >= 0xff) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-smp: the topology '%s' needs APIC IDs above 254, which xAPIC cannot address",
                    spec);
        return false;
    }
    return true;

bad:
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "-smp: '%s' is not N[,sockets=S][,cores=C][,threads=T]", spec);
    return false;
}

static unsigned bits_for(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n) {
        b++;
    }
    return b;
}

unsigned cpu_topology_thread_bits(const CpuTopology *t)
{
    return bits_for((unsigned)t->threads);
}

unsigned cpu_topology_core_bits(const CpuTopology *t)
{
    return bits_for((unsigned)t->cores);
}

uint32_t cpu_topology_apic_id(const CpuTopology *t, int index)
{
    unsigned tb = cpu_topology_thread_bits(t), cb = cpu_topology_core_bits(t);
    uint32_t thread = (uint32_t)(index % t->threads);
    uint32_t core = (uint32_t)((index / t->threads) % t->cores);
    uint32_t socket = (uint32_t)(index / (t->threads * t->cores));
    return (socket << (cb + tb)) | (core << tb) | thread;
}

/* QEMU's names for the feature bits users edit most. */
static const CpuFeature cpu_features[] = {
    /* CPUID.1:EDX */
    {"fpu", 1, 0, CPUID_EDX, 0},
    {"vme", 1, 0, CPUID_EDX, 1},
    {"de", 1, 0, CPUID_EDX, 2},
    {"pse", 1, 0, CPUID_EDX, 3},
    {"tsc", 1, 0, CPUID_EDX, 4},
    {"msr", 1, 0, CPUID_EDX, 5},
    {"pae", 1, 0, CPUID_EDX, 6},
    {"mce", 1, 0, CPUID_EDX, 7},
    {"cx8", 1, 0, CPUID_EDX, 8},
    {"apic", 1, 0, CPUID_EDX, 9},
    {"sep", 1, 0, CPUID_EDX, 11},
    {"mtrr", 1, 0, CPUID_EDX, 12},
    {"pge", 1, 0, CPUID_EDX, 13},
    {"mca", 1, 0, CPUID_EDX, 14},
    {"cmov", 1, 0, CPUID_EDX, 15},
    {"pat", 1, 0, CPUID_EDX, 16},
    {"pse36", 1, 0, CPUID_EDX, 17},
    {"clflush", 1, 0, CPUID_EDX, 19},
    {"mmx", 1, 0, CPUID_EDX, 23},
    {"fxsr", 1, 0, CPUID_EDX, 24},
    {"sse", 1, 0, CPUID_EDX, 25},
    {"sse2", 1, 0, CPUID_EDX, 26},
    {"ss", 1, 0, CPUID_EDX, 27},
    /* CPUID.1:ECX */
    {"sse3", 1, 0, CPUID_ECX, 0},
    {"pclmulqdq", 1, 0, CPUID_ECX, 1},
    {"ssse3", 1, 0, CPUID_ECX, 9},
    {"fma", 1, 0, CPUID_ECX, 12},
    {"cx16", 1, 0, CPUID_ECX, 13},
    {"pdcm", 1, 0, CPUID_ECX, 15},
    {"pcid", 1, 0, CPUID_ECX, 17},
    {"sse4.1", 1, 0, CPUID_ECX, 19},
    {"sse4.2", 1, 0, CPUID_ECX, 20},
    {"x2apic", 1, 0, CPUID_ECX, 21},
    {"movbe", 1, 0, CPUID_ECX, 22},
    {"popcnt", 1, 0, CPUID_ECX, 23},
    {"tsc-deadline", 1, 0, CPUID_ECX, 24},
    {"aes", 1, 0, CPUID_ECX, 25},
    {"xsave", 1, 0, CPUID_ECX, 26},
    {"avx", 1, 0, CPUID_ECX, 28},
    {"f16c", 1, 0, CPUID_ECX, 29},
    {"rdrand", 1, 0, CPUID_ECX, 30},
    {"hypervisor", 1, 0, CPUID_ECX, 31},
    /* CPUID.7.0:EBX */
    {"fsgsbase", 7, 0, CPUID_EBX, 0},
    {"bmi1", 7, 0, CPUID_EBX, 3},
    {"hle", 7, 0, CPUID_EBX, 4},
    {"avx2", 7, 0, CPUID_EBX, 5},
    {"smep", 7, 0, CPUID_EBX, 7},
    {"bmi2", 7, 0, CPUID_EBX, 8},
    {"erms", 7, 0, CPUID_EBX, 9},
    {"invpcid", 7, 0, CPUID_EBX, 10},
    {"rtm", 7, 0, CPUID_EBX, 11},
    {"mpx", 7, 0, CPUID_EBX, 14},
    {"avx512f", 7, 0, CPUID_EBX, 16},
    {"avx512dq", 7, 0, CPUID_EBX, 17},
    {"rdseed", 7, 0, CPUID_EBX, 18},
    {"adx", 7, 0, CPUID_EBX, 19},
    {"smap", 7, 0, CPUID_EBX, 20},
    {"clflushopt", 7, 0, CPUID_EBX, 23},
    {"clwb", 7, 0, CPUID_EBX, 24},
    {"avx512cd", 7, 0, CPUID_EBX, 28},
    {"sha-ni", 7, 0, CPUID_EBX, 29},
    {"avx512bw", 7, 0, CPUID_EBX, 30},
    {"avx512vl", 7, 0, CPUID_EBX, 31},
    /* CPUID.7.0:ECX */
    {"umip", 7, 0, CPUID_ECX, 2},
    {"pku", 7, 0, CPUID_ECX, 3},
    {"waitpkg", 7, 0, CPUID_ECX, 5},
    {"gfni", 7, 0, CPUID_ECX, 8},
    {"vaes", 7, 0, CPUID_ECX, 9},
    {"vpclmulqdq", 7, 0, CPUID_ECX, 10},
    {"la57", 7, 0, CPUID_ECX, 16},
    {"rdpid", 7, 0, CPUID_ECX, 22},
    /* CPUID.7.0:EDX */
    {"fsrm", 7, 0, CPUID_EDX, 4},
    {"md-clear", 7, 0, CPUID_EDX, 10},
    {"serialize", 7, 0, CPUID_EDX, 14},
    {"spec-ctrl", 7, 0, CPUID_EDX, 26},
    {"stibp", 7, 0, CPUID_EDX, 27},
    {"arch-capabilities", 7, 0, CPUID_EDX, 29},
    {"ssbd", 7, 0, CPUID_EDX, 31},
    /* CPUID.0xD.1:EAX */
    {"xsaveopt", 0xd, 1, CPUID_EAX, 0},
    {"xsavec", 0xd, 1, CPUID_EAX, 1},
    {"xgetbv1", 0xd, 1, CPUID_EAX, 2},
    {"xsaves", 0xd, 1, CPUID_EAX, 3},
    /* CPUID.0x80000001 */
    {"lahf-lm", 0x80000001, 0, CPUID_ECX, 0},
    {"abm", 0x80000001, 0, CPUID_ECX, 5},
    {"sse4a", 0x80000001, 0, CPUID_ECX, 6},
    {"3dnowprefetch", 0x80000001, 0, CPUID_ECX, 8},
    {"syscall", 0x80000001, 0, CPUID_EDX, 11},
    {"nx", 0x80000001, 0, CPUID_EDX, 20},
    {"pdpe1gb", 0x80000001, 0, CPUID_EDX, 26},
    {"rdtscp", 0x80000001, 0, CPUID_EDX, 27},
    {"lm", 0x80000001, 0, CPUID_EDX, 29},
    /* CPUID.0x80000007:EDX */
    {"invtsc", 0x80000007, 0, CPUID_EDX, 8},
    /* KVM paravirtual features, CPUID.0x40000001:EAX */
    {"kvmclock", 0x40000001, 0, CPUID_EAX, 0},
    {"kvm-nopiodelay", 0x40000001, 0, CPUID_EAX, 1},
    {"kvm-mmu", 0x40000001, 0, CPUID_EAX, 2},
    {"kvmclock2", 0x40000001, 0, CPUID_EAX, 3},
    {"kvm-asyncpf", 0x40000001, 0, CPUID_EAX, 4},
    {"kvm-steal-time", 0x40000001, 0, CPUID_EAX, 5},
    {"kvm-pv-eoi", 0x40000001, 0, CPUID_EAX, 6},
    {"kvm-pv-unhalt", 0x40000001, 0, CPUID_EAX, 7},
    {"kvm-pv-tlb-flush", 0x40000001, 0, CPUID_EAX, 9},
    {"kvm-asyncpf-vmexit", 0x40000001, 0, CPUID_EAX, 10},
    {"kvm-pv-ipi", 0x40000001, 0, CPUID_EAX, 11},
    {"kvm-poll-control", 0x40000001, 0, CPUID_EAX, 12},
    {"kvm-pv-sched-yield", 0x40000001, 0, CPUID_EAX, 13},
    {"kvm-asyncpf-int", 0x40000001, 0, CPUID_EAX, 14},
    {"kvm-msi-ext-dest-id", 0x40000001, 0, CPUID_EAX, 15},
    {"kvmclock-stable-bit", 0x40000001, 0, CPUID_EAX, 24},
};

const CpuFeature *cpu_feature_all(size_t *n)
{
    *n = G_N_ELEMENTS(cpu_features);
    return cpu_features;
}

const CpuFeature *cpu_feature_find(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(cpu_features); i++) {
        /* QEMU spells the separators '-', '_' or '.' interchangeably. */
        const char *a = cpu_features[i].name, *b = name;
        while (*a && (*a == *b || (strchr("-_.", *a) && strchr("-_.", *b)))) {
            a++;
            b++;
        }
        if (!*a && !*b) {
            return &cpu_features[i];
        }
    }
    return NULL;
}

bool cpu_model_parse(const char *spec, CpuModel *out, GError **errp)
{
    memset(out, 0, sizeof(*out));
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
    if (!strcmp(parts[0], "host") || !strcmp(parts[0], "max")) {
        out->base = false;
    } else if (!strcmp(parts[0], "base") || !strcmp(parts[0], "qemu64")) {
        out->base = true;
    } else {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-cpu: unknown CPU model '%s' (kvmloop has 'host' and 'base')", parts[0]);
        return false;
    }
    for (int i = 1; parts[i]; i++) {
        const char *p = parts[i];
        g_autofree char *name = NULL;
        bool on;
        if (p[0] == '+' || p[0] == '-') {
            on = p[0] == '+';
            name = g_strdup(p + 1);
        } else {
            const char *eq = strchr(p, '=');
            if (!eq) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "-cpu: '%s' is not +FEATURE, -FEATURE or FEATURE=on|off", p);
                return false;
            }
            name = g_strndup(p, (size_t)(eq - p));
            if (!strcmp(eq + 1, "on")) {
                on = true;
            } else if (!strcmp(eq + 1, "off")) {
                on = false;
            } else {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "-cpu: '%s': the value must be on or off", p);
                return false;
            }
        }
        const CpuFeature *f = cpu_feature_find(name);
        if (!f) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-cpu: unknown CPU feature '%s'", name);
            return false;
        }
        if (out->nedits >= CPU_MODEL_MAX_EDITS) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-cpu: more than %d feature edits", CPU_MODEL_MAX_EDITS);
            return false;
        }
        out->edits[out->nedits].feature = f;
        out->edits[out->nedits].on = on;
        out->nedits++;
    }
    return true;
}

CpuidEntry *cpuid_find(CpuidEntry *entries, size_t n, uint32_t function, uint32_t index)
{
    for (size_t i = 0; i < n; i++) {
        if (entries[i].function == function && entries[i].index == index) {
            return &entries[i];
        }
    }
    return NULL;
}

static uint32_t *cpuid_reg(CpuidEntry *e, int reg)
{
    switch (reg) {
    case CPUID_EAX:
        return &e->eax;
    case CPUID_EBX:
        return &e->ebx;
    case CPUID_ECX:
        return &e->ecx;
    default:
        return &e->edx;
    }
}

/* The "base" model: what QEMU's qemu64 offers, a CPU every x86-64 host has,
 * plus the KVM paravirtual leaves. Leaves not listed keep only their
 * structure (cache and topology descriptions). */
static const struct {
    uint32_t function, index;
    uint32_t eax, ebx, ecx, edx;
} base_model_masks[] = {
    /* fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36
     * clflush mmx fxsr sse sse2 (+ htt, set by the topology) */
    {1, 0, 0xffffffff, 0xffffffff, (1u << 0) | (1u << 13) | (1u << 21) | (1u << 31), 0x078bfbfd},
    {7, 0, 0xffffffff, 0, 0, 0},
    {0xd, 1, 0, 0, 0, 0},
    /* lahf-lm; syscall nx lm */
    {0x80000001, 0, 0xffffffff, 0xffffffff, 1u << 0, (1u << 11) | (1u << 20) | (1u << 29)},
    {0x80000007, 0, 0, 0, 0, 0},
};

static void apply_topology(CpuidEntry *e, const CpuTopology *t, int index)
{
    uint32_t apic_id = cpu_topology_apic_id(t, index);
    unsigned tb = cpu_topology_thread_bits(t), cb = cpu_topology_core_bits(t);
    uint32_t per_pkg = (uint32_t)(t->cores * t->threads);

    switch (e->function) {
    case 1:
        e->ebx = (e->ebx & 0x0000ffffu) | (apic_id << 24) | (MIN(per_pkg, 255u) << 16);
        if (per_pkg > 1) {
            e->edx |= 1u << 28; /* HTT: EBX[23:16] is valid */
        } else {
            e->edx &= ~(1u << 28);
        }
        break;
    case 4: {
        uint32_t level = (e->eax >> 5) & 7;
        uint32_t sharing = level >= 3 ? (1u << (cb + tb)) - 1 : (1u << tb) - 1;
        e->eax = (e->eax & 0x00003fffu) | (((1u << cb) - 1) << 26) | (sharing << 14);
        break;
    }
    case 0xb:
    case 0x1f:
        e->edx = apic_id;
        if (e->index == 0) { /* SMT level */
            e->eax = tb;
            e->ebx = (uint32_t)t->threads;
            e->ecx = (1u << 8) | 0;
        } else if (e->index == 1) { /* core level */
            e->eax = tb + cb;
            e->ebx = per_pkg;
            e->ecx = (2u << 8) | 1;
        } else {
            e->eax = 0;
            e->ebx = 0;
            e->ecx = e->index;
        }
        break;
    case 0x80000008:
        /* ApicIdCoreIdSize and NC (AMD's view of the same package). */
        e->ecx = (e->ecx & ~0xf0ffu) | ((cb + tb) << 12) | ((per_pkg - 1) & 0xff);
        break;
    default:
        break;
    }
}

bool cpu_model_apply(const CpuModel *model, const CpuTopology *topo, int index, CpuidEntry *entries,
                     size_t n, GError **errp)
{
    g_autofree CpuidEntry *supported = g_memdup2(entries, n * sizeof(*entries));

    if (model->base) {
        for (size_t i = 0; i < G_N_ELEMENTS(base_model_masks); i++) {
            CpuidEntry *e =
                cpuid_find(entries, n, base_model_masks[i].function, base_model_masks[i].index);
            if (e) {
                e->eax &= base_model_masks[i].eax;
                e->ebx &= base_model_masks[i].ebx;
                e->ecx &= base_model_masks[i].ecx;
                e->edx &= base_model_masks[i].edx;
            }
        }
        CpuidEntry *leaf7 = cpuid_find(entries, n, 7, 0);
        if (leaf7) {
            leaf7->eax = 0; /* no further subleaves */
        }
    }
    for (int i = 0; i < model->nedits; i++) {
        const CpuFeature *f = model->edits[i].feature;
        CpuidEntry *e = cpuid_find(entries, n, f->function, f->index);
        CpuidEntry *s = cpuid_find(supported, n, f->function, f->index);
        uint32_t bit = 1u << f->bit;
        if (model->edits[i].on) {
            if (!e || !s || !(*cpuid_reg(s, f->reg) & bit)) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                            "-cpu: feature '%s' is not supported by this host's KVM", f->name);
                return false;
            }
            *cpuid_reg(e, f->reg) |= bit;
        } else if (e) {
            *cpuid_reg(e, f->reg) &= ~bit;
        }
    }
    for (size_t i = 0; i < n; i++) {
        apply_topology(&entries[i], topo, index);
    }
    return true;
}
