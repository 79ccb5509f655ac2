/* The virtio 1.x modern PCI transport: capabilities, common configuration, doorbells and
 * interrupts. */
#include "kvmloop/virtio.h"
#include "kvmloop/error.h"

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "kvmloop/bql.h"
#include "kvmloop/eventfd.h"
#include "kvmloop/iothread.h"
#include "kvmloop/machine.h"

/*
 * Layout: BAR 1 holds the MSI-X table (0x000) and PBA (0x800); BAR 4 holds
 * the virtio structures, one page each, so that a driver maps them apart.
 * Queue q's doorbell is at VIRTIO_NOTIFY_OFFSET + 4 * q; with a multiplier
 * of 4 every queue has its own address and its own ioeventfd.
 */
#define VIRTIO_PCI_VENDOR      0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_MSIX_BAR        1
#define VIRTIO_MSIX_BAR_SIZE   0x1000
#define VIRTIO_MSIX_PBA        0x800
#define VIRTIO_CAP_BAR         4
#define VIRTIO_CAP_BAR_SIZE    0x4000
#define VIRTIO_COMMON_OFFSET   0x0000
#define VIRTIO_COMMON_SIZE     0x38
#define VIRTIO_ISR_OFFSET      0x1000
#define VIRTIO_DEVICE_OFFSET   0x2000
#define VIRTIO_NOTIFY_OFFSET   0x3000
#define VIRTIO_NOTIFY_MULT     4
#define VIRTIO_ISR_QUEUE       0x1
#define VIRTIO_ISR_CONFIG      0x2

static uint64_t virtio_device_features(const VirtioDevice *vd)
{
    return vd->ops->features | (1ULL << VIRTIO_F_VERSION_1);
}

bool virtio_running(const VirtioDevice *vd)
{
    return (vd->status & VIRTIO_CONFIG_S_DRIVER_OK) && !vd->broken;
}

static void virtio_stat_add(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* ---- Interrupts --------------------------------------------------------- */

static void virtio_raise(VirtioDevice *vd, uint16_t vector, uint8_t isr_bit)
{
    virtio_stat_add(&vd->stats.interrupts);
    if (pci_msix_enabled(&vd->pci)) {
        if (vector != VIRTIO_NO_VECTOR) {
            pci_msix_notify(&vd->pci, vector);
        }
        return;
    }
    vd->isr |= isr_bit;
    pci_set_intx(&vd->pci, 1);
}

void virtio_notify(VirtioDevice *vd, unsigned q)
{
    VirtQueue *vq = &vd->vq[q];
    if (virtqueue_needs_notify(vq)) {
        virtio_raise(vd, vq->msix_vector, VIRTIO_ISR_QUEUE);
    }
}

void virtio_error(VirtioDevice *vd, const char *fmt, ...)
{
    if (vd->broken) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "kvmloop: %s: device broken until the driver resets it: %s\n", vd->dev.id, msg);
    vd->broken = true;
    vd->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    virtio_stat_add(&vd->stats.broken);
    if (vd->status & VIRTIO_CONFIG_S_DRIVER_OK) {
        vd->config_generation++;
        virtio_raise(vd, vd->config_vector, VIRTIO_ISR_CONFIG);
    }
}

/* ---- Reset -------------------------------------------------------------- */

/* 4.1.4.3.2: writing 0 to device_status resets the device. Device lock held. */
static void virtio_reset_locked(VirtioDevice *vd)
{
    if (vd->ops->reset) {
        vd->ops->reset(vd);
    }
    vd->status = 0;
    vd->broken = false;
    vd->isr = 0;
    vd->driver_features = 0;
    vd->device_feature_select = vd->driver_feature_select = 0;
    vd->config_vector = VIRTIO_NO_VECTOR;
    vd->queue_select = 0;
    for (unsigned q = 0; q < vd->ops->num_queues; q++) {
        virtqueue_init(&vd->vq[q], vd->ops->queue_max);
    }
    pci_set_intx(&vd->pci, 0);
}

