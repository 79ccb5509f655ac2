/* x86 vCPU set-up for KVM: CPUID with per-vCPU APIC IDs, entry registers, register dumps. */
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

/* Bits needed to number @n things. */
static unsigned bits_for(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n) {
        b++;
    }
    return b;
}

/* Each vCPU is one core of one socket, one thread per core: APIC ID = index.
 * Leaf 1 and the extended topology leaves (0xB, 0x1F) must agree on it. */
static void cpuid_set_topology(struct kvm_cpuid_entry2 *e, int index, int nr_cpus)
{
    unsigned core_bits = bits_for((unsigned)nr_cpus);

    switch (e->function) {
    case 1:
        e->ebx = (e->ebx & 0x0000ffffu) | ((uint32_t)index << 24) |
                 ((uint32_t)(nr_cpus > 255 ? 255 : nr_cpus) << 16);
        e->edx |= 1u << 28; /* HTT: the count in EBX[23:16] is valid */
        break;
    case 0xb:
    case 0x1f:
        e->edx = (uint32_t)index;
        if (e->index == 0) { /* SMT level */
            e->eax = 0;
            e->ebx = 1;
            e->ecx = (1u << 8) | 0;
        } else if (e->index == 1) { /* core level */
            e->eax = core_bits;
            e->ebx = (uint32_t)nr_cpus;
            e->ecx = (2u << 8) | 1;
        } else {
            e->eax = 0;
            e->ebx = 0;
            e->ecx = e->index;
        }
        break;
    case 4:
        /* Cores per package - 1 in EAX[31:26]; threads sharing the cache
         * - 1 in EAX[25:14] left as the host reports. */
        e->eax = (e->eax & 0x03ffffffu) | ((uint32_t)((1u << core_bits) - 1) << 26);
        break;
    default:
        break;
    }
}

bool kvm_x86_vcpu_init_cpuid(KvmVcpu *v, int nr_cpus, GError **errp)
{
    struct kvm_cpuid2 *sup = kvm_supported_cpuid(v->kvm, errp);
    if (!sup) {
        return false;
    }
    size_t sz = sizeof(*sup) + sup->nent * sizeof(struct kvm_cpuid_entry2);
    g_autofree struct kvm_cpuid2 *c = g_memdup2(sup, sz);
    for (uint32_t i = 0; i < c->nent; i++) {
        cpuid_set_topology(&c->entries[i], v->index, nr_cpus);
    }
    int r = kvm_ioctl(v->fd, KVM_SET_CPUID2, c);
    return r < 0 ? kvm_set_ioctl_error(errp, "KVM_SET_CPUID2", r) : true;
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

bool kvm_vcpu_set_multiboot_entry(KvmVcpu *v, uint32_t entry, uint32_t mbi, GError **errp)
{
    struct kvm_sregs sregs;
    int r = kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_GET_SREGS", r);
    }
    /* Multiboot spec, "Machine state": flat 4 GiB code and data segments,
     * CR0.PE set, paging off; the GDTR contents are undefined. */
    flat_segment(&sregs.cs, 0x10, 0xb);
    flat_segment(&sregs.ds, 0x18, 0x3);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.cr0 = 0x11; /* PE | ET */
    sregs.cr4 = 0;
    sregs.efer = 0;
    r = kvm_ioctl(v->fd, KVM_SET_SREGS, &sregs);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_SET_SREGS", r);
    }
    struct kvm_regs regs = {
        .rip = entry,
        .rax = 0x2badb002,
        .rbx = mbi,
        .rflags = 0x2,
    };
    r = kvm_ioctl(v->fd, KVM_SET_REGS, &regs);
    return r < 0 ? kvm_set_ioctl_error(errp, "KVM_SET_REGS", r) : true;
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
