/* virtio-net on real KVM and a real tap: the payload driver trades frames with an AF_PACKET socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "kvmloop/chardev.h"
#include "kvmloop/device.h"
#include "kvmloop/machine.h"
#include "kvmloop/stats.h"
#include "kvmloop/virtio.h"

#include "kvm-test-run.h"

/* What tests/guest/virtio-net.c sends and expects: see its header. */
#define ETH_TYPE_TEST  0x88b5
#define NFRAMES        40
#define GUEST_PAYLOAD  200
#define OVERSIZED_SEQ  0xffff
#define OVERSIZED_LEN  1200
#define OVERSIZED_FROM 20 /* sent after this frame */
#define GUEST_MAC      "\x52\x54\x00\x12\x34\x56"
#define HOST_MAC       "\x02\x00\x00\x00\x00\x01"
#define HOST_TIMEOUT_S 120

typedef struct Host {
    char ifname[IFNAMSIZ];
    pthread_t thread;
    bool stop; /* atomic */
    /* Written by the host thread, read after the join. */
    bool got_frame;
    char *error;
} Host;

typedef struct Run {
    int status;
    char *serial;
    VirtioStats stats;
    VirtioNetStats net;
    bool broken;
    char *ifname;
    Host host;
} Run;

static const char *guest_dir;

/* ---- The host side of the tap ------------------------------------------- */

static bool host_up(Host *h, int sock)
{
    struct ifreq ifr = {0};
    g_strlcpy(ifr.ifr_name, h->ifname, sizeof(ifr.ifr_name));
    /* The stack's IPv6 chatter is harmless (the guest skips it) but noisy. */
    g_autofree char *v6 = g_strdup_printf("/proc/sys/net/ipv6/conf/%s/disable_ipv6", h->ifname);
    g_file_set_contents(v6, "1", 1, NULL);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) {
        h->error = g_strdup_printf("SIOCGIFFLAGS %s: %s", h->ifname, g_strerror(errno));
        return false;
    }
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) {
        h->error = g_strdup_printf("SIOCSIFFLAGS %s: %s", h->ifname, g_strerror(errno));
        return false;
    }
    return true;
}

static size_t host_frame(uint8_t *f, unsigned seq, size_t plen)
{
    memcpy(f, GUEST_MAC, 6);
    memcpy(f + 6, HOST_MAC, 6);
    f[12] = ETH_TYPE_TEST >> 8;
    f[13] = ETH_TYPE_TEST & 0xff;
    f[14] = (uint8_t)(seq >> 8);
    f[15] = (uint8_t)seq;
    for (size_t i = 2; i < plen; i++) {
        f[14 + i] = (uint8_t)(seq * 31 + i);
    }
    return 14 + plen;
}

static bool host_send(Host *h, int sock, unsigned seq, size_t plen)
{
    uint8_t f[14 + OVERSIZED_LEN];
    size_t len = host_frame(f, seq, plen);
    if (send(sock, f, len, 0) != (ssize_t)len) {
        h->error = g_strdup_printf("send frame %u: %s", seq, g_strerror(errno));
        return false;
    }
    return true;
}

/* The frame the guest sends, byte for byte; a checksum written into it
 * means the device passed on an offload request. */
static void guest_frame(uint8_t *f)
{
    static const char tag[] = "kvmloop virtio-net";
    memcpy(f, HOST_MAC, 6);
    memcpy(f + 6, GUEST_MAC, 6);
    f[12] = ETH_TYPE_TEST >> 8;
    f[13] = ETH_TYPE_TEST & 0xff;
    for (unsigned i = 0; i < GUEST_PAYLOAD; i++) {
        f[14 + i] = i < sizeof(tag) ? (uint8_t)tag[i] : (uint8_t)(i * 7 + 3);
    }
}

/* Wait up to 100 ms for a frame the guest sent; 1 it matched, 0 nothing,
 * -1 a wrong frame (h->error says how). */
static int host_receive(Host *h, int sock)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};
    uint8_t buf[2048], want[14 + GUEST_PAYLOAD];
    struct sockaddr_ll from;
    socklen_t fl = sizeof(from);

    if (poll(&p, 1, 100) <= 0) {
        return 0;
    }
    ssize_t n = recvfrom(sock, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
    if (n < 0 || from.sll_pkttype == PACKET_OUTGOING) {
        return 0; /* our own frames on their way to the guest */
    }
    guest_frame(want);
    if ((size_t)n != sizeof(want) || memcmp(buf, want, sizeof(want)) != 0) {
        for (ssize_t i = 0; i < n && i < (ssize_t)sizeof(want); i++) {
            if (buf[i] != want[i]) {
                h->error = g_strdup_printf("guest frame: %zd bytes, byte %zd is 0x%02x not 0x%02x",
                                           n, i, buf[i], want[i]);
                return -1;
            }
        }
        h->error = g_strdup_printf("guest frame: %zd bytes, expected %zu", n, sizeof(want));
        return -1;
    }
    return 1;
}

