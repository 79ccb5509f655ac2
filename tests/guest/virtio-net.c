/*
 * virtio-net: a driver that trades frames with the host through the tap, and hostile ones.
 *
 * Negotiates VERSION_1, MAC and STATUS; checks the link is up; posts QSIZE
 * receive buffers of 12 + 1024 bytes on receiveq 0 (MSI-X vector 1). It
 * waits for the host's first frame (EtherType 0x88B5, sequence 0), then
 * sends one frame on transmitq 1 (vector 2) as a 12-byte header and the
 * frame in two descriptors; the header asks for a checksum offload the
 * device never offered, which the device must not pass on. The frame is
 * dst 02:00:00:00:00:01, src the device's MAC, type 0x88B5, then "kvmloop
 * virtio-net" and bytes (i * 7 + 3) & 0xff up to 200 payload bytes.
 *
 * Then it receives the host's frames with sequence 1..NFRAMES, in order,
 * each with 46 + (seq * 23) % 900 payload bytes: the sequence (big endian)
 * and bytes (seq * 31 + i) & 0xff. Buffers go back to the device only when
 * all QSIZE are used, so the device runs out while frames wait. A frame
 * with sequence 0xffff is too large for a buffer and must never arrive.
 * Prints "virtio-net: ok mac=..." at the end.
 *
 * mode=1 first sends a transmit chain shorter than the header; mode=2 posts
 * a receive buffer the device may not write; either waits for
 * DEVICE_NEEDS_RESET, resets and does the above.
 *
 * Exit codes: 0 ok; 1 no device; 2 capability missing; 3 features refused;
 * 4 queue too small; 5 link down; 6 no first frame; 7 frame not sent;
 * 8 device not marked broken; 9 bad header; 10 bad frame; 11 frame missing
 * or out of order; 12 the oversized frame arrived; 13 bad mode.
 */
#include "lib/virtio.h"

#define VIRTIO_ID_NET        1
#define VIRTIO_NET_F_MAC     5
#define VIRTIO_NET_F_STATUS  16
#define VIRTIO_NET_S_LINK_UP 1
#define HDR_LEN              12
#define QSIZE                8
#define BUF_LEN              (HDR_LEN + 1024)
#define NFRAMES              40
#define ETH_TYPE_TEST        0x88b5
#define GUEST_PAYLOAD        200
#define TIMEOUT              (1ULL << 35)

static uint8_t rx_mem[VQ_MEM_SIZE(QSIZE)] __attribute__((aligned(4096)));
static uint8_t tx_mem[VQ_MEM_SIZE(QSIZE)] __attribute__((aligned(4096)));
static uint8_t rxbuf[QSIZE][BUF_LEN];
static uint8_t txhdr[HDR_LEN];
static uint8_t txframe[14 + GUEST_PAYLOAD];
static uint8_t mac[6];
static const uint8_t host_mac[6] = {2, 0, 0, 0, 0, 1};

static int start(struct vdev *d, struct vq *rx, struct vq *tx)
{
    return virtio_start(d, (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS),
                        (struct vq *[]){rx, tx}, (void *[]){rx_mem, tx_mem}, 2, QSIZE);
}

static int hostile(struct vdev *d, struct vq *rx, struct vq *tx, long mode)
{
    int r = start(d, rx, tx);
    if (r) {
        return r;
    }
    switch (mode) {
    case 1:
        tx->desc[0] = (struct vring_desc){(uintptr_t)txhdr, HDR_LEN - 4, 0, 0};
        vq_submit(tx, 0);
        vq_kick(tx);
        break;
    case 2:
        /* Found when the host's next frame arrives. */
        rx->desc[0] = (struct vring_desc){(uintptr_t)rxbuf[0], BUF_LEN, 0, 0};
        vq_submit(rx, 0);
        vq_kick(rx);
        break;
    default:
        return 13;
    }
    if (!virtio_wait_needs_reset(d, TIMEOUT)) {
        return 8;
    }
    virtio_set_status(d, 0);
    return 0;
}

static void post_all(struct vq *rx)
{
    for (unsigned i = 0; i < QSIZE; i++) {
        rx->desc[i] = (struct vring_desc){(uintptr_t)rxbuf[i], BUF_LEN, VRING_DESC_F_WRITE, 0};
        vq_submit(rx, (uint16_t)i);
    }
    vq_kick(rx);
}

