/* virtio-blk: a raw image file as the guest's disk, with asynchronous I/O on the data-plane loop.
 */
#include "kvmloop/virtio.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmloop/block.h"
#include "kvmloop/bql.h"
#include "kvmloop/iothread.h"
#include "kvmloop/machine.h"

#define VIRTIO_BLK_SECTOR      512
#define VIRTIO_BLK_QUEUE_SIZE  256
#define VIRTIO_BLK_PCI_CLASS   0x010000 /* mass storage, SCSI (as QEMU) */
#define VIRTIO_BLK_HDR_SIZE    16       /* type, ioprio, sector (5.2.6) */
#define VIRTIO_BLK_CONFIG_SIZE (offsetof(struct virtio_blk_config, num_queues) + 2)
/* O_DIRECT wants the buffers, lengths and offsets aligned (s->align);
 * guest buffers that are not go through an aligned bounce buffer. */
#define VIRTIO_BLK_BOUNCE_ALIGN 4096

typedef struct VirtioBlk {
    VirtioDevice vd;
    VirtioDeviceOps ops; /* per instance: queues and features vary */
    int fd;
    bool readonly;
    bool direct;
    BlockDirectAlign align; /* with @direct: what the image's O_DIRECT asks */
    bool locking;           /* lock the image against other processes (block_image_lock()) */
    uint64_t sectors;
    char serial[VIRTIO_BLK_ID_BYTES];
    BlockAioBackend aio_want;
    BlockAio *aio;           /* used on the data-plane thread only */
    uint32_t epoch;          /* bumped by every reset; device lock */
    bool quiesced;           /* tear-down: no more interrupts; device lock */
    uint32_t notify_pending; /* queues with completions not yet signalled; device lock */
    unsigned inflight;       /* requests submitted and not done; device lock */
    unsigned resetting;      /* resets waiting for @inflight to drop to 0; device lock */
    pthread_cond_t drained;  /* @inflight dropped to 0; waited on with the device lock */
    VirtioBlkStats stats;    /* atomic */
} VirtioBlk;

/* One request in flight: a popped chain, the slice of it that holds the data
 * and, for O_DIRECT with unaligned guest buffers, a bounce buffer. */
typedef struct VirtioBlkReq {
    BlockAioReq aio;
    VirtioBlk *s;
    VirtQueueElement *e;
    unsigned q;
    uint32_t epoch;
    uint64_t len; /* data bytes */
    void *bounce; /* NULL when the guest's buffers are used directly */
    struct iovec bounce_iov;
    unsigned niov;
    struct iovec iov[]; /* the data part of e's buffers */
} VirtioBlkReq;

/* The device whose requests the calling thread completes itself, holding its
 * lock already (a reset draining on the data plane's behalf). */
static __thread VirtioBlk *virtio_blk_draining;

