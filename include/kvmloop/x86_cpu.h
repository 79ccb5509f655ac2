/* x86 CPU description: topology (APIC IDs), CPUID models (-cpu host|base, +/-features). */
#ifndef KVMLOOP_X86_CPU_H
#define KVMLOOP_X86_CPU_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/* -smp N[,sockets=S][,cores=C][,threads=T]: N = S * C * T, one die per socket. */
typedef struct CpuTopology {
    int cpus;
    int sockets;
    int cores;   /* per socket */
    int threads; /* per core */
} CpuTopology;

/* Parse QEMU's -smp spelling; missing counts are derived as QEMU does
 * (sockets first). Returns false with a one-line error. */
bool cpu_topology_parse(const char *spec, int max_cpus, CpuTopology *out, GError **errp);
/* Bits of the APIC ID for the thread and the core level. */
unsigned cpu_topology_thread_bits(const CpuTopology *t);
unsigned cpu_topology_core_bits(const CpuTopology *t);
/* The APIC ID of vCPU @index: socket | core | thread fields, as the CPUID
 * topology leaves describe them. */
uint32_t cpu_topology_apic_id(const CpuTopology *t, int index);

/* One CPUID leaf, as KVM_GET_SUPPORTED_CPUID gives it. */
typedef struct CpuidEntry {
    uint32_t function;
    uint32_t index;
    uint32_t flags; /* KVM_CPUID_FLAG_SIGNIFCANT_INDEX etc., passed through */
    uint32_t eax, ebx, ecx, edx;
} CpuidEntry;

enum { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

/* A feature bit: name as QEMU spells it, leaf, subleaf, register, bit. */
typedef struct CpuFeature {
    const char *name;
    uint32_t function;
    uint32_t index;
    uint8_t reg;
    uint8_t bit;
} CpuFeature;

const CpuFeature *cpu_feature_find(const char *name);
const CpuFeature *cpu_feature_all(size_t *n);

#define CPU_MODEL_MAX_EDITS 64

/* -cpu host|base[,+feat][,-feat][,feat=on|off] */
typedef struct CpuModel {
    bool base; /* false: host (all KVM supports) */
    int nedits;
    struct {
        const CpuFeature *feature;
        bool on;
    } edits[CPU_MODEL_MAX_EDITS];
} CpuModel;

bool cpu_model_parse(const char *spec, CpuModel *out, GError **errp);
/* Apply @model and @topo to @entries (a copy of what KVM supports) for vCPU
 * @index: hide what the model does not have, apply the edits (a feature can
 * only be added if KVM supports it: that is an error naming it), and write
 * the APIC ID and topology into leaves 1, 4, 0xB, 0x1F and 0x80000008. */
bool cpu_model_apply(const CpuModel *model, const CpuTopology *topo, int index, CpuidEntry *entries,
                     size_t n, GError **errp);
/* The entry for (@function, @index) in @entries, or NULL. */
CpuidEntry *cpuid_find(CpuidEntry *entries, size_t n, uint32_t function, uint32_t index);

#endif
