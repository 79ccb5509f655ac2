/* virtio 1.x: split virtqueues checked against guest memory, and devices on the modern PCI
 * transport. */
#ifndef KVMLOOP_VIRTIO_H
#define KVMLOOP_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <glib.h>
#include "kvmloop/device.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/guest_mem.h"
#include "kvmloop/pci.h"
#include "kvmloop/types.h"

/* The largest queue kvmloop offers; a chain is at most this long. */
#define VIRTQUEUE_MAX_SIZE 256
#define VIRTIO_NO_VECTOR   0xffff

/* ---- Split virtqueue (virtio 1.2, 2.7) ----------------------------------- */

/*
 * The device side of one split virtqueue. Nothing the driver writes in guest
 * memory is trusted: every index is checked against the size, every buffer
 * against RAM, every chain against loops, and every descriptor is copied out
 * of guest memory before it is looked at, so a driver that rewrites the ring
 * under the device's feet changes nothing but its own data. A violation makes
 * the call fail with -EINVAL; the caller marks the device broken.
 *
 * Not thread-safe: one thread (the device's data plane, holding the device
 * lock) uses a queue at a time.
 */
typedef struct VirtQueue {
    /* Driver-written through the transport while the queue is disabled. */
    uint16_t size;
    uint16_t msix_vector;
    gpa_t desc, avail, used;
    bool enabled;
    /* Valid while enabled: host views of the rings, checked once. */
    uint8_t *vdesc;
    uint8_t *vavail;
    uint8_t *vused;
    uint16_t last_avail;
    uint16_t used_idx;
    unsigned inflight;
    uint8_t busy[VIRTQUEUE_MAX_SIZE]; /* heads popped and not pushed */
} VirtQueue;

/* One popped chain: the device-readable buffers first, then the writable. */
typedef struct VirtQueueElement {
    uint16_t head;
    unsigned out_num, in_num;
    uint64_t out_len, in_len;
    struct iovec iov[]; /* out_num + in_num */
} VirtQueueElement;

/* Power-on state, disabled, size @max. */
void virtqueue_init(VirtQueue *vq, uint16_t max);
/* Check the rings the driver configured (size a power of two up to
 * VIRTQUEUE_MAX_SIZE, alignment, all three inside RAM) and enable the queue.
 * Returns 0 or -EINVAL. */
int virtqueue_enable(VirtQueue *vq, const GuestMem *gm);
/* Pop the next available chain into *@out (free with g_free()). Returns 1,
 * 0 when nothing is available, or -EINVAL for a violation: an available
 * index more than a ring ahead, a head or next index out of range, a chain
 * longer than the ring (a loop), a buffer outside RAM, a readable buffer
 * after a writable one, an indirect descriptor (not negotiated), or a head
 * that is already in flight. */
int virtqueue_pop(VirtQueue *vq, const GuestMem *gm, VirtQueueElement **out);
/* Return @e's chain to the driver with @len bytes written. -EINVAL if its
 * head is not in flight (the queue was reset since). */
int virtqueue_push(VirtQueue *vq, const VirtQueueElement *e, uint32_t len);
/* Whether the driver wants an interrupt now (VRING_AVAIL_F_NO_INTERRUPT). */
bool virtqueue_needs_notify(VirtQueue *vq);
/* Copy up to @len bytes into / out of an element's writable / readable
 * buffers, starting @skip bytes in. Returns the count copied. */
size_t virtqueue_elem_to_guest(VirtQueueElement *e, size_t skip, const void *buf, size_t len);
size_t virtqueue_elem_from_guest(const VirtQueueElement *e, size_t skip, void *buf, size_t len);

/* ---- Devices on the modern PCI transport (virtio 1.2, 4.1) --------------- */

typedef struct VirtioDevice VirtioDevice;
typedef struct IOThread IOThread;

typedef struct VirtioDeviceOps {
    uint16_t device_id;   /* VIRTIO_ID_* */
    uint32_t pci_class;   /* 24-bit class code */
    uint64_t features;    /* device features; VIRTIO_F_VERSION_1 is added */
    unsigned num_queues;  /* at most VIRTIO_MAX_QUEUES */
    uint16_t queue_max;   /* power of two up to VIRTQUEUE_MAX_SIZE */
    uint32_t config_size; /* bytes of VirtioDevice.config the driver sees */
    /* Serve queue @q: the driver notified it. Data-plane thread, device lock held. */
    void (*handle_queue)(VirtioDevice *vd, unsigned q);
    /* A driver write to the device configuration, after it was stored. Device lock held. */
    void (*config_write)(VirtioDevice *vd, uint32_t offset, unsigned size);
    /* The driver reset the device (or the machine did): drop device state.
     * Device lock held. */
    void (*reset)(VirtioDevice *vd);
} VirtioDeviceOps;

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_CONFIG_MAX 64