/* Bring the tap up, greet the guest until its frame comes, then send the
 * numbered frames and the oversized one. */
static void *host_thread(void *opaque)
{
    Host *h = opaque;
    int sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_TYPE_TEST));
    if (sock < 0) {
        h->error = g_strdup_printf("AF_PACKET socket: %s", g_strerror(errno));
        return NULL;
    }
    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_protocol = htons(ETH_TYPE_TEST),
                              .sll_ifindex = (int)if_nametoindex(h->ifname)};
    if (!host_up(h, sock)) {
        goto out;
    }
    if (bind(sock, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        h->error = g_strdup_printf("bind to %s: %s", h->ifname, g_strerror(errno));
        goto out;
    }
    int64_t deadline = g_get_monotonic_time() + HOST_TIMEOUT_S * G_USEC_PER_SEC;
    int r = 0;
    while (r == 0 && !__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
        if (g_get_monotonic_time() > deadline) {
            h->error = g_strdup("no frame from the guest");
            goto out;
        }
        if (!host_send(h, sock, 0, 46)) {
            goto out;
        }
        r = host_receive(h, sock);
    }
    if (r < 0 || r == 0) {
        goto out;
    }
    h->got_frame = true;
    for (unsigned seq = 1; seq <= NFRAMES; seq++) {
        if (!host_send(h, sock, seq, 46 + (seq * 23) % 900)) {
            goto out;
        }
        if (seq == OVERSIZED_FROM && !host_send(h, sock, OVERSIZED_SEQ, OVERSIZED_LEN)) {
            goto out;
        }
    }
out:
    close(sock);
    return NULL;
}

/* ---- Running kvmloop ----------------------------------------------------- */

static void on_started(Machine *m, EventLoop *loop, void *opaque)
{
    Run *r = opaque;
    (void)m;
    (void)loop;
    g_assert_cmpint(pthread_create(&r->host.thread, NULL, host_thread, &r->host), ==, 0);
}

/* The statistics document and the -stats table carry the NIC's counters. */
static void check_stats_report(Machine *m, VirtioNetStats net)
{
    g_autoptr(JsonNode) root = stats_to_json(m);
    JsonArray *nics = json_object_get_array_member(json_node_get_object(root), "nics");
    g_assert_cmpuint(json_array_get_length(nics), ==, 1);
    JsonObject *n = json_array_get_object_element(nics, 0);
    g_assert_cmpstr(json_object_get_string_member(n, "id"), ==, "net0");
    g_assert_cmpstr(json_object_get_string_member(n, "tap"), ==,
                    virtio_net_ifname(machine_find_device(m, "net0")));
    g_assert_cmpint(json_object_get_int_member(n, "rx_frames"), ==, (gint64)net.rx_frames);
    g_assert_cmpint(json_object_get_int_member(n, "tx_frames"), ==, (gint64)net.tx_frames);
    g_assert_cmpint(json_object_get_int_member(n, "rx_oversized"), ==, (gint64)net.rx_oversized);
    g_assert_cmpint(json_object_get_int_member(n, "rx_stalls"), ==, (gint64)net.rx_stalls);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    stats_print(m, f);
    fclose(f);
    g_autofree char *row =
        g_strdup_printf("  %-12s %-12s %10" G_GUINT64_FORMAT, "net0",
                        virtio_net_ifname(machine_find_device(m, "net0")), net.rx_frames);
    g_assert_nonnull(strstr(text, "\nnics\n"));
    g_assert_nonnull(strstr(text, row));
    free(text);
}

static void on_stopped(Machine *m, int status, void *opaque)
{
    Run *r = opaque;
    (void)status;
    Chardev *chr = machine_serial(m, 0);
    size_t len;
    const uint8_t *buf = chardev_captured(chr, &len);
    r->serial = g_strndup(buf ? (const char *)buf : "", len);
    Device *d = machine_find_device(m, "net0");
    g_assert_nonnull(d);
    r->stats = virtio_device_stats(d);
    r->net = virtio_net_stats(d);
    r->broken = virtio_device_broken(d);
    check_stats_report(m, r->net);
    r->ifname = g_strdup(virtio_net_ifname(d));
    __atomic_store_n(&r->host.stop, true, __ATOMIC_RELEASE);
    pthread_join(r->host.thread, NULL);
}

