/* Character backends: stdio, file, null and in-memory capture, and input delivery to a frontend. */
#include "kvmloop/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

/* How long chardev_write_all() waits in total for a non-blocking fd that
 * reports EAGAIN before it gives up: long enough for a terminal to drain, short
 * enough that a stuck reader cannot stall the caller (who holds a lock). */
#define CHARDEV_EAGAIN_BUDGET_MS 200

static long chardev_fd_write(Chardev *chr, const uint8_t *buf, size_t len)
{
    ssize_t n = write(chr->out_fd, buf, len);

    if (n < 0) {
        return -errno;
    }
    return n;
}

static void chardev_fd_close(Chardev *chr)
{
    if (chr->owns_out_fd && chr->out_fd >= 0) {
        close(chr->out_fd);
    }
    chr->out_fd = -1;
}

static const ChardevOps chardev_fd_ops = {
    .write = chardev_fd_write,
    .close = chardev_fd_close,
};

static long chardev_null_write(Chardev *chr, const uint8_t *buf, size_t len)
{
    return (long)len;
}

static const ChardevOps chardev_null_ops = {
    .write = chardev_null_write,
    .close = NULL,
};

static long chardev_capture_write(Chardev *chr, const uint8_t *buf, size_t len)
{
    if (len > chr->capture_cap - chr->capture_len) {
        size_t cap = chr->capture_cap ? chr->capture_cap : 64;

        while (cap - chr->capture_len < len) {
            cap *= 2;
        }
        chr->capture = g_realloc(chr->capture, cap);
        chr->capture_cap = cap;
    }
    memcpy(chr->capture + chr->capture_len, buf, len);
    chr->capture_len += len;
    return (long)len;
}

static const ChardevOps chardev_capture_ops = {
    .write = chardev_capture_write,
    .close = NULL,
};

static Chardev *chardev_alloc(const ChardevOps *ops, const char *label, int fd, bool owns_fd)
{
    Chardev *chr = g_new0(Chardev, 1);

    chr->ops = ops;
    chr->label = g_strdup(label);
    chr->out_fd = fd;
    chr->owns_out_fd = owns_fd;
    return chr;
}

static Chardev *chardev_open_file(const char *path, const char *label, GError **errp)
{
    int fd;

    if (path[0] == '\0') {
        g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "-serial file: needs a path (file:PATH)");
        return NULL;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;

        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(err),
                    "cannot open -serial file '%s': %s", path, g_strerror(err));
        return NULL;
    }
    return chardev_alloc(&chardev_fd_ops, label, fd, true);
}

/* Parse a -serial spec. See chardev.h. Main thread, start-up. */
Chardev *chardev_new(const char *spec, const char *label, GError **errp)
{
    const char *name = label ? label : spec;

    if (spec == NULL) {
        g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "missing -serial backend (expected stdio, file:PATH, null, none)");
        return NULL;
    }
    if (strcmp(spec, "stdio") == 0) {
        /* fd 1 belongs to the process: never closed, never made non-blocking. */
        return chardev_alloc(&chardev_fd_ops, name, STDOUT_FILENO, false);
    }
    if (g_str_has_prefix(spec, "file:")) {
        return chardev_open_file(spec + strlen("file:"), name, errp);
    }
    if (strcmp(spec, "null") == 0) {
        return chardev_alloc(&chardev_null_ops, name, -1, false);
    }
    if (strcmp(spec, "none") == 0) {
        return NULL;
    }
    if (strcmp(spec, "capture") == 0) {
        return chardev_alloc(&chardev_capture_ops, name, -1, false);
    }
    g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "unknown -serial backend '%s' (expected stdio, file:PATH, null, none)", spec);
    return NULL;
}

/* Close and free @chr (NULL is allowed). The frontend must be detached or gone. */
void chardev_free(Chardev *chr)
{
    if (chr == NULL) {
        return;
    }
    if (chr->ops->close) {
        chr->ops->close(chr);
    }
    g_free(chr->capture);
    g_free(chr->label);
    g_free(chr);
}

/* Wait a little for @fd to become writable; false once the budget is spent. */
static bool chardev_wait_writable(int fd, int *budget_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int64_t start = g_get_monotonic_time();
    int rc;

    if (fd < 0 || *budget_ms <= 0) {
        return false;
    }
    rc = poll(&pfd, 1, *budget_ms);
    *budget_ms -= (int)((g_get_monotonic_time() - start) / 1000);
    if (rc < 0 && errno != EINTR) {
        return false;
    }
    return true;
}

/* Write all of @buf. See chardev.h. Returns 0 or -errno (-EAGAIN if a
 * non-blocking fd stayed full for CHARDEV_EAGAIN_BUDGET_MS). */
int chardev_write_all(Chardev *chr, const uint8_t *buf, size_t len)
{
    int budget_ms = CHARDEV_EAGAIN_BUDGET_MS;

    while (len > 0) {
        long n = chr->ops->write(chr, buf, len);

        if (n == -EINTR) {
            continue;
        }
        if (n == -EAGAIN || n == -EWOULDBLOCK) {
            if (!chardev_wait_writable(chr->out_fd, &budget_ms)) {
                return -EAGAIN;
            }
            continue;
        }
        if (n < 0) {
            return (int)n;
        }
        if (n == 0) {
            /* write(2) of a non-zero length never returns 0 on a working fd. */
            return -EIO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Attach the frontend (or detach it with NULL callbacks). BQL held. */
void chardev_set_handlers(Chardev *chr, chr_can_read_fn can_read, chr_receive_fn receive,
                          void *opaque)
{
    chr->can_read = can_read;
    chr->receive = receive;
    chr->frontend = opaque;
}

/* Deliver input. See chardev.h. With no frontend attached nothing is taken:
 * the caller keeps (or drops) the bytes. */
size_t chardev_deliver(Chardev *chr, const uint8_t *buf, size_t len)
{
    size_t taken = 0;

    if (chr == NULL || chr->can_read == NULL || chr->receive == NULL) {
        return 0;
    }
    while (taken < len) {
        size_t room = chr->can_read(chr->frontend);

        if (room == 0) {
            break;
        }
        if (room > len - taken) {
            room = len - taken;
        }
        chr->receive(chr->frontend, buf + taken, room);
        taken += room;
    }
    return taken;
}

/* The bytes captured so far; NULL and *@len = 0 for other backends. */
const uint8_t *chardev_captured(Chardev *chr, size_t *len)
{
    if (chr == NULL || chr->ops != &chardev_capture_ops) {
        *len = 0;
        return NULL;
    }
    *len = chr->capture_len;
    return chr->capture;
}
