/* The pc machine: RAM with the PCI hole, in-kernel irqchip and PIT, legacy devices, vCPUs. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "kvmloop/acpi.h"
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
#include "kvmloop/linux_boot.h"
#include "kvmloop/multiboot.h"
#include "kvmloop/pci.h"
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
    BH *reset_bh;
    int exit_requested;      /* atomic */
    int exit_status;         /* written once, before exit_requested */
    MachineCause exit_cause; /* likewise */
    int reset_cause;         /* atomic MachineCause of the pending reset, or NONE */
    GArray *listeners;       /* MachineListener, BQL */
    BootProtocol boot_protocol;
    const char *host_kind; /* set when the host emulates guest kernel code */
    unsigned resets;       /* completed resets */
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

KvmState *machine_kvm(Machine *m)
{
    return m->kvm;
}

typedef struct MachineListener {
    machine_event_fn fn;
    void *opaque;
} MachineListener;

static const char *const machine_cause_names[MACHINE_CAUSE__MAX] = {
    [MACHINE_CAUSE_NONE] = "none",
    [MACHINE_CAUSE_HOST_ERROR] = "host-error",
    [MACHINE_CAUSE_HOST_QMP_QUIT] = "host-qmp-quit",
    [MACHINE_CAUSE_HOST_QMP_SYSTEM_RESET] = "host-qmp-system-reset",
    [MACHINE_CAUSE_HOST_SIGNAL] = "host-signal",
    [MACHINE_CAUSE_HOST_UI] = "host-ui",
    [MACHINE_CAUSE_GUEST_SHUTDOWN] = "guest-shutdown",
    [MACHINE_CAUSE_GUEST_RESET] = "guest-reset",
    [MACHINE_CAUSE_GUEST_PANIC] = "guest-panic",
};

const char *machine_cause_name(MachineCause cause)
{
    return cause < MACHINE_CAUSE__MAX ? machine_cause_names[cause] : "none";
}

bool machine_cause_is_guest(MachineCause cause)
{
    return cause == MACHINE_CAUSE_GUEST_SHUTDOWN || cause == MACHINE_CAUSE_GUEST_RESET ||
           cause == MACHINE_CAUSE_GUEST_PANIC;
}

void machine_add_listener(Machine *m, machine_event_fn fn, void *opaque)
{
    g_array_append_val(m->listeners, ((MachineListener){.fn = fn, .opaque = opaque}));
}

void machine_remove_listener(Machine *m, machine_event_fn fn, void *opaque)
{
    for (guint i = 0; i < m->listeners->len; i++) {
        MachineListener *l = &g_array_index(m->listeners, MachineListener, i);
        if (l->fn == fn && l->opaque == opaque) {
            g_array_remove_index(m->listeners, i);
            return;
        }
    }
}

