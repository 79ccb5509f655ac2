/* virtio-console: one console port (the guest's hvc0) on a character backend. */
#include "kvmloop/virtio.h"
#include "kvmloop/error.h"

#include <linux/virtio_ids.h>
#include <string.h>
#include <unistd.h>

#include "kvmloop/chardev.h"
#include "kvmloop/config.h"
#include "kvmloop/iothread.h"
#include "kvmloop/machine.h"

/*
 * Without VIRTIO_CONSOLE_F_MULTIPORT the device has port 0 only: receiveq 0
 * carries host input to the guest, transmitq 0 the guest's output (virtio
 * 1.2, 5.3.2). No feature is offered, so the driver reads no configuration.
 */
#define VCON_RX         0
#define VCON_TX         1
#define VCON_QUEUE_SIZE 128
#define VCON_PCI_CLASS  0x078000 /* simple communication controller, other */
/* Input read from the backend while the driver has no receive buffer posted
 * waits here; when it is full, can_read says 0 and the backend holds back. */
#define VCON_HOLD_SIZE 1024

typedef struct VirtioConsole {
    VirtioDevice vd;
    Chardev *chr;
    bool input_started;
    /* Guarded by vd.dev.lock. */
    uint8_t hold[VCON_HOLD_SIZE];
    size_t hold_len;
    bool tx_error_logged;
} VirtioConsole;

/* ---- Queues ------------------------------------------------------------- */

/* Move held input into the buffers the driver posted, one buffer at a time
 * with what there is. Device lock held, data-plane thread. */
static void vcon_flush_rx_locked(VirtioConsole *s)
{
    VirtioDevice *vd = &s->vd;
    VirtQueue *vq = &vd->vq[VCON_RX];
    const GuestMem *gm = machine_guest_mem(vd->machine);
    size_t before = s->hold_len;
    bool pushed = false;

    while (s->hold_len > 0 && virtio_running(vd) && vq->enabled) {
        VirtQueueElement *e;
        int r = virtqueue_pop(vq, gm, &e);
        if (r == 0) {
            break;
        }
        if (r < 0) {
            virtio_error(vd, "receiveq: malformed descriptor chain");
            break;
        }
        if (e->in_len == 0) {
            g_free(e);
            virtio_error(vd, "receiveq: a buffer with no writable bytes");
            break;
        }
        size_t n = virtqueue_elem_to_guest(e, 0, s->hold, s->hold_len);
        memmove(s->hold, s->hold + n, s->hold_len - n);
        s->hold_len -= n;
        virtqueue_push(vq, e, (uint32_t)n);
        g_free(e);
        pushed = true;
    }
    if (pushed) {
        virtio_notify(vd, VCON_RX);
    }
    if (s->hold_len < before) {
        chardev_accept_input(s->chr);
    }
}

/* Write every readable byte of each transmit buffer to the backend. */
static void vcon_handle_tx_locked(VirtioConsole *s)
{
    VirtioDevice *vd = &s->vd;
    VirtQueue *vq = &vd->vq[VCON_TX];
    const GuestMem *gm = machine_guest_mem(vd->machine);
    VirtQueueElement *e;
    int r;

    while ((r = virtqueue_pop(vq, gm, &e)) > 0) {
        for (unsigned i = 0; i < e->out_num; i++) {
            int w = chardev_write_all(s->chr, e->iov[i].iov_base, e->iov[i].iov_len);
            if (w < 0 && !s->tx_error_logged) {
                s->tx_error_logged = true;
                g_warning("%s: output dropped: %s (further errors not reported)", vd->dev.id,
                          g_strerror(-w));
            }
        }
        virtqueue_push(vq, e, 0);
        g_free(e);
        virtio_notify(vd, VCON_TX);
    }
    if (r < 0) {
        virtio_error(vd, "transmitq: malformed descriptor chain");
    }
}

/* A doorbell: new output, or new receive buffers for held input. */
static void vcon_handle_queue(VirtioDevice *vd, unsigned q)
{
    VirtioConsole *s = (VirtioConsole *)vd;

    if (q == VCON_TX) {
        vcon_handle_tx_locked(s);
    } else {
        vcon_flush_rx_locked(s);
    }
}

/* Held input stays across a driver reset: it belongs to the byte stream,
 * not to the driver that went away. */
static const VirtioDeviceOps vcon_ops = {
    .device_id = VIRTIO_ID_CONSOLE,
    .pci_class = VCON_PCI_CLASS,
    .num_queues = 2,
    .queue_max = VCON_QUEUE_SIZE,
    .handle_queue = vcon_handle_queue,
};

/* ---- Backend input ------------------------------------------------------ */

