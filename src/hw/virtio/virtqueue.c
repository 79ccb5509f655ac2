/* Split virtqueues: the device side, with every index, length and address from the driver checked.
 */
#include "kvmloop/virtio.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

/* Ring layouts (virtio 1.2, 2.7.5-2.7.8), in bytes. */
#define DESC_SIZE        16
#define AVAIL_HDR        4 /* flags, idx */
#define USED_HDR         4
#define USED_ELEM_SIZE   8
#define RING_EVENT_FIELD 2
#define DESC_ALIGN       16
#define AVAIL_ALIGN      2
#define USED_ALIGN       4

void virtqueue_init(VirtQueue *vq, uint16_t max)
{
    memset(vq, 0, sizeof(*vq));
    vq->size = max;
    vq->msix_vector = VIRTIO_NO_VECTOR;
}

int virtqueue_enable(VirtQueue *vq, const GuestMem *gm)
{
    uint64_t n = vq->size;

    if (n == 0 || n > VIRTQUEUE_MAX_SIZE || (n & (n - 1)) || vq->desc % DESC_ALIGN ||
        vq->avail % AVAIL_ALIGN || vq->used % USED_ALIGN) {
        return -EINVAL;
    }
    vq->vdesc = guest_mem_ptr(gm, vq->desc, n * DESC_SIZE);
    vq->vavail = guest_mem_ptr(gm, vq->avail, AVAIL_HDR + 2 * n + RING_EVENT_FIELD);
    vq->vused = guest_mem_ptr(gm, vq->used, USED_HDR + USED_ELEM_SIZE * n + RING_EVENT_FIELD);
    if (!vq->vdesc || !vq->vavail || !vq->vused) {
        vq->vdesc = vq->vavail = vq->vused = NULL;
        return -EINVAL;
    }
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->inflight = 0;
    memset(vq->busy, 0, sizeof(vq->busy));
    vq->enabled = true;
    return 0;
}

/* Guest memory is shared with vCPUs that run while we read it: every field
 * is loaded once, with a single access, and only the copy is used. */