static void machine_notify(Machine *m, MachineEventKind kind, MachineCause cause)
{
    for (guint i = 0; i < m->listeners->len; i++) {
        MachineListener l = g_array_index(m->listeners, MachineListener, i);
        l.fn(l.opaque, kind, cause);
    }
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

void machine_request_exit_cause(Machine *m, int status, MachineCause cause)
{
    int expected = 0;
    /* The first request wins; the BH does the stopping on the main loop. */
    if (__atomic_compare_exchange_n(&m->exit_requested, &expected, -1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        m->exit_status = status;
        m->exit_cause = cause;
        __atomic_store_n(&m->exit_requested, 1, __ATOMIC_RELEASE);
        bh_schedule(m->exit_bh);
    }
}

void machine_request_exit(Machine *m, int status)
{
    machine_request_exit_cause(m, status, MACHINE_CAUSE_GUEST_SHUTDOWN);
}

void machine_request_reset_cause(Machine *m, MachineCause cause)
{
    if (m->cfg->no_reboot) {
        machine_request_exit_cause(m, 0, cause);
        return;
    }
    int expected = MACHINE_CAUSE_NONE;
    __atomic_compare_exchange_n(&m->reset_cause, &expected, (int)cause, false, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
    bh_schedule(m->reset_bh);
}

void machine_request_reset(Machine *m)
{
    machine_request_reset_cause(m, MACHINE_CAUSE_GUEST_RESET);
}

unsigned machine_reset_count(Machine *m)
{
    return m->resets;
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
    int status;
    if (machine_exit_requested(m, &status)) {
        machine_notify(m, MACHINE_EVENT_SHUTDOWN, m->exit_cause);
    }
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
        machine_request_exit_cause(m, 2, MACHINE_CAUSE_GUEST_PANIC);
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

void machine_foreach_device(Machine *m, machine_device_fn fn, void *opaque)
{
    for (guint i = 0; i < m->devices->len; i++) {
        fn(m->devices->pdata[i], opaque);
    }
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
    /* The ACPI power-management block (S5 poweroff, reset register, power
     * button), the CMOS RTC and the keyboard controller (reset line). */
    if (!pc_add_device(m, "acpi-pm", errp, NULL) ||
        !pc_add_device(m, "mc146818rtc", errp, "id", "rtc", NULL) ||
        !pc_add_device(m, "i8042", errp, NULL) || !pc_add_device(m, "pci-host", errp, NULL)) {
        return false;
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
    for (guint i = 0; i < cfg->drives->len; i++) {
        GHashTable *props = cfg->drives->pdata[i];
        const char *id = g_hash_table_lookup(props, "id");
        if (machine_find_device(m, id)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "-drive: id '%s' is already in use",
                        id);
            return false;
        }
        Device *d = device_create(m, "virtio-blk-pci", props, errp);
        if (!d) {
            return false;
        }
        g_ptr_array_add(m->devices, d);
    }
    return true;
}

/* ACPI tables in the BIOS area, where a guest that is not told finds the
 * RSDP by scanning; their MADT has the APIC IDs of the -smp topology. */
static bool pc_build_acpi(Machine *m, GError **errp)
{
    AcpiConfig acfg;
    acpi_config_init_pc(&acfg, (unsigned)m->ncpus);
    for (int i = 0; i < m->ncpus; i++) {
        acfg.apic_id[i] = kvm_vcpu_apic_id(m->vcpus[i]);
    }
    acfg.sb_fill = pci_bus_acpi_fill; /* \_SB.PCI0 */
    g_autoptr(GByteArray) blob = acpi_build_tables(&acfg, BOOT_BIOS_ADDR, errp);
    if (!blob) {
        return false;
    }
    uint8_t *dst = guest_mem_ptr(&m->mem, BOOT_BIOS_ADDR, 0x100000 - BOOT_BIOS_ADDR);
    if (!dst || blob->len > 0x100000 - BOOT_BIOS_ADDR) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    "the ACPI tables (%u bytes) do not fit in the BIOS area", blob->len);
        return false;
    }
    memset(dst, 0, 0x100000 - BOOT_BIOS_ADDR);
    memcpy(dst, blob->data, blob->len);
    return true;
}

/* Load the kernel with its protocol and point the boot CPU at it; the
 * others wait for INIT/SIPI in the in-kernel LAPIC. At start and on reset. */
static bool pc_boot(Machine *m, GError **errp)
{
    const VmConfig *cfg = m->cfg;
    KvmVcpu *bsp = m->vcpus[0];

    if (!pc_build_acpi(m, errp)) {
        return false;
    }
    if (m->boot_protocol == BOOT_PROTOCOL_MULTIBOOT) {
        g_auto(GStrv) mods = cfg->initrd ? g_strsplit(cfg->initrd, ",", -1) : g_new0(char *, 1);
        MultibootBoot boot;
        return multiboot_load(&m->mem, cfg->kernel, cfg->append ? cfg->append : cfg->kernel,
                              (const char *const *)mods, g_strv_length(mods), &boot, errp) &&
               kvm_vcpu_set_flat32_entry(bsp, boot.entry, 0x2badb002, boot.mbi_addr, errp);
    }
    LinuxBootArgs args = {
        .kernel = cfg->kernel,
        .initrd = cfg->initrd,
        .cmdline = cfg->append,
        .rsdp_addr = BOOT_BIOS_ADDR,
    };
    LinuxBoot boot;
    if (m->boot_protocol == BOOT_PROTOCOL_BZIMAGE) {
        return linux_load_bzimage(&m->mem, &args, &boot, errp) &&
               kvm_vcpu_set_long_mode_entry(bsp, boot.entry, boot.boot_info, BOOT_PML4_ADDR,
                                            BOOT_GDT_ADDR, errp);
    }
    return linux_load_pvh(&m->mem, &args, &boot, errp) &&
           kvm_vcpu_set_flat32_entry(bsp, (uint32_t)boot.entry, 0, (uint32_t)boot.boot_info, errp);
}

/* A reset: every vCPU stopped and back to its power-on state, devices and
 * interrupt controllers reset, the kernel loaded again. A VM that was paused
 * (QMP stop) stays paused. Main loop, BQL held. */
static void machine_reset_bh(void *opaque)
{
    Machine *m = opaque;
    int status;
    MachineCause cause =
        (MachineCause)__atomic_exchange_n(&m->reset_cause, MACHINE_CAUSE_NONE, __ATOMIC_ACQ_REL);
    if (machine_exit_requested(m, &status)) {
        return;
    }
    g_autoptr(GError) err = NULL;
    bool was_paused = all_vcpus_paused();
    pause_all_vcpus();
    for (guint i = 0; i < m->devices->len; i++) {
        device_reset(m->devices->pdata[i]);
    }
    bool ok = kvm_irqchip_reset(m->kvm, &err);
    for (int i = 0; ok && i < m->ncpus; i++) {
        ok = kvm_vcpu_reset(m->vcpus[i], &err);
    }
    if (!ok || !pc_boot(m, &err)) {
        fprintf(stderr, "kvmloop: reset failed: %s\n", err->message);
        machine_request_exit_cause(m, 2, MACHINE_CAUSE_HOST_ERROR);
        return;
    }
    m->resets++;
    machine_notify(m, MACHINE_EVENT_RESET,
                   cause != MACHINE_CAUSE_NONE ? cause : MACHINE_CAUSE_GUEST_RESET);
    if (!was_paused) {
        resume_all_vcpus();
    }
}

Machine *machine_new(const VmConfig *cfg, EventLoop *loop, GError **errp)
{
    g_assert(bql_locked());
    Machine *m = g_new0(Machine, 1);
    m->cfg = cfg;
    m->loop = loop;
    m->devices = g_ptr_array_new();
    m->listeners = g_array_new(false, false, sizeof(MachineListener));
    m->exit_bh = bh_new(loop, "machine-exit", machine_exit_bh, m);
    m->reset_bh = bh_new(loop, "machine-reset", machine_reset_bh, m);
    m->pio = address_space_new("io", 0x10000);
    m->mmio = address_space_new("memory", 1ULL << 52);

    m->kvm = kvm_init(cfg->kvm_device, errp);
    if (!m->kvm) {
        goto fail;
    }
    kvm_set_address_spaces(m->kvm, m->pio, m->mmio);
    const char *host_kind = NULL;
    bool emulating = kvm_host_emulates_guest_kernel(m->kvm, &host_kind);
    kvm_set_emulation_assists(m->kvm, cfg->emulation_assists > 0 ||
                                          (cfg->emulation_assists < 0 && emulating));
    if (!kernel_probe(cfg->kernel, &m->boot_protocol, errp)) {
        goto fail;
    }
    if (!pc_init_ram(m, errp) || !kvm_create_irqchip(m->kvm, errp) || !pc_init_devices(m, errp)) {
        goto fail;
    }
    m->ncpus = cfg->smp;
    m->vcpus = g_new0(KvmVcpu *, m->ncpus);
    m->cpus = g_new0(CpuState *, m->ncpus);
    for (int i = 0; i < m->ncpus; i++) {
        m->vcpus[i] = kvm_vcpu_create(m->kvm, i, &cfg->cpu, &cfg->topology, errp);
        if (!m->vcpus[i]) {
            goto fail;
        }
        m->cpus[i] = cpu_new(m->vcpus[i], machine_cpu_event, m);
    }
    if (!pc_boot(m, errp)) {
        goto fail;
    }
    m->host_kind = emulating ? host_kind : NULL;
    return m;

fail:
    machine_destroy(m);
    return NULL;
}

/* Ctrl-a x on a serial console: stop as a guest poweroff would. */
static void pc_console_quit(void *opaque)
{
    Machine *m = opaque;
    fprintf(stderr, "kvmloop: terminated by Ctrl-a x\n");
    machine_request_exit_cause(m, 0, MACHINE_CAUSE_HOST_UI);
}

bool machine_start(Machine *m, GError **errp)
{
    /* Console input starts before the vCPUs, which may then call
     * chardev_accept_input() from the UART. */
    for (int i = 0; i < KVMLOOP_MAX_SERIAL; i++) {
        if (m->serial[i]) {
            chardev_set_quit_handler(m->serial[i], pc_console_quit, m);
            if (!chardev_start_input(m->serial[i], m->loop, errp)) {
                return false;
            }
        }
    }
    /* Before the vCPUs run, after every start-up error could have happened
     * (which stays a single line). */
    if (m->host_kind) {
        fprintf(stderr,
                "kvmloop: warning: this host's KVM (%s) has no hardware virtualization: guest "
                "kernel code is instruction-emulated, slowly, and may stop on an instruction "
                "the emulator lacks\n",
                m->host_kind);
    }
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
    bh_delete(m->reset_bh);
    g_array_free(m->listeners, true);
    g_free(m->vcpus);
    g_free(m->cpus);
    g_free(m);
}

bool machine_emulation_assists(Machine *m, int index, uint64_t *out)
{
    if (!kvm_emulation_assists(m->kvm) || index < 0 || index >= m->ncpus) {
        return false;
    }
    kvm_vcpu_assist_counts(m->vcpus[index], out);
    return true;
}
