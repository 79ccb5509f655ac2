/* /dev/kvm, the VM, memory slots, the in-kernel irqchip, vCPUs and exit dispatch. */
#include "kvmloop/kvm.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm-internal.h"
#include "kvmloop/lockstat.h"
#include "kvmloop/memory.h"

const char *const vcpu_exit_reason_names[VCPU_EXIT__MAX] = {
    [VCPU_EXIT_IO] = "io",
    [VCPU_EXIT_MMIO] = "mmio",
    [VCPU_EXIT_INTR] = "intr",
    [VCPU_EXIT_HLT] = "hlt",
    [VCPU_EXIT_SHUTDOWN] = "shutdown",
    [VCPU_EXIT_SYSTEM_EVENT] = "system-event",
    [VCPU_EXIT_INTERNAL_ERROR] = "internal-error",
    [VCPU_EXIT_FAIL_ENTRY] = "fail-entry",
    [VCPU_EXIT_UNKNOWN] = "unknown",
    [VCPU_EXIT_OTHER] = "other",
};

/* Capabilities kvmloop cannot run without. */
static const struct {
    int cap;
    const char *name;
} required_caps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
};

/* QEMU's -errno ioctl convention: errno is captured where the call failed. */
int kvm_ioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do {
        r = ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR && req != KVM_RUN);
    return r < 0 ? -errno : r;
}

bool kvm_set_ioctl_error(GError **errp, const char *what, int err)
{
    g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-err), "%s failed: %s", what,
                g_strerror(-err));
    return false;
}

KvmState *kvm_init(const char *path, GError **errp)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e), "cannot open %s: %s%s", path,
                    g_strerror(e),
                    e == ENOENT                   ? " (is the kvm module loaded?)"
                    : (e == EACCES || e == EPERM) ? " (add yourself to the 'kvm' group)"
                                                  : "");
        return NULL;
    }
    int r = kvm_ioctl(fd, KVM_GET_API_VERSION, NULL);
    if (r != KVM_API_VERSION) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "%s: KVM API version %d, kvmloop needs %d", path, r, KVM_API_VERSION);
        goto close_fd;
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(required_caps); i++) {
        if (kvm_ioctl(fd, KVM_CHECK_EXTENSION, (void *)(long)required_caps[i].cap) <= 0) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "%s lacks %s, which kvmloop needs", path, required_caps[i].name);
            goto close_fd;
        }
    }
    int mmap_size = kvm_ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
    if (mmap_size < (int)sizeof(struct kvm_run)) {
        kvm_set_ioctl_error(errp, "KVM_GET_VCPU_MMAP_SIZE", mmap_size < 0 ? mmap_size : -EINVAL);
        goto close_fd;
    }
    int vmfd = kvm_ioctl(fd, KVM_CREATE_VM, 0);
    if (vmfd < 0) {
        kvm_set_ioctl_error(errp, "KVM_CREATE_VM", vmfd);
        goto close_fd;
    }
    /* Needed on Intel hosts for real-mode guests (the APs' SIPI trampoline);
     * three pages just below the BIOS area, as QEMU places them. */
    r = kvm_ioctl(vmfd, KVM_SET_TSS_ADDR, (void *)0xfffbd000UL);
    if (r < 0) {
        kvm_set_ioctl_error(errp, "KVM_SET_TSS_ADDR", r);
        close(vmfd);
        goto close_fd;
    }

    /* Instruction bytes with emulation failures, where the host offers them
     * (kvm_x86_handle_emulation_failure() reads guest memory otherwise). */
    if (kvm_ioctl(fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_EXIT_ON_EMULATION_FAILURE) > 0) {
        struct kvm_enable_cap cap = {.cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE, .args = {1}};
        kvm_ioctl(vmfd, KVM_ENABLE_CAP, &cap);
    }

    KvmState *s = g_new0(KvmState, 1);
    s->fd = fd;
    s->vmfd = vmfd;
    s->run_mmap_size = mmap_size;
    return s;

