/* block: reads, writes and flushes through io_uring and the worker threads, completed on a loop. */
#include "kvmloop/block.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

typedef struct TestReq {
    BlockAioReq aio;
    int64_t ret;
    bool done;
} TestReq;

static void test_done(BlockAioReq *r, int64_t ret)
{
    TestReq *t = (TestReq *)r;
    t->ret = ret;
    t->done = true;
}

static int temp_file(char **path)
{
    GError *err = NULL;
    int fd = g_file_open_tmp("kvmloop-block-XXXXXX", path, &err);
    g_assert_no_error(err);
    return fd;
}

/* The loop delivers each completion; none arrives inside submit. */
static void run_until_done(EventLoop *loop, TestReq *t)
{
    for (int i = 0; i < 1000 && !t->done; i++) {
        event_loop_iterate(loop, true);
    }
    g_assert_true(t->done);
}

static void test_rw(gconstpointer data)
{
    BlockAioBackend want = GPOINTER_TO_INT(data);
    g_autofree char *path = NULL;
    int fd = temp_file(&path);
    EventLoop *loop = event_loop_new(EVENT_LOOP_GLIB, NULL, NULL);
    BlockAio *a = block_aio_new(loop, want, "test", NULL);
    g_assert_nonnull(a);
    g_assert_cmpint(block_aio_backend(a), ==, want);

    uint8_t out1[1000], out2[3096], in[4096];
    memset(out1, 0xa5, sizeof(out1));
    memset(out2, 0x5a, sizeof(out2));
    struct iovec wv[] = {{out1, sizeof(out1)}, {out2, sizeof(out2)}};
    TestReq w = {.aio = {.op = BLOCK_OP_WRITE,
                         .fd = fd,
                         .offset = 8192,
                         .iov = wv,
                         .niov = 2,
                         .done = test_done}};
    block_aio_submit(a, &w.aio);
    g_assert_false(w.done);
    g_assert_cmpuint(block_aio_inflight(a), ==, 1);
    run_until_done(loop, &w);
    g_assert_cmpint(w.ret, ==, 4096);

    TestReq f = {.aio = {.op = BLOCK_OP_FLUSH, .fd = fd, .done = test_done}};
    block_aio_submit(a, &f.aio);
    run_until_done(loop, &f);
    g_assert_cmpint(f.ret, ==, 0);

    struct iovec rv = {in, sizeof(in)};
    TestReq r = {.aio = {.op = BLOCK_OP_READ,
                         .fd = fd,
                         .offset = 8192,
                         .iov = &rv,
                         .niov = 1,
                         .done = test_done}};
    block_aio_submit(a, &r.aio);
    run_until_done(loop, &r);
    g_assert_cmpint(r.ret, ==, 4096);
    g_assert_cmpmem(in, sizeof(out1), out1, sizeof(out1));
    g_assert_cmpmem(in + sizeof(out1), sizeof(out2), out2, sizeof(out2));

    /* Past the end of the file: a short (here empty) read, not an error. */
    TestReq e = {.aio = {.op = BLOCK_OP_READ,
                         .fd = fd,
                         .offset = 1 << 20,
                         .iov = &rv,
                         .niov = 1,
                         .done = test_done}};
    block_aio_submit(a, &e.aio);
    run_until_done(loop, &e);
    g_assert_cmpint(e.ret, ==, 0);

    /* A bad fd fails with -EBADF. */
    TestReq b = {.aio = {.op = BLOCK_OP_FLUSH, .fd = 1000000, .done = test_done}};
    block_aio_submit(a, &b.aio);
    run_until_done(loop, &b);
    g_assert_cmpint(b.ret, ==, -EBADF);

    block_aio_free(a);
    event_loop_free(loop);
    close(fd);
    unlink(path);
}

/* Many requests in flight; drain completes them all without the loop. */
static void test_drain(gconstpointer data)
{
    BlockAioBackend want = GPOINTER_TO_INT(data);
    g_autofree char *path = NULL;
    int fd = temp_file(&path);
    EventLoop *loop = event_loop_new(EVENT_LOOP_GLIB, NULL, NULL);
    BlockAio *a = block_aio_new(loop, want, "test", NULL);
    enum { N = 64 };
    static uint8_t bufs[N][512];
    struct iovec iov[N];
    TestReq reqs[N];
    for (unsigned i = 0; i < N; i++) {
        memset(bufs[i], (int)i, sizeof(bufs[i]));
        iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
        reqs[i] = (TestReq){.aio = {.op = BLOCK_OP_WRITE,
                                    .fd = fd,
                                    .offset = 512ULL * i,
                                    .iov = &iov[i],
                                    .niov = 1,
                                    .done = test_done}};
        block_aio_submit(a, &reqs[i].aio);
    }
    block_aio_drain(a);
    g_assert_cmpuint(block_aio_inflight(a), ==, 0);
    for (unsigned i = 0; i < N; i++) {
        g_assert_true(reqs[i].done);
        g_assert_cmpint(reqs[i].ret, ==, 512);
    }
    uint8_t check[512];
    g_assert_cmpint(pread(fd, check, sizeof(check), 512 * 37), ==, 512);
    g_assert_cmpuint(check[0], ==, 37);
    block_aio_free(a);
    event_loop_free(loop);
    close(fd);
    unlink(path);
}

