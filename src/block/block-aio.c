/* Asynchronous file I/O: an io_uring per context, or GLib's thread pool where io_uring is
 * unavailable. */
#include "kvmloop/block.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Enough for every descriptor of a few full queues; more waits for room. */
#define BLOCK_AIO_RING_ENTRIES 256
#define BLOCK_AIO_POOL_THREADS 4

struct BlockAio {
    EventLoop *loop;
    BlockAioBackend backend;
    char *what;
    EventNotifier done_ev; /* completions to reap: the ring's eventfd, or the workers' */
    EventWatch *watch;
    unsigned inflight; /* loop thread only */
    bool ring_ok;
    struct io_uring ring;
    GThreadPool *pool;
    /* Requests finished off the ring: by workers, or refused at submission. */
    GMutex lock;
    GCond cond;
    BlockAioReq *finished;
};

bool block_aio_backend_parse(const char *s, BlockAioBackend *out)
{
    if (!strcmp(s, "auto")) {
        *out = BLOCK_AIO_AUTO;
    } else if (!strcmp(s, "io_uring")) {
        *out = BLOCK_AIO_IO_URING;
    } else if (!strcmp(s, "threads")) {
        *out = BLOCK_AIO_THREADS;
    } else {
        return false;
    }
    return true;
}

BlockAioBackend block_aio_backend(const BlockAio *a)
{
    return a->backend;
}

unsigned block_aio_inflight(const BlockAio *a)
{
    return a->inflight;
}

/* ---- Completion --------------------------------------------------------- */

static void block_aio_finish(BlockAio *a, BlockAioReq *r, int64_t ret)
{
    r->ret = ret;
    g_mutex_lock(&a->lock);
    r->next = a->finished;
    a->finished = r;
    g_cond_broadcast(&a->cond);
    g_mutex_unlock(&a->lock);
    event_notifier_set(&a->done_ev);
}

static void block_aio_complete(BlockAio *a, BlockAioReq *r, int64_t ret)
{
    g_assert(a->inflight > 0);
    a->inflight--;
    r->done(r, ret);
}

/* Run @done for everything finished so far; with @wait, first sleep until
 * something is (the thread pool's drain). */
static unsigned block_aio_reap_finished(BlockAio *a, bool wait)
{
    g_mutex_lock(&a->lock);
    while (wait && !a->finished) {
        g_cond_wait(&a->cond, &a->lock);
    }
    BlockAioReq *list = a->finished;
    a->finished = NULL;
    g_mutex_unlock(&a->lock);
    unsigned n = 0;
    while (list) {
        BlockAioReq *r = list;
        list = r->next;
        block_aio_complete(a, r, r->ret);
        n++;
    }
    return n;
}

static unsigned block_aio_reap_ring(BlockAio *a)
{
    struct io_uring_cqe *cqe;
    unsigned n = 0;
    while (io_uring_peek_cqe(&a->ring, &cqe) == 0) {
        BlockAioReq *r = io_uring_cqe_get_data(cqe);
        int64_t res = cqe->res;
        io_uring_cqe_seen(&a->ring, cqe);
        block_aio_complete(a, r, res);
        n++;
    }
    return n;
}

static void block_aio_event(void *opaque, int fd, unsigned revents)
{
    BlockAio *a = opaque;
    event_notifier_test_and_clear(&a->done_ev);
    if (a->ring_ok) {
        block_aio_reap_ring(a);
    }
    block_aio_reap_finished(a, false);
}

void block_aio_drain(BlockAio *a)
{
    while (a->inflight > 0) {
        if (block_aio_reap_finished(a, false)) {
            continue;
        }
        if (!a->ring_ok) {
            block_aio_reap_finished(a, true);
            continue;
        }
        if (block_aio_reap_ring(a)) {
            continue;
        }
        struct io_uring_cqe *cqe;
        int r = io_uring_wait_cqe(&a->ring, &cqe);
        if (r < 0 && r != -EINTR && r != -EAGAIN) {
            /* Cannot happen with a valid ring; do not spin forever. */
            fprintf(stderr, "kvmloop: %s: waiting for I/O failed: %s\n", a->what, g_strerror(-r));
            return;
        }
    }
}

/* ---- Submission --------------------------------------------------------- */

/* A worker's whole transfer, resumed after short counts as pread(2) allows. */
static int64_t block_aio_rw_sync(BlockAioReq *r)
{
    g_autofree struct iovec *iov = g_memdup2(r->iov, sizeof(*iov) * r->niov);
    unsigned idx = 0;
    int64_t total = 0;

    while (idx < r->niov) {
        ssize_t n =
            r->op == BLOCK_OP_READ
                ? preadv(r->fd, iov + idx, (int)(r->niov - idx), (off_t)(r->offset + total))
                : pwritev(r->fd, iov + idx, (int)(r->niov - idx), (off_t)(r->offset + total));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            break; /* end of file: the caller sees a short count */
        }
        total += n;
        while (idx < r->niov && (size_t)n >= iov[idx].iov_len) {
            n -= (ssize_t)iov[idx].iov_len;
            idx++;
        }
        if (idx < r->niov) {
            iov[idx].iov_base = (uint8_t *)iov[idx].iov_base + n;
            iov[idx].iov_len -= (size_t)n;
        }
    }
    return total;
}