close_fd:
    close(fd);
    return NULL;
}

void kvm_destroy(KvmState *s)
{
    if (!s) {
        return;
    }
    close(s->vmfd);
    close(s->fd);
    g_free(s->cpuid);
    g_free(s);
}

bool kvm_set_ram(KvmState *s, unsigned slot, gpa_t gpa, uint64_t size, void *host, GError **errp)
{
    struct kvm_userspace_memory_region mr = {
        .slot = slot,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host,
    };
    if (slot >= KVM_MAX_RAM_SLOTS) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "RAM slot %u out of range",
                    slot);
        return false;
    }
    int r = kvm_ioctl(s->vmfd, KVM_SET_USER_MEMORY_REGION, &mr);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_SET_USER_MEMORY_REGION", r);
    }
    s->ram[slot].gpa = gpa;
    s->ram[slot].size = size;
    s->ram[slot].host = host;
    return true;
}

bool kvm_create_irqchip(KvmState *s, GError **errp)
{
    int r = kvm_ioctl(s->vmfd, KVM_CREATE_IRQCHIP, NULL);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_CREATE_IRQCHIP", r);
    }
    struct kvm_pit_config pit = {.flags = 0};
    r = kvm_ioctl(s->vmfd, KVM_CREATE_PIT2, &pit);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_CREATE_PIT2", r);
    }
    /* The power-on state of the PICs, the IOAPIC and the PIT, for reset. */
    for (unsigned i = 0; i < G_N_ELEMENTS(s->irqchip_init); i++) {
        s->irqchip_init[i].chip_id = i;
        r = kvm_ioctl(s->vmfd, KVM_GET_IRQCHIP, &s->irqchip_init[i]);
        if (r < 0) {
            return kvm_set_ioctl_error(errp, "KVM_GET_IRQCHIP", r);
        }
    }
    r = kvm_ioctl(s->vmfd, KVM_GET_PIT2, &s->pit_init);
    if (r < 0) {
        return kvm_set_ioctl_error(errp, "KVM_GET_PIT2", r);
    }
    s->have_irqchip_state = true;
    return true;
}

int kvm_set_irq(KvmState *s, int irq, int level)
{
    struct kvm_irq_level l = {.irq = (uint32_t)irq, .level = (uint32_t)level};
    return kvm_ioctl(s->vmfd, KVM_IRQ_LINE, &l);
}

void kvm_set_address_spaces(KvmState *s, AddressSpace *pio, AddressSpace *mmio)
{
    s->pio = pio;
    s->mmio = mmio;
}