static uint16_t ring_load16(const uint8_t *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

static void desc_load(const VirtQueue *vq, unsigned i, struct vring_desc *d)
{
    const uint8_t *p = vq->vdesc + (size_t)i * DESC_SIZE;
    d->addr = __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
    d->len = __atomic_load_n((const uint32_t *)(p + 8), __ATOMIC_RELAXED);
    d->flags = __atomic_load_n((const uint16_t *)(p + 12), __ATOMIC_RELAXED);
    d->next = __atomic_load_n((const uint16_t *)(p + 14), __ATOMIC_RELAXED);
}

static int virtqueue_walk(VirtQueue *vq, const GuestMem *gm, uint16_t head, struct iovec *iov,
                          unsigned cap, unsigned *out_num, unsigned *in_num, uint64_t *out_len,
                          uint64_t *in_len)
{
    unsigned i = head, count = 0;
    struct vring_desc d;

    *out_num = *in_num = 0;
    *out_len = *in_len = 0;
    for (;;) {
        if (i >= vq->size || ++count > vq->size || (iov && count > cap)) {
            return -EINVAL; /* index out of range, a loop, or a chain that grew */
        }
        desc_load(vq, i, &d);
        if (d.flags & VRING_DESC_F_INDIRECT) {
            return -EINVAL;
        }
        void *host = guest_mem_ptr(gm, d.addr, d.len);
        if (!host) {
            return -EINVAL;
        }
        if (d.flags & VRING_DESC_F_WRITE) {
            *in_len += d.len;
            (*in_num)++;
        } else {
            if (*in_num) {
                return -EINVAL; /* 2.7.4.2: readable buffers come first */
            }
            *out_len += d.len;
            (*out_num)++;
        }
        if (iov) {
            iov[count - 1] = (struct iovec){.iov_base = host, .iov_len = d.len};
        }
        if (!(d.flags & VRING_DESC_F_NEXT)) {
            return (int)count;
        }
        i = d.next;
    }
}

int virtqueue_pop(VirtQueue *vq, const GuestMem *gm, VirtQueueElement **out)
{
    *out = NULL;
    if (!vq->enabled) {
        return 0;
    }
    /* Acquire: the ring entries and descriptors the driver wrote before it
     * published the index are visible. Partner: the driver's write barrier
     * before it stores avail->idx (2.7.13). */
    uint16_t avail_idx = __atomic_load_n((const uint16_t *)(vq->vavail + 2), __ATOMIC_ACQUIRE);
    uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
    if (pending == 0) {
        return 0;
    }
    if (pending > vq->size) {
        return -EINVAL;
    }
    uint16_t head = ring_load16(vq->vavail + AVAIL_HDR + 2 * (vq->last_avail % vq->size));
    if (head >= vq->size || vq->busy[head]) {
        return -EINVAL;
    }
    unsigned out_num, in_num;
    uint64_t out_len, in_len;
    /* Walk twice: to size the element, then to fill it from the same
     * snapshot rules (a driver that changes the chain between the walks gets
     * whatever the second walk sees, checked the same way). */
    int n = virtqueue_walk(vq, gm, head, NULL, 0, &out_num, &in_num, &out_len, &in_len);
    if (n < 0) {
        return n;
    }
    VirtQueueElement *e = g_malloc0(sizeof(*e) + (size_t)n * sizeof(struct iovec));
    int n2 = virtqueue_walk(vq, gm, head, e->iov, (unsigned)n, &e->out_num, &e->in_num, &e->out_len,
                            &e->in_len);
    if (n2 != n) {
        g_free(e);
        return -EINVAL;
    }
    e->head = head;
    vq->busy[head] = 1;
    vq->inflight++;
    vq->last_avail++;
    *out = e;
    return 1;
}

int virtqueue_push(VirtQueue *vq, const VirtQueueElement *e, uint32_t len)
{
    if (!vq->enabled || e->head >= vq->size || !vq->busy[e->head]) {
        return -EINVAL;
    }
    if (len > e->in_len) {
        len = (uint32_t)e->in_len;
    }
    vq->busy[e->head] = 0;
    vq->inflight--;
    uint8_t *elem = vq->vused + USED_HDR + USED_ELEM_SIZE * (vq->used_idx % vq->size);
    __atomic_store_n((uint32_t *)elem, (uint32_t)e->head, __ATOMIC_RELAXED);
    __atomic_store_n((uint32_t *)(elem + 4), len, __ATOMIC_RELAXED);
    vq->used_idx++;
    /* Release (and sequentially consistent, see virtqueue_needs_notify()):
     * the element is visible before the index that publishes it. Partner:
     * the driver's read barrier after it loads used->idx. */
    __atomic_store_n((uint16_t *)(vq->vused + 2), vq->used_idx, __ATOMIC_SEQ_CST);
    return 0;
}

bool virtqueue_needs_notify(VirtQueue *vq)
{
    if (!vq->enabled) {
        return false;
    }
    /* Our used->idx store and this flags load are both sequentially
     * consistent, so they are not reordered (a full barrier, without a fence
     * ThreadSanitizer cannot model): a driver that clears NO_INTERRUPT and
     * then checks used->idx cannot miss both. Partner: the driver's full
     * barrier after it writes the flags. */
    return !(__atomic_load_n((const uint16_t *)vq->vavail, __ATOMIC_SEQ_CST) &
             VRING_AVAIL_F_NO_INTERRUPT);
}

size_t virtqueue_elem_to_guest(VirtQueueElement *e, size_t skip, const void *buf, size_t len)
{
    size_t done = 0;
    for (unsigned i = e->out_num; i < e->out_num + e->in_num && done < len; i++) {
        struct iovec *v = &e->iov[i];
        if (skip >= v->iov_len) {
            skip -= v->iov_len;
            continue;
        }
        size_t n = MIN(v->iov_len - skip, len - done);
        memcpy((uint8_t *)v->iov_base + skip, (const uint8_t *)buf + done, n);
        done += n;
        skip = 0;
    }
    return done;
}

size_t virtqueue_elem_from_guest(const VirtQueueElement *e, size_t skip, void *buf, size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < e->out_num && done < len; i++) {
        const struct iovec *v = &e->iov[i];
        if (skip >= v->iov_len) {
            skip -= v->iov_len;
            continue;
        }
        size_t n = MIN(v->iov_len - skip, len - done);
        memcpy((uint8_t *)buf + done, (const uint8_t *)v->iov_base + skip, n);
        done += n;
        skip = 0;
    }
    return done;
}