/* ---- Common configuration (4.1.4.3) -------------------------------------- */

static VirtQueue *virtio_selected(VirtioDevice *vd)
{
    return vd->queue_select < vd->ops->num_queues ? &vd->vq[vd->queue_select] : NULL;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t virtio_common_read(VirtioDevice *vd, uint64_t offset, unsigned size)
{
    uint8_t c[VIRTIO_COMMON_SIZE] = {0};
    VirtQueue *vq = virtio_selected(vd);
    uint64_t feats = virtio_device_features(vd);

    put_le(c + VIRTIO_PCI_COMMON_DFSELECT, vd->device_feature_select, 4);
    put_le(c + VIRTIO_PCI_COMMON_DF,
           vd->device_feature_select < 2 ? feats >> (32 * vd->device_feature_select) : 0, 4);
    put_le(c + VIRTIO_PCI_COMMON_GFSELECT, vd->driver_feature_select, 4);
    put_le(c + VIRTIO_PCI_COMMON_GF,
           vd->driver_feature_select < 2 ? vd->driver_features >> (32 * vd->driver_feature_select)
                                         : 0,
           4);
    put_le(c + VIRTIO_PCI_COMMON_MSIX, vd->config_vector, 2);
    put_le(c + VIRTIO_PCI_COMMON_NUMQ, vd->ops->num_queues, 2);
    c[VIRTIO_PCI_COMMON_STATUS] = vd->status;
    c[VIRTIO_PCI_COMMON_CFGGENERATION] = vd->config_generation;
    put_le(c + VIRTIO_PCI_COMMON_Q_SELECT, vd->queue_select, 2);
    if (vq) {
        put_le(c + VIRTIO_PCI_COMMON_Q_SIZE, vq->size, 2);
        put_le(c + VIRTIO_PCI_COMMON_Q_MSIX, vq->msix_vector, 2);
        put_le(c + VIRTIO_PCI_COMMON_Q_ENABLE, vq->enabled, 2);
        put_le(c + VIRTIO_PCI_COMMON_Q_NOFF, vd->queue_select, 2);
        put_le(c + VIRTIO_PCI_COMMON_Q_DESCLO, vq->desc, 8);
        put_le(c + VIRTIO_PCI_COMMON_Q_AVAILLO, vq->avail, 8);
        put_le(c + VIRTIO_PCI_COMMON_Q_USEDLO, vq->used, 8);
    }
    if (offset + size > sizeof(c)) {
        return ~0ULL;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)c[offset + i] << (8 * i);
    }
    return v;
}

static uint16_t virtio_valid_vector(VirtioDevice *vd, uint64_t v)
{
    return v < vd->pci.msix_vectors ? (uint16_t)v : VIRTIO_NO_VECTOR;
}

/* FEATURES_OK only for a subset of what we offer that includes VERSION_1
 * (a legacy driver cannot drive this transport). */
static void virtio_set_status(VirtioDevice *vd, uint8_t v)
{
    if (v == 0) {
        virtio_reset_locked(vd);
        return;
    }
    if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(vd->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
        uint64_t f = vd->driver_features;
        if ((f & ~virtio_device_features(vd)) || !(f & (1ULL << VIRTIO_F_VERSION_1))) {
            v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
        }
    }
    bool starting = (v & VIRTIO_CONFIG_S_DRIVER_OK) && !(vd->status & VIRTIO_CONFIG_S_DRIVER_OK);
    vd->status = (uint8_t)(v | (vd->broken ? VIRTIO_CONFIG_S_NEEDS_RESET : 0));
    if (starting) {
        /* Buffers made available before DRIVER_OK are served now. */
        for (unsigned q = 0; q < vd->ops->num_queues; q++) {
            if (vd->vq[q].enabled) {
                event_notifier_set(&vd->slot[q].notifier);
            }
        }
    }
}

