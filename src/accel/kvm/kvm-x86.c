/* x86 vCPU set-up for KVM: CPUID with per-vCPU APIC IDs, entry registers, register dumps. */
#include <cpuid.h>
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>

#include "kvm-internal.h"

#define CPUID_MAX_ENTRIES 256

static struct kvm_cpuid2 *kvm_supported_cpuid(KvmState *s, GError **errp)
{
    if (!s->cpuid) {
        struct kvm_cpuid2 *c =
            g_malloc0(sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
        c->nent = CPUID_MAX_ENTRIES;
        int r = kvm_ioctl(s->fd, KVM_GET_SUPPORTED_CPUID, c);
        if (r < 0) {
            g_free(c);
            kvm_set_ioctl_error(errp, "KVM_GET_SUPPORTED_CPUID", r);
            return NULL;
        }
        s->cpuid = c;
    }
    return s->cpuid;
}

bool kvm_x86_vcpu_init_cpuid(KvmVcpu *v, const CpuModel *model, const CpuTopology *topo,
                             GError **errp)
{
    struct kvm_cpuid2 *sup = kvm_supported_cpuid(v->kvm, errp);
    if (!sup) {
        return false;
    }
    g_autofree CpuidEntry *e = g_new0(CpuidEntry, sup->nent);
    for (uint32_t i = 0; i < sup->nent; i++) {
        const struct kvm_cpuid_entry2 *k = &sup->entries[i];
        e[i] = (CpuidEntry){.function = k->function,
                            .index = k->index,
                            .flags = k->flags,
                            .eax = k->eax,
                            .ebx = k->ebx,
                            .ecx = k->ecx,
                            .edx = k->edx};
    }
    if (!cpu_model_apply(model, topo, v->index, e, sup->nent, errp)) {
        return false;
    }
    g_autofree struct kvm_cpuid2 *c =
        g_malloc0(sizeof(*c) + sup->nent * sizeof(struct kvm_cpuid_entry2));
    c->nent = sup->nent;
    for (uint32_t i = 0; i < sup->nent; i++) {
        c->entries[i] = (struct kvm_cpuid_entry2){.function = e[i].function,
                                                  .index = e[i].index,
                                                  .flags = e[i].flags,
                                                  .eax = e[i].eax,
                                                  .ebx = e[i].ebx,
                                                  .ecx = e[i].ecx,
                                                  .edx = e[i].edx};
    }
    int r = kvm_ioctl(v->fd, KVM_SET_CPUID2, c);
    return r < 0 ? kvm_set_ioctl_error(errp, "KVM_SET_CPUID2", r) : true;
}

bool kvm_x86_vcpu_save_init_state(KvmVcpu *v, GError **errp)
{
    static const struct {
        unsigned long req;
        const char *name;
        size_t off;
    } parts[] = {
        {KVM_GET_REGS, "KVM_GET_REGS", offsetof(KvmVcpu, init_regs)},
        {KVM_GET_SREGS, "KVM_GET_SREGS", offsetof(KvmVcpu, init_sregs)},
        {KVM_GET_FPU, "KVM_GET_FPU", offsetof(KvmVcpu, init_fpu)},
        {KVM_GET_LAPIC, "KVM_GET_LAPIC", offsetof(KvmVcpu, init_lapic)},
        {KVM_GET_MP_STATE, "KVM_GET_MP_STATE", offsetof(KvmVcpu, init_mp_state)},
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(parts); i++) {
        int r = kvm_ioctl(v->fd, parts[i].req, (char *)v + parts[i].off);
        if (r < 0) {
            return kvm_set_ioctl_error(errp, parts[i].name, r);
        }
    }
    return true;
}

/* MSRs a guest points at its own memory; a reset must forget them. */
static const uint32_t pv_msrs[] = {
    0x11,       /* MSR_KVM_WALL_CLOCK */
    0x12,       /* MSR_KVM_SYSTEM_TIME */
    0x4b564d00, /* MSR_KVM_WALL_CLOCK_NEW */
    0x4b564d01, /* MSR_KVM_SYSTEM_TIME_NEW */
    0x4b564d02, /* MSR_KVM_ASYNC_PF_EN */
    0x4b564d03, /* MSR_KVM_STEAL_TIME */
    0x4b564d04, /* MSR_KVM_PV_EOI_EN */
    0x4b564d06, /* MSR_KVM_ASYNC_PF_INT */
};

bool kvm_vcpu_reset(KvmVcpu *v, GError **errp)
{
    static const struct {
        unsigned long req;
        const char *name;
        size_t off;
    } parts[] = {
        {KVM_SET_SREGS, "KVM_SET_SREGS", offsetof(KvmVcpu, init_sregs)},
        {KVM_SET_REGS, "KVM_SET_REGS", offsetof(KvmVcpu, init_regs)},
        {KVM_SET_FPU, "KVM_SET_FPU", offsetof(KvmVcpu, init_fpu)},
        {KVM_SET_LAPIC, "KVM_SET_LAPIC", offsetof(KvmVcpu, init_lapic)},
        {KVM_SET_MP_STATE, "KVM_SET_MP_STATE", offsetof(KvmVcpu, init_mp_state)},
    };
    struct kvm_vcpu_events ev = {0};
    int r = kvm_ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_SET_VCPU_EVENTS", r);
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(parts); i++) {
        r = kvm_ioctl(v->fd, parts[i].req, (char *)v + parts[i].off);
        if (r < 0) {
            return kvm_set_ioctl_error(errp, parts[i].name, r);
        }
    }
    /* One MSR at a time: a host that lacks one of them must not stop the
     * others from being cleared. */
    for (unsigned i = 0; i < G_N_ELEMENTS(pv_msrs); i++) {
        struct {
            struct kvm_msrs hdr;
            struct kvm_msr_entry e;
        } m = {.hdr = {.nmsrs = 1}, .e = {.index = pv_msrs[i], .data = 0}};
        kvm_ioctl(v->fd, KVM_SET_MSRS, &m);
    }
    return true;
}