typedef struct VirtioQueueSlot {
    VirtioDevice *vd;
    unsigned index;
    EventNotifier notifier; /* doorbell: ioeventfd, or set by the notify region */
    bool has_notifier;
    bool ioeventfd; /* bound at ioeventfd_addr */
    gpa_t ioeventfd_addr;
    EventWatch *watch;
} VirtioQueueSlot;

typedef struct VirtioStats {
    uint64_t notifies;     /* doorbells served */
    uint64_t notifies_bql; /* of which with the BQL held */
    uint64_t interrupts;   /* MSI-X messages or INTx assertions */
    uint64_t broken;       /* times the device was marked broken */
} VirtioStats;

/*
 * The transport state every virtio device model embeds first. All of it is
 * guarded by dev.lock: the BARs' regions use it (LOCK_POLICY_DEVICE), the
 * PCI config space takes it, and the data plane (the main loop or the
 * device's iothread) holds it while it serves a queue. See
 * docs/architecture.md, "virtio data planes".
 */
struct VirtioDevice {
    Device dev;
    PciDevice pci;
    const VirtioDeviceOps *ops;
    Machine *machine;
    IOThread *iothread;
    EventLoop *loop; /* the data plane's loop */
    uint8_t status;
    bool broken;
    uint8_t isr;
    uint8_t config_generation;
    uint32_t device_feature_select, driver_feature_select;
    uint64_t driver_features;
    uint16_t config_vector;
    uint16_t queue_select;
    VirtQueue vq[VIRTIO_MAX_QUEUES];
    VirtioQueueSlot slot[VIRTIO_MAX_QUEUES];
    uint8_t config[VIRTIO_CONFIG_MAX];
    VirtioStats stats; /* atomic */
};

/* Realize the transport for @vd with @ops: PCI function on the machine's
 * bus, capabilities, MSI-X, doorbells watched by the main loop or the
 * iothread named by the "iothread" property. Main thread, BQL held. */
bool virtio_pci_realize(VirtioDevice *vd, Machine *m, const VirtioDeviceOps *ops, GError **errp);
void virtio_pci_unrealize(VirtioDevice *vd);
/* Machine reset. Main thread, BQL held. */
void virtio_pci_reset(VirtioDevice *vd);
/* The driver broke the rules: set DEVICE_NEEDS_RESET, stop serving queues
 * until the driver resets the device, and log one line. Device lock held. */
void virtio_error(VirtioDevice *vd, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Interrupt the driver for queue @q if it wants one. Device lock held. */
void virtio_notify(VirtioDevice *vd, unsigned q);
/* True while the driver has the device running (DRIVER_OK, not broken). */
bool virtio_running(const VirtioDevice *vd);
/* Statistics and state for tests and -stats. Any thread. */
VirtioStats virtio_device_stats(Device *dev);
bool virtio_device_broken(Device *dev);

/* ---- virtio-blk (virtio-blk-pci) ------------------------------------------ */

typedef struct VirtioBlkStats {
    uint64_t requests;         /* requests the driver made */
    uint64_t completions_bql;  /* I/O completions handled with the BQL held */
    uint64_t errors;           /* answered IOERR or UNSUPP */
    uint64_t reset_waits;      /* requests in flight that a reset waited for */
    uint64_t late_completions; /* requests done after their reset returned: always 0 */
} VirtioBlkStats;

/* The counters of a virtio-blk-pci device. Any thread. */
VirtioBlkStats virtio_blk_stats(Device *dev);

/* ---- virtio-console (virtio-console-pci) ---------------------------------- */

/* The character backend of a virtio-console-pci device (its "chardev"
 * property). Input given to it with chardev_deliver() reaches the guest's
 * receive buffers; call that on the device's data-plane thread (the main
 * loop with the BQL, or its iothread). Main thread, BQL held. */
Chardev *virtio_console_chardev(Device *dev);

/* ---- virtio-net (virtio-net-pci) ------------------------------------------ */

typedef struct VirtioNetStats {
    uint64_t rx_frames;    /* frames delivered to the guest */
    uint64_t rx_oversized; /* frames dropped: longer than the receive chain */
    uint64_t rx_stalls;    /* times the tap watch paused for want of receive buffers */
    uint64_t tx_frames;    /* frames written to the tap */
    uint64_t tx_errors;    /* frames the tap refused */
} VirtioNetStats;

/* The counters of a virtio-net-pci device. Any thread. */
VirtioNetStats virtio_net_stats(Device *dev);
/* The name of its tap interface, as the kernel gave it. Main thread. */
const char *virtio_net_ifname(Device *dev);

#endif