KvmVcpu *kvm_vcpu_create(KvmState *s, int index, const CpuModel *model, const CpuTopology *topo,
                         GError **errp)
{
    /* The vCPU id is the initial APIC ID of the in-kernel LAPIC. */
    uint32_t apic_id = cpu_topology_apic_id(topo, index);
    int fd = kvm_ioctl(s->vmfd, KVM_CREATE_VCPU, (void *)(long)apic_id);
    if (fd < 0) {
        kvm_set_ioctl_error(errp, "KVM_CREATE_VCPU", fd);
        return NULL;
    }
    void *run = mmap(NULL, s->run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (run == MAP_FAILED) {
        kvm_set_ioctl_error(errp, "mmap of kvm_run", -errno);
        goto close_fd;
    }
    KvmVcpu *v = g_new0(KvmVcpu, 1);
    v->kvm = s;
    v->fd = fd;
    v->index = index;
    v->apic_id = apic_id;
    v->run = run;
    if (!kvm_x86_vcpu_init_cpuid(v, model, topo, errp) || !kvm_x86_vcpu_save_init_state(v, errp)) {
        kvm_vcpu_destroy(v);
        return NULL;
    }
    return v;

close_fd:
    close(fd);
    return NULL;
}

void kvm_vcpu_destroy(KvmVcpu *v)
{
    if (!v) {
        return;
    }
    munmap(v->run, v->kvm->run_mmap_size);
    close(v->fd);
    g_free(v);
}

int kvm_vcpu_index(const KvmVcpu *v)
{
    return v->index;
}

uint32_t kvm_vcpu_apic_id(const KvmVcpu *v)
{
    return v->apic_id;
}

static __thread KvmVcpu *current_vcpu;

void kvm_vcpu_bind_thread(KvmVcpu *v)
{
    current_vcpu = v;
}

void kvm_vcpu_request_exit(KvmVcpu *v)
{
    /* Pairs with the fence in kvm_vcpu_exec(): either the vCPU sees
     * immediate_exit when it enters KVM_RUN, or it sees the caller's
     * exit_request after it clears immediate_exit. */
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

void kvm_vcpu_signal_kick(void)
{
    KvmVcpu *v = current_vcpu;
    if (v) {
        __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELAXED);
    }
}

/* Exit handlers: one verdict each, looked up in a bounds-checked table. */
typedef VcpuVerdict (*kvm_exit_fn)(KvmVcpu *v, VcpuExit *out);

static VcpuVerdict handle_io(KvmVcpu *v, VcpuExit *out)
{
    struct kvm_run *run = v->run;
    unsigned size = run->io.size;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;

    out->reason = VCPU_EXIT_IO;
    /* String instructions (rep ins/outs) come as @count consecutive items. */
    for (uint32_t i = 0; i < run->io.count; i++) {
        address_space_rw_named(v->kvm->pio, run->io.port, data + (size_t)i * size, size, is_write,
                               &out->region, &out->site);
    }
    return VCPU_CONTINUE;
}

static VcpuVerdict handle_mmio(KvmVcpu *v, VcpuExit *out)
{
    struct kvm_run *run = v->run;
    out->reason = VCPU_EXIT_MMIO;
    if (run->mmio.len == 0 || run->mmio.len > 8) {
        out->region = "unassigned";
        if (!run->mmio.is_write) {
            memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
        }
        return VCPU_CONTINUE;
    }
    address_space_rw_named(v->kvm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
                           run->mmio.is_write, &out->region, &out->site);
    return VCPU_CONTINUE;
}

static VcpuVerdict handle_hlt(KvmVcpu *v, VcpuExit *out)
{
    /* Only without an in-kernel LAPIC, which kvmloop always has. */
    out->reason = VCPU_EXIT_HLT;
    return VCPU_CONTINUE;
}

static VcpuVerdict handle_shutdown(KvmVcpu *v, VcpuExit *out)
{
    out->reason = VCPU_EXIT_SHUTDOWN;
    fprintf(stderr, "kvmloop: vCPU %d: triple fault (KVM_EXIT_SHUTDOWN); the guest cannot go on\n",
            v->index);
    kvm_vcpu_dump_state(v, stderr);
    return VCPU_FATAL;
}

static VcpuVerdict handle_system_event(KvmVcpu *v, VcpuExit *out)
{
    out->reason = VCPU_EXIT_SYSTEM_EVENT;
    switch (v->run->system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN:
        return VCPU_POWEROFF;
    case KVM_SYSTEM_EVENT_RESET:
        return VCPU_RESET;
    default:
        fprintf(stderr, "kvmloop: vCPU %d: system event %u (crash)\n", v->index,
                v->run->system_event.type);
        kvm_vcpu_dump_state(v, stderr);
        return VCPU_FATAL;
    }
}

static VcpuVerdict handle_internal_error(KvmVcpu *v, VcpuExit *out)
{
    struct kvm_run *run = v->run;
    out->reason = VCPU_EXIT_INTERNAL_ERROR;
    if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
        if (kvm_x86_handle_emulation_failure(v)) {
            return VCPU_CONTINUE;
        }
        kvm_vcpu_dump_state(v, stderr);
        return VCPU_FATAL;
    }
    fprintf(stderr, "kvmloop: vCPU %d: KVM internal error, suberror %u%s\n", v->index,
            run->internal.suberror,
            run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                ? " (the host's instruction emulator could not emulate the guest's instruction)"
                : "");
    for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++) {
        fprintf(stderr, "  data[%u] = 0x%016llx\n", i, (unsigned long long)run->internal.data[i]);
    }
    kvm_vcpu_dump_state(v, stderr);
    return VCPU_FATAL;
}