/* The batch-end callback: after the @done of each batch, never before a
 * @done of its batch, and at most once per batch. */
typedef struct BatchCount {
    unsigned batches;
    unsigned done_at_last_batch;
    TestReq *reqs;
    unsigned n;
} BatchCount;

static void batch_end(void *opaque)
{
    BatchCount *c = opaque;
    unsigned done = 0;
    for (unsigned i = 0; i < c->n; i++) {
        done += c->reqs[i].done;
    }
    /* Something finished since the previous batch ended. */
    g_assert_cmpuint(done, >, c->done_at_last_batch);
    c->done_at_last_batch = done;
    c->batches++;
}

static void test_batch_end(gconstpointer data)
{
    BlockAioBackend want = GPOINTER_TO_INT(data);
    g_autofree char *path = NULL;
    int fd = temp_file(&path);
    EventLoop *loop = event_loop_new(EVENT_LOOP_GLIB, NULL, NULL);
    BlockAio *a = block_aio_new(loop, want, "test", NULL);
    enum { N = 32 };
    static uint8_t bufs[N][512];
    struct iovec iov[N];
    TestReq reqs[N];
    BatchCount c = {.reqs = reqs, .n = N};

    block_aio_set_batch_end(a, batch_end, &c);
    for (int round = 0; round < 2; round++) {
        for (unsigned i = 0; i < N; i++) {
            iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
            reqs[i] = (TestReq){.aio = {.op = BLOCK_OP_WRITE,
                                        .fd = fd,
                                        .offset = 512ULL * i,
                                        .iov = &iov[i],
                                        .niov = 1,
                                        .done = test_done}};
            block_aio_submit(a, &reqs[i].aio);
        }
        c.batches = 0;
        c.done_at_last_batch = 0;
        if (round == 0) {
            /* Completions through the loop: one call per wake-up that found some. */
            for (int i = 0; i < 10000 && c.done_at_last_batch < N; i++) {
                event_loop_iterate(loop, true);
            }
            g_assert_cmpuint(c.batches, >=, 1);
            g_assert_cmpuint(c.batches, <=, N);
        } else {
            /* A drain ends with one call for everything it completed. */
            block_aio_drain(a);
            g_assert_cmpuint(c.batches, ==, 1);
        }
        g_assert_cmpuint(c.done_at_last_batch, ==, N);
    }
    /* Nothing completed: no call. */
    block_aio_drain(a);
    g_assert_cmpuint(c.batches, ==, 1);
    block_aio_free(a);
    event_loop_free(loop);
    close(fd);
    unlink(path);
}

/* KVMLOOP_NO_IO_URING stands in for a kernel or a seccomp filter without
 * io_uring: auto falls back to the pool, io_uring alone fails with a message. */
static void test_fallback(void)
{
    EventLoop *loop = event_loop_new(EVENT_LOOP_GLIB, NULL, NULL);
    g_setenv("KVMLOOP_NO_IO_URING", "1", TRUE);
    BlockAio *a = block_aio_new(loop, BLOCK_AIO_AUTO, "test", NULL);
    g_assert_cmpint(block_aio_backend(a), ==, BLOCK_AIO_THREADS);
    block_aio_free(a);
    g_autoptr(GError) err = NULL;
    g_assert_null(block_aio_new(loop, BLOCK_AIO_IO_URING, "drive0", &err));
    g_assert_nonnull(strstr(err->message, "drive0: io_uring is unavailable"));
    g_unsetenv("KVMLOOP_NO_IO_URING");
    a = block_aio_new(loop, BLOCK_AIO_AUTO, "test", NULL);
    g_assert_cmpint(block_aio_backend(a), ==, BLOCK_AIO_IO_URING);
    block_aio_free(a);
    event_loop_free(loop);
}

static void test_parse(void)
{
    BlockAioBackend b;
    g_assert_true(block_aio_backend_parse("threads", &b) && b == BLOCK_AIO_THREADS);
    g_assert_true(block_aio_backend_parse("io_uring", &b) && b == BLOCK_AIO_IO_URING);
    g_assert_true(block_aio_backend_parse("auto", &b) && b == BLOCK_AIO_AUTO);
    g_assert_false(block_aio_backend_parse("native", &b));
}

/* OFD locks belong to the open file, so two opens in one process conflict
 * as two processes would. */
