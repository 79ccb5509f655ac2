/* The test-guest virtio-pci driver library: PCI enumeration, capabilities, MSI-X and split rings. */
#ifndef KVMLOOP_GUEST_VIRTIO_H
#define KVMLOOP_GUEST_VIRTIO_H

#include "guest.h"

/* ---- PCI configuration through 0xCF8/0xCFC, bus 0 function 0 ------------ */

#define PCI_VENDOR_VIRTIO  0x1af4
#define PCI_DEVICE_VIRTIO1 0x1040 /* + virtio device ID */
#define PCI_CAP_ID_VNDR    0x09
#define PCI_CAP_ID_MSIX    0x11

uint32_t pci_cfg_read32(unsigned slot, unsigned off);
uint16_t pci_cfg_read16(unsigned slot, unsigned off);
uint8_t pci_cfg_read8(unsigned slot, unsigned off);
void pci_cfg_write32(unsigned slot, unsigned off, uint32_t v);
void pci_cfg_write16(unsigned slot, unsigned off, uint16_t v);
/* The first slot (from @from) holding @vendor:@device, or -1. */
int pci_find(uint16_t vendor, uint16_t device, unsigned from);
/* The address of 32-bit memory BAR @bar. */
uint32_t pci_bar_addr(unsigned slot, unsigned bar);

/* ---- virtio 1.x over PCI ------------------------------------------------ */

#define VIRTIO_STATUS_ACK         1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_F_VERSION_1        32
#define VRING_DESC_F_NEXT         1
#define VRING_DESC_F_WRITE        2
#define VRING_DESC_F_INDIRECT     4
#define VIRTIO_MSI_NO_VECTOR      0xffff
/* The vector of MSI-X entry v is VIRTIO_GUEST_VECTOR_BASE + v. */
#define VIRTIO_GUEST_VECTOR_BASE 0x40

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vdev {
    int slot;
    uintptr_t common, isr, device, notify;
    uint32_t notify_mult;
    uintptr_t msix_table;
    unsigned msix_vectors;
};

struct vq {
    unsigned index, size;
    volatile struct vring_desc *desc;
    volatile uint16_t *avail; /* flags, idx, ring[size] */
    volatile uint32_t *used;  /* flags | idx << 16, then (id, len) pairs */
    uint16_t avail_idx, last_used;
    uintptr_t notify_addr;
};

/* Room for the rings of a queue of @size entries (page aligned by the
 * caller): descriptors, then the available ring, then the used ring at the
 * next 4 KiB. */
#define VQ_MEM_SIZE(size) (8192 + 16 * (size))

/* Find the @n-th (from 0) device with virtio ID @id, walk its capabilities,
 * and fill @d. Returns 0, or 1 no device, 2 a capability missing. */
int virtio_open(struct vdev *d, uint16_t id, unsigned n);
/* Reset, ACKNOWLEDGE, DRIVER, write @features (VERSION_1 is added) and
 * FEATURES_OK; returns 0, or 3 when the device refused the features. */
int virtio_negotiate(struct vdev *d, uint64_t features);
uint8_t virtio_status(struct vdev *d);
void virtio_set_status(struct vdev *d, uint8_t s);
/* Program MSI-X entry @v to the BSP's LAPIC with vector
 * VIRTIO_GUEST_VECTOR_BASE + v, unmask it, enable MSI-X. */
void virtio_msix_setup(struct vdev *d, unsigned v);
/* Set up queue @index with @size entries in @mem (VQ_MEM_SIZE bytes, 4 KiB
 * aligned) and MSI-X vector @vector; enable it. Returns 0, or 4 when the
 * device offers fewer entries. */
int virtio_queue_setup(struct vdev *d, struct vq *q, unsigned index, unsigned size, void *mem,
                       uint16_t vector);
/* Bring @d up the way every payload driver does: negotiate @features, program
 * MSI-X entries 0 (configuration changes) to @nq (entry q + 1 for queue q),
 * set up queues 0 to @nq - 1 with @size entries each, queue q in @qs[q] with
 * its rings in @mem[q] (VQ_MEM_SIZE(@size) bytes, 4 KiB aligned), then set
 * DRIVER_OK. Returns 0, or virtio_negotiate()'s or virtio_queue_setup()'s
 * code. */
int virtio_start(struct vdev *d, uint64_t features, struct vq *const *qs, void *const *mem,
                 unsigned nq, unsigned size);
/* Wait up to @cycles TSC cycles for the device to set DEVICE_NEEDS_RESET;
 * returns whether it did. */
bool virtio_wait_needs_reset(struct vdev *d, uint64_t cycles);
/* Offer the chain starting at @head and ring the doorbell (16-bit write). */
void vq_submit(struct vq *q, uint16_t head);
void vq_kick(struct vq *q);
/* Wait up to @cycles TSC cycles for a used element; returns its id and
 * stores its length, or -1 on timeout. */
int vq_wait_used(struct vq *q, uint32_t *len, uint64_t cycles);
/* True if the LAPIC has @vector pending (interrupts off: IRR stays set). */
bool lapic_irr_pending(unsigned vector);

#endif
