/* The tap backend: a /dev/net/tun interface carrying frames with a virtio-net header. */
#include "kvmloop/net.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The clone device; KVMLOOP_TUN_DEVICE overrides it (as KVMLOOP_KVM_DEVICE
 * does /dev/kvm), so that tests can show the error for a missing one. */
#define TUN_PATH "/dev/net/tun"

struct NetClient {
    char *id;
    char ifname[IFNAMSIZ];
    int fd;
    unsigned index;
    const char *owner; /* the device that claimed it, or NULL */
};

/* Backends by id, in -netdev order. Main thread only. */
static GPtrArray *net_registry;

static const char *tap_hint(int err)
{
    switch (err) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
        return " (is the tun module loaded?)";
    case EACCES:
        return " (run as root, or make the device accessible to this user)";
    case EPERM:
        return " (needs CAP_NET_ADMIN, or a persistent tap this user owns)";
    case EBUSY:
        return " (another process has the interface)";
    default:
        return "";
    }
}

static void tap_error(GError **errp, const char *id, const char *what, int err)
{
    g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err), "-netdev tap,id=%s: %s: %s%s", id,
                what, g_strerror(err), tap_hint(err));
}

NetClient *tap_open(const char *id, const char *ifname, GError **errp)
{
    struct ifreq ifr = {0};
    int hdr = NET_VNET_HDR_LEN;

    if (ifname && strlen(ifname) >= IFNAMSIZ) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-netdev tap,id=%s: ifname '%s' is longer than %d characters", id, ifname,
                    IFNAMSIZ - 1);
        return NULL;
    }
    const char *path = g_getenv("KVMLOOP_TUN_DEVICE") ? g_getenv("KVMLOOP_TUN_DEVICE") : TUN_PATH;
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        g_autofree char *what = g_strdup_printf("cannot open %s", path);
        tap_error(errp, id, what, errno);
        return NULL;
    }
    /* No IFF_MULTI_QUEUE: one reader, so a frame is never split between
     * two devices. */
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ifname) {
        memcpy(ifr.ifr_name, ifname, strlen(ifname));
    }
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        tap_error(errp, id, ifname ? "TUNSETIFF failed" : "TUNSETIFF (a new tap) failed", errno);
        goto out_fd;
    }
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
        tap_error(errp, id, "TUNSETVNETHDRSZ failed", errno);
        goto out_fd;
    }
    /* No offloads: the kernel hands over whole frames with correct
     * checksums, which is all a guest without GUEST_CSUM/TSO can take. */
    if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0) {
        tap_error(errp, id, "TUNSETOFFLOAD failed", errno);
        goto out_fd;
    }
    NetClient *nc = g_new0(NetClient, 1);
    nc->id = g_strdup(id);
    memcpy(nc->ifname, ifr.ifr_name, IFNAMSIZ - 1);
    nc->fd = fd;
    return nc;

out_fd:
    close(fd);
    return NULL;
}

void tap_close(NetClient *nc)
{
    if (!nc) {
        return;
    }
    close(nc->fd);
    g_free(nc->id);
    g_free(nc);
}

bool net_init(const GPtrArray *netdevs, GError **errp)
{
    g_assert(!net_registry);
    net_registry = g_ptr_array_new_with_free_func((GDestroyNotify)tap_close);
    for (guint i = 0; netdevs && i < netdevs->len; i++) {
        const NetdevConfig *c = netdevs->pdata[i];
        NetClient *nc = tap_open(c->id, c->ifname, errp);
        if (!nc) {
            net_cleanup();
            return false;
        }
        nc->index = i;
        g_ptr_array_add(net_registry, nc);
    }
    return true;
}

void net_cleanup(void)
{
    if (net_registry) {
        g_ptr_array_free(net_registry, true);
        net_registry = NULL;
    }
}

NetClient *net_find(const char *id)
{
    for (guint i = 0; net_registry && i < net_registry->len; i++) {
        NetClient *nc = net_registry->pdata[i];
        if (!strcmp(nc->id, id)) {
            return nc;
        }
    }
    return NULL;
}

int net_client_fd(const NetClient *nc)
{
    return nc->fd;
}

const char *net_client_id(const NetClient *nc)
{
    return nc->id;
}

unsigned net_client_index(const NetClient *nc)
{
    return nc->index;
}

const char *net_client_ifname(const NetClient *nc)
{
    return nc->ifname;
}

bool net_client_claim(NetClient *nc, const char *dev_id, const char **owner)
{
    if (nc->owner) {
        *owner = nc->owner;
        return false;
    }
    nc->owner = dev_id;
    return true;
}

void net_client_release(NetClient *nc)
{
    nc->owner = NULL;
}