bool kvm_irqchip_reset(KvmState *s, GError **errp)
{
    if (!s->have_irqchip_state) {
        return true;
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(s->irqchip_init); i++) {
        int r = kvm_ioctl(s->vmfd, KVM_SET_IRQCHIP, &s->irqchip_init[i]);
        if (r < 0) {
            return kvm_set_ioctl_error(errp, "KVM_SET_IRQCHIP", r);
        }
    }
    int r = kvm_ioctl(s->vmfd, KVM_SET_PIT2, &s->pit_init);
    return r < 0 ? kvm_set_ioctl_error(errp, "KVM_SET_PIT2", r) : true;
}

static void flat_segment(struct kvm_segment *seg, uint16_t sel, uint8_t type)
{
    *seg = (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = sel,
        .type = type,
        .present = 1,
        .dpl = 0,
        .db = 1,
        .s = 1,
        .l = 0,
        .g = 1,
    };
}

static bool set_entry_state(KvmVcpu *v, struct kvm_sregs *sregs, const struct kvm_regs *regs,
                            GError **errp)
{
    int r = kvm_ioctl(v->fd, KVM_SET_SREGS, sregs);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_SET_SREGS", r);
    }
    r = kvm_ioctl(v->fd, KVM_SET_REGS, (void *)regs);
    return r < 0 ? kvm_set_ioctl_error(errp, "KVM_SET_REGS", r) : true;
}

bool kvm_vcpu_set_flat32_entry(KvmVcpu *v, uint32_t entry, uint32_t eax, uint32_t ebx,
                               GError **errp)
{
    struct kvm_sregs sregs;
    int r = kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_GET_SREGS", r);
    }
    /* Multiboot's "Machine state" and PVH's entry state agree: flat 4 GiB
     * code and data segments, CR0.PE set, paging off. PVH also wants a
     * 32-bit busy TSS in TR. */
    flat_segment(&sregs.cs, 0x10, 0xb);
    flat_segment(&sregs.ds, 0x18, 0x3);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.tr = (struct kvm_segment){
        .base = 0, .limit = 0x67, .selector = 0x20, .type = 0xb, .present = 1, .s = 0};
    sregs.cr0 = 0x11; /* PE | ET */
    sregs.cr4 = 0;
    sregs.efer = 0;
    struct kvm_regs regs = {.rip = entry, .rax = eax, .rbx = ebx, .rflags = 0x2};
    return set_entry_state(v, &sregs, &regs, errp);
}