static void block_aio_worker(gpointer data, gpointer opaque)
{
    BlockAioReq *r = data;
    BlockAio *a = opaque;
    int64_t ret;
    if (r->op == BLOCK_OP_FLUSH) {
        ret = fdatasync(r->fd) < 0 ? -errno : 0;
    } else {
        ret = block_aio_rw_sync(r);
    }
    block_aio_finish(a, r, ret);
}

static void block_aio_submit_ring(BlockAio *a, BlockAioReq *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
    if (!sqe) {
        io_uring_submit(&a->ring);
        sqe = io_uring_get_sqe(&a->ring);
    }
    if (!sqe) {
        block_aio_finish(a, r, -EAGAIN);
        return;
    }
    switch (r->op) {
    case BLOCK_OP_READ:
        io_uring_prep_readv(sqe, r->fd, r->iov, r->niov, r->offset);
        break;
    case BLOCK_OP_WRITE:
        io_uring_prep_writev(sqe, r->fd, r->iov, r->niov, r->offset);
        break;
    case BLOCK_OP_FLUSH:
        io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data(sqe, r);
    int n;
    do {
        n = io_uring_submit(&a->ring);
    } while (n == -EINTR);
    if (n < 0) {
        /* The SQE stays queued and goes with the next submission; only a
         * ring that is truly broken loses it, and then nothing works. */
        g_warning_once("%s: io_uring_submit failed: %s", a->what, g_strerror(-n));
    }
}

void block_aio_submit(BlockAio *a, BlockAioReq *r)
{
    a->inflight++;
    if (a->ring_ok) {
        block_aio_submit_ring(a, r);
        return;
    }
    g_autoptr(GError) err = NULL;
    if (!g_thread_pool_push(a->pool, r, &err)) {
        block_aio_finish(a, r, -EAGAIN);
    }
}

/* ---- Set-up ------------------------------------------------------------- */

static int block_aio_ring_init(BlockAio *a)
{
    if (g_strcmp0(g_getenv("KVMLOOP_NO_IO_URING"), "1") == 0) {
        return -ENOSYS;
    }
    int r = io_uring_queue_init(BLOCK_AIO_RING_ENTRIES, &a->ring, 0);
    if (r < 0) {
        return r;
    }
    r = io_uring_register_eventfd(&a->ring, event_notifier_get_fd(&a->done_ev));
    if (r < 0) {
        io_uring_queue_exit(&a->ring);
        return r;
    }
    a->ring_ok = true;
    return 0;
}

BlockAio *block_aio_new(EventLoop *loop, BlockAioBackend want, const char *what, GError **errp)
{
    BlockAio *a = g_new0(BlockAio, 1);
    a->loop = loop;
    a->what = g_strdup(what);
    g_mutex_init(&a->lock);
    g_cond_init(&a->cond);
    int r = event_notifier_init(&a->done_ev, false);
    if (r < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "%s: eventfd failed: %s", what,
                    g_strerror(-r));
        goto fail_notifier;
    }
    if (want != BLOCK_AIO_THREADS) {
        r = block_aio_ring_init(a);
        if (r < 0 && want == BLOCK_AIO_IO_URING) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r),
                        "%s: io_uring is unavailable: %s (try aio=threads)", what, g_strerror(-r));
            goto fail_ring;
        }
        if (r < 0) {
            fprintf(stderr, "kvmloop: %s: io_uring is unavailable (%s); using a thread pool\n",
                    what, g_strerror(-r));
        }
    }
    a->backend = a->ring_ok ? BLOCK_AIO_IO_URING : BLOCK_AIO_THREADS;
    if (!a->ring_ok) {
        a->pool = g_thread_pool_new(block_aio_worker, a, BLOCK_AIO_POOL_THREADS, FALSE, errp);
        if (!a->pool) {
            goto fail_ring;
        }
    }
    a->watch = event_loop_add_fd(loop, event_notifier_get_fd(&a->done_ev), EVENT_IN, "block-aio",
                                 block_aio_event, a);
    return a;

fail_ring:
    event_notifier_cleanup(&a->done_ev);
fail_notifier:
    g_mutex_clear(&a->lock);
    g_cond_clear(&a->cond);
    g_free(a->what);
    g_free(a);
    return NULL;
}

void block_aio_free(BlockAio *a)
{
    if (!a) {
        return;
    }
    block_aio_drain(a);
    if (a->watch) {
        event_watch_remove(a->watch);
    }
    if (a->ring_ok) {
        io_uring_queue_exit(&a->ring);
    }
    if (a->pool) {
        g_thread_pool_free(a->pool, FALSE, TRUE);
    }
    event_notifier_cleanup(&a->done_ev);
    g_mutex_clear(&a->lock);
    g_cond_clear(&a->cond);
    g_free(a->what);
    g_free(a);
}
