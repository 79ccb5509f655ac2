/* virtio-net: an Ethernet NIC whose frames go to and come from a tap backend. */
#include "kvmloop/virtio.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvmloop/iothread.h"
#include "kvmloop/machine.h"
#include "kvmloop/net.h"

/*
 * One queue pair: receiveq 0, transmitq 1 (virtio 1.2, 5.1.2). Offered:
 * MAC and STATUS (link always up). No checksum, segmentation or mergeable
 * buffer feature, so every frame is whole, has a correct checksum, and
 * fits one receive chain. The 12-byte header (with num_buffers, as
 * VERSION_1 requires) is the tap's own header format.
 */
#define VNET_RX          0
#define VNET_TX          1
#define VNET_QUEUE_SIZE  256
#define VNET_PCI_CLASS   0x020000 /* network controller, Ethernet */
#define VNET_CONFIG_SIZE 10       /* mac, status, max_virtqueue_pairs */
#define VNET_FEATURES    ((1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS))
#define VNET_DEFAULT_MAC "52:54:00:12:34:56"
/* Frames served per tap readiness callback, so one busy NIC cannot starve
 * the rest of its loop. */
#define VNET_RX_BATCH 64
/* The largest frame a tap can hand over (an MTU is at most 65535) and its
 * header: the scratch tail behind a receive chain is this long, so that
 * readv() always takes the whole frame and reports its true length. */
#define VNET_MAX_FRAME (65536 + NET_VNET_HDR_LEN)

typedef struct VirtioNet {
    VirtioDevice vd;
    NetClient *nc;
    uint8_t mac[6];
    bool claimed;
    /*
     * Data-plane thread only: the tap watch, paused (no events) while the
     * driver has no receive buffer; the receive queue's doorbell resumes it.
     * Under vd.dev.lock: the chain taken for the next frame, kept across a
     * dropped frame; a reset frees it.
     */
    EventWatch *watch;
    bool rx_paused;
    VirtQueueElement *rx_elem;
    uint8_t *scratch;     /* where an oversized frame's tail lands */
    VirtioNetStats stats; /* atomic */
} VirtioNet;