static void virtio_blk_stat_add(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* ---- Requests (virtio 1.2, 5.2.6) ---------------------------------------- */

/* The status byte is the last writable byte of the chain (5.2.6.2). With
 * @defer the interrupt waits for the end of the completion batch
 * (virtio_blk_batch_end()): one for every request the loop found finished
 * at once, as a driver keeping many requests in flight wants. Device lock
 * held. */
static void virtio_blk_complete_locked(VirtioBlk *s, unsigned q, VirtQueueElement *e,
                                       uint8_t status, uint32_t data_written, bool defer)
{
    if (status != VIRTIO_BLK_S_OK) {
        virtio_blk_stat_add(&s->stats.errors);
        data_written = 0;
    }
    virtqueue_elem_to_guest(e, e->in_len - 1, &status, 1);
    virtqueue_push(&s->vd.vq[q], e, data_written + 1);
    if (defer) {
        s->notify_pending |= 1u << q;
    } else if (!s->quiesced) {
        virtio_notify(&s->vd, q);
    }
}

/* The end of a batch of I/O completions: on the data-plane loop, or inside
 * a reset's drain, which holds the device lock already (its completions are
 * stale, so nothing is pending then). */
static void virtio_blk_batch_end(void *opaque)
{
    VirtioBlk *s = opaque;
    bool locked = virtio_blk_draining == s;
    if (!locked) {
        klock_lock(&s->vd.dev.lock);
    }
    for (uint32_t p = s->notify_pending; p; p &= p - 1) {
        if (!s->quiesced) {
            virtio_notify(&s->vd, (unsigned)__builtin_ctz(p));
        }
    }
    s->notify_pending = 0;
    if (!locked) {
        klock_unlock(&s->vd.dev.lock);
    }
}

/* Copy the part of @src (@n buffers) that starts @skip bytes in and is @len
 * long into @dst (room for @n). Returns the count of buffers. */
static unsigned iov_slice(const struct iovec *src, unsigned n, size_t skip, size_t len,
                          struct iovec *dst)
{
    unsigned out = 0;
    for (unsigned i = 0; i < n && len > 0; i++) {
        if (skip >= src[i].iov_len) {
            skip -= src[i].iov_len;
            continue;
        }
        size_t take = MIN(src[i].iov_len - skip, len);
        dst[out++] = (struct iovec){(uint8_t *)src[i].iov_base + skip, take};
        len -= take;
        skip = 0;
    }
    return out;
}

static void iov_copy_out(const struct iovec *iov, unsigned n, uint8_t *buf)
{
    for (unsigned i = 0; i < n; i++) {
        memcpy(buf, iov[i].iov_base, iov[i].iov_len);
        buf += iov[i].iov_len;
    }
}

static void iov_copy_in(const struct iovec *iov, unsigned n, const uint8_t *buf)
{
    for (unsigned i = 0; i < n; i++) {
        memcpy(iov[i].iov_base, buf, iov[i].iov_len);
        buf += iov[i].iov_len;
    }
}

static void virtio_blk_req_free(VirtioBlkReq *r)
{
    free(r->bounce);
    g_free(r->e);
    g_free(r);
}

/* The I/O finished: on the data-plane loop, without the device lock, or
 * inside a reset's drain with it. A request from before a reset only frees
 * its memory: its chain is no longer the device's to return, and the reset
 * is still waiting for it (see virtio_blk_reset_queues()). */
static void virtio_blk_done(BlockAioReq *ar, int64_t ret)
{
    VirtioBlkReq *r = (VirtioBlkReq *)ar;
    VirtioBlk *s = r->s;
    bool ok = ar->op == BLOCK_OP_FLUSH ? ret == 0 : ret >= 0 && (uint64_t)ret == r->len;
    bool locked = virtio_blk_draining == s;

    if (bql_locked()) {
        virtio_blk_stat_add(&s->stats.completions_bql);
    }
    if (!locked) {
        klock_lock(&s->vd.dev.lock);
    }
    if (r->epoch == s->epoch) {
        if (ok && r->bounce && ar->op == BLOCK_OP_READ) {
            iov_copy_in(r->iov, r->niov, r->bounce);
        }
        uint32_t written = ar->op == BLOCK_OP_READ ? (uint32_t)r->len : 0;
        virtio_blk_complete_locked(s, r->q, r->e, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR,
                                   written, true);
    } else if (!s->resetting) {
        /* A reset returned while this was in flight: must not happen. */
        virtio_blk_stat_add(&s->stats.late_completions);
    }
    g_assert(s->inflight > 0);
    if (--s->inflight == 0) {
        pthread_cond_broadcast(&s->drained); /* partner: virtio_blk_drain_locked() */
    }
    if (!locked) {
        klock_unlock(&s->vd.dev.lock);
    }
    virtio_blk_req_free(r);
}

/* Hand @r to the data plane's BlockAio. Device lock held. */
static void virtio_blk_submit_locked(VirtioBlk *s, VirtioBlkReq *r)
{
    s->inflight++;
    block_aio_submit(s->aio, &r->aio);
}

/* Check a read or write against the disk and start it. Returns the status
 * to answer at once, or VIRTIO_BLK_S_OK when the I/O is under way (and
 * owns @e). */
static uint8_t virtio_blk_rw(VirtioBlk *s, unsigned q, VirtQueueElement *e, uint64_t sector,
                             bool write)
{
    uint64_t len = write ? e->out_len - VIRTIO_BLK_HDR_SIZE : e->in_len - 1;
    if (len % VIRTIO_BLK_SECTOR || sector > s->sectors ||
        len / VIRTIO_BLK_SECTOR > s->sectors - sector) {
        return VIRTIO_BLK_S_IOERR;
    }
    if (write && s->readonly) {
        return VIRTIO_BLK_S_IOERR;
    }
    /* O_DIRECT on a disk with larger blocks than the driver was told of
     * (VIRTIO_BLK_F_BLK_SIZE) cannot do part of a block. */
    if (s->direct && (len % s->align.io || sector * VIRTIO_BLK_SECTOR % s->align.io)) {
        return VIRTIO_BLK_S_IOERR;
    }
    unsigned n = e->out_num + e->in_num;
    VirtioBlkReq *r = g_malloc0(sizeof(*r) + n * sizeof(struct iovec));
    r->s = s;
    r->e = e;
    r->q = q;
    r->epoch = s->epoch;
    r->len = len;
    r->niov = write ? iov_slice(e->iov, e->out_num, VIRTIO_BLK_HDR_SIZE, len, r->iov)
                    : iov_slice(e->iov + e->out_num, e->in_num, 0, len, r->iov);
    r->aio = (BlockAioReq){
        .op = write ? BLOCK_OP_WRITE : BLOCK_OP_READ,
        .fd = s->fd,
        .offset = sector * VIRTIO_BLK_SECTOR,
        .iov = r->iov,
        .niov = r->niov,
        .done = virtio_blk_done,
    };
    if (s->direct && len && !block_direct_iov_ok(r->iov, r->niov, &s->align)) {
        if (posix_memalign(&r->bounce, MAX(VIRTIO_BLK_BOUNCE_ALIGN, s->align.mem), len) != 0) {
            r->e = NULL;
            virtio_blk_req_free(r);
            return VIRTIO_BLK_S_IOERR;
        }
        if (write) {
            iov_copy_out(r->iov, r->niov, r->bounce);
        }
        r->bounce_iov = (struct iovec){r->bounce, len};
        r->aio.iov = &r->bounce_iov;
        r->aio.niov = 1;
    }
    virtio_blk_submit_locked(s, r);
    return VIRTIO_BLK_S_OK;
}

static void virtio_blk_flush(VirtioBlk *s, unsigned q, VirtQueueElement *e)
{
    VirtioBlkReq *r = g_malloc0(sizeof(*r));
    r->s = s;
    r->e = e;
    r->q = q;
    r->epoch = s->epoch;
    r->aio = (BlockAioReq){.op = BLOCK_OP_FLUSH, .fd = s->fd, .done = virtio_blk_done};
    virtio_blk_submit_locked(s, r);
}

/* Start one request. Returns false for a chain no request can be: without
 * a whole header or a writable status byte (the driver broke 5.2.6.1). */
static bool virtio_blk_request(VirtioBlk *s, unsigned q, VirtQueueElement *e)
{
    uint8_t hdr[VIRTIO_BLK_HDR_SIZE];
    if (e->out_len < VIRTIO_BLK_HDR_SIZE || e->in_len < 1 ||
        virtqueue_elem_from_guest(e, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
        return false;
    }
    uint32_t type = GUINT32_FROM_LE(*(uint32_t *)(void *)hdr);
    uint64_t sector = GUINT64_FROM_LE(*(uint64_t *)(void *)(hdr + 8));
    uint8_t status = VIRTIO_BLK_S_OK;
    uint32_t written = 0;

    virtio_blk_stat_add(&s->stats.requests);
    switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        status = virtio_blk_rw(s, q, e, sector, type == VIRTIO_BLK_T_OUT);
        if (status == VIRTIO_BLK_S_OK) {
            return true;
        }
        break;
    case VIRTIO_BLK_T_FLUSH:
        virtio_blk_flush(s, q, e);
        return true;
    case VIRTIO_BLK_T_GET_ID:
        written = (uint32_t)MIN(e->in_len - 1, sizeof(s->serial));
        virtqueue_elem_to_guest(e, 0, s->serial, written);
        break;
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    virtio_blk_complete_locked(s, q, e, status, written, false);
    g_free(e);
    return true;
}

/* Data-plane thread, device lock held. */
static void virtio_blk_handle(VirtioDevice *vd, unsigned q)
{
    VirtioBlk *s = (VirtioBlk *)vd;
    const GuestMem *gm = machine_guest_mem(vd->machine);
    VirtQueueElement *e;
    int r;

    if (s->resetting) {
        return; /* the queue is about to be forgotten; leave its buffers be */
    }
    while ((r = virtqueue_pop(&vd->vq[q], gm, &e)) > 0) {
        if (!virtio_blk_request(s, q, e)) {
            g_free(e);
            virtio_error(vd, "queue %u: request without a header or a writable status byte", q);
            return;
        }
    }
    if (r < 0) {
        virtio_error(vd, "queue %u: malformed descriptor chain", q);
    }
}

/* Complete the requests in flight on the calling thread, which holds the
 * device lock and keeps the data plane's loop from running callbacks. */
static void virtio_blk_drain_here_locked(VirtioBlk *s)
{
    virtio_blk_draining = s;
    block_aio_drain(s->aio);
    virtio_blk_draining = NULL;
}

/*
 * Wait until every request in flight is done. Device lock held, on a vCPU
 * (a status write, with only the device lock) or the main thread (a machine
 * reset, with the BQL too). The lock order is BQL, then device lock, and the
 * completions take the device lock, so:
 *  - an iothread serves them and never takes the BQL: sleep on @drained,
 *    which lets go of the device lock; an iothread that is not running has
 *    left its loop to us, and we drain it here;
 *  - the main loop serves them under the BQL: with the BQL held it cannot
 *    run, so drain here; without it (a vCPU), take it in order and drain
 *    here rather than wait for the main loop, which may be waiting for this
 *    vCPU to pause (a machine reset).
 * The device lock is let go meanwhile: other vCPUs may access the device,
 * but @resetting keeps the queues from being served.
 */
static void virtio_blk_drain_locked(VirtioBlk *s)
{
    KLock *lock = &s->vd.dev.lock;

    if (s->vd.iothread && iothread_thread_id(s->vd.iothread) != 0) {
        while (s->inflight > 0) {
            klock_cond_wait(lock, &s->drained);
        }
    } else if (s->vd.iothread || bql_locked()) {
        virtio_blk_drain_here_locked(s);
    } else {
        klock_unlock(lock);
        bql_lock();
        klock_lock(lock);
        virtio_blk_drain_here_locked(s);
        bql_unlock();
    }
}

/* 4.1.4.3.2: the reset completes only once no request from before it can
 * still write to the disk or into guest memory; their chains are forgotten. */
static void virtio_blk_reset_queues(VirtioDevice *vd)
{
    VirtioBlk *s = (VirtioBlk *)vd;
    s->epoch++;
    s->notify_pending = 0;
    if (!s->aio || s->inflight == 0) {
        return;
    }
    __atomic_fetch_add(&s->stats.reset_waits, s->inflight, __ATOMIC_RELAXED);
    s->resetting++;
    virtio_blk_drain_locked(s);
    s->resetting--;
}

/* ---- Realize ------------------------------------------------------------- */

static bool virtio_blk_props(VirtioBlk *s, uint64_t *nq, GError **errp)
{
    Device *dev = &s->vd.dev;
    const char *cache = device_prop_str(dev, "cache", "writeback");
    const char *aio = device_prop_str(dev, "aio", "auto");

    if (!device_prop_str(dev, "file", NULL)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: no image (file=PATH)",
                    dev->id);
        return false;
    }
    if (!device_prop_bool(dev, "readonly", false, &s->readonly, errp) ||
        !device_prop_bool(dev, "locking", true, &s->locking, errp) ||
        !device_prop_u64(dev, "num-queues", 1, nq, errp)) {
        return false;
    }
    if (*nq < 1 || *nq > VIRTIO_MAX_QUEUES) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s: num-queues=%" G_GUINT64_FORMAT " is outside 1 to %d", dev->id, *nq,
                    VIRTIO_MAX_QUEUES);
        return false;
    }
    if (strcmp(cache, "none") && strcmp(cache, "writeback")) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s: unknown cache mode '%s' (none or writeback)", dev->id, cache);
        return false;
    }
    s->direct = !strcmp(cache, "none");
    if (!block_aio_backend_parse(aio, &s->aio_want)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s: unknown aio '%s' (auto, io_uring or threads)", dev->id, aio);
        return false;
    }
    const char *serial = device_prop_str(dev, "serial", dev->id);
    /* 5.2.6: up to 20 bytes, NUL-terminated only when shorter. */
    memcpy(s->serial, serial, MIN(strlen(serial), sizeof(s->serial)));
    return true;
}

