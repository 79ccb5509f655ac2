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

/* Called when the user types the quit escape (Ctrl-a x) on the console. Runs
 * on the thread of the loop given to chardev_start_input(), BQL held there.
 * It must only request the stop (machine_request_exit()); it must not stop
 * or free the chardev it is called from. */
typedef void (*chr_quit_fn)(void *opaque);

/* Private state of a running input (chardev.c). */
typedef struct ChardevInput ChardevInput;

typedef struct ChardevOps {
    /* Write @len bytes; returns bytes written or -errno. Must not block for long. */
    long (*write)(Chardev *chr, const uint8_t *buf, size_t len);
    void (*close)(Chardev *chr);
    /* Optional, for backends with an input fd: prepare it before it is
     * watched (stdio: claim stdin, raw mode on a terminal). May set in_fd to
     * -1 to run without input after all. False with @errp set on failure. */
    bool (*input_open)(Chardev *chr, GError **errp);
    /* Undo input_open (stdio: restore the terminal). */
    void (*input_close)(Chardev *chr);
} ChardevOps;

struct Chardev {
    const ChardevOps *ops;
    char *label;
    int out_fd; /* -1 for none */
    bool owns_out_fd;
    int in_fd;    /* input, read once chardev_start_input() runs; -1 for none */
    bool escapes; /* input goes through the Ctrl-a escapes (stdio) */
    chr_can_read_fn can_read;
    chr_receive_fn receive;
    void *frontend;
    chr_quit_fn quit;
    void *quit_opaque;
    ChardevInput *input; /* set while input runs; atomic (chardev_accept_input()) */
    uint8_t *capture;    /* "capture" backend: bytes kept in memory, for tests */
    size_t capture_len, capture_cap;
};

/* Parse a -serial style spec: "stdio", "file:PATH", "null", "none" (returns
 * NULL with no error for "none"), or "capture" (in memory, for tests).
 * Returns NULL and sets @errp on failure. Main thread, start-up. */
Chardev *chardev_new(const char *spec, const char *label, GError **errp);
/* Stop input (chardev_stop_input(), which restores a raw terminal), close and
 * free. NULL is allowed. */
void chardev_free(Chardev *chr);

/* Write all of @buf (retrying short writes); returns 0 or -errno. Caller holds
 * whatever lock protects the frontend. */
int chardev_write_all(Chardev *chr, const uint8_t *buf, size_t len);

/* Attach the frontend that receives input (NULL callbacks detach it). If
 * input runs, bytes already waiting are offered to the new frontend. */
void chardev_set_handlers(Chardev *chr, chr_can_read_fn can_read, chr_receive_fn receive,
                          void *opaque);

/* Deliver input bytes to the frontend as far as it can take them; returns the
 * number taken. Main loop thread, BQL held. */
size_t chardev_deliver(Chardev *chr, const uint8_t *buf, size_t len);

/*
 * Input. A backend with an input fd (today only "stdio", fd 0) reads nothing
 * until chardev_start_input() watches the fd on @loop. Bytes read are handed
 * to the frontend as far as its can_read allows; the rest wait in a small
 * buffer (never dropped), and while that buffer is full the fd is not read at
 * all, so the writer is held back. The frontend calls chardev_accept_input()
 * when it has room again.
 *
 * On "stdio" the escape character Ctrl-a (0x01) is interpreted, as in QEMU:
 * Ctrl-a x calls the quit handler, Ctrl-a h prints the escapes, Ctrl-a c says
 * there is no monitor on this console, Ctrl-a Ctrl-a sends one 0x01, and any
 * other key after Ctrl-a is sent alone. Escapes act when the bytes are read,
 * not when the frontend takes them, so Ctrl-a x works while a guest does not
 * read its UART (unless it is stuck behind a full buffer of typed-ahead text).
 * A terminal on stdin is put in raw mode while input runs and restored by
 * chardev_stop_input()/chardev_free(), at exit() and on fatal signals.
 */

/* Start reading @chr's input on @loop (callbacks then run on its thread, under
 * its hooks: the BQL for the main loop). A no-op returning true for backends
 * without input ("file", "null", "capture") and for a terminal that belongs to
 * another job (kvmloop in the background: a one-line note, no input). False
 * with @errp set on failure, e.g. a second chardev reading stdin, or input
 * already started. Main thread, before the vCPUs start, BQL held. */
bool chardev_start_input(Chardev *chr, EventLoop *loop, GError **errp);

/* Stop reading, drop bytes not yet delivered, restore the terminal. A no-op if
 * input never started. The loop's thread (or the loop is not running), once
 * no other thread can call chardev_accept_input() (vCPUs stopped). */
void chardev_stop_input(Chardev *chr);

/* The frontend has room again (the guest read RBR): resume delivery of waiting
 * bytes. Cheap when nothing waits (one atomic load). Any thread, any lock;
 * delivery itself happens later on the loop's thread. NULL is allowed. */
void chardev_accept_input(Chardev *chr);

/* Register what Ctrl-a x does (NULL: Ctrl-a x is ignored). BQL held. */
void chardev_set_quit_handler(Chardev *chr, chr_quit_fn fn, void *opaque);

/* For the "capture" backend: the bytes written so far (not NUL-terminated). */
const uint8_t *chardev_captured(Chardev *chr, size_t *len);

#endif