bool kvm_vcpu_set_long_mode_entry(KvmVcpu *v, uint64_t entry, uint64_t rsi, uint64_t cr3,
                                  uint64_t gdt, GError **errp)
{
    struct kvm_sregs sregs;
    int r = kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_GET_SREGS", r);
    }
    flat_segment(&sregs.cs, 0x10, 0xb);
    sregs.cs.l = 1;
    sregs.cs.db = 0;
    flat_segment(&sregs.ds, 0x18, 0x3);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.tr = (struct kvm_segment){
        .base = 0, .limit = 0x67, .selector = 0x20, .type = 0xb, .present = 1, .s = 0};
    sregs.gdt.base = gdt;
    sregs.gdt.limit = 0x1f;
    sregs.cr3 = cr3;
    sregs.cr4 = 0x20;       /* PAE */
    sregs.cr0 = 0x80050033; /* PG | AM | WP | NE | ET | MP | PE */
    sregs.efer = 0x500;     /* LMA | LME */
    struct kvm_regs regs = {.rip = entry, .rsi = rsi, .rflags = 0x2};
    return set_entry_state(v, &sregs, &regs, errp);
}

static void dump_segment(FILE *f, const char *name, const struct kvm_segment *s)
{
    fprintf(f, "  %-3s sel=%04x base=%016llx limit=%08x type=%x dpl=%u p=%u db=%u l=%u g=%u\n",
            name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl, s->present,
            s->db, s->l, s->g);
}

void kvm_vcpu_dump_state(KvmVcpu *v, FILE *f)
{
    struct kvm_regs r;
    struct kvm_sregs s;

    if (kvm_ioctl(v->fd, KVM_GET_REGS, &r) < 0 || kvm_ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
        fprintf(f, "  (registers unavailable: %s)\n", g_strerror(errno));
        return;
    }
    fprintf(f, "  RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n", r.rax, r.rbx, r.rcx, r.rdx);
    fprintf(f, "  RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx\n", r.rsi, r.rdi, r.rbp, r.rsp);
    fprintf(f, "  R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx\n", r.r8, r.r9, r.r10, r.r11);
    fprintf(f, "  R12=%016llx R13=%016llx R14=%016llx R15=%016llx\n", r.r12, r.r13, r.r14, r.r15);
    fprintf(f, "  RIP=%016llx RFLAGS=%08llx\n", r.rip, r.rflags);
    dump_segment(f, "CS", &s.cs);
    dump_segment(f, "DS", &s.ds);
    dump_segment(f, "SS", &s.ss);
    fprintf(f, "  GDT=%016llx/%04x IDT=%016llx/%04x\n", s.gdt.base, s.gdt.limit, s.idt.base,
            s.idt.limit);
    fprintf(f, "  CR0=%016llx CR2=%016llx CR3=%016llx CR4=%016llx EFER=%016llx\n", s.cr0, s.cr2,
            s.cr3, s.cr4, s.efer);
}

bool kvm_host_emulates_guest_kernel(KvmState *s, const char **name)
{
    unsigned a, b, c, d;
    bool vmx = false, svm = false;
    (void)s;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        vmx = c & (1u << 5);
    }
    if (__get_cpuid(0x80000001, &a, &b, &c, &d)) {
        svm = c & (1u << 2);
    }
    if (vmx || svm) {
        return false;
    }
    if (name) {
        *name = g_file_test("/sys/module/kvm_pvm", G_FILE_TEST_IS_DIR) ? "kvm_pvm" : "no VMX/SVM";
    }
    return true;
}

const char *const kvm_assist_names[KVM_ASSIST__MAX] = {
    [KVM_ASSIST_INT3] = "int3",
    [KVM_ASSIST_FWAIT] = "fwait",
    [KVM_ASSIST_CLAC_STAC] = "clac/stac",
};

void kvm_set_emulation_assists(KvmState *s, bool on)
{
    s->assists = on;
}

bool kvm_emulation_assists(KvmState *s)
{
    return s->assists;
}

void kvm_vcpu_assist_counts(const KvmVcpu *v, uint64_t out[KVM_ASSIST__MAX])
{
    for (int i = 0; i < KVM_ASSIST__MAX; i++) {
        out[i] = __atomic_load_n(&v->assists[i], __ATOMIC_RELAXED);
    }
}