/* Read-write takes the image exclusively, read-only shares it with other
 * readers. A file system without OFD locks gets a notice, not an error. */
static bool virtio_blk_lock(VirtioBlk *s, const char *path, GError **errp)
{
    int r = block_image_lock(s->fd, !s->readonly);
    if (r == -EAGAIN) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "-drive file=%s: image is in use by another process (locked)", path);
        return false;
    }
    if (r < 0) {
        fprintf(stderr, "kvmloop: %s: cannot lock %s (%s); going on without a lock\n", s->vd.dev.id,
                path, g_strerror(-r));
    }
    return true;
}

/* Open the image as asked; cache=none falls back to the page cache where
 * the file system refuses O_DIRECT (tmpfs), and says so. */
static bool virtio_blk_open(VirtioBlk *s, GError **errp)
{
    Device *dev = &s->vd.dev;
    const char *path = device_prop_str(dev, "file", NULL);
    int flags = (s->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;

    s->fd = open(path, flags | (s->direct ? O_DIRECT : 0));
    if (s->fd < 0 && s->direct && errno == EINVAL) {
        fprintf(stderr, "kvmloop: %s: %s does not allow O_DIRECT; cache=none uses the page cache\n",
                dev->id, path);
        s->direct = false;
        s->fd = open(path, flags);
    }
    if (s->fd < 0) {
        int err = errno;
        bool denied = !s->readonly && (err == EACCES || err == EROFS || err == EPERM);
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err), "%s: cannot open %s%s: %s%s",
                    dev->id, path, denied ? " for writing" : "", g_strerror(err),
                    denied ? " (add readonly=on)" : "");
        return false;
    }
    struct stat st;
    off_t size = lseek(s->fd, 0, SEEK_END);
    if (fstat(s->fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) || size < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s: %s is not a regular file or a block device", dev->id, path);
        return false;
    }
    s->sectors = (uint64_t)size / VIRTIO_BLK_SECTOR;
    s->align = (BlockDirectAlign){VIRTIO_BLK_SECTOR, VIRTIO_BLK_SECTOR};
    if (s->direct) {
        int r = block_direct_probe(s->fd, &s->align);
        if (r < 0) {
            fprintf(stderr,
                    "kvmloop: %s: cannot find the O_DIRECT alignment of %s (%s); using 4096\n",
                    dev->id, path, g_strerror(-r));
            s->align = (BlockDirectAlign){4096, 4096};
        }
    }
    return !s->locking || virtio_blk_lock(s, path, errp);
}

