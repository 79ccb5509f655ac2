/* Character backends: where a serial port's bytes go and where its input comes from. */
#ifndef KVMLOOP_CHARDEV_H
#define KVMLOOP_CHARDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/types.h"

/* The frontend (a device) receives input through these. can_read returns how
 * many bytes it can take now; receive is given at most that many. Both are
 * called on the main loop thread with the BQL held. */
typedef size_t (*chr_can_read_fn)(void *opaque);
typedef void (*chr_receive_fn)(void *opaque, const uint8_t *buf, size_t len);

typedef struct ChardevOps {
    /* Write @len bytes; returns bytes written or -errno. Must not block for long. */
    long (*write)(Chardev *chr, const uint8_t *buf, size_t len);
    void (*close)(Chardev *chr);
} ChardevOps;

struct Chardev {
    const ChardevOps *ops;
    char *label;
    int out_fd; /* -1 for none */
    bool owns_out_fd;
    chr_can_read_fn can_read;
    chr_receive_fn receive;
    void *frontend;
    uint8_t *capture; /* "capture" backend: bytes kept in memory, for tests */
    size_t capture_len, capture_cap;
};

/* Parse a -serial style spec: "stdio", "file:PATH", "null", "none" (returns
 * NULL with no error for "none"), or "capture" (in memory, for tests).
 * Returns NULL and sets @errp on failure. Main thread, start-up. */
Chardev *chardev_new(const char *spec, const char *label, GError **errp);
void chardev_free(Chardev *chr);

/* Write all of @buf (retrying short writes); returns 0 or -errno. Caller holds
 * whatever lock protects the frontend. */
int chardev_write_all(Chardev *chr, const uint8_t *buf, size_t len);

/* Attach the frontend that receives input. */
void chardev_set_handlers(Chardev *chr, chr_can_read_fn can_read, chr_receive_fn receive,
                          void *opaque);

/* Deliver input bytes to the frontend as far as it can take them; returns the
 * number taken. Main loop thread, BQL held. */
size_t chardev_deliver(Chardev *chr, const uint8_t *buf, size_t len);

/* For the "capture" backend: the bytes written so far (not NUL-terminated). */
const uint8_t *chardev_captured(Chardev *chr, size_t *len);

#endif