/* Up to @max bytes of guest code at the current RIP, through the guest's
 * page tables (KVM_TRANSLATE) and kvmloop's RAM map. Returns the count. */
static size_t fetch_code(KvmVcpu *v, const struct kvm_regs *regs, const struct kvm_sregs *sregs,
                         uint8_t *buf, size_t max)
{
    uint64_t lin = sregs->cs.base + regs->rip;
    size_t n = 0;
    while (n < max) {
        struct kvm_translation t = {.linear_address = lin + n};
        if (kvm_ioctl(v->fd, KVM_TRANSLATE, &t) < 0 || !t.valid) {
            break;
        }
        const uint8_t *host = NULL;
        for (unsigned i = 0; i < KVM_MAX_RAM_SLOTS; i++) {
            if (v->kvm->ram[i].host && t.physical_address >= v->kvm->ram[i].gpa &&
                t.physical_address - v->kvm->ram[i].gpa < v->kvm->ram[i].size) {
                host = v->kvm->ram[i].host + (t.physical_address - v->kvm->ram[i].gpa);
            }
        }
        if (!host) {
            break;
        }
        buf[n++] = *host;
    }
    /* Unreadable through the page tables: what KVM saw, if it says. */
    struct kvm_run *run = v->run;
    if (n == 0 && run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
        n = MIN((size_t)run->emulation_failure.insn_size, max);
        memcpy(buf, run->emulation_failure.insn_bytes, n);
    }
    return n;
}

static bool inject_breakpoint(KvmVcpu *v)
{
    struct kvm_vcpu_events ev;
    if (kvm_ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0) {
        return false;
    }
    ev.exception.injected = 1;
    ev.exception.nr = 3;
    ev.exception.has_error_code = 0;
    ev.exception.error_code = 0;
    ev.flags = 0;
    return kvm_ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) >= 0;
}

#define RFLAGS_AC (1u << 18)

bool kvm_x86_handle_emulation_failure(KvmVcpu *v)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    uint8_t code[15];

    if (kvm_ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
        return false;
    }
    size_t n = fetch_code(v, &regs, &sregs, code, sizeof(code));
    if (v->kvm->assists && v->run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
        int kind = -1;
        unsigned len = 0;
        if (n >= 1 && code[0] == 0xcc) {
            kind = KVM_ASSIST_INT3;
            len = 1;
        } else if (n >= 1 && code[0] == 0x9b) {
            kind = KVM_ASSIST_FWAIT;
            len = 1;
        } else if (n >= 3 && code[0] == 0x0f && code[1] == 0x01 &&
                   (code[2] == 0xca || code[2] == 0xcb)) {
            kind = KVM_ASSIST_CLAC_STAC;
            len = 3;
            if (code[2] == 0xca) {
                regs.rflags &= ~(uint64_t)RFLAGS_AC;
            } else {
                regs.rflags |= RFLAGS_AC;
            }
        }
        if (kind >= 0) {
            regs.rip += len;
            if (kvm_ioctl(v->fd, KVM_SET_REGS, &regs) >= 0 &&
                (kind != KVM_ASSIST_INT3 || inject_breakpoint(v))) {
                __atomic_fetch_add(&v->assists[kind], 1, __ATOMIC_RELAXED);
                return true;
            }
        }
    }

    g_autoptr(GString) bytes = g_string_new(n ? "" : "(unreadable)");
    for (size_t i = 0; i < n; i++) {
        g_string_append_printf(bytes, "%s%02x", i ? " " : "", code[i]);
    }
    const char *host = NULL;
    bool emulating = kvm_host_emulates_guest_kernel(v->kvm, &host);
    fprintf(stderr,
            "kvmloop: vCPU %d: emulation failure at RIP 0x%llx (CPL %u), instruction bytes: %s; "
            "likely cause: %s%s%s\n",
            v->index, (unsigned long long)regs.rip, sregs.cs.dpl, bytes->str,
            emulating ? "this host's KVM (" : "the guest ran an instruction KVM cannot emulate",
            emulating ? host : "",
            emulating ? ") has no hardware virtualization and its instruction emulator does "
                        "not handle this instruction"
                      : " (for example MMIO through an unusual instruction)");
    return false;
}