static void virtio_blk_put(uint8_t *cfg, size_t off, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        cfg[off + i] = (uint8_t)(v >> (8 * i));
    }
}

typedef struct VirtioBlkAioNew {
    VirtioBlk *s;
    GError *err;
} VirtioBlkAioNew;

/* In the data-plane loop's context: the ring's eventfd is watched there. */
static void virtio_blk_aio_new(void *opaque)
{
    VirtioBlkAioNew *a = opaque;
    a->s->aio = block_aio_new(a->s->vd.loop, a->s->aio_want, a->s->vd.dev.id, &a->err);
    if (a->s->aio) {
        block_aio_set_batch_end(a->s->aio, virtio_blk_batch_end, a->s);
    }
}

static void virtio_blk_aio_free(void *opaque)
{
    VirtioBlk *s = opaque;
    block_aio_free(s->aio);
    s->aio = NULL;
}

static bool virtio_blk_realize(Device *dev, Machine *m, GError **errp)
{
    VirtioBlk *s = (VirtioBlk *)dev;
    uint64_t nq;

    s->fd = -1;
    pthread_cond_init(&s->drained, NULL);
    if (!virtio_blk_props(s, &nq, errp) || !virtio_blk_open(s, errp)) {
        return false;
    }
    s->ops = (VirtioDeviceOps){
        .device_id = VIRTIO_ID_BLOCK,
        .pci_class = VIRTIO_BLK_PCI_CLASS,
        .features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
                    (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_MQ) |
                    (s->readonly ? 1ULL << VIRTIO_BLK_F_RO : 0),
        .num_queues = (unsigned)nq,
        .queue_max = VIRTIO_BLK_QUEUE_SIZE,
        .config_size = VIRTIO_BLK_CONFIG_SIZE,
        .handle_queue = virtio_blk_handle,
        .reset = virtio_blk_reset_queues,
    };
    uint8_t *cfg = s->vd.config;
    virtio_blk_put(cfg, offsetof(struct virtio_blk_config, capacity), s->sectors, 8);
    virtio_blk_put(cfg, offsetof(struct virtio_blk_config, seg_max), VIRTIO_BLK_QUEUE_SIZE - 2, 4);
    /* The logical block size: a driver that honours it sends whole blocks. */
    virtio_blk_put(cfg, offsetof(struct virtio_blk_config, blk_size), s->align.io, 4);
    virtio_blk_put(cfg, offsetof(struct virtio_blk_config, num_queues), nq, 2);
    if (!virtio_pci_realize(&s->vd, m, &s->ops, errp)) {
        return false;
    }
    VirtioBlkAioNew a = {.s = s};
    if (s->vd.iothread) {
        iothread_run_sync(s->vd.iothread, virtio_blk_aio_new, &a);
    } else {
        virtio_blk_aio_new(&a);
    }
    if (!s->aio) {
        g_propagate_error(errp, a.err);
        return false;
    }
    return true;
}

