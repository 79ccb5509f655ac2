/*
 * bench-blk: a virtio-blk driver that keeps a number of requests in flight, for the block
 * benchmark.
 *
 * The block benchmark (tools/bench/) runs this payload under kvmloop and
 * under QEMU with the same image. Arguments:
 *   n=N       requests in all (default 10000)
 *   qd=D      requests in flight, 1 to 64 (default 1)
 *   bs=B      bytes per request, a multiple of 512 up to 131072 (default 4096)
 *   write=1   writes (OUT) instead of reads (IN)
 *   rand=1    each request at a random bs-aligned offset (a fixed
 *             pseudo-random sequence), instead of one after the other
 *   span=M    the requests stay in the first M MiB of the disk (default:
 *             the whole disk)
 *
 * The driver works the way Linux's does, minus everything a benchmark can
 * drop: it sets up one queue of 256 entries with an MSI-X vector (the device
 * interrupts as it would for Linux; interrupts stay off here, so the MSIs
 * only set the LAPIC's IRR), gives every slot a fixed three-descriptor chain
 * (header, data, status) built once, and then only rewrites the header and
 * offers the chain again. It polls the used ring, reaps every element there
 * is, refills those slots and rings the doorbell once per batch, and only
 * when the device has not set VRING_USED_F_NO_NOTIFY. Data is not touched:
 * the guest's own time goes to the ring, not to the buffers (on a host that
 * emulates guest kernel code, every guest instruction is expensive).
 *
 * Output: "bench-blk: write=<0|1> rand=<0|1> bs=<B> qd=<D> n=<N>\n" (numbers
 * zero-padded to fixed widths);
 * "bench-blk: go\n" just before the first request; "bench-blk: done in <C>
 * cycles\n" when the last has completed (C in TSC cycles, the host's rate).
 * Exit (debug-exit value):
 *   0  every request completed with VIRTIO_BLK_S_OK
 *   1  no virtio-blk device; 2 a capability missing; 3 features refused;
 *   4  the queue is too small; 5 a request did not complete in time;
 *   6  a request failed; 7 a bad argument; 8 the disk is smaller than bs
 */
#include "lib/virtio.h"

#define VIRTIO_ID_BLOCK     2
#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VRING_USED_F_NO_NOTIFY 1
#define QSIZE               256
#define MAX_QD              64
#define MAX_BS              (128 * 1024)
#define SECTOR              512
/* The data buffers, one per slot, above the image and its stacks; the
 * benchmark gives the guest 64 MiB. */
#define DATA_BASE 0x01000000u
#define TIMEOUT   (1ULL << 36)

struct blk_hdr {
    uint32_t type, ioprio;
    uint64_t sector;
};

static uint8_t ring_mem[VQ_MEM_SIZE(QSIZE)] __attribute__((aligned(4096)));
static struct blk_hdr hdrs[MAX_QD];
static volatile uint8_t status[MAX_QD];
static struct vdev dev;
static struct vq q;

static uint32_t rng_state = 0x2545f491u;