static void virtio_queue_write(VirtioDevice *vd, uint64_t offset, uint64_t v, unsigned size)
{
    VirtQueue *vq = virtio_selected(vd);
    if (!vq) {
        return;
    }
    if (offset == VIRTIO_PCI_COMMON_Q_MSIX && size == 2) {
        vq->msix_vector = virtio_valid_vector(vd, v);
        return;
    }
    if (vq->enabled) {
        return; /* 4.1.4.3.2: the rest is fixed once the queue is enabled */
    }
    gpa_t *addr = NULL;
    unsigned base = 0;
    switch (offset & ~7ULL) {
    case VIRTIO_PCI_COMMON_Q_DESCLO:
        addr = &vq->desc;
        base = VIRTIO_PCI_COMMON_Q_DESCLO;
        break;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
        addr = &vq->avail;
        base = VIRTIO_PCI_COMMON_Q_AVAILLO;
        break;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
        addr = &vq->used;
        base = VIRTIO_PCI_COMMON_Q_USEDLO;
        break;
    }
    if (addr && size == 4) {
        unsigned shift = offset == base ? 0 : 32;
        *addr = (*addr & ~(0xffffffffULL << shift)) | (v << shift);
    } else if (offset == VIRTIO_PCI_COMMON_Q_SIZE && size == 2) {
        /* Checked at enable: a size the device cannot take breaks it then. */
        vq->size = (uint16_t)v;
    } else if (offset == VIRTIO_PCI_COMMON_Q_ENABLE && size == 2 && v == 1) {
        if (vq->size > vd->ops->queue_max ||
            virtqueue_enable(vq, machine_guest_mem(vd->machine)) < 0) {
            virtio_error(vd,
                         "queue %u: size %u or rings at 0x%" G_GINT64_MODIFIER
                         "x/0x%" G_GINT64_MODIFIER "x/0x%" G_GINT64_MODIFIER "x rejected",
                         vd->queue_select, vq->size, vq->desc, vq->avail, vq->used);
        }
    }
}

static void virtio_common_write(VirtioDevice *vd, uint64_t offset, uint64_t v, unsigned size)
{
    switch (offset) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        if (size == 4) {
            vd->device_feature_select = (uint32_t)v;
        }
        return;
    case VIRTIO_PCI_COMMON_GFSELECT:
        if (size == 4) {
            vd->driver_feature_select = (uint32_t)v;
        }
        return;
    case VIRTIO_PCI_COMMON_GF:
        if (size == 4 && vd->driver_feature_select < 2 &&
            !(vd->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
            unsigned shift = 32 * vd->driver_feature_select;
            vd->driver_features = (vd->driver_features & ~(0xffffffffULL << shift)) | (v << shift);
        }
        return;
    case VIRTIO_PCI_COMMON_MSIX:
        if (size == 2) {
            vd->config_vector = virtio_valid_vector(vd, v);
        }
        return;
    case VIRTIO_PCI_COMMON_STATUS:
        if (size == 1) {
            virtio_set_status(vd, (uint8_t)v);
        }
        return;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        if (size == 2) {
            vd->queue_select = (uint16_t)v;
        }
        return;
    default:
        virtio_queue_write(vd, offset, v, size);
    }
}

/* ---- BAR 4: the virtio structures --------------------------------------- */

static uint64_t virtio_bar_read(void *opaque, uint64_t offset, unsigned size)
{
    VirtioDevice *vd = opaque;

    if (offset < VIRTIO_ISR_OFFSET) {
        return virtio_common_read(vd, offset, size);
    }
    if (offset == VIRTIO_ISR_OFFSET && size == 1) {
        /* 4.1.4.5: reading clears the ISR and de-asserts INTx. */
        uint8_t v = vd->isr;
        vd->isr = 0;
        pci_set_intx(&vd->pci, 0);
        return v;
    }
    if (offset >= VIRTIO_DEVICE_OFFSET &&
        offset + size <= VIRTIO_DEVICE_OFFSET + vd->ops->config_size) {
        uint64_t v = 0;
        for (unsigned i = 0; i < size; i++) {
            v |= (uint64_t)vd->config[offset - VIRTIO_DEVICE_OFFSET + i] << (8 * i);
        }
        return v;
    }
    return offset >= VIRTIO_NOTIFY_OFFSET ? 0 : ~0ULL;
}