static void virtio_blk_reset(Device *dev)
{
    virtio_pci_reset((VirtioDevice *)dev);
}

/* Every exit path (power-off, a signal, the console's quit, a fatal guest
 * error) ends here with the vCPUs and the iothreads stopped: complete what
 * is in flight, then make the whole image durable and close it. */
static void virtio_blk_unrealize(Device *dev)
{
    VirtioBlk *s = (VirtioBlk *)dev;
    klock_lock(&dev->lock);
    s->quiesced = true;
    klock_unlock(&dev->lock);
    if (s->aio) {
        if (s->vd.iothread) {
            iothread_run_sync(s->vd.iothread, virtio_blk_aio_free, s);
        } else {
            virtio_blk_aio_free(s);
        }
    }
    if (s->vd.ops) {
        virtio_pci_unrealize(&s->vd);
    }
    if (s->fd >= 0) {
        if (!s->readonly && fdatasync(s->fd) < 0) {
            fprintf(stderr, "kvmloop: %s: fdatasync failed: %s\n", dev->id, g_strerror(errno));
        }
        if (close(s->fd) < 0) {
            fprintf(stderr, "kvmloop: %s: close failed: %s\n", dev->id, g_strerror(errno));
        }
    }
    pthread_cond_destroy(&s->drained);
}