static void run_vm(Run *r, const char *append, bool iothread, const char *object)
{
    g_autofree char *k = g_strdup_printf("%s/virtio-net.elf", guest_dir);
    g_autofree char *netdev = g_strdup_printf("tap,id=n0,ifname=%s", r->host.ifname);
    const char *args[] = {"-kernel",
                          k,
                          "-append",
                          append,
                          "-object",
                          object,
                          "-netdev",
                          netdev,
                          "-device",
                          iothread ? "virtio-net-pci,id=net0,netdev=n0,iothread=io0"
                                   : "virtio-net-pci,id=net0,netdev=n0",
                          NULL};
    VmHooks hooks = {.started = on_started, .stopped = on_stopped, .opaque = r};
    r->status = kvm_test_run(args, NULL, &hooks);
}

static void run_free(Run *r)
{
    g_free(r->serial);
    g_free(r->ifname);
    g_free(r->host.error);
}

typedef struct NetCase {
    const char *append;
    bool iothread;
    unsigned broken;
    const char *object; /* the -object iothread, NULL: GLib's loop */
} NetCase;

/* Frames both ways, a burst larger than the receive ring, one frame too
 * large for the guest's buffers; with a hostile prelude the device breaks
 * first and serves again after the driver's reset. */
static void test_net(gconstpointer data)
{
    const NetCase *c = data;
    Run r = {0};
    g_snprintf(r.host.ifname, sizeof(r.host.ifname), "kvmloopt%u", (unsigned)getpid() % 100000);
    run_vm(&r, c->append, c->iothread, c->object ? c->object : "iothread,id=io0");
    if (r.status != 1 || r.host.error) {
        g_printerr("status %d, host: %s\nserial:\n%s\n", r.status,
                   r.host.error ? r.host.error : "ok", r.serial);
    }
    g_assert_null(r.host.error);
    g_assert_true(r.host.got_frame);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_nonnull(strstr(r.serial, "virtio-net: ok mac=52:54:0:12:34:56"));
    g_assert_cmpstr(r.ifname, ==, r.host.ifname);
    g_assert_cmpuint(r.net.tx_frames, ==, 1);
    g_assert_cmpuint(r.net.rx_frames, >=, NFRAMES + 1);
    g_assert_cmpuint(r.net.rx_oversized, ==, 1);
    /* The guest returns buffers only when all are used: the device ran dry
     * with frames waiting at least once, and picked up again. */
    g_assert_cmpuint(r.net.rx_stalls, >=, 1);
    g_assert_cmpuint(r.stats.broken, ==, c->broken);
    g_assert_false(r.broken);
    if (c->iothread) {
        g_assert_cmpuint(r.stats.notifies_bql, ==, 0);
    } else {
        g_assert_cmpuint(r.stats.notifies_bql, ==, r.stats.notifies);
    }
    run_free(&r);
}

/* Root (CAP_NET_ADMIN) and /dev/net/tun, or skip (fail under CI). */
static void net_test_init(void)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    const char *why = NULL;
    if (fd < 0) {
        why = "/dev/net/tun cannot be opened";
    } else if (geteuid() != 0) {
        why = "creating a tap needs root";
    }
    if (fd >= 0) {
        close(fd);
    }
    if (!why) {
        return;
    }
    if (g_getenv("CI")) {
        fprintf(stderr, "FAIL: %s and CI needs these tests\n", why);
        exit(1);
    }
    fprintf(stderr, "SKIP: %s\n", why);
    exit(77);
}

int main(int argc, char **argv)
{
    static const NetCase cases[] = {
        {.append = "mode=0"},
        {.append = "mode=0", .iothread = true},
        {.append = "mode=1", .broken = 1},
        {.append = "mode=2", .iothread = true, .broken = 1},
        {.append = "mode=0", .iothread = true, .object = "iothread,id=io0,loop=libevent"},
    };
    g_test_init(&argc, &argv, NULL);
    guest_dir = kvm_test_init();
    net_test_init();
    g_test_add_data_func("/kvm/net/main-loop", &cases[0], test_net);
    g_test_add_data_func("/kvm/net/iothread", &cases[1], test_net);
    g_test_add_data_func("/kvm/net/hostile-tx-short", &cases[2], test_net);
    g_test_add_data_func("/kvm/net/hostile-rx-readonly", &cases[3], test_net);
    g_test_add_data_func("/kvm/net/iothread-libevent", &cases[4], test_net);
    return g_test_run();
}
