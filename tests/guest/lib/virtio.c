/* The test-guest virtio-pci driver: enumeration, capability walk, MSI-X, feature negotiation, rings. */
#include "virtio.h"

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA    0xCFC
#define PCI_COMMAND        0x04
#define PCI_CAP_PTR        0x34
#define PCI_BAR0           0x10

/* Common configuration offsets (virtio 1.2, 4.1.4.3). */
#define VC_DFSELECT  0x00
#define VC_GFSELECT  0x08
#define VC_GF        0x0c
#define VC_MSIX      0x10
#define VC_STATUS    0x14
#define VC_Q_SELECT  0x16
#define VC_Q_SIZE    0x18
#define VC_Q_MSIX    0x1a
#define VC_Q_ENABLE  0x1c
#define VC_Q_NOFF    0x1e
#define VC_Q_DESC    0x20
#define VC_Q_AVAIL   0x28
#define VC_Q_USED    0x30

static void pci_select(unsigned slot, unsigned off)
{
    outl(PCI_CONFIG_ADDRESS, 0x80000000u | (slot << 11) | (off & 0xfc));
}

uint32_t pci_cfg_read32(unsigned slot, unsigned off)
{
    pci_select(slot, off);
    return inl(PCI_CONFIG_DATA);
}

uint16_t pci_cfg_read16(unsigned slot, unsigned off)
{
    pci_select(slot, off);
    return inw(PCI_CONFIG_DATA + (off & 2));
}

uint8_t pci_cfg_read8(unsigned slot, unsigned off)
{
    pci_select(slot, off);
    return inb(PCI_CONFIG_DATA + (off & 3));
}

void pci_cfg_write32(unsigned slot, unsigned off, uint32_t v)
{
    pci_select(slot, off);
    outl(PCI_CONFIG_DATA, v);
}

void pci_cfg_write16(unsigned slot, unsigned off, uint16_t v)
{
    pci_select(slot, off);
    outw(PCI_CONFIG_DATA + (off & 2), v);
}

int pci_find(uint16_t vendor, uint16_t device, unsigned from)
{
    for (unsigned slot = from; slot < 32; slot++) {
        uint32_t id = pci_cfg_read32(slot, 0);
        if ((id & 0xffff) == vendor && (id >> 16) == device) {
            return (int)slot;
        }
    }
    return -1;
}

uint32_t pci_bar_addr(unsigned slot, unsigned bar)
{
    return pci_cfg_read32(slot, PCI_BAR0 + 4 * bar) & ~0xfu;
}

int virtio_open(struct vdev *d, uint16_t id, unsigned n)
{
    int slot = -1;
    for (unsigned i = 0; i <= n; i++) {
        slot = pci_find(PCI_VENDOR_VIRTIO, PCI_DEVICE_VIRTIO1 + id, (unsigned)(slot + 1));
        if (slot < 0) {
            return 1;
        }
    }
    memset(d, 0, sizeof(*d));
    d->slot = slot;
    /* Memory decoding and bus mastering on, as a driver's enable would. */
    pci_cfg_write16((unsigned)slot, PCI_COMMAND, 0x7);
    for (unsigned c = pci_cfg_read8((unsigned)slot, PCI_CAP_PTR); c; 
         c = pci_cfg_read8((unsigned)slot, c + 1)) {
        uint8_t cap_id = pci_cfg_read8((unsigned)slot, c);
        if (cap_id == PCI_CAP_ID_MSIX) {
            uint32_t table = pci_cfg_read32((unsigned)slot, c + 4);
            d->msix_table = pci_bar_addr((unsigned)slot, table & 7) + (table & ~7u);
            d->msix_vectors = (pci_cfg_read16((unsigned)slot, c + 2) & 0x7ff) + 1;
            continue;
        }
        if (cap_id != PCI_CAP_ID_VNDR) {
            continue;
        }
        uint8_t type = pci_cfg_read8((unsigned)slot, c + 3);
        uint8_t bar = pci_cfg_read8((unsigned)slot, c + 4);
        uintptr_t addr = pci_bar_addr((unsigned)slot, bar) + pci_cfg_read32((unsigned)slot, c + 8);
        switch (type) {
        case 1:
            d->common = addr;
            break;
        case 2:
            d->notify = addr;
            d->notify_mult = pci_cfg_read32((unsigned)slot, c + 16);
            break;
        case 3:
            d->isr = addr;
            break;
        case 4:
            d->device = addr;
            break;
        }
    }
    return d->common && d->notify && d->isr && d->msix_table ? 0 : 2;
}

uint8_t virtio_status(struct vdev *d)
{
    return mmio_read8(d->common + VC_STATUS);
}

void virtio_set_status(struct vdev *d, uint8_t s)
{
    mmio_write8(d->common + VC_STATUS, s);
}

