/* The pc machine: RAM with the PCI hole, in-kernel irqchip and PIT, legacy devices, vCPUs. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "kvmloop/bql.h"
#include "kvmloop/error.h"
#include "kvmloop/chardev.h"
#include "kvmloop/config.h"
#include "kvmloop/cpus.h"
#include "kvmloop/device.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/klock.h"
#include "kvmloop/kvm.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"
#include "kvmloop/multiboot.h"
#include "kvmloop/rcu.h"

/* RAM above this goes above 4 GiB; [3 GiB, 4 GiB) is the PCI/MMIO hole. */
#define PC_LOWMEM_LIMIT 0xc0000000ULL
#define PC_HIGHMEM_BASE 0x100000000ULL

static const struct {
    uint16_t iobase;
    uint8_t irq;
} pc_serial_ports[KVMLOOP_MAX_SERIAL] = {
    {0x3f8, 4},
    {0x2f8, 3},
    {0x3e8, 4},
    {0x2e8, 3},
};

struct Machine {
    const VmConfig *cfg;
    KvmState *kvm;
    uint8_t *ram;
    uint64_t ram_size;
    GuestMem mem;
    AddressSpace *pio;
    AddressSpace *mmio;
    Chardev *serial[KVMLOOP_MAX_SERIAL];
    GPtrArray *devices;
    KvmVcpu **vcpus;
    CpuState **cpus;
    int ncpus;
    EventLoop *loop;
    BH *exit_bh;
    int exit_requested; /* atomic */
    int exit_status;    /* written once, before exit_requested */
};

AddressSpace *machine_pio(Machine *m)
{
    return m->pio;
}

AddressSpace *machine_mmio(Machine *m)
{
    return m->mmio;
}

const GuestMem *machine_guest_mem(Machine *m)
{
    return &m->mem;
}

Chardev *machine_serial(Machine *m, int idx)
{
    return idx >= 0 && idx < KVMLOOP_MAX_SERIAL ? m->serial[idx] : NULL;
}

int machine_cpu_count(Machine *m)
{
    return m->ncpus;
}

static void pc_irq_set(void *opaque, int n, int level)
{
    Machine *m = opaque;
    int r = kvm_set_irq(m->kvm, n, level);
    if (r < 0) {
        g_warning("KVM_IRQ_LINE %d failed: %s", n, g_strerror(-r));
    }
}

IrqLine machine_isa_irq(Machine *m, int n)
{
    return (IrqLine){.set = pc_irq_set, .opaque = m, .n = n};
}

void machine_request_exit(Machine *m, int status)
{
    int expected = 0;
    /* The first request wins; the BH does the stopping on the main loop. */
    if (__atomic_compare_exchange_n(&m->exit_requested, &expected, -1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        m->exit_status = status;
        __atomic_store_n(&m->exit_requested, 1, __ATOMIC_RELEASE);
        bh_schedule(m->exit_bh);
    }
}

void machine_request_reset(Machine *m)
{
    if (!m->cfg->no_reboot) {
        fprintf(stderr, "kvmloop: the guest asked for a reset; the pc machine cannot "
                        "reset yet, so it stops\n");
    }
    machine_request_exit(m, 0);
}

EventLoop *machine_main_loop(Machine *m)
{
    return m->loop;
}

bool machine_exit_requested(Machine *m, int *status)
{
    if (__atomic_load_n(&m->exit_requested, __ATOMIC_ACQUIRE) != 1) {
        return false;
    }
    *status = m->exit_status;
    return true;
}

static void machine_exit_bh(void *opaque)
{
    Machine *m = opaque;
    pause_all_vcpus();
    event_loop_quit(m->loop);
}

static void machine_cpu_event(void *opaque, CpuState *cpu, VcpuVerdict verdict)
{
    Machine *m = opaque;
    switch (verdict) {
    case VCPU_POWEROFF:
        machine_request_exit(m, 0);
        break;
    case VCPU_RESET:
        machine_request_reset(m);
        break;
    default:
        machine_request_exit(m, 2);
        break;
    }
}

Device *machine_find_device(Machine *m, const char *id)
{
    for (guint i = 0; i < m->devices->len; i++) {
        Device *d = m->devices->pdata[i];
        if (strcmp(d->id, id) == 0) {
            return d;
        }
    }
    return NULL;
}

static bool pc_init_ram(Machine *m, GError **errp)
{
    m->ram_size = m->cfg->ram_size;
    m->ram = mmap(NULL, m->ram_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m->ram == MAP_FAILED) {
        m->ram = NULL;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot map %" G_GUINT64_FORMAT " MiB of guest RAM: %s", m->ram_size >> 20,
                    g_strerror(errno));
        return false;
    }
    uint64_t low = MIN(m->ram_size, PC_LOWMEM_LIMIT);
    m->mem.blocks[0] = (GuestMemBlock){.gpa = 0, .size = low, .host = m->ram};
    m->mem.nblocks = 1;
    if (!kvm_set_ram(m->kvm, 0, 0, low, m->ram, errp)) {
        return false;
    }
    if (m->ram_size > low) {
        m->mem.blocks[1] = (GuestMemBlock){
            .gpa = PC_HIGHMEM_BASE, .size = m->ram_size - low, .host = m->ram + low};
        m->mem.nblocks = 2;
        if (!kvm_set_ram(m->kvm, 1, PC_HIGHMEM_BASE, m->ram_size - low, m->ram + low, errp)) {
            return false;
        }
    }
    m->mem.ram_size = m->ram_size;
    return true;
}