static void virtio_bar_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    VirtioDevice *vd = opaque;

    if (offset < VIRTIO_ISR_OFFSET) {
        virtio_common_write(vd, offset, value, size);
    } else if (offset >= VIRTIO_NOTIFY_OFFSET) {
        /* A doorbell KVM did not take (no ioeventfd, or another width):
         * hand it to the data plane the same way. */
        uint64_t q = (offset - VIRTIO_NOTIFY_OFFSET) / VIRTIO_NOTIFY_MULT;
        if (q < vd->ops->num_queues) {
            event_notifier_set(&vd->slot[q].notifier);
        }
    } else if (offset >= VIRTIO_DEVICE_OFFSET &&
               offset + size <= VIRTIO_DEVICE_OFFSET + vd->ops->config_size &&
               vd->ops->config_write) {
        for (unsigned i = 0; i < size; i++) {
            vd->config[offset - VIRTIO_DEVICE_OFFSET + i] = (uint8_t)(value >> (8 * i));
        }
        vd->ops->config_write(vd, (uint32_t)(offset - VIRTIO_DEVICE_OFFSET), size);
    }
}

static const MemoryRegionOps virtio_bar_ops = {
    .read = virtio_bar_read,
    .write = virtio_bar_write,
    .min_access_size = 1,
    .max_access_size = 4,
};

static uint64_t virtio_msix_read(void *opaque, uint64_t offset, unsigned size)
{
    VirtioDevice *vd = opaque;
    if (size != 4) {
        return ~0ULL;
    }
    return offset < VIRTIO_MSIX_PBA ? pci_msix_table_read(&vd->pci, offset)
                                    : pci_msix_pba_read(&vd->pci, offset - VIRTIO_MSIX_PBA);
}

static void virtio_msix_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    VirtioDevice *vd = opaque;
    if (size == 4 && offset < VIRTIO_MSIX_PBA) {
        pci_msix_table_write(&vd->pci, offset, (uint32_t)value);
    }
}

static const MemoryRegionOps virtio_msix_ops = {
    .read = virtio_msix_read,
    .write = virtio_msix_write,
    .min_access_size = 4,
    .max_access_size = 4,
};

/* ---- Doorbells ---------------------------------------------------------- */

/* A queue's eventfd is readable: on the iothread without any lock, or on
 * the main loop under the BQL. The device lock makes the service atomic
 * against the vCPUs' register accesses (reset above all). */
static void virtio_queue_event(void *opaque, int fd, unsigned revents)
{
    VirtioQueueSlot *s = opaque;
    VirtioDevice *vd = s->vd;

    if (!event_notifier_test_and_clear(&s->notifier)) {
        return;
    }
    virtio_stat_add(&vd->stats.notifies);
    if (bql_locked()) {
        virtio_stat_add(&vd->stats.notifies_bql);
    }
    klock_lock(&vd->dev.lock);
    if (virtio_running(vd) && vd->vq[s->index].enabled) {
        vd->ops->handle_queue(vd, s->index);
    }
    klock_unlock(&vd->dev.lock);
}

