/*
 * virtio-blk: a driver for the virtio disk that writes a known pattern, and
 * hostile variants.
 *
 * The host gives a disk of at least 1 MiB. The payload negotiates FLUSH (and
 * MQ with queues=2, RO when the device offers it), sets up each queue with
 * its own MSI-X vector, prints the disk's ID ("virtio-blk: id <ID>") and
 * block size ("virtio-blk: blk_size <N>"), then:
 *
 *   mode=0  writes the pattern to sectors [64 q, 64 q + 64) from queue q
 *           (queues=2: queue 1 from the second vCPU, at the same time), in
 *           4 KiB requests whose data is split over two descriptors, every
 *           other one at an odd address; flushes; reads back and compares.
 *   mode=1  read-only disk: a write answers IOERR, a read and a flush work.
 *   mode=2  as 0, then prints "virtio-blk: flushed" and keeps rewriting
 *           sectors 256-263 (never flushed) until the host stops it.
 *   mode=3  fills queue 0 with writes of 0x5a to sectors 512-551, resets
 *           the device right after the doorbell, checks that the status
 *           reads 0, sets the device up again and writes, flushes and reads
 *           back the pattern in sectors 512-551; then as 0.
 *   mode=10 a header shorter than 16 bytes: the device breaks.
 *   mode=11 a read past the last sector, and one that is not a whole
 *           sector: both IOERR, the device keeps working.
 *   mode=12 a data buffer in MMIO space: the device breaks.
 *   mode=13 no writable status byte: the device breaks.
 *   mode=14 an unknown request type: UNSUPP.
 * After modes 10-14 the driver resets the device and writes the pattern.
 *
 * Pattern byte i of sector s: (s * 13 + i) & 0xff.
 * Exit codes: 0 ok; 1 no device; 2 capability missing; 3 features refused;
 * 4 queue too small; 5 a request timed out; 6 a request failed; 7 data
 * read back differs; 8 device not marked broken; 9 wrong status for a bad
 * request; 10 no MSI in the IRR; 11 the second vCPU failed; 12 RO not
 * offered on a read-only disk; 13 bad mode; 14 status not 0 after reset.
 */
#include "lib/virtio.h"

#define VIRTIO_ID_BLOCK      2
#define VIRTIO_BLK_F_RO      5
#define VIRTIO_BLK_F_FLUSH   9
#define VIRTIO_BLK_F_MQ      12
#define VIRTIO_BLK_T_IN      0
#define VIRTIO_BLK_T_OUT     1
#define VIRTIO_BLK_T_FLUSH   4
#define VIRTIO_BLK_T_GET_ID  8
#define VIRTIO_BLK_S_OK      0
#define VIRTIO_BLK_S_IOERR   1
#define VIRTIO_BLK_S_UNSUPP  2
#define QSIZE                16
#define MAXQ                 2
#define SECTOR               512
#define CHUNK                4096
#define REGION_SECTORS       64
#define TIMEOUT              (1ULL << 34)
#define STATUS_TIMEOUT       0xff
#define MMIO_HOLE            0xd0000000u
#define RESET_SECTOR         512
#define RESET_REQS           5 /* 3 descriptors each in a queue of 16 */
#define RESET_SETTLE         (1ULL << 26) /* TSC cycles for the device to pop them */

struct blk_hdr {
    uint32_t type, ioprio;
    uint64_t sector;
};

struct blkq {
    struct vq q;
    struct blk_hdr hdr;
    volatile uint8_t status;
    uint8_t buf[2 * CHUNK + 64] __attribute__((aligned(4096)));
};

static uint8_t ring_mem[MAXQ][VQ_MEM_SIZE(QSIZE)] __attribute__((aligned(4096)));
static struct blkq queues[MAXQ];
static struct vdev dev;
static volatile uint32_t ap_result = 0xffffffffu;

static uint8_t pattern(uint64_t sector, unsigned i)
{
    return (uint8_t)(sector * 13 + i);
}

/* One request: header, @len bytes of data at @data in two descriptors (one
 * when @len is below 2 sectors), status. Returns the status, or
 * STATUS_TIMEOUT. */