static Device *pc_add_device(Machine *m, const char *name, GError **errp, ...)
{
    g_autoptr(GHashTable) props = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    va_list ap;
    va_start(ap, errp);
    const char *k;
    while ((k = va_arg(ap, const char *))) {
        g_hash_table_insert(props, g_strdup(k), g_strdup(va_arg(ap, const char *)));
    }
    va_end(ap);
    Device *d = device_create(m, name, props, errp);
    if (d) {
        g_ptr_array_add(m->devices, d);
    }
    return d;
}

static bool pc_init_devices(Machine *m, GError **errp)
{
    const VmConfig *cfg = m->cfg;

    for (int i = 0; i < cfg->nserial; i++) {
        GError *err = NULL;
        g_autofree char *label = g_strdup_printf("serial%d", i);
        m->serial[i] = chardev_new(cfg->serial[i], label, &err);
        if (err) {
            g_propagate_error(errp, err);
            return false;
        }
        if (!m->serial[i]) {
            continue; /* "none": no port at all */
        }
        g_autofree char *iobase = g_strdup_printf("0x%x", pc_serial_ports[i].iobase);
        g_autofree char *irq = g_strdup_printf("%u", pc_serial_ports[i].irq);
        g_autofree char *idx = g_strdup_printf("%d", i);
        if (!pc_add_device(m, "isa-serial", errp, "id", label, "iobase", iobase, "irq", irq,
                           "index", idx, NULL)) {
            return false;
        }
    }
    g_autofree char *cpus = g_strdup_printf("%d", cfg->smp);
    g_autofree char *ram = g_strdup_printf("%" G_GUINT64_FORMAT, m->ram_size);
    if (!pc_add_device(m, "fw_cfg", errp, "cpus", cpus, "ram", ram, NULL)) {
        return false;
    }
    for (guint i = 0; i < cfg->devices->len; i++) {
        const char *spec = cfg->devices->pdata[i];
        Device *d = device_create_from_spec(m, spec, errp);
        if (!d) {
            return false;
        }
        if (machine_find_device(m, d->id)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "-device %s: id '%s' is already in use (give it id=NAME)", spec, d->id);
            device_destroy(d);
            return false;
        }
        g_ptr_array_add(m->devices, d);
    }
    return true;
}

static bool pc_load_kernel(Machine *m, MultibootBoot *boot, GError **errp)
{
    const VmConfig *cfg = m->cfg;
    g_auto(GStrv) mods = cfg->initrd ? g_strsplit(cfg->initrd, ",", -1) : g_new0(char *, 1);
    return multiboot_load(&m->mem, cfg->kernel, cfg->append ? cfg->append : cfg->kernel,
                          (const char *const *)mods, g_strv_length(mods), boot, errp);
}

Machine *machine_new(const VmConfig *cfg, EventLoop *loop, GError **errp)
{
    g_assert(bql_locked());
    Machine *m = g_new0(Machine, 1);
    m->cfg = cfg;
    m->loop = loop;
    m->devices = g_ptr_array_new();
    m->exit_bh = bh_new(loop, "machine-exit", machine_exit_bh, m);
    m->pio = address_space_new("io", 0x10000);
    m->mmio = address_space_new("memory", 1ULL << 52);

    m->kvm = kvm_init(cfg->kvm_device, errp);
    if (!m->kvm) {
        goto fail;
    }
    kvm_set_address_spaces(m->kvm, m->pio, m->mmio);
    if (!pc_init_ram(m, errp) || !kvm_create_irqchip(m->kvm, errp) || !pc_init_devices(m, errp)) {
        goto fail;
    }
    MultibootBoot boot;
    if (!pc_load_kernel(m, &boot, errp)) {
        goto fail;
    }
    m->ncpus = cfg->smp;
    m->vcpus = g_new0(KvmVcpu *, m->ncpus);
    m->cpus = g_new0(CpuState *, m->ncpus);
    for (int i = 0; i < m->ncpus; i++) {
        m->vcpus[i] = kvm_vcpu_create(m->kvm, i, m->ncpus, errp);
        if (!m->vcpus[i]) {
            goto fail;
        }
        m->cpus[i] = cpu_new(m->vcpus[i], machine_cpu_event, m);
    }
    /* The boot CPU enters the kernel; the others wait for INIT/SIPI in the
     * in-kernel LAPIC. */
    if (!kvm_vcpu_set_multiboot_entry(m->vcpus[0], boot.entry, boot.mbi_addr, errp)) {
        goto fail;
    }
    return m;

fail:
    machine_destroy(m);
    return NULL;
}

bool machine_start(Machine *m, GError **errp)
{
    for (int i = 0; i < m->ncpus; i++) {
        if (!cpu_start(m->cpus[i], errp)) {
            return false;
        }
    }
    return true;
}

void machine_destroy(Machine *m)
{
    if (!m) {
        return;
    }
    cpus_destroy_all();
    for (int i = 0; i < m->ncpus && m->vcpus; i++) {
        kvm_vcpu_destroy(m->vcpus[i]);
    }
    for (guint i = m->devices->len; i > 0; i--) {
        device_destroy(m->devices->pdata[i - 1]);
    }
    g_ptr_array_free(m->devices, true);
    for (int i = 0; i < KVMLOOP_MAX_SERIAL; i++) {
        chardev_free(m->serial[i]);
    }
    kvm_destroy(m->kvm);
    if (m->ram) {
        munmap(m->ram, m->ram_size);
    }
    /* Views retired by device removal are freed by RCU callbacks. */
    rcu_flush_callbacks();
    address_space_free(m->pio);
    address_space_free(m->mmio);
    bh_delete(m->exit_bh);
    g_free(m->vcpus);
    g_free(m->cpus);
    g_free(m);
}