static VcpuVerdict handle_fail_entry(KvmVcpu *v, VcpuExit *out)
{
    out->reason = VCPU_EXIT_FAIL_ENTRY;
    fprintf(stderr, "kvmloop: vCPU %d: KVM_RUN failed to enter the guest, hardware reason 0x%llx\n",
            v->index, (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
    kvm_vcpu_dump_state(v, stderr);
    return VCPU_FATAL;
}

static VcpuVerdict handle_unknown(KvmVcpu *v, VcpuExit *out)
{
    out->reason = VCPU_EXIT_UNKNOWN;
    fprintf(stderr, "kvmloop: vCPU %d: unknown exit, hardware reason 0x%llx\n", v->index,
            (unsigned long long)v->run->hw.hardware_exit_reason);
    kvm_vcpu_dump_state(v, stderr);
    return VCPU_FATAL;
}

static VcpuVerdict handle_intr(KvmVcpu *v, VcpuExit *out)
{
    out->reason = VCPU_EXIT_INTR;
    return VCPU_INTERRUPTED;
}

static const kvm_exit_fn exit_handlers[] = {
    [KVM_EXIT_IO] = handle_io,
    [KVM_EXIT_MMIO] = handle_mmio,
    [KVM_EXIT_HLT] = handle_hlt,
    [KVM_EXIT_SHUTDOWN] = handle_shutdown,
    [KVM_EXIT_SYSTEM_EVENT] = handle_system_event,
    [KVM_EXIT_INTERNAL_ERROR] = handle_internal_error,
    [KVM_EXIT_FAIL_ENTRY] = handle_fail_entry,
    [KVM_EXIT_UNKNOWN] = handle_unknown,
    [KVM_EXIT_INTR] = handle_intr,
};

static int64_t first_entry_ns; /* atomic, set once */

int64_t kvm_first_entry_ns(void)
{
    return __atomic_load_n(&first_entry_ns, __ATOMIC_RELAXED);
}

VcpuVerdict kvm_vcpu_exec(KvmVcpu *v, VcpuExit *out)
{
    struct kvm_run *run = v->run;

    if (G_UNLIKELY(__atomic_load_n(&first_entry_ns, __ATOMIC_RELAXED) == 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t zero = 0, now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
        __atomic_compare_exchange_n(&first_entry_ns, &zero, now, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
    }
    out->region = NULL;
    int r = kvm_ioctl(v->fd, KVM_RUN, NULL);
    if (out->timed) {
        out->run_end_ns = lockstat_now_ns();
    }
    /* Pairs with kvm_vcpu_request_exit(): clear, then the caller looks at its
     * exit request flag. */
    __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    if (r < 0) {
        if (r == -EINTR || r == -EAGAIN) {
            return handle_intr(v, out);
        }
        out->reason = VCPU_EXIT_OTHER;
        fprintf(stderr, "kvmloop: vCPU %d: KVM_RUN failed: %s\n", v->index, g_strerror(-r));
        kvm_vcpu_dump_state(v, stderr);
        return VCPU_FATAL;
    }
    uint32_t reason = run->exit_reason;
    if (reason < G_N_ELEMENTS(exit_handlers) && exit_handlers[reason]) {
        return exit_handlers[reason](v, out);
    }
    out->reason = VCPU_EXIT_OTHER;
    fprintf(stderr, "kvmloop: vCPU %d: unhandled KVM exit reason %u\n", v->index, reason);
    kvm_vcpu_dump_state(v, stderr);
    return VCPU_FATAL;
}