static uint8_t blk_request(struct blkq *b, uint32_t type, uint64_t sector, void *data,
                           uint32_t len, uint32_t *used)
{
    struct vq *q = &b->q;
    uint16_t dflags = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID ? VRING_DESC_F_WRITE
                                                                             : 0;
    unsigned n = 0;
    uint32_t dummy;

    b->hdr = (struct blk_hdr){type, 0, sector};
    b->status = STATUS_TIMEOUT;
    q->desc[n] = (struct vring_desc){(uintptr_t)&b->hdr, sizeof(b->hdr), VRING_DESC_F_NEXT, 1};
    n++;
    if (len >= 2 * SECTOR) {
        uint32_t half = len / 2;
        q->desc[n] = (struct vring_desc){(uintptr_t)data, half, dflags | VRING_DESC_F_NEXT, 2};
        q->desc[n + 1] = (struct vring_desc){(uintptr_t)data + half, len - half,
                                             dflags | VRING_DESC_F_NEXT, 3};
        n += 2;
    } else if (len) {
        q->desc[n] = (struct vring_desc){(uintptr_t)data, len, dflags | VRING_DESC_F_NEXT, 2};
        n++;
    }
    q->desc[n] = (struct vring_desc){(uintptr_t)&b->status, 1, VRING_DESC_F_WRITE, 0};
    vq_submit(q, 0);
    vq_kick(q);
    if (vq_wait_used(q, used ? used : &dummy, TIMEOUT) != 0) {
        return STATUS_TIMEOUT;
    }
    return b->status;
}

/* Write then read back the pattern in sectors [@first, @first + @n) through
 * queue @qi. Every other request's data sits at an odd address (a bounce
 * buffer with cache=none). */
static int blk_range(unsigned qi, uint64_t first, uint64_t n)
{
    struct blkq *b = &queues[qi];
    for (uint64_t s = first; s < first + n; s += CHUNK / SECTOR) {
        uint8_t *data = b->buf + ((s / 8) % 2 ? 1 : 0);
        for (unsigned i = 0; i < CHUNK; i++) {
            data[i] = pattern(s + i / SECTOR, i % SECTOR);
        }
        uint8_t st = blk_request(b, VIRTIO_BLK_T_OUT, s, data, CHUNK, NULL);
        if (st != VIRTIO_BLK_S_OK) {
            return st == STATUS_TIMEOUT ? 5 : 6;
        }
    }
    if (blk_request(b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL) != VIRTIO_BLK_S_OK) {
        return 6;
    }
    for (uint64_t s = first; s < first + n; s += CHUNK / SECTOR) {
        uint8_t *data = b->buf + ((s / 8) % 2 ? 3 : 0);
        uint32_t used = 0;
        memset(data, 0, CHUNK);
        if (blk_request(b, VIRTIO_BLK_T_IN, s, data, CHUNK, &used) != VIRTIO_BLK_S_OK ||
            used != CHUNK + 1) {
            return 6;
        }
        for (unsigned i = 0; i < CHUNK; i++) {
            if (data[i] != pattern(s + i / SECTOR, i % SECTOR)) {
                return 7;
            }
        }
    }
    return 0;
}

static int blk_region(unsigned qi)
{
    return blk_range(qi, (uint64_t)REGION_SECTORS * qi, REGION_SECTORS);
}

static void ap_main(int cpu)
{
    ap_result = (uint32_t)blk_region(1);
}

static uint32_t device_features(void)
{
    mmio_write32(dev.common + 0x00, 0);
    return mmio_read32(dev.common + 0x04);
}

static int start(unsigned nq, bool ro)
{
    uint64_t f = (1ULL << VIRTIO_BLK_F_FLUSH) | (nq > 1 ? 1ULL << VIRTIO_BLK_F_MQ : 0) |
                 (ro ? 1ULL << VIRTIO_BLK_F_RO : 0);
    int r = virtio_negotiate(&dev, f);
    if (r) {
        return r;
    }
    for (unsigned v = 0; v <= nq; v++) {
        virtio_msix_setup(&dev, v);
    }
    mmio_write16(dev.common + 0x10, 0); /* config vector 0 */
    for (unsigned q = 0; q < nq; q++) {
        r = virtio_queue_setup(&dev, &queues[q].q, q, QSIZE, ring_mem[q], (uint16_t)(q + 1));
        if (r) {
            return r;
        }
    }
    virtio_set_status(&dev, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                                VIRTIO_STATUS_DRIVER_OK);
    return 0;
}