static void vnet_count(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* ---- Receive ------------------------------------------------------------ */

static void vnet_rx_pause(VirtioNet *s, bool paused)
{
    if (s->watch && s->rx_paused != paused) {
        s->rx_paused = paused;
        event_watch_set_events(s->watch, paused ? 0 : EVENT_IN);
        if (paused) {
            vnet_count(&s->stats.rx_stalls);
        }
    }
}

/* Read one frame into the held chain. Returns 1 delivered, 0 the tap is
 * empty, -1 dropped (the chain stays for the next frame). */
static int vnet_rx_one_locked(VirtioNet *s)
{
    VirtQueueElement *e = s->rx_elem;
    struct iovec iov[VIRTQUEUE_MAX_SIZE + 1];
    unsigned n = 0;

    for (unsigned i = e->out_num; i < e->out_num + e->in_num; i++) {
        iov[n++] = e->iov[i];
    }
    /* One byte past the chain tells a frame that fit from one that did not;
     * the tap fills buffers in order and reports the whole frame length. */
    iov[n++] = (struct iovec){.iov_base = s->scratch, .iov_len = VNET_MAX_FRAME};
    ssize_t len = readv(net_client_fd(s->nc), iov, (int)n);
    if (len < 0) {
        return 0; /* EAGAIN, or a tap gone down: wait for readiness */
    }
    if ((uint64_t)len > e->in_len || len < NET_VNET_HDR_LEN) {
        vnet_count(&s->stats.rx_oversized);
        return -1;
    }
    /* The kernel had no offload to describe; say so plainly, and that the
     * frame is in one buffer chain (5.1.6.4). */
    struct virtio_net_hdr_mrg_rxbuf hdr = {.hdr.gso_type = VIRTIO_NET_HDR_GSO_NONE,
                                           .num_buffers = 1};
    virtqueue_elem_to_guest(e, 0, &hdr, sizeof(hdr));
    virtqueue_push(&s->vd.vq[VNET_RX], e, (uint32_t)len);
    g_free(e);
    s->rx_elem = NULL;
    vnet_count(&s->stats.rx_frames);
    return 1;
}

/* Move frames from the tap to posted receive chains until one side runs
 * out. With no chain left the watch pauses: the frames wait in the tap's
 * queue (the kernel drops what it cannot hold), never here. Device lock
 * held, data-plane thread. */
static void vnet_rx_locked(VirtioNet *s)
{
    VirtioDevice *vd = &s->vd;
    VirtQueue *vq = &vd->vq[VNET_RX];
    const GuestMem *gm = machine_guest_mem(vd->machine);
    bool pushed = false;

    for (unsigned done = 0; done < VNET_RX_BATCH; done++) {
        if (!virtio_running(vd) || !vq->enabled) {
            vnet_rx_pause(s, true);
            break;
        }
        if (!s->rx_elem) {
            int r = virtqueue_pop(vq, gm, &s->rx_elem);
            if (r == 0) {
                vnet_rx_pause(s, true);
                break;
            }
            if (r < 0) {
                virtio_error(vd, "receiveq: malformed descriptor chain");
                vnet_rx_pause(s, true);
                break;
            }
            if (s->rx_elem->in_len < NET_VNET_HDR_LEN) {
                g_free(s->rx_elem);
                s->rx_elem = NULL;
                virtio_error(vd, "receiveq: a chain with room for no header");
                vnet_rx_pause(s, true);
                break;
            }
        }
        int r = vnet_rx_one_locked(s);
        if (r == 0) {
            break;
        }
        pushed |= r > 0;
    }
    if (pushed) {
        virtio_notify(vd, VNET_RX);
    }
}

/* The tap is readable: data-plane thread (the main loop with the BQL, or
 * the iothread with no lock). */
static void vnet_tap_event(void *opaque, int fd, unsigned revents)
{
    VirtioNet *s = opaque;
    (void)fd;
    (void)revents;
    klock_lock(&s->vd.dev.lock);
    vnet_rx_locked(s);
    klock_unlock(&s->vd.dev.lock);
}

/* ---- Transmit ----------------------------------------------------------- */

/* Send one chain behind a fresh header: with no offload negotiated every
 * field of the guest's is zero or a request the device never offered (a
 * checksum to fill in, a segmentation; 5.1.6.2), so none is passed on.
 * Returns false for a chain too short to hold a header. */
static bool vnet_tx_one_locked(VirtioNet *s, VirtQueueElement *e)
{
    struct virtio_net_hdr_mrg_rxbuf hdr;
    struct iovec iov[VIRTQUEUE_MAX_SIZE + 1];
    unsigned n = 0;
    size_t skip = NET_VNET_HDR_LEN;

    if (e->out_len < NET_VNET_HDR_LEN) {
        return false;
    }
    hdr = (struct virtio_net_hdr_mrg_rxbuf){.hdr.gso_type = VIRTIO_NET_HDR_GSO_NONE};
    iov[n++] = (struct iovec){.iov_base = &hdr, .iov_len = sizeof(hdr)};
    for (unsigned i = 0; i < e->out_num; i++) {
        size_t l = e->iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        iov[n++] =
            (struct iovec){.iov_base = (uint8_t *)e->iov[i].iov_base + skip, .iov_len = l - skip};
        skip = 0;
    }
    if (writev(net_client_fd(s->nc), iov, (int)n) < 0) {
        vnet_count(&s->stats.tx_errors);
    } else {
        vnet_count(&s->stats.tx_frames);
    }
    return true;
}

static void vnet_tx_locked(VirtioNet *s)
{
    VirtioDevice *vd = &s->vd;
    VirtQueue *vq = &vd->vq[VNET_TX];
    const GuestMem *gm = machine_guest_mem(vd->machine);
    VirtQueueElement *e;
    bool pushed = false;
    int r;

    while ((r = virtqueue_pop(vq, gm, &e)) > 0) {
        bool ok = vnet_tx_one_locked(s, e);
        if (ok) {
            virtqueue_push(vq, e, 0);
            pushed = true;
        }
        g_free(e);
        if (!ok) {
            virtio_error(vd, "transmitq: a chain shorter than the %d-byte header",
                         NET_VNET_HDR_LEN);
            break;
        }
    }
    if (r < 0) {
        virtio_error(vd, "transmitq: malformed descriptor chain");
    }
    if (pushed) {
        virtio_notify(vd, VNET_TX);
    }
}

/* A doorbell: frames to send, or receive chains for waiting frames. */
static void vnet_handle_queue(VirtioDevice *vd, unsigned q)
{
    VirtioNet *s = (VirtioNet *)vd;

    if (q == VNET_TX) {
        vnet_tx_locked(s);
    } else if (q == VNET_RX) {
        vnet_rx_pause(s, false);
    }
}

/* The driver reset the device (a vCPU) or the machine did (main thread):
 * the held chain belongs to rings that no longer exist. The watch stays as
 * it is; the next readiness finds the device stopped and pauses it. */
static void vnet_reset_queues(VirtioDevice *vd)
{
    VirtioNet *s = (VirtioNet *)vd;
    g_free(s->rx_elem);
    s->rx_elem = NULL;
}

static const VirtioDeviceOps vnet_ops = {
    .device_id = VIRTIO_ID_NET,
    .pci_class = VNET_PCI_CLASS,
    .features = VNET_FEATURES,
    .num_queues = 2,
    .queue_max = VNET_QUEUE_SIZE,
    .config_size = VNET_CONFIG_SIZE,
    .handle_queue = vnet_handle_queue,
    .reset = vnet_reset_queues,
};

/* ---- Realize ------------------------------------------------------------ */

static bool vnet_parse_mac(const char *str, uint8_t mac[6])
{
    unsigned b[6];
    char end;
    if (sscanf(str, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) !=
            6 ||
        strlen(str) != 17) {
        return false;
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = (uint8_t)b[i];
    }
    return !(mac[0] & 1); /* a multicast address cannot be a NIC's */
}

static bool vnet_props(VirtioNet *s, GError **errp)
{
    Device *dev = &s->vd.dev;
    const char *netdev = device_prop_str(dev, "netdev", NULL);
    const char *mac = device_prop_str(dev, "mac", NULL);
    const char *owner = NULL;

    if (!netdev) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: needs netdev=ID", dev->id);
        return false;
    }
    s->nc = net_find(netdev);
    if (!s->nc) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s: there is no -netdev with id '%s'",
                    dev->id, netdev);
        return false;
    }
    if (!net_client_claim(s->nc, dev->id, &owner)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY, "%s: netdev '%s' is already used by %s",
                    dev->id, netdev, owner);
        s->nc = NULL;
        return false;
    }
    s->claimed = true;
    if (mac && !vnet_parse_mac(mac, s->mac)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s: mac=%s is not a unicast address like " VNET_DEFAULT_MAC, dev->id, mac);
        return false;
    }
    if (!mac) {
        /* 52:54:00:12:34:56 on the first -netdev, ...:57 on the second. */
        vnet_parse_mac(VNET_DEFAULT_MAC, s->mac);
        s->mac[5] = (uint8_t)(s->mac[5] + net_client_index(s->nc));
    }
    return true;
}

