/* Asynchronous file I/O for device models: io_uring or worker threads, completed on a loop. */
#ifndef KVMLOOP_BLOCK_H
#define KVMLOOP_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <glib.h>
#include "kvmloop/event_loop.h"

typedef struct BlockAio BlockAio;
typedef struct BlockAioReq BlockAioReq;

typedef enum {
    BLOCK_AIO_AUTO,     /* io_uring, else the worker threads (with a one-line notice) */
    BLOCK_AIO_IO_URING, /* io_uring or fail */
    BLOCK_AIO_THREADS,  /* four worker threads doing preadv/pwritev/fdatasync */
} BlockAioBackend;

typedef enum {
    BLOCK_OP_READ,
    BLOCK_OP_WRITE,
    BLOCK_OP_FLUSH, /* fdatasync */
} BlockOp;

/* A request's end: @ret is the byte count moved (0 for a flush) or -errno.
 * Runs on the loop given to block_aio_new(), never inside block_aio_submit(). */
typedef void (*block_aio_done_fn)(BlockAioReq *r, int64_t ret);

/* One request, embedded in the caller's own state, which stays valid (and
 * so do @iov and the buffers it names) until @done ran. */
struct BlockAioReq {
    BlockOp op;
    int fd;
    uint64_t offset;
    const struct iovec *iov;
    unsigned niov;
    block_aio_done_fn done;
    /* Private to block.c. */
    int64_t ret;
    BlockAioReq *next;
};

/* A submission and completion context served by @loop: an io_uring whose
 * completion eventfd @loop watches, or worker threads that hand
 * results back through an eventfd. "io_uring unavailable" (the ring cannot
 * be set up: seccomp, an old kernel, or the environment variable
 * KVMLOOP_NO_IO_URING=1, which the tests use) makes BLOCK_AIO_AUTO fall
 * back to the workers. For tests, KVMLOOP_TEST_IO_DELAY_MS=N makes the
 * workers sleep N ms (at most 10 s) before each request, so that requests
 * stay in flight long enough to be caught there. Returns NULL with a
 * one-line error naming @what. Call
 * it in @loop's context (iothread_run_sync() for an iothread's loop). */
BlockAio *block_aio_new(EventLoop *loop, BlockAioBackend want, const char *what, GError **errp);
/* Wait for every request in flight, run their @done, stop watching and
 * free. In @loop's context, with the loop not running elsewhere. NULL is a
 * no-op. */
void block_aio_free(BlockAio *a);
/* BLOCK_AIO_IO_URING or BLOCK_AIO_THREADS. Any thread. */
BlockAioBackend block_aio_backend(const BlockAio *a);
/* After each batch of completions (the @done of every request one wake-up
 * of the loop, or one drain, found finished) @fn runs on the same thread:
 * where a device that deferred its interrupts raises one for the batch.
 * NULL turns it off. The loop's thread, or before the loop runs. */
typedef void (*block_aio_batch_fn)(void *opaque);
void block_aio_set_batch_end(BlockAio *a, block_aio_batch_fn fn, void *opaque);
/* Start @r. Its @done runs later on the loop. The loop's thread only. */
void block_aio_submit(BlockAio *a, BlockAioReq *r);
/* Wait until nothing is in flight, running each @done as it completes, on
 * the calling thread. For tear-down and reset: the loop's thread, or any
 * thread while the loop runs no callbacks (it is not running, or it is the
 * main loop and the caller holds the BQL). */
void block_aio_drain(BlockAio *a);
/* Requests submitted and not yet done. The loop's thread. */
unsigned block_aio_inflight(const BlockAio *a);
/* Parse "auto", "io_uring" or "threads". */
bool block_aio_backend_parse(const char *s, BlockAioBackend *out);

/* ---- Image files (block-image.c) ----------------------------------------- */

/* Lock the image open at @fd against other processes (OFD locks on bytes
 * 100, 101 and 201, the bytes QEMU uses for the same meanings): with
 * @write, exclusively (no other reader or writer); else shared (other
 * readers, no writer). The lock lasts until @fd is closed. Returns 0,
 * -EAGAIN when another process holds a conflicting lock, or another -errno
 * when the file system has no such locks (then nothing is held). Any
 * thread. */
int block_image_lock(int fd, bool write);

/* What O_DIRECT asks of a transfer on one file: each buffer's address a
 * multiple of @mem, each length (and the file offset) a multiple of @io,
 * the file's logical block size. Powers of two from 512 to 4096. */
typedef struct BlockDirectAlign {
    uint32_t mem;
    uint32_t io;
} BlockDirectAlign;

/* Find the alignment for @fd, opened with O_DIRECT: a block device's
 * logical block size (BLKSSZGET); for a file what the kernel reports
 * (statx STATX_DIOALIGN), else block_direct_probe_by_reads(). Returns 0 or
 * -errno. Any thread. */
int block_direct_probe(int fd, BlockDirectAlign *out);
/* The fallback: the smallest of 512, 1024, 2048, 4096 that an O_DIRECT read
 * at offset 0 accepts as length, then as buffer alignment. -EINVAL when
 * none does. Any thread. */
int block_direct_probe_by_reads(int fd, BlockDirectAlign *out);
/* Whether @iov (@n buffers) can go to the kernel as it is under @al, or
 * needs an aligned bounce buffer. Pure. */
bool block_direct_iov_ok(const struct iovec *iov, unsigned n, const BlockDirectAlign *al);

#endif