static bool wait_broken(void)
{
    uint64_t t0 = rdtsc();
    while (!(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET)) {
        if (rdtsc() - t0 > TIMEOUT) {
            return false;
        }
        cpu_pause();
    }
    return true;
}

/* Offer @n descriptors already written from index 0 and wait for the
 * device to break. */
static int expect_broken(struct blkq *b)
{
    vq_submit(&b->q, 0);
    vq_kick(&b->q);
    return wait_broken() ? 0 : 8;
}

static int hostile(long mode)
{
    struct blkq *b = &queues[0];
    struct vq *q = &b->q;
    uint8_t st;

    switch (mode) {
    case 10:
        b->hdr = (struct blk_hdr){VIRTIO_BLK_T_IN, 0, 0};
        q->desc[0] = (struct vring_desc){(uintptr_t)&b->hdr, 8, VRING_DESC_F_NEXT, 1};
        q->desc[1] = (struct vring_desc){(uintptr_t)&b->status, 1, VRING_DESC_F_WRITE, 0};
        return expect_broken(b);
    case 11: {
        uint64_t cap = mmio_read32(dev.device) | (uint64_t)mmio_read32(dev.device + 4) << 32;
        st = blk_request(b, VIRTIO_BLK_T_IN, cap, b->buf, SECTOR, NULL);
        if (st != VIRTIO_BLK_S_IOERR) {
            return 9;
        }
        st = blk_request(b, VIRTIO_BLK_T_OUT, cap - 1, b->buf, 2 * SECTOR, NULL);
        if (st != VIRTIO_BLK_S_IOERR) {
            return 9;
        }
        st = blk_request(b, VIRTIO_BLK_T_IN, 0, b->buf, 100, NULL);
        return st == VIRTIO_BLK_S_IOERR ? 0 : 9;
    }
    case 12:
        b->hdr = (struct blk_hdr){VIRTIO_BLK_T_IN, 0, 0};
        q->desc[0] = (struct vring_desc){(uintptr_t)&b->hdr, 16, VRING_DESC_F_NEXT, 1};
        q->desc[1] = (struct vring_desc){MMIO_HOLE, SECTOR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
                                         2};
        q->desc[2] = (struct vring_desc){(uintptr_t)&b->status, 1, VRING_DESC_F_WRITE, 0};
        return expect_broken(b);
    case 13:
        b->hdr = (struct blk_hdr){VIRTIO_BLK_T_OUT, 0, 0};
        q->desc[0] = (struct vring_desc){(uintptr_t)&b->hdr, 16, VRING_DESC_F_NEXT, 1};
        q->desc[1] = (struct vring_desc){(uintptr_t)b->buf, SECTOR, VRING_DESC_F_NEXT, 2};
        q->desc[2] = (struct vring_desc){(uintptr_t)&b->status, 1, 0, 0};
        return expect_broken(b);
    case 14:
        st = blk_request(b, 0x77, 0, NULL, 0, NULL);
        return st == VIRTIO_BLK_S_UNSUPP ? 0 : 9;
    default:
        return 13;
    }
}

static struct blk_hdr reset_hdr[RESET_REQS];
static volatile uint8_t reset_status[RESET_REQS];
static uint8_t reset_buf[CHUNK] __attribute__((aligned(4096)));

/* mode=3: a reset with writes in flight. Whatever the device did with them,
 * none may land after the reset, so the pattern written next stays. */
