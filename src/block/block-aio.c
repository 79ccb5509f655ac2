/* Asynchronous file I/O: an io_uring per context, or worker threads without io_uring. */
#include "kvmloop/block.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
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
    block_aio_batch_fn batch_end;
    void *batch_opaque;
    bool ring_ok;
    struct io_uring ring;
    pthread_t workers[BLOCK_AIO_POOL_THREADS];
    unsigned nworkers;
    unsigned delay_ms; /* KVMLOOP_TEST_IO_DELAY_MS: workers sleep before each request */
    bool stopping;     /* under lock: workers exit once nothing is pending */
    /* Requests finished off the ring (by workers, or refused at submission),
     * and requests for the workers. Plain pthreads rather than GLib's thread
     * pool: its hand-overs go through futexes ThreadSanitizer cannot see, and
     * it may pass a context to a thread some other pool created. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* something finished */
    pthread_cond_t work; /* something pending, or stopping */
    BlockAioReq *finished;
    BlockAioReq *pending, **pending_tail;
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
    pthread_mutex_lock(&a->lock);
    r->next = a->finished;
    a->finished = r;
    pthread_cond_broadcast(&a->cond);
    /* Under the lock: once a drain has reaped @r, @a may be freed. */
    event_notifier_set(&a->done_ev);
    pthread_mutex_unlock(&a->lock);
}

static void block_aio_complete(BlockAio *a, BlockAioReq *r, int64_t ret)
{
    g_assert(a->inflight > 0);
    a->inflight--;
    r->done(r, ret);
}

/* Run @done for everything finished so far; with @wait, first sleep until
 * something is (the workers' drain). */
static unsigned block_aio_reap_finished(BlockAio *a, bool wait)
{
    pthread_mutex_lock(&a->lock);
    while (wait && !a->finished) {
        pthread_cond_wait(&a->cond, &a->lock);
    }
    BlockAioReq *list = a->finished;
    a->finished = NULL;
    pthread_mutex_unlock(&a->lock);
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

void block_aio_set_batch_end(BlockAio *a, block_aio_batch_fn fn, void *opaque)
{
    a->batch_end = fn;
    a->batch_opaque = opaque;
}

static void block_aio_batch_done(BlockAio *a, unsigned completed)
{
    if (completed && a->batch_end) {
        a->batch_end(a->batch_opaque);
    }
}

static void block_aio_event(void *opaque, int fd, unsigned revents)
{
    BlockAio *a = opaque;
    unsigned n = 0;
    event_notifier_test_and_clear(&a->done_ev);
    if (a->ring_ok) {
        n += block_aio_reap_ring(a);
    }
    n += block_aio_reap_finished(a, false);
    block_aio_batch_done(a, n);
}

void block_aio_drain(BlockAio *a)
{
    unsigned n = 0;
    while (a->inflight > 0) {
        unsigned got = block_aio_reap_finished(a, false);
        if (got) {
            n += got;
            continue;
        }
        if (!a->ring_ok) {
            n += block_aio_reap_finished(a, true);
            continue;
        }
        if ((got = block_aio_reap_ring(a))) {
            n += got;
            continue;
        }
        struct io_uring_cqe *cqe;
        int r = io_uring_wait_cqe(&a->ring, &cqe);
        if (r < 0 && r != -EINTR && r != -EAGAIN) {
            /* Cannot happen with a valid ring; do not spin forever. */
            fprintf(stderr, "kvmloop: %s: waiting for I/O failed: %s\n", a->what, g_strerror(-r));
            break;
        }
    }
    block_aio_batch_done(a, n);
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

static void block_aio_serve(BlockAio *a, BlockAioReq *r)
{
    int64_t ret;
    if (a->delay_ms) {
        g_usleep((gulong)a->delay_ms * 1000);
    }
    if (r->op == BLOCK_OP_FLUSH) {
        ret = fdatasync(r->fd) < 0 ? -errno : 0;
    } else {
        ret = block_aio_rw_sync(r);
    }
    block_aio_finish(a, r, ret);
}

/* A worker serves the oldest pending request until told to stop. */
static void *block_aio_worker(void *opaque)
{
    BlockAio *a = opaque;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->pending && !a->stopping) {
            pthread_cond_wait(&a->work, &a->lock);
        }
        BlockAioReq *r = a->pending;
        if (!r) {
            break;
        }
        a->pending = r->next;
        if (!a->pending) {
            a->pending_tail = &a->pending;
        }
        pthread_mutex_unlock(&a->lock);
        block_aio_serve(a, r);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
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
    r->next = NULL;
    pthread_mutex_lock(&a->lock);
    *a->pending_tail = r;
    a->pending_tail = &r->next;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->lock);
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

static void block_aio_stop_workers(BlockAio *a)
{
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->work);
    pthread_mutex_unlock(&a->lock);
    for (unsigned i = 0; i < a->nworkers; i++) {
        pthread_join(a->workers[i], NULL);
    }
    a->nworkers = 0;
}

BlockAio *block_aio_new(EventLoop *loop, BlockAioBackend want, const char *what, GError **errp)
{
    BlockAio *a = g_new0(BlockAio, 1);
    a->loop = loop;
    a->what = g_strdup(what);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    pthread_cond_init(&a->work, NULL);
    a->pending_tail = &a->pending;
    const char *delay = g_getenv("KVMLOOP_TEST_IO_DELAY_MS");
    if (delay) {
        a->delay_ms = (unsigned)MIN(g_ascii_strtoull(delay, NULL, 10), 10000);
    }
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
            fprintf(stderr, "kvmloop: %s: io_uring is unavailable (%s); using worker threads\n",
                    what, g_strerror(-r));
        }
    }
    a->backend = a->ring_ok ? BLOCK_AIO_IO_URING : BLOCK_AIO_THREADS;
    if (!a->ring_ok) {
        for (; a->nworkers < BLOCK_AIO_POOL_THREADS; a->nworkers++) {
            r = pthread_create(&a->workers[a->nworkers], NULL, block_aio_worker, a);
            if (r != 0) {
                g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(r),
                            "%s: cannot start an I/O thread: %s", what, g_strerror(r));
                goto fail_workers;
            }
        }
    }
    a->watch = event_loop_add_fd(loop, event_notifier_get_fd(&a->done_ev), EVENT_IN, "block-aio",
                                 block_aio_event, a);
    return a;

fail_workers:
    block_aio_stop_workers(a);
fail_ring:
    event_notifier_cleanup(&a->done_ev);
fail_notifier:
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    pthread_cond_destroy(&a->work);
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
    block_aio_stop_workers(a);
    event_notifier_cleanup(&a->done_ev);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    pthread_cond_destroy(&a->work);
    g_free(a->what);
    g_free(a);
}