static void vnet_watch_start(void *opaque)
{
    VirtioNet *s = opaque;
    s->watch =
        event_loop_add_fd(s->vd.loop, net_client_fd(s->nc), 0, "virtio-net-tap", vnet_tap_event, s);
    s->rx_paused = true;
}

static void vnet_watch_stop(void *opaque)
{
    VirtioNet *s = opaque;
    event_watch_remove(s->watch);
    s->watch = NULL;
}

static bool vnet_realize(Device *dev, Machine *m, GError **errp)
{
    VirtioNet *s = (VirtioNet *)dev;

    if (!vnet_props(s, errp)) {
        return false;
    }
    memcpy(s->vd.config + offsetof(struct virtio_net_config, mac), s->mac, 6);
    s->vd.config[offsetof(struct virtio_net_config, status)] = VIRTIO_NET_S_LINK_UP;
    s->vd.config[offsetof(struct virtio_net_config, max_virtqueue_pairs)] = 1;
    s->scratch = g_malloc(VNET_MAX_FRAME);
    if (!virtio_pci_realize(&s->vd, m, &vnet_ops, errp)) {
        return false;
    }
    if (s->vd.iothread) {
        iothread_run_sync(s->vd.iothread, vnet_watch_start, s);
    } else {
        vnet_watch_start(s);
    }
    if (!s->watch) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: cannot watch the tap of netdev %s",
                    dev->id, net_client_id(s->nc));
        return false;
    }
    return true;
}

static void vnet_reset(Device *dev)
{
    virtio_pci_reset((VirtioDevice *)dev);
}

/* The tap watch goes before the transport (nothing serves the queues after
 * that), the backend is released for the next machine. */
static void vnet_unrealize(Device *dev)
{
    VirtioNet *s = (VirtioNet *)dev;

    if (s->watch) {
        if (s->vd.iothread) {
            iothread_run_sync(s->vd.iothread, vnet_watch_stop, s);
        } else {
            vnet_watch_stop(s);
        }
    }
    if (s->vd.ops) {
        virtio_pci_unrealize(&s->vd);
    }
    g_free(s->rx_elem);
    s->rx_elem = NULL;
    g_free(s->scratch);
    s->scratch = NULL;
    if (s->claimed) {
        net_client_release(s->nc);
        s->claimed = false;
    }
}

VirtioNetStats virtio_net_stats(Device *dev)
{
    VirtioNet *s = (VirtioNet *)dev;
    return (VirtioNetStats){
        .rx_frames = __atomic_load_n(&s->stats.rx_frames, __ATOMIC_RELAXED),
        .rx_oversized = __atomic_load_n(&s->stats.rx_oversized, __ATOMIC_RELAXED),
        .rx_stalls = __atomic_load_n(&s->stats.rx_stalls, __ATOMIC_RELAXED),
        .tx_frames = __atomic_load_n(&s->stats.tx_frames, __ATOMIC_RELAXED),
        .tx_errors = __atomic_load_n(&s->stats.tx_errors, __ATOMIC_RELAXED),
    };
}

const char *virtio_net_ifname(Device *dev)
{
    VirtioNet *s = (VirtioNet *)dev;
    return s->nc ? net_client_ifname(s->nc) : NULL;
}

static const char *const vnet_props_list[] = {"netdev", "mac", "iothread", NULL};

const DeviceClass virtio_net_device_class = {
    .name = "virtio-net-pci",
    .desc = "virtio Ethernet NIC on a -netdev tap backend",
    .props_help = "netdev=ID[,mac=52:54:00:XX:XX:XX][,iothread=NAME]",
    .props = vnet_props_list,
    .instance_size = sizeof(VirtioNet),
    .user_creatable = true,
    .realize = vnet_realize,
    .reset = vnet_reset,
    .unrealize = vnet_unrealize,
};
