/*
 * virtio-rng: a driver for the virtio entropy device, and a hostile one.
 *
 * Finds the device on PCI bus 0, negotiates VERSION_1, sets up queue 0 with
 * MSI-X vector 1, asks for 64 random bytes and polls the used ring; the
 * interrupt is checked in the LAPIC's IRR with interrupts off (the emulator
 * here cannot return from a handler). With mode=N it first breaks the rules
 * in one way, waits for the device to report DEVICE_NEEDS_RESET, then resets
 * it and checks that a proper request still works.
 *
 * Modes: 0 none; 1 descriptor loop; 2 a buffer past RAM; 3 a head index out
 * of range; 4 the rings in MMIO space; 5 a request after reset (ignored, not
 * broken); 6 an available index a whole ring ahead.
 *
 * Exit codes: 0 ok; 1 no device; 2 capability missing; 3 features refused;
 * 4 queue too small; 5 no used element; 6 short or zero random data; 7 no
 * MSI in the IRR; 8 device not marked broken; 9 a request after reset was
 * served; 10 bad mode.
 */
#include "lib/virtio.h"

#define VIRTIO_ID_RNG 4
#define QSIZE         8
#define TIMEOUT       (1ULL << 32)
#define RAM_END_GUESS 0xbffff000u

static uint8_t ring_mem[VQ_MEM_SIZE(QSIZE)] __attribute__((aligned(4096)));
static uint8_t buf[64];

static int request(struct vq *q)
{
    uint32_t len = 0;
    memset(buf, 0, sizeof(buf));
    q->desc[0] = (struct vring_desc){(uintptr_t)buf, sizeof(buf), VRING_DESC_F_WRITE, 0};
    vq_submit(q, 0);
    vq_kick(q);
    if (vq_wait_used(q, &len, TIMEOUT) != 0) {
        return 5;
    }
    unsigned nonzero = 0;
    for (unsigned i = 0; i < sizeof(buf); i++) {
        nonzero += buf[i] != 0;
    }
    return len == sizeof(buf) && nonzero > 8 ? 0 : 6;
}

static int start(struct vdev *d, struct vq *q)
{
    return virtio_start(d, 0, (struct vq *[]){q}, (void *[]){ring_mem}, 1, QSIZE);
}

static int hostile(struct vdev *d, struct vq *q, long mode)
{
    uint32_t len;
    switch (mode) {
    case 1:
        q->desc[0] = (struct vring_desc){(uintptr_t)buf, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1};
        q->desc[1] = (struct vring_desc){(uintptr_t)buf, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0};
        break;
    case 2:
        q->desc[0] = (struct vring_desc){RAM_END_GUESS, 0x100000, VRING_DESC_F_WRITE, 0};
        break;
    case 3:
        q->avail[2] = 200;
        q->avail[1] = ++q->avail_idx;
        vq_kick(q);
        return virtio_wait_needs_reset(d, TIMEOUT) ? 0 : 8;
    case 6:
        q->desc[0] = (struct vring_desc){(uintptr_t)buf, 8, VRING_DESC_F_WRITE, 0};
        q->avail_idx = QSIZE + 1;
        q->avail[1] = q->avail_idx;
        vq_kick(q);
        return virtio_wait_needs_reset(d, TIMEOUT) ? 0 : 8;
    case 5:
        virtio_set_status(d, 0);
        q->desc[0] = (struct vring_desc){(uintptr_t)buf, 8, VRING_DESC_F_WRITE, 0};
        vq_submit(q, 0);
        vq_kick(q);
        if (vq_wait_used(q, &len, TIMEOUT >> 4) >= 0) {
            return 9;
        }
        return virtio_status(d) == 0 ? 0 : 8;
    default:
        return 10;
    }
    vq_submit(q, 0);
    vq_kick(q);
    return virtio_wait_needs_reset(d, TIMEOUT) ? 0 : 8;
}

int main(const char *cmdline)
{
    struct vdev d;
    struct vq q;
    long mode = cmdline_get_int(cmdline, "mode", 0);

    serial_init();
    lapic_write(APIC_SPIV, APIC_SPIV_APIC_ENABLED | 0xff); /* accept the MSIs */
    int r = virtio_open(&d, VIRTIO_ID_RNG, 0);
    if (r) {
        return r;
    }
    if (mode == 4) {
        /* Rings at an unassigned MMIO address: rejected at enable. */
        if (virtio_negotiate(&d, 0)) {
            return 3;
        }
        virtio_queue_setup(&d, &q, 0, QSIZE, (void *)0xd0000000, 1);
        if (!virtio_wait_needs_reset(&d, TIMEOUT)) {
            return 8;
        }
    } else if (mode) {
        if ((r = start(&d, &q))) {
            return r;
        }
        if ((r = hostile(&d, &q, mode))) {
            return r;
        }
    }
    /* A proper driver: the device works after any of the above and a reset. */
    if ((r = start(&d, &q))) {
        return r;
    }
    if ((r = request(&q))) {
        return r;
    }
    if (!lapic_irr_pending(VIRTIO_GUEST_VECTOR_BASE + 1)) {
        return 7;
    }
    serial_printf("virtio-rng: ok (mode %ld)\n", mode);
    return 0;
}
