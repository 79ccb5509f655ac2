/* virtio-rng: the guest's hardware RNG, filled from the host's /dev/urandom. */
#include "kvmloop/virtio.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ids.h>
#include <unistd.h>

#include "kvmloop/machine.h"

#define VIRTIO_RNG_QUEUE_SIZE 64
#define VIRTIO_RNG_PCI_CLASS  0xff0000 /* unclassified device */

typedef struct VirtioRng {
    VirtioDevice vd;
    int fd;
} VirtioRng;

/* Fill every writable buffer of each request. /dev/urandom never blocks, so
 * reading it on the data-plane thread holds nothing up. */
static void virtio_rng_handle(VirtioDevice *vd, unsigned q)
{
    VirtioRng *s = (VirtioRng *)vd;
    const GuestMem *gm = machine_guest_mem(vd->machine);
    VirtQueueElement *e;
    int r;

    while ((r = virtqueue_pop(&vd->vq[q], gm, &e)) > 0) {
        size_t done = 0;
        for (unsigned i = e->out_num; i < e->out_num + e->in_num; i++) {
            ssize_t n = read(s->fd, e->iov[i].iov_base, e->iov[i].iov_len);
            if (n < 0 || (size_t)n != e->iov[i].iov_len) {
                break;
            }
            done += (size_t)n;
        }
        virtqueue_push(&vd->vq[q], e, (uint32_t)done);
        g_free(e);
        virtio_notify(vd, q);
    }
    if (r < 0) {
        virtio_error(vd, "queue %u: malformed descriptor chain", q);
    }
}

static const VirtioDeviceOps virtio_rng_ops = {
    .device_id = VIRTIO_ID_RNG,
    .pci_class = VIRTIO_RNG_PCI_CLASS,
    .num_queues = 1,
    .queue_max = VIRTIO_RNG_QUEUE_SIZE,
    .handle_queue = virtio_rng_handle,
};

static bool virtio_rng_realize(Device *dev, Machine *m, GError **errp)
{
    VirtioRng *s = (VirtioRng *)dev;
    s->fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "%s: cannot open /dev/urandom: %s", dev->id, g_strerror(errno));
        return false;
    }
    return virtio_pci_realize(&s->vd, m, &virtio_rng_ops, errp);
}

static void virtio_rng_reset(Device *dev)
{
    virtio_pci_reset((VirtioDevice *)dev);
}

static void virtio_rng_unrealize(Device *dev)
{
    VirtioRng *s = (VirtioRng *)dev;
    if (s->vd.ops) {
        virtio_pci_unrealize(&s->vd);
    }
    if (s->fd > 0) {
        close(s->fd);
    }
}

static const char *const virtio_rng_props[] = {"iothread", NULL};

const DeviceClass virtio_rng_device_class = {
    .name = "virtio-rng-pci",
    .desc = "virtio entropy source fed from the host's /dev/urandom",
    .props_help = "iothread=NAME",
    .props = virtio_rng_props,
    .instance_size = sizeof(VirtioRng),
    .user_creatable = true,
    .realize = virtio_rng_realize,
    .reset = virtio_rng_reset,
    .unrealize = virtio_rng_unrealize,
};