int virtio_negotiate(struct vdev *d, uint64_t features)
{
    features |= 1ULL << VIRTIO_F_VERSION_1;
    virtio_set_status(d, 0);
    virtio_set_status(d, VIRTIO_STATUS_ACK);
    virtio_set_status(d, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
    mmio_write32(d->common + VC_GFSELECT, 0);
    mmio_write32(d->common + VC_GF, (uint32_t)features);
    mmio_write32(d->common + VC_GFSELECT, 1);
    mmio_write32(d->common + VC_GF, (uint32_t)(features >> 32));
    virtio_set_status(d, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return (virtio_status(d) & VIRTIO_STATUS_FEATURES_OK) ? 0 : 3;
}

void virtio_msix_setup(struct vdev *d, unsigned v)
{
    uintptr_t e = d->msix_table + 16 * v;
    mmio_write32(e + 0, APIC_DEFAULT_PHYS_BASE); /* destination APIC ID 0 */
    mmio_write32(e + 4, 0);
    mmio_write32(e + 8, VIRTIO_GUEST_VECTOR_BASE + v); /* fixed, edge */
    mmio_write32(e + 12, 0);                            /* unmasked */
    for (unsigned c = pci_cfg_read8((unsigned)d->slot, PCI_CAP_PTR); c;
         c = pci_cfg_read8((unsigned)d->slot, c + 1)) {
        if (pci_cfg_read8((unsigned)d->slot, c) == PCI_CAP_ID_MSIX) {
            uint16_t ctl = pci_cfg_read16((unsigned)d->slot, c + 2);
            pci_cfg_write16((unsigned)d->slot, c + 2, (uint16_t)((ctl & ~0x4000) | 0x8000));
        }
    }
}

int virtio_queue_setup(struct vdev *d, struct vq *q, unsigned index, unsigned size, void *mem,
                       uint16_t vector)
{
    uintptr_t base = (uintptr_t)mem;
    mmio_write16(d->common + VC_Q_SELECT, (uint16_t)index);
    if (mmio_read16(d->common + VC_Q_SIZE) < size) {
        return 4;
    }
    memset(mem, 0, VQ_MEM_SIZE(size));
    q->index = index;
    q->size = size;
    q->desc = (volatile struct vring_desc *)base;
    q->avail = (volatile uint16_t *)(base + 16 * size);
    q->used = (volatile uint32_t *)((base + 16 * size + 6 + 2 * size + 4095) & ~4095u);
    q->avail_idx = 0;
    q->last_used = 0;
    q->notify_addr = d->notify + d->notify_mult * mmio_read16(d->common + VC_Q_NOFF);
    mmio_write16(d->common + VC_Q_SIZE, (uint16_t)size);
    mmio_write16(d->common + VC_Q_MSIX, vector);
    mmio_write64(d->common + VC_Q_DESC, (uintptr_t)q->desc);
    mmio_write64(d->common + VC_Q_AVAIL, (uintptr_t)q->avail);
    mmio_write64(d->common + VC_Q_USED, (uintptr_t)q->used);
    mmio_write16(d->common + VC_Q_ENABLE, 1);
    return 0;
}

int virtio_start(struct vdev *d, uint64_t features, struct vq *const *qs, void *const *mem,
                 unsigned nq, unsigned size)
{
    int r = virtio_negotiate(d, features);
    if (r) {
        return r;
    }
    for (unsigned v = 0; v <= nq; v++) {
        virtio_msix_setup(d, v);
    }
    mmio_write16(d->common + VC_MSIX, 0);
    for (unsigned q = 0; q < nq; q++) {
        if ((r = virtio_queue_setup(d, qs[q], q, size, mem[q], (uint16_t)(q + 1)))) {
            return r;
        }
    }
    virtio_set_status(d, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                             VIRTIO_STATUS_DRIVER_OK);
    return 0;
}

bool virtio_wait_needs_reset(struct vdev *d, uint64_t cycles)
{
    uint64_t t0 = rdtsc();
    while (!(virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET)) {
        if (rdtsc() - t0 > cycles) {
            return false;
        }
        cpu_pause();
    }
    return true;
}

void vq_submit(struct vq *q, uint16_t head)
{
    q->avail[2 + q->avail_idx % q->size] = head;
    wmb(); /* the ring entry before the index; partner: the device's acquire of idx */
    q->avail_idx++;
    q->avail[1] = q->avail_idx;
}

void vq_kick(struct vq *q)
{
    mb(); /* the index before the doorbell */
    mmio_write16(q->notify_addr, (uint16_t)q->index);
}

int vq_wait_used(struct vq *q, uint32_t *len, uint64_t cycles)
{
    uint64_t start = rdtsc();
    while ((uint16_t)(q->used[0] >> 16) == q->last_used) {
        if (rdtsc() - start > cycles) {
            return -1;
        }
        cpu_pause();
    }
    rmb(); /* the index before the element; partner: the device's release */
    unsigned slot = q->last_used % q->size;
    int id = (int)q->used[1 + 2 * slot];
    *len = q->used[2 + 2 * slot];
    q->last_used++;
    return id;
}

bool lapic_irr_pending(unsigned vector)
{
    return (lapic_read(0x200 + 0x10 * (vector / 32)) >> (vector % 32)) & 1;
}
