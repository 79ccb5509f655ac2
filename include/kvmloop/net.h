/* Network backends: the tap interfaces that -netdev opens and NIC models attach to. */
#ifndef KVMLOOP_NET_H
#define KVMLOOP_NET_H

#include <stdbool.h>
#include <glib.h>

/* Every frame crossing a backend starts with this many bytes of struct
 * virtio_net_hdr_mrg_rxbuf (the virtio 1.x layout, num_buffers included). */
#define NET_VNET_HDR_LEN 12

/* One -netdev tap,id=ID[,ifname=NAME]. */
typedef struct NetdevConfig {
    char *id;
    char *ifname; /* NULL: the kernel picks tapN */
} NetdevConfig;

typedef struct NetClient NetClient;

/* Open a tap interface for netdev @id on /dev/net/tun: IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR with a NET_VNET_HDR_LEN header, no offloads, non-blocking.
 * @ifname names the interface (created if it does not exist); NULL lets
 * the kernel choose. Returns NULL with a one-line error (no /dev/net/tun,
 * no permission, a busy name). Main thread. */
NetClient *tap_open(const char *id, const char *ifname, GError **errp);
void tap_close(NetClient *nc);

/* Open the backends of @netdevs (NetdevConfig *) in order and register
 * them for net_find(); on failure close those opened and return false with
 * the reason. net_cleanup() closes all. Main thread, before the machine is
 * built / after it is destroyed. */
bool net_init(const GPtrArray *netdevs, GError **errp);
void net_cleanup(void);
/* The backend with id @id, or NULL. Main thread (device realize). */
NetClient *net_find(const char *id);

/* The backend's non-blocking fd: read() returns one frame with its header,
 * writev() sends one. Whoever reads it must be the only reader. */
int net_client_fd(const NetClient *nc);
const char *net_client_id(const NetClient *nc);
/* The position of @nc's -netdev on the command line, from 0. */
unsigned net_client_index(const NetClient *nc);
/* The interface name the kernel gave (also in /proc/PID/fdinfo/FD as "iff:"). */
const char *net_client_ifname(const NetClient *nc);
/* Claim @nc for one device; false (and the claimant's name in @owner) if
 * another device has it. Main thread. */
bool net_client_claim(NetClient *nc, const char *dev_id, const char **owner);
void net_client_release(NetClient *nc);

#endif