static int reset_in_flight(unsigned nq)
{
    struct vq *q = &queues[0].q;
    memset(reset_buf, 0x5a, CHUNK);
    for (unsigned i = 0; i < RESET_REQS; i++) {
        uint16_t d = (uint16_t)(3 * i);
        reset_hdr[i] = (struct blk_hdr){VIRTIO_BLK_T_OUT, 0, RESET_SECTOR + 8 * i};
        reset_status[i] = STATUS_TIMEOUT;
        q->desc[d] = (struct vring_desc){(uintptr_t)&reset_hdr[i], sizeof(reset_hdr[i]),
                                         VRING_DESC_F_NEXT, (uint16_t)(d + 1)};
        q->desc[d + 1] =
            (struct vring_desc){(uintptr_t)reset_buf, CHUNK, VRING_DESC_F_NEXT, (uint16_t)(d + 2)};
        q->desc[d + 2] = (struct vring_desc){(uintptr_t)&reset_status[i], 1, VRING_DESC_F_WRITE, 0};
        vq_submit(q, d);
    }
    vq_kick(q);
    /* The doorbell may reach the device through an eventfd: give it time to
     * start the writes. */
    uint64_t t0 = rdtsc();
    while (rdtsc() - t0 < RESET_SETTLE) {
        cpu_pause();
    }
    virtio_set_status(&dev, 0);
    if (virtio_status(&dev) != 0) {
        return 14;
    }
    int r = start(nq, false);
    return r ? r : blk_range(0, RESET_SECTOR, 8 * RESET_REQS);
}

static int print_id(void)
{
    char id[21];
    uint32_t used = 0;
    memset(id, 0, sizeof(id));
    if (blk_request(&queues[0], VIRTIO_BLK_T_GET_ID, 0, id, 20, &used) != VIRTIO_BLK_S_OK) {
        return 6;
    }
    serial_printf("virtio-blk: id %s (%u)\n", id, (unsigned)used);
    serial_printf("virtio-blk: blk_size %u\n", (unsigned)mmio_read32(dev.device + 20));
    return 0;
}

int main(const char *cmdline)
{
    long mode = cmdline_get_int(cmdline, "mode", 0);
    unsigned nq = cmdline_get_int(cmdline, "queues", 1) == 2 ? 2 : 1;
    bool ro = mode == 1;
    int r;

    serial_init();
    lapic_write(APIC_SPIV, APIC_SPIV_APIC_ENABLED | 0xff); /* accept the MSIs */
    if ((r = virtio_open(&dev, VIRTIO_ID_BLOCK, 0))) {
        return r;
    }
    if (ro && !(device_features() & (1u << VIRTIO_BLK_F_RO))) {
        return 12;
    }
    if ((r = start(nq, ro)) || (r = print_id())) {
        return r;
    }
    if (ro) {
        if (blk_request(&queues[0], VIRTIO_BLK_T_OUT, 0, queues[0].buf, SECTOR, NULL) !=
            VIRTIO_BLK_S_IOERR) {
            return 9;
        }
        if (blk_request(&queues[0], VIRTIO_BLK_T_IN, 0, queues[0].buf, SECTOR, NULL) ||
            blk_request(&queues[0], VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL)) {
            return 6;
        }
        serial_printf("virtio-blk: ok (read-only)\n");
        return 0;
    }
    if (mode >= 10) {
        if ((r = hostile(mode))) {
            return r;
        }
        if ((r = start(nq, false))) {
            return r;
        }
    } else if (mode == 3) {
        if ((r = reset_in_flight(nq))) {
            return r;
        }
    } else if (mode != 0 && mode != 2) {
        return 13;
    }
    if (nq == 2 && smp_start_aps(ap_main) < 0) {
        return 11;
    }
    if ((r = blk_region(0))) {
        return r;
    }
    if (nq == 2) {
        uint64_t t0 = rdtsc();
        while (ap_result == 0xffffffffu && rdtsc() - t0 < TIMEOUT) {
            cpu_pause();
        }
        if (ap_result != 0) {
            return 11;
        }
    }
    if (!lapic_irr_pending(VIRTIO_GUEST_VECTOR_BASE + 1)) {
        return 10;
    }
    if (mode == 2) {
        serial_printf("virtio-blk: flushed\n");
        for (uint8_t v = 0;; v++) {
            memset(queues[0].buf, v, CHUNK);
            blk_request(&queues[0], VIRTIO_BLK_T_OUT, 256, queues[0].buf, CHUNK, NULL);
        }
    }
    serial_printf("virtio-blk: ok (mode %ld, %u queues)\n", mode, nq);
    return 0;
}