VirtioBlkStats virtio_blk_stats(Device *dev)
{
    VirtioBlk *s = (VirtioBlk *)dev;
    return (VirtioBlkStats){
        .requests = __atomic_load_n(&s->stats.requests, __ATOMIC_RELAXED),
        .completions_bql = __atomic_load_n(&s->stats.completions_bql, __ATOMIC_RELAXED),
        .errors = __atomic_load_n(&s->stats.errors, __ATOMIC_RELAXED),
        .reset_waits = __atomic_load_n(&s->stats.reset_waits, __ATOMIC_RELAXED),
        .late_completions = __atomic_load_n(&s->stats.late_completions, __ATOMIC_RELAXED),
    };
}

static const char *const virtio_blk_props_list[] = {
    "file", "readonly", "locking", "cache", "aio", "num-queues", "serial", "iothread", NULL,
};

const DeviceClass virtio_blk_device_class = {
    .name = "virtio-blk-pci",
    .desc = "virtio disk on a raw image (usually from -drive)",
    .props_help = "file=PATH,readonly=on|off,locking=on|off,cache=none|writeback,"
                  "aio=auto|io_uring|threads,num-queues=N,serial=STR,iothread=NAME",
    .props = virtio_blk_props_list,
    .instance_size = sizeof(VirtioBlk),
    .user_creatable = true,
    .realize = virtio_blk_realize,
    .reset = virtio_blk_reset,
    .unrealize = virtio_blk_unrealize,
};