/* BAR 4 moved: the ioeventfds follow it. BQL and device lock held. */
static void virtio_bar_moved(PciDevice *d, unsigned idx, gpa_t addr)
{
    VirtioDevice *vd = (VirtioDevice *)((uint8_t *)d - offsetof(VirtioDevice, pci));
    AddressSpace *mmio = machine_mmio(vd->machine);

    if (idx != VIRTIO_CAP_BAR) {
        return;
    }
    for (unsigned q = 0; q < vd->ops->num_queues; q++) {
        VirtioQueueSlot *s = &vd->slot[q];
        if (s->ioeventfd) {
            machine_del_ioeventfd(vd->machine, mmio, s->ioeventfd_addr, 2, false, 0, &s->notifier);
            s->ioeventfd = false;
        }
        if (!addr) {
            continue;
        }
        gpa_t bell = addr + VIRTIO_NOTIFY_OFFSET + VIRTIO_NOTIFY_MULT * q;
        g_autoptr(GError) err = NULL;
        if (machine_add_ioeventfd(vd->machine, mmio, bell, 2, false, 0, &s->notifier, &err)) {
            s->ioeventfd = true;
            s->ioeventfd_addr = bell;
        } else {
            g_warning_once("%s: doorbells exit to kvmloop: %s", vd->dev.id, err->message);
        }
    }
}

static void virtio_watch(void *opaque)
{
    VirtioDevice *vd = opaque;
    for (unsigned q = 0; q < vd->ops->num_queues; q++) {
        VirtioQueueSlot *s = &vd->slot[q];
        s->watch = event_loop_add_fd(vd->loop, event_notifier_get_fd(&s->notifier), EVENT_IN,
                                     "virtio-queue", virtio_queue_event, s);
    }
}

static void virtio_unwatch(void *opaque)
{
    VirtioDevice *vd = opaque;
    for (unsigned q = 0; q < vd->ops->num_queues; q++) {
        if (vd->slot[q].watch) {
            event_watch_remove(vd->slot[q].watch);
            vd->slot[q].watch = NULL;
        }
    }
}

/* ---- Capabilities and realize ------------------------------------------- */

static void virtio_add_cap(VirtioDevice *vd, uint8_t type, uint32_t offset, uint32_t length,
                           bool notify)
{
    uint8_t len = notify ? sizeof(struct virtio_pci_notify_cap) : sizeof(struct virtio_pci_cap);
    uint8_t at = pci_device_add_cap(&vd->pci, PCI_CAP_ID_VNDR, len);
    uint8_t *c = vd->pci.config + at;
    g_assert(at);
    c[offsetof(struct virtio_pci_cap, cap_len)] = len;
    c[offsetof(struct virtio_pci_cap, cfg_type)] = type;
    c[offsetof(struct virtio_pci_cap, bar)] = VIRTIO_CAP_BAR;
    put_le(c + offsetof(struct virtio_pci_cap, offset), offset, 4);
    put_le(c + offsetof(struct virtio_pci_cap, length), length, 4);
    if (notify) {
        put_le(c + offsetof(struct virtio_pci_notify_cap, notify_off_multiplier),
               VIRTIO_NOTIFY_MULT, 4);
    }
}

static bool virtio_pci_props(VirtioDevice *vd, GError **errp)
{
    const char *io = device_prop_str(&vd->dev, "iothread", NULL);
    vd->loop = machine_main_loop(vd->machine);
    if (!io) {
        return true;
    }
    vd->iothread = iothread_find(io);
    if (!vd->iothread) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "%s: there is no iothread '%s' (add -object iothread,id=%s)", vd->dev.id, io,
                    io);
        return false;
    }
    vd->loop = iothread_loop(vd->iothread);
    return true;
}