static uint32_t rng_next(void)
{
    /* xorshift32: the same sequence under every VMM. */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint64_t next_sector;
static uint32_t span_blocks;
static unsigned sectors_per_req;
static bool random_access;

static uint64_t pick_sector(void)
{
    uint64_t s;
    if (random_access) {
        return (uint64_t)(rng_next() % span_blocks) * sectors_per_req;
    }
    s = next_sector;
    next_sector += sectors_per_req;
    if (next_sector + sectors_per_req > (uint64_t)span_blocks * sectors_per_req) {
        next_sector = 0;
    }
    return s;
}

static void offer(unsigned slot)
{
    hdrs[slot].sector = pick_sector();
    status[slot] = 0xff;
    q.avail[2 + q.avail_idx % QSIZE] = (uint16_t)(3 * slot);
    q.avail_idx++;
}

static void publish_and_kick(void)
{
    wmb(); /* the ring entries before the index */
    q.avail[1] = q.avail_idx;
    mb(); /* the index before reading the device's flags */
    if (!(q.used[0] & VRING_USED_F_NO_NOTIFY)) {
        mmio_write16(q.notify_addr, 0);
    }
}

int main(const char *cmdline)
{
    long n = cmdline_get_int(cmdline, "n", 10000);
    long qd = cmdline_get_int(cmdline, "qd", 1);
    long bs = cmdline_get_int(cmdline, "bs", 4096);
    long span_mib = cmdline_get_int(cmdline, "span", 0);
    bool write = cmdline_get_int(cmdline, "write", 0) != 0;
    int r;

    random_access = cmdline_get_int(cmdline, "rand", 0) != 0;
    serial_init();
    /* Fixed widths: the output (and so the exits it costs) is the same
     * whatever the arguments, so runs differing in n differ only in requests. */
    serial_printf("bench-blk: write=%d rand=%d bs=%06ld qd=%02ld n=%010ld\n", write,
                  random_access, bs, qd, n);
    if (n < 1 || qd < 1 || qd > MAX_QD || bs < SECTOR || bs > MAX_BS || bs % SECTOR ||
        span_mib < 0) {
        return 7;
    }
    lapic_write(APIC_SPIV, APIC_SPIV_APIC_ENABLED | 0xff); /* accept the MSIs */
    if ((r = virtio_open(&dev, VIRTIO_ID_BLOCK, 0)) ||
        (r = virtio_start(&dev, 0, (struct vq *[]){&q}, (void *[]){ring_mem}, 1, QSIZE))) {
        return r;
    }

    uint64_t capacity = mmio_read32(dev.device) | (uint64_t)mmio_read32(dev.device + 4) << 32;
    uint64_t span = span_mib ? (uint64_t)span_mib * 2048 : capacity;
    if (span > capacity) {
        span = capacity;
    }
    if (span > 0xffffffffu) {
        span = 0xffffffffu; /* 32-bit arithmetic: the first 2 TiB */
    }
    sectors_per_req = (unsigned)(bs / SECTOR);
    span_blocks = (uint32_t)span / sectors_per_req;
    if (span_blocks == 0) {
        return 8;
    }
    for (unsigned s = 0; s < (unsigned)qd; s++) {
        uint16_t d = (uint16_t)(3 * s);
        hdrs[s] = (struct blk_hdr){write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, 0, 0};
        q.desc[d] = (struct vring_desc){(uintptr_t)&hdrs[s], sizeof(hdrs[s]), VRING_DESC_F_NEXT,
                                        (uint16_t)(d + 1)};
        q.desc[d + 1] = (struct vring_desc){DATA_BASE + (uint32_t)s * MAX_BS, (uint32_t)bs,
                                            (uint16_t)((write ? 0 : VRING_DESC_F_WRITE) |
                                                       VRING_DESC_F_NEXT),
                                            (uint16_t)(d + 2)};
        q.desc[d + 2] = (struct vring_desc){(uintptr_t)&status[s], 1, VRING_DESC_F_WRITE, 0};
    }

    long submitted = 0, completed = 0;
    serial_puts("bench-blk: go\n");
    uint64_t start = rdtsc();
    for (; submitted < qd && submitted < n; submitted++) {
        offer((unsigned)submitted);
    }
    publish_and_kick();
    while (completed < n) {
        uint64_t t0 = rdtsc();
        uint16_t used_idx;
        while ((used_idx = (uint16_t)(q.used[0] >> 16)) == q.last_used) {
            if (rdtsc() - t0 > TIMEOUT) {
                return 5;
            }
            cpu_pause();
        }
        rmb(); /* the index before the elements */
        unsigned refill = 0;
        while (q.last_used != used_idx) {
            unsigned id = q.used[1 + 2 * (q.last_used % QSIZE)];
            unsigned slot = id / 3;
            q.last_used++;
            if (id % 3 || slot >= (unsigned)qd || status[slot] != 0) {
                return 6;
            }
            completed++;
            if (submitted < n) {
                offer(slot);
                submitted++;
                refill++;
            }
        }
        if (refill) {
            publish_and_kick();
        }
    }
    uint64_t cycles = rdtsc() - start;
    serial_printf("bench-blk: done in %020llu cycles\n", (unsigned long long)cycles);
    return 0;
}