/* On the data plane's loop (the main loop with the BQL, or the iothread),
 * or from chardev_deliver(); the device lock orders these against the
 * queues and the registers. */
static size_t vcon_can_read(void *opaque)
{
    VirtioConsole *s = opaque;
    klock_lock(&s->vd.dev.lock);
    size_t room = sizeof(s->hold) - s->hold_len;
    klock_unlock(&s->vd.dev.lock);
    return room;
}

static void vcon_receive(void *opaque, const uint8_t *buf, size_t len)
{
    VirtioConsole *s = opaque;
    klock_lock(&s->vd.dev.lock);
    size_t n = MIN(len, sizeof(s->hold) - s->hold_len);
    memcpy(s->hold + s->hold_len, buf, n);
    s->hold_len += n;
    vcon_flush_rx_locked(s);
    klock_unlock(&s->vd.dev.lock);
}

typedef struct VconInputStart {
    VirtioConsole *s;
    GError *err;
    bool ok;
} VconInputStart;

static void vcon_input_start(void *opaque)
{
    VconInputStart *st = opaque;
    st->ok = chardev_start_input(st->s->chr, st->s->vd.loop, &st->err);
}

static void vcon_input_stop(void *opaque)
{
    VirtioConsole *s = opaque;
    chardev_stop_input(s->chr);
}

/* ---- Realize ------------------------------------------------------------ */

/* stdin can feed one console only: refuse "stdio" next to a serial port that
 * reads it, with a message that says which. */
static bool vcon_check_stdio(Device *dev, Machine *m, const char *spec, GError **errp)
{
    if (strcmp(spec, "stdio") != 0) {
        return true;
    }
    for (int i = 0; i < KVMLOOP_MAX_SERIAL; i++) {
        Chardev *c = machine_serial(m, i);
        if (c && c->in_fd == STDIN_FILENO) {
            g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "%s: chardev=stdio conflicts with the serial port on stdio (use "
                        "-serial file:PATH or null, or another chardev here)",
                        dev->id);
            return false;
        }
    }
    return true;
}

static bool vcon_realize(Device *dev, Machine *m, GError **errp)
{
    VirtioConsole *s = (VirtioConsole *)dev;
    const char *spec = device_prop_str(dev, "chardev", NULL);
    g_autoptr(GError) err = NULL;

    if (!spec) {
        g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "%s: needs chardev=SPEC (stdio, file:PATH, null)", dev->id);
        return false;
    }
    if (!vcon_check_stdio(dev, m, spec, errp)) {
        return false;
    }
    s->chr = chardev_new(spec, dev->id, &err);
    if (!s->chr) {
        g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: chardev: %s", dev->id,
                    err ? err->message : "none is not a backend for a console");
        return false;
    }
    if (!virtio_pci_realize(&s->vd, m, &vcon_ops, errp)) {
        return false;
    }
    chardev_set_handlers(s->chr, vcon_can_read, vcon_receive, s);
    /* Input runs on the data plane's loop, like the queues it fills. */
    VconInputStart st = {.s = s};
    if (s->vd.iothread) {
        iothread_run_sync(s->vd.iothread, vcon_input_start, &st);
    } else {
        vcon_input_start(&st);
    }
    if (!st.ok) {
        g_propagate_error(errp, st.err);
        return false;
    }
    s->input_started = true;
    return true;
}

static void vcon_reset(Device *dev)
{
    virtio_pci_reset((VirtioDevice *)dev);
}

static void vcon_unrealize(Device *dev)
{
    VirtioConsole *s = (VirtioConsole *)dev;

    if (s->input_started) {
        if (s->vd.iothread) {
            iothread_run_sync(s->vd.iothread, vcon_input_stop, s);
        } else {
            vcon_input_stop(s);
        }
    }
    if (s->chr) {
        chardev_set_handlers(s->chr, NULL, NULL, NULL);
    }
    if (s->vd.ops) {
        virtio_pci_unrealize(&s->vd);
    }
    chardev_free(s->chr);
    s->chr = NULL;
}

Chardev *virtio_console_chardev(Device *dev)
{
    return ((VirtioConsole *)dev)->chr;
}

static const char *const vcon_props[] = {"chardev", "iothread", NULL};

const DeviceClass virtio_console_device_class = {
    .name = "virtio-console-pci",
    .desc = "virtio console (the guest's hvc0) on a character backend",
    .props_help = "chardev=stdio|file:PATH|null,iothread=NAME",
    .props = vcon_props,
    .instance_size = sizeof(VirtioConsole),
    .user_creatable = true,
    .realize = vcon_realize,
    .reset = vcon_reset,
    .unrealize = vcon_unrealize,
};