bool virtio_pci_realize(VirtioDevice *vd, Machine *m, const VirtioDeviceOps *ops, GError **errp)
{
    PciBus *bus = machine_pci_bus(m);

    vd->machine = m;
    vd->ops = ops;
    g_assert(ops->num_queues <= VIRTIO_MAX_QUEUES && ops->config_size <= VIRTIO_CONFIG_MAX);
    if (!bus) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s: the machine has no PCI bus",
                    vd->dev.id);
        return false;
    }
    if (!virtio_pci_props(vd, errp)) {
        return false;
    }
    for (unsigned q = 0; q < ops->num_queues; q++) {
        VirtioQueueSlot *s = &vd->slot[q];
        s->vd = vd;
        s->index = q;
        int r = event_notifier_init(&s->notifier, false);
        if (r < 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "%s: eventfd failed: %s",
                        vd->dev.id, g_strerror(-r));
            return false;
        }
        s->has_notifier = true;
    }
    pci_device_init(&vd->pci, vd->dev.id, &vd->dev.lock, VIRTIO_PCI_VENDOR,
                    VIRTIO_PCI_DEVICE_BASE + ops->device_id, 1, ops->pci_class, VIRTIO_PCI_VENDOR,
                    VIRTIO_PCI_DEVICE_BASE + ops->device_id);
    vd->pci.bar_moved = virtio_bar_moved;
    pci_device_set_bar(&vd->pci, VIRTIO_MSIX_BAR, VIRTIO_MSIX_BAR_SIZE, false, &virtio_msix_ops,
                       vd);
    pci_device_set_bar(&vd->pci, VIRTIO_CAP_BAR, VIRTIO_CAP_BAR_SIZE, false, &virtio_bar_ops, vd);
    virtio_add_cap(vd, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_COMMON_OFFSET, VIRTIO_COMMON_SIZE, false);
    virtio_add_cap(vd, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_ISR_OFFSET, 1, false);
    if (ops->config_size) {
        virtio_add_cap(vd, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_DEVICE_OFFSET, ops->config_size,
                       false);
    }
    virtio_add_cap(vd, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_NOTIFY_OFFSET,
                   VIRTIO_NOTIFY_MULT * ops->num_queues, true);
    if (!pci_msix_init(&vd->pci, ops->num_queues + 1, VIRTIO_MSIX_BAR, 0, VIRTIO_MSIX_PBA, errp)) {
        return false;
    }
    klock_lock(&vd->dev.lock);
    virtio_reset_locked(vd);
    klock_unlock(&vd->dev.lock);
    if (vd->iothread) {
        iothread_run_sync(vd->iothread, virtio_watch, vd);
    } else {
        virtio_watch(vd);
    }
    return pci_bus_add(bus, &vd->pci, errp);
}

/* Also after a realize that failed half-way: KVM stops signalling first
 * (the BARs go, and the ioeventfds with them), then the loop stops watching,
 * then the eventfds close. */
void virtio_pci_unrealize(VirtioDevice *vd)
{
    if (vd->pci.bus) {
        pci_bus_remove(vd->pci.bus, &vd->pci);
    }
    if (vd->iothread) {
        iothread_run_sync(vd->iothread, virtio_unwatch, vd);
    } else {
        virtio_unwatch(vd);
    }
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        if (vd->slot[q].has_notifier) {
            event_notifier_cleanup(&vd->slot[q].notifier);
            vd->slot[q].has_notifier = false;
        }
    }
    pci_device_cleanup(&vd->pci);
}

void virtio_pci_reset(VirtioDevice *vd)
{
    klock_lock(&vd->dev.lock);
    virtio_reset_locked(vd);
    pci_device_reset(&vd->pci);
    klock_unlock(&vd->dev.lock);
}

VirtioStats virtio_device_stats(Device *dev)
{
    VirtioDevice *vd = (VirtioDevice *)dev;
    return (VirtioStats){
        .notifies = __atomic_load_n(&vd->stats.notifies, __ATOMIC_RELAXED),
        .notifies_bql = __atomic_load_n(&vd->stats.notifies_bql, __ATOMIC_RELAXED),
        .interrupts = __atomic_load_n(&vd->stats.interrupts, __ATOMIC_RELAXED),
        .broken = __atomic_load_n(&vd->stats.broken, __ATOMIC_RELAXED),
    };
}

bool virtio_device_broken(Device *dev)
{
    VirtioDevice *vd = (VirtioDevice *)dev;
    klock_lock(&dev->lock);
    bool b = vd->broken;
    klock_unlock(&dev->lock);
    return b;
}