static void test_lock(void)
{
    g_autofree char *path = NULL;
    close(temp_file(&path));
    int rw = open(path, O_RDWR);
    int ro1 = open(path, O_RDONLY);
    int ro2 = open(path, O_RDONLY);
    int rw2 = open(path, O_RDWR);
    g_assert_cmpint(block_image_lock(rw, true), ==, 0);
    g_assert_cmpint(block_image_lock(rw2, true), ==, -EAGAIN);
    g_assert_cmpint(block_image_lock(ro1, false), ==, -EAGAIN);
    close(rw); /* the lock goes with the file */
    g_assert_cmpint(block_image_lock(ro1, false), ==, 0);
    g_assert_cmpint(block_image_lock(ro2, false), ==, 0);
    g_assert_cmpint(block_image_lock(rw2, true), ==, -EAGAIN);
    close(ro1);
    g_assert_cmpint(block_image_lock(rw2, true), ==, -EAGAIN);
    close(ro2);
    /* A refused lock left nothing behind that would block this one. */
    g_assert_cmpint(block_image_lock(rw2, true), ==, 0);
    close(rw2);
    unlink(path);
}

/* The bounce-buffer decision under alignments other hosts report. */
static void test_direct_decision(void)
{
    static uint8_t buf[3 * 4096] __attribute__((aligned(4096)));
    const BlockDirectAlign small = {512, 512}, big = {4096, 4096}, mixed = {512, 4096};
    struct iovec whole[] = {{buf, 4096}};
    struct iovec halves[] = {{buf, 2048}, {buf + 4096 + 512, 2048}};
    struct iovec odd[] = {{buf + 1, 4096}};
    struct iovec short_len[] = {{buf, 1000}};

    g_assert_true(block_direct_iov_ok(whole, 1, &small));
    g_assert_true(block_direct_iov_ok(whole, 1, &big));
    g_assert_true(block_direct_iov_ok(whole, 1, &mixed));
    g_assert_true(block_direct_iov_ok(halves, 2, &small));
    g_assert_false(block_direct_iov_ok(halves, 2, &big));   /* address and lengths */
    g_assert_false(block_direct_iov_ok(halves, 2, &mixed)); /* lengths */
    g_assert_false(block_direct_iov_ok(odd, 1, &small));
    g_assert_false(block_direct_iov_ok(short_len, 1, &small));
    g_assert_true(block_direct_iov_ok(NULL, 0, &big));
}

/* A file's alignment, from the kernel and from trial reads, agree; both are
 * powers of two from 512 to 4096. */
static void test_direct_probe(void)
{
    g_autofree char *path = NULL;
    int fd = temp_file(&path);
    static uint8_t fill[8192];
    g_assert_cmpint(write(fd, fill, sizeof(fill)), ==, sizeof(fill));
    close(fd);
    fd = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0 && errno == EINVAL) {
        unlink(path);
        g_test_skip("the temporary directory's file system has no O_DIRECT");
        return;
    }
    g_assert_cmpint(fd, >=, 0);
    BlockDirectAlign k = {0, 0}, reads = {0, 0};
    g_assert_cmpint(block_direct_probe(fd, &k), ==, 0);
    g_assert_cmpint(block_direct_probe_by_reads(fd, &reads), ==, 0);
    g_assert_cmpuint(reads.io, ==, k.io);
    g_assert_cmpuint(reads.mem, <=, MAX(k.mem, 512));
    g_assert_true(k.io >= 512 && k.io <= 4096 && (k.io & (k.io - 1)) == 0);
    g_assert_true(reads.mem >= 512 && reads.mem <= 4096 && (reads.mem & (reads.mem - 1)) == 0);
    close(fd);
    /* Without O_DIRECT every read works: the trial reads find 512. */
    fd = open(path, O_RDONLY);
    g_assert_cmpint(block_direct_probe_by_reads(fd, &reads), ==, 0);
    g_assert_cmpuint(reads.io, ==, 512);
    g_assert_cmpuint(reads.mem, ==, 512);
    close(fd);
    unlink(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/block/rw/io_uring", GINT_TO_POINTER(BLOCK_AIO_IO_URING), test_rw);
    g_test_add_data_func("/block/rw/threads", GINT_TO_POINTER(BLOCK_AIO_THREADS), test_rw);
    g_test_add_data_func("/block/drain/io_uring", GINT_TO_POINTER(BLOCK_AIO_IO_URING), test_drain);
    g_test_add_data_func("/block/drain/threads", GINT_TO_POINTER(BLOCK_AIO_THREADS), test_drain);
    g_test_add_data_func("/block/batch-end/io_uring", GINT_TO_POINTER(BLOCK_AIO_IO_URING),
                         test_batch_end);
    g_test_add_data_func("/block/batch-end/threads", GINT_TO_POINTER(BLOCK_AIO_THREADS),
                         test_batch_end);
    g_test_add_func("/block/fallback", test_fallback);
    g_test_add_func("/block/parse", test_parse);
    g_test_add_func("/block/lock", test_lock);
    g_test_add_func("/block/direct/decision", test_direct_decision);
    g_test_add_func("/block/direct/probe", test_direct_probe);
    return g_test_run();
}
