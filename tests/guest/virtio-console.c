/*
 * virtio-console: a driver for the single-port virtio console, and a hostile one.
 *
 * Finds the device, negotiates no feature but VERSION_1, posts four receive
 * buffers on receiveq 0 (MSI-X vector 1) and sends one line on transmitq 0
 * (vector 2). Then it collects received bytes up to a newline and echoes
 * the line on the UART as "virtio-console: got <line>". With mode=1 it
 * first sends a descriptor loop on the transmit queue, waits for
 * DEVICE_NEEDS_RESET and resets the device; with mode=2 it posts a receive
 * buffer the device may not write, likewise.
 *
 * Exit codes: 0 ok; 1 no device; 2 capability missing; 3 features refused;
 * 4 queue too small; 5 the line was not taken; 6 no input arrived; 8 device
 * not marked broken; 10 bad mode.
 */
#include "lib/virtio.h"

#define VIRTIO_ID_CONSOLE 3
#define QSIZE             8
#define NRX               4
#define RXLEN             16
#define TIMEOUT           (1ULL << 34)

static uint8_t rx_mem[VQ_MEM_SIZE(QSIZE)] __attribute__((aligned(4096)));
static uint8_t tx_mem[VQ_MEM_SIZE(QSIZE)] __attribute__((aligned(4096)));
static char rxbuf[NRX][RXLEN];
static const char line[] = "hello from the guest over hvc\n";
static char got[128];

static int start(struct vdev *d, struct vq *rx, struct vq *tx)
{
    return virtio_start(d, 0, (struct vq *[]){rx, tx}, (void *[]){rx_mem, tx_mem}, 2, QSIZE);
}

static int hostile(struct vdev *d, struct vq *rx, struct vq *tx, long mode)
{
    int r = start(d, rx, tx);
    if (r) {
        return r;
    }
    switch (mode) {
    case 1:
        tx->desc[0] = (struct vring_desc){(uintptr_t)line, 4, VRING_DESC_F_NEXT, 1};
        tx->desc[1] = (struct vring_desc){(uintptr_t)line, 4, VRING_DESC_F_NEXT, 0};
        vq_submit(tx, 0);
        vq_kick(tx);
        break;
    case 2:
        /* Read-only: the device has nowhere to put input. Input arrives
         * (or is held) before or after this; either way the device sees it. */
        rx->desc[0] = (struct vring_desc){(uintptr_t)rxbuf[0], RXLEN, 0, 0};
        vq_submit(rx, 0);
        vq_kick(rx);
        break;
    default:
        return 10;
    }
    if (!virtio_wait_needs_reset(d, TIMEOUT)) {
        return 8;
    }
    virtio_set_status(d, 0);
    return 0;
}

int main(const char *cmdline)
{
    struct vdev d;
    struct vq rx, tx;
    uint32_t len;
    long mode = cmdline_get_int(cmdline, "mode", 0);
    int r;

    serial_init();
    lapic_write(APIC_SPIV, APIC_SPIV_APIC_ENABLED | 0xff); /* accept the MSIs */
    if ((r = virtio_open(&d, VIRTIO_ID_CONSOLE, 0))) {
        return r;
    }
    if (mode && (r = hostile(&d, &rx, &tx, mode))) {
        return r;
    }
    if ((r = start(&d, &rx, &tx))) {
        return r;
    }
    for (unsigned i = 0; i < NRX; i++) {
        rx.desc[i] = (struct vring_desc){(uintptr_t)rxbuf[i], RXLEN, VRING_DESC_F_WRITE, 0};
        vq_submit(&rx, (uint16_t)i);
    }
    vq_kick(&rx);

    tx.desc[0] = (struct vring_desc){(uintptr_t)line, sizeof(line) - 1, 0, 0};
    vq_submit(&tx, 0);
    vq_kick(&tx);
    if (vq_wait_used(&tx, &len, TIMEOUT) != 0) {
        return 5;
    }

    /* Input comes in pieces no longer than a buffer; each used buffer goes
     * straight back to the device. */
    unsigned n = 0;
    while (n == 0 || got[n - 1] != '\n') {
        int id = vq_wait_used(&rx, &len, TIMEOUT);
        if (id < 0 || id >= NRX || len > RXLEN) {
            return 6;
        }
        for (uint32_t i = 0; i < len && n < sizeof(got) - 1; i++) {
            got[n++] = rxbuf[id][i];
        }
        vq_submit(&rx, (uint16_t)id);
        vq_kick(&rx);
        if (n == sizeof(got) - 1) {
            break;
        }
    }
    got[n] = 0;
    serial_printf("virtio-console: got %s", got);
    return 0;
}