static unsigned host_payload_len(unsigned seq)
{
    return 46 + (seq * 23) % 900;
}

/* Check one received buffer. Returns -1 for a frame that is not ours,
 * the sequence number, or -(exit code) - 100. */
static int check_frame(const uint8_t *b, uint32_t len)
{
    if (len < HDR_LEN + 14) {
        return -109;
    }
    /* No offload negotiated: flags and GSO type 0, one buffer. */
    if (b[0] != 0 || b[1] != 0 || b[10] != 1 || b[11] != 0) {
        return -109;
    }
    const uint8_t *f = b + HDR_LEN;
    if (((f[12] << 8) | f[13]) != ETH_TYPE_TEST) {
        return -1; /* the host stack's own chatter */
    }
    for (int i = 0; i < 6; i++) {
        if (f[i] != mac[i] || f[6 + i] != host_mac[i]) {
            return -110;
        }
    }
    unsigned seq = (unsigned)(f[14] << 8 | f[15]);
    if (seq == 0xffff) {
        return -112;
    }
    if (len != HDR_LEN + 14 + host_payload_len(seq)) {
        return -110;
    }
    for (unsigned i = 2; i < host_payload_len(seq); i++) {
        if (f[14 + i] != (uint8_t)(seq * 31 + i)) {
            return -110;
        }
    }
    return (int)seq;
}

static void build_frame(void)
{
    static const char tag[] = "kvmloop virtio-net";
    for (int i = 0; i < 6; i++) {
        txframe[i] = host_mac[i];
        txframe[6 + i] = mac[i];
    }
    txframe[12] = ETH_TYPE_TEST >> 8;
    txframe[13] = ETH_TYPE_TEST & 0xff;
    for (unsigned i = 0; i < GUEST_PAYLOAD; i++) {
        txframe[14 + i] = i < sizeof(tag) ? (uint8_t)tag[i] : (uint8_t)(i * 7 + 3);
    }
    /* NEEDS_CSUM over the payload: a device that passed this on would
     * have the host's kernel write a checksum into the frame. */
    txhdr[0] = 1;
    txhdr[6] = 14;
    txhdr[8] = 2;
}

static int run(struct vq *rx, struct vq *tx)
{
    unsigned used = 0, want = 0;
    uint32_t len;

    post_all(rx);
    while (want <= NFRAMES) {
        int id = vq_wait_used(rx, &len, TIMEOUT);
        if (id < 0 || id >= QSIZE || len > BUF_LEN) {
            return want == 0 ? 6 : 11;
        }
        int seq = check_frame(rxbuf[id], len);
        if (seq <= -100) {
            return -seq - 100;
        }
        if (want == 0 && seq == 0) {
            tx->desc[0] = (struct vring_desc){(uintptr_t)txhdr, HDR_LEN, VRING_DESC_F_NEXT, 1};
            tx->desc[1] = (struct vring_desc){(uintptr_t)txframe, sizeof(txframe), 0, 0};
            vq_submit(tx, 0);
            vq_kick(tx);
            if (vq_wait_used(tx, &len, TIMEOUT) != 0) {
                return 7;
            }
            want = 1;
        } else if (seq > 0) {
            if ((unsigned)seq != want) {
                return 11;
            }
            want++;
        }
        if (++used == QSIZE) {
            used = 0;
            post_all(rx);
        }
    }
    return 0;
}

int main(const char *cmdline)
{
    struct vdev d;
    struct vq rx, tx;
    long mode = cmdline_get_int(cmdline, "mode", 0);
    int r;

    serial_init();
    lapic_write(APIC_SPIV, APIC_SPIV_APIC_ENABLED | 0xff); /* accept the MSIs */
    if ((r = virtio_open(&d, VIRTIO_ID_NET, 0))) {
        return r;
    }
    if (mode && (r = hostile(&d, &rx, &tx, mode))) {
        return r;
    }
    if ((r = start(&d, &rx, &tx))) {
        return r;
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = mmio_read8(d.device + (unsigned)i);
    }
    if (!(mmio_read16(d.device + 6) & VIRTIO_NET_S_LINK_UP)) {
        return 5;
    }
    build_frame();
    if ((r = run(&rx, &tx))) {
        return r;
    }
    serial_printf("virtio-net: ok mac=%x:%x:%x:%x:%x:%x\n", mac[0], mac[1], mac[2], mac[3],
                  mac[4], mac[5]);
    return 0;
}
