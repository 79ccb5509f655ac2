/* Unit tests for chardev input: stdin on pipes, ptys and files, flow control, escapes, raw mode. */
#include "kvmloop/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <glib/gstdio.h>

#include "kvmloop/error.h"
#include "kvmloop/event_loop.h"

/* Failure guard for a whole test: every wait normally ends within
 * milliseconds, the longest test takes seconds under ThreadSanitizer. */
#define GUARD_NS (60 * 1000000000LL)

/* ---- A fake frontend ------------------------------------------------------ */

/* Takes everything, or with @slot set at most @slot bytes until the test
 * drains it, like a UART whose FIFO only the guest empties. */
typedef struct Front {
    GByteArray *got;
    size_t slot; /* 0: unlimited */
    size_t held;
    int quits;
} Front;

static size_t front_can_read(void *opaque)
{
    Front *f = opaque;

    return f->slot == 0 ? 4096 : f->slot - f->held;
}

static void front_receive(void *opaque, const uint8_t *buf, size_t len)
{
    Front *f = opaque;

    g_assert_cmpuint(len, >, 0);
    g_assert_cmpuint(len, <=, front_can_read(f));
    g_byte_array_append(f->got, buf, (guint)len);
    if (f->slot != 0) {
        f->held += len;
    }
}

static void front_quit(void *opaque)
{
    Front *f = opaque;

    f->quits++;
}

/* ---- Fixture: stdin replaced by a test fd ---------------------------------- */

typedef struct Fx {
    EventLoop *loop;
    Chardev *chr;
    Front front;
    int saved_stdin; /* -1: fd 0 was closed */
    int out[2];      /* what the console prints (escape help) */
    Timer *guard;
    bool expired;
} Fx;

/* Make @in_fd the process's stdin, create a "stdio" chardev whose output goes
 * to a pipe, attach the fake frontend and start input on a loop of the
 * backend in @data. The fd 0 the test runner gave us comes back in fx_end(). */
static void guard_cb(void *opaque)
{
    *(bool *)opaque = true;
}

static void fx_begin(Fx *fx, gconstpointer data, int in_fd, size_t slot)
{
    g_autoptr(GError) err = NULL;

    memset(fx, 0, sizeof(*fx));
    fx->front.got = g_byte_array_new();
    fx->front.slot = slot;
    fx->saved_stdin = dup(STDIN_FILENO);
    g_assert_cmpint(dup2(in_fd, STDIN_FILENO), ==, STDIN_FILENO);
    g_assert_cmpint(pipe2(fx->out, O_CLOEXEC), ==, 0);
    g_assert_cmpint(fcntl(fx->out[0], F_SETFL, O_NONBLOCK), ==, 0);

    fx->loop = event_loop_new(GPOINTER_TO_INT(data), NULL, &err);
    g_assert_no_error(err);
    fx->guard = timer_new(fx->loop, CLOCK_TYPE_REALTIME, "guard", guard_cb, &fx->expired);
    timer_mod(fx->guard, clock_get_ns(CLOCK_TYPE_REALTIME) + GUARD_NS);
    fx->chr = chardev_new("stdio", "serial0", &err);
    g_assert_no_error(err);
    g_assert_cmpint(fx->chr->in_fd, ==, STDIN_FILENO);
    fx->chr->out_fd = fx->out[1]; /* the non-owning stdio backend never closes it */
    chardev_set_handlers(fx->chr, front_can_read, front_receive, &fx->front);
    chardev_set_quit_handler(fx->chr, front_quit, &fx->front);
    g_assert_true(chardev_start_input(fx->chr, fx->loop, &err));
    g_assert_no_error(err);
}

static void fx_end(Fx *fx)
{
    chardev_free(fx->chr);
    timer_free(fx->guard);
    event_loop_free(fx->loop);
    if (fx->saved_stdin >= 0) {
        dup2(fx->saved_stdin, STDIN_FILENO);
        close(fx->saved_stdin);
    } else {
        close(STDIN_FILENO);
    }
    close(fx->out[0]);
    close(fx->out[1]);
    g_byte_array_unref(fx->front.got);
}

/* Iterate (blocking) until @done(@fx, @arg); fail once the guard fires. */
static void fx_run_until(Fx *fx, bool (*done)(Fx *, size_t), size_t arg)
{
    while (!done(fx, arg) && !fx->expired) {
        event_loop_iterate(fx->loop, true);
    }
    g_assert_false(fx->expired);
}

static bool got_at_least(Fx *fx, size_t n)
{
    return fx->front.got->len >= n;
}

static bool slot_full(Fx *fx, size_t unused)
{
    return fx->front.held == fx->front.slot;
}

static bool quits_at_least(Fx *fx, size_t n)
{
    return (size_t)fx->front.quits >= n;
}

/* Nothing is left for the loop to do: no readable watch, no BH. */
static void fx_assert_quiet(Fx *fx)
{
    for (int i = 0; i < 5; i++) {
        g_assert_false(event_loop_iterate(fx->loop, false));
    }
}

static void fx_assert_got(Fx *fx, const void *expect, size_t len)
{
    g_assert_cmpmem(fx->front.got->data, fx->front.got->len, expect, len);
}

/* Everything the console printed so far, as a string. */
static char *fx_output(Fx *fx)
{
    GString *s = g_string_new(NULL);
    char buf[512];
    ssize_t n;

    while ((n = read(fx->out[0], buf, sizeof(buf))) > 0) {
        g_string_append_len(s, buf, n);
    }
    return g_string_free(s, false);
}

static void write_all(int fd, const void *buf, size_t len)
{
    g_assert_cmpint(write(fd, buf, len), ==, (ssize_t)len);
}

/* A byte pattern without the escape character. */
static uint8_t pattern(size_t i)
{
    uint8_t b = (uint8_t)(i * 7 + 3);

    return b == 0x01 ? 0x02 : b;
}

/* ---- Pipes ---------------------------------------------------------------- */

static void test_pipe_order(gconstpointer data)
{
    uint8_t msg[255];
    int p[2];
    Fx fx;

    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(i + 2 > 0xff ? 0 : i + 2); /* 0x02..0xff, then 0x00 */
    }
    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    fx_begin(&fx, data, p[0], 0);
    close(p[0]);
    write_all(p[1], "hello\n", 6);
    fx_run_until(&fx, got_at_least, 6);
    write_all(p[1], msg, sizeof(msg));
    fx_run_until(&fx, got_at_least, 6 + sizeof(msg));
    g_assert_cmpmem(fx.front.got->data, 6, "hello\n", 6);
    g_assert_cmpmem(fx.front.got->data + 6, fx.front.got->len - 6, msg, sizeof(msg));
    g_assert_cmpint(fx.front.quits, ==, 0);
    close(p[1]);
    fx_end(&fx);
}

/*
 * A frontend that takes one byte at a time and a writer with far more than
 * the chardev buffers: everything arrives in order, the chardev stops reading
 * (the writer is held back, the loop goes quiet) until the frontend has room.
 */
static void test_pipe_flow_control(gconstpointer data)
{
    const size_t total = 72 * 1024; /* more than the pipe and the chardev hold */
    size_t written = 0;
    int p[2];
    Fx fx;

    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    g_assert_cmpint(fcntl(p[1], F_SETFL, O_NONBLOCK), ==, 0);
    fx_begin(&fx, data, p[0], 1);
    close(p[0]);

    while (fx.front.got->len < total) {
        /* Keep the pipe full. */
        while (written < total) {
            uint8_t chunk[4096];
            size_t n = MIN(sizeof(chunk), total - written);
            ssize_t w;

            for (size_t i = 0; i < n; i++) {
                chunk[i] = pattern(written + i);
            }
            w = write(p[1], chunk, n);
            if (w < 0) {
                g_assert_cmpint(errno, ==, EAGAIN);
                break;
            }
            written += (size_t)w;
        }
        fx_run_until(&fx, slot_full, 0);
        if (fx.front.got->len == 1) {
            int queued = 0;

            /* The frontend is full and the chardev's buffer fills: it stops
             * reading, leaving the rest in the pipe, and does not spin. */
            for (int i = 0; i < 20; i++) {
                event_loop_iterate(fx.loop, false);
            }
            fx_assert_quiet(&fx);
            g_assert_cmpint(ioctl(p[1], FIONREAD, &queued), ==, 0);
            g_assert_cmpint(queued, >, 0);
            g_assert_cmpuint(fx.front.got->len, ==, 1);
        }
        fx.front.held = 0; /* the guest read RBR */
        chardev_accept_input(fx.chr);
    }
    g_assert_cmpuint(written, ==, total);
    g_assert_cmpuint(fx.front.got->len, ==, total);
    for (size_t i = 0; i < total; i++) {
        if (fx.front.got->data[i] != pattern(i)) {
            g_error("byte %zu is 0x%02x, expected 0x%02x", i, fx.front.got->data[i], pattern(i));
        }
    }
    close(p[1]);
    fx_end(&fx);
}

/* End of file stops the watch: the loop goes quiet and nothing quits. */
static void test_pipe_eof(gconstpointer data)
{
    int p[2];
    Fx fx;

    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    fx_begin(&fx, data, p[0], 0);
    close(p[0]);
    write_all(p[1], "last", 4);
    close(p[1]);
    fx_run_until(&fx, got_at_least, 4);
    for (int i = 0; i < 3; i++) {
        event_loop_iterate(fx.loop, false);
    }
    fx_assert_quiet(&fx);
    fx_assert_got(&fx, "last", 4);
    g_assert_cmpint(fx.front.quits, ==, 0);
    fx_end(&fx);
}

/* Bytes the frontend has not taken when input ends still arrive. */
static void test_pipe_eof_pending(gconstpointer data)
{
    int p[2];
    Fx fx;

    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    fx_begin(&fx, data, p[0], 1);
    close(p[0]);
    write_all(p[1], "abc", 3);
    close(p[1]);
    for (size_t n = 1; n <= 3; n++) {
        fx_run_until(&fx, got_at_least, n);
        fx.front.held = 0;
        chardev_accept_input(fx.chr);
    }
    fx_assert_got(&fx, "abc", 3);
    fx_run_until(&fx, got_at_least, 3);
    fx_assert_quiet(&fx);
    fx_end(&fx);
}

/* ---- Escapes -------------------------------------------------------------- */

static void test_escapes(gconstpointer data)
{
    static const char in[] = "a\x01"
                             "xb\x01\x01"
                             "c\x01zd\x01"
                             "h\x01"
                             "c!";
    static const char expect[] = "ab\x01"
                                 "czd!";
    g_autofree char *out = NULL;
    int p[2];
    Fx fx;

    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    fx_begin(&fx, data, p[0], 0);
    close(p[0]);
    write_all(p[1], in, strlen(in));
    fx_run_until(&fx, got_at_least, strlen(expect));
    fx_assert_got(&fx, expect, strlen(expect));
    g_assert_cmpint(fx.front.quits, ==, 1);
    out = fx_output(&fx);
    g_assert_nonnull(strstr(out, "Console escapes"));
    g_assert_nonnull(strstr(out, "x       quit kvmloop"));
    g_assert_nonnull(strstr(out, "no monitor is multiplexed on this console"));

    /* An escape split across two reads still counts. */
    write_all(p[1], "\x01", 1);
    event_loop_iterate(fx.loop, true);
    write_all(p[1], "x", 1);
    fx_run_until(&fx, quits_at_least, 2);
    g_assert_cmpuint(fx.front.got->len, ==, strlen(expect));

    /* Ctrl-a x works while the frontend takes nothing. */
    fx.front.slot = 1;
    fx.front.held = 1;
    write_all(p[1], "queued\x01x", 8);
    fx_run_until(&fx, quits_at_least, 3);
    g_assert_cmpuint(fx.front.got->len, ==, strlen(expect));
    fx.front.slot = 0;
    chardev_accept_input(fx.chr);
    fx_run_until(&fx, got_at_least, strlen(expect) + 6);
    g_assert_cmpmem(fx.front.got->data + strlen(expect), 6, "queued", 6);

    /* Without a quit handler, Ctrl-a x is swallowed and nothing else happens. */
    chardev_set_quit_handler(fx.chr, NULL, NULL);
    write_all(p[1], "\x01xk", 3);
    fx_run_until(&fx, got_at_least, strlen(expect) + 7);
    g_assert_cmpint(fx.front.got->data[strlen(expect) + 6], ==, 'k');
    g_assert_cmpint(fx.front.quits, ==, 3);
    close(p[1]);
    fx_end(&fx);
}

/* ---- Terminals ------------------------------------------------------------ */

static void assert_termios_equal(const struct termios *a, const struct termios *b)
{
    g_assert_cmphex(a->c_iflag, ==, b->c_iflag);
    g_assert_cmphex(a->c_oflag, ==, b->c_oflag);
    g_assert_cmphex(a->c_cflag, ==, b->c_cflag);
    g_assert_cmphex(a->c_lflag, ==, b->c_lflag);
    g_assert_cmpmem(a->c_cc, sizeof(a->c_cc), b->c_cc, sizeof(b->c_cc));
}

static void open_pty(int *master, int *slave, struct termios *orig)
{
    g_assert_cmpint(openpty(master, slave, NULL, NULL, NULL), ==, 0);
    g_assert_cmpint(fcntl(*master, F_SETFD, FD_CLOEXEC), ==, 0);
    g_assert_cmpint(fcntl(*slave, F_SETFD, FD_CLOEXEC), ==, 0);
    g_assert_cmpint(tcgetattr(*slave, orig), ==, 0);
    /* A fresh pty is cooked: the changes below are visible. */
    g_assert_true(orig->c_lflag & ICANON);
    g_assert_true(orig->c_lflag & ECHO);
    g_assert_true(orig->c_lflag & ISIG);
}

static void test_pty(gconstpointer data)
{
    /* CR, Ctrl-C, Ctrl-Z, Ctrl-S, Ctrl-\ and DEL reach the guest as they are. */
    static const char keys[] = "ls\r\x03\x1a\x13\x1c\x7f\n";
    struct termios orig, raw, after;
    struct pollfd pfd;
    int master, slave;
    Fx fx;

    open_pty(&master, &slave, &orig);
    fx_begin(&fx, data, slave, 0);

    g_assert_cmpint(tcgetattr(slave, &raw), ==, 0);
    g_assert_cmphex(raw.c_lflag & (ICANON | ECHO | ECHONL | ISIG | IEXTEN), ==, 0);
    g_assert_cmphex(raw.c_iflag & (ICRNL | INLCR | IGNCR | IXON | ISTRIP | BRKINT), ==, 0);
    g_assert_cmphex(raw.c_cflag & CSIZE, ==, CS8);
    g_assert_cmphex(raw.c_oflag, ==, orig.c_oflag); /* output processing kept */
    g_assert_cmpint(raw.c_cc[VMIN], ==, 1);
    g_assert_cmpint(raw.c_cc[VTIME], ==, 0);

    write_all(master, keys, strlen(keys));
    fx_run_until(&fx, got_at_least, strlen(keys));
    fx_assert_got(&fx, keys, strlen(keys));
    g_assert_cmpint(fx.front.quits, ==, 0);
    /* No echo came back to the terminal. */
    pfd = (struct pollfd){.fd = master, .events = POLLIN};
    g_assert_cmpint(poll(&pfd, 1, 0), ==, 0);

    write_all(master, "\x01x", 2);
    fx_run_until(&fx, quits_at_least, 1);

    fx_end(&fx);
    g_assert_cmpint(tcgetattr(slave, &after), ==, 0);
    assert_termios_equal(&after, &orig);
    close(master);
    close(slave);
}

/* Closing the terminal (hang-up, read() fails with EIO) ends input quietly. */
static void test_pty_hangup(gconstpointer data)
{
    struct termios orig;
    int master, slave;
    Fx fx;

    open_pty(&master, &slave, &orig);
    fx_begin(&fx, data, slave, 0);
    close(slave);
    write_all(master, "bye", 3);
    fx_run_until(&fx, got_at_least, 3);
    close(master);
    for (int i = 0; i < 5; i++) {
        event_loop_iterate(fx.loop, false);
    }
    fx_assert_quiet(&fx);
    fx_assert_got(&fx, "bye", 3);
    g_assert_cmpint(fx.front.quits, ==, 0);
    fx_end(&fx);
}

/* Reachable from a global, so that LeakSanitizer in a child that exits
 * without freeing them does not call them leaks. */
static EventLoop *child_loop;
static Chardev *child_chr;

typedef enum {
    CHILD_EXIT,    /* exit(0) without chardev_free: atexit */
    CHILD_SIGTERM, /* a fatal signal sent by kill */
    CHILD_SIGPIPE, /* console output to a reader that went away */
    CHILD_FAULT,   /* a real SIGSEGV (a sanitizer's report in those builds) */
} ChildEnd;

static void __attribute__((noreturn)) child_run(int slave, ChildEnd how)
{
    struct rlimit no_core = {0, 0};
    int devnull = open("/dev/null", O_WRONLY);
    int p[2];

    setrlimit(RLIMIT_CORE, &no_core);
    dup2(devnull, STDERR_FILENO); /* a sanitizer's report is expected noise */
    if (dup2(slave, STDIN_FILENO) < 0) {
        _exit(90);
    }
    child_loop = event_loop_new(EVENT_LOOP_GLIB, NULL, NULL);
    child_chr = chardev_new("stdio", "serial0", NULL);
    if (child_loop == NULL || child_chr == NULL ||
        !chardev_start_input(child_chr, child_loop, NULL)) {
        _exit(91);
    }
    switch (how) {
    case CHILD_EXIT:
        exit(0);
    case CHILD_SIGTERM:
        kill(getpid(), SIGTERM);
        break;
    case CHILD_SIGPIPE:
        if (pipe(p) == 0) {
            close(p[0]);
            child_chr->out_fd = p[1];
            chardev_write_all(child_chr, (const uint8_t *)"x", 1);
        }
        break;
    case CHILD_FAULT: {
        volatile char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (page != MAP_FAILED) {
            page[0] = 1;
        }
        break;
    }
    }
    _exit(92);
}

/* The terminal comes back however the process ends. */
static void test_tty_restored_at_death(gconstpointer data)
{
    ChildEnd how = GPOINTER_TO_INT(data);
    struct termios orig, after;
    int master, slave, status;
    pid_t pid;

    open_pty(&master, &slave, &orig);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        child_run(slave, how);
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    switch (how) {
    case CHILD_EXIT:
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        break;
    case CHILD_SIGTERM:
        g_assert_true(WIFSIGNALED(status));
        g_assert_cmpint(WTERMSIG(status), ==, SIGTERM);
        break;
    case CHILD_SIGPIPE:
        g_assert_true(WIFSIGNALED(status));
        g_assert_cmpint(WTERMSIG(status), ==, SIGPIPE);
        break;
    case CHILD_FAULT:
        /* Killed by SIGSEGV, or a sanitizer's non-zero exit after its report. */
        g_assert_true(WIFSIGNALED(status) ||
                      (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) < 90));
        break;
    }
    g_assert_cmpint(tcgetattr(slave, &after), ==, 0);
    assert_termios_equal(&after, &orig);
    close(master);
    close(slave);
}

/* ---- Files that poll cannot wait on --------------------------------------- */

/* A regular file on stdin (always ready; epoll refuses it) is read in order
 * under flow control and ends at its end. */
static void test_regular_file(gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    const size_t total = 10000;
    g_autofree uint8_t *content = g_malloc(total);
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("test-chardev-XXXXXX", &path, &err);
    Fx fx;

    g_assert_no_error(err);
    for (size_t i = 0; i < total; i++) {
        content[i] = pattern(i);
    }
    write_all(fd, content, total);
    g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
    fx_begin(&fx, data, fd, 16);
    close(fd);
    while (fx.front.got->len < total) {
        fx_run_until(&fx, got_at_least, MIN(total, fx.front.got->len + 16));
        fx.front.held = 0;
        chardev_accept_input(fx.chr);
    }
    fx_assert_got(&fx, content, total);
    fx_run_until(&fx, got_at_least, total);
    fx_assert_quiet(&fx);
    fx_end(&fx);
    g_unlink(path);
}

/* /dev/null on stdin (the usual in scripts): no bytes, no spinning. */
static void test_dev_null(gconstpointer data)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    Fx fx;

    g_assert_cmpint(fd, >=, 0);
    fx_begin(&fx, data, fd, 0);
    close(fd);
    for (int i = 0; i < 3; i++) {
        event_loop_iterate(fx.loop, false);
    }
    fx_assert_quiet(&fx);
    g_assert_cmpuint(fx.front.got->len, ==, 0);
    fx_end(&fx);
}

/* ---- Set-up errors and backends without input ----------------------------- */

static void test_start_errors(gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    Chardev *other;
    int p[2];
    Fx fx;

    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    fx_begin(&fx, data, p[0], 0);
    close(p[0]);

    g_assert_false(chardev_start_input(fx.chr, fx.loop, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_EXISTS);
    g_assert_cmpstr(err->message, ==, "serial0: input is already running");
    g_clear_error(&err);

    other = chardev_new("stdio", "serial1", &err);
    g_assert_no_error(err);
    g_assert_false(chardev_start_input(other, fx.loop, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_BUSY);
    g_assert_cmpstr(err->message, ==, "serial1: stdin is already the input of serial0");
    g_clear_error(&err);
    chardev_free(other);

    /* The first still works. */
    write_all(p[1], "ok", 2);
    fx_run_until(&fx, got_at_least, 2);
    fx_assert_got(&fx, "ok", 2);

    /* Once it stops, stdin is free for another. */
    chardev_stop_input(fx.chr);
    chardev_stop_input(fx.chr);
    other = chardev_new("stdio", "serial1", &err);
    g_assert_true(chardev_start_input(other, fx.loop, &err));
    g_assert_no_error(err);
    chardev_free(other);
    close(p[1]);
    fx_end(&fx);
}

static void test_no_input_backends(gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    EventLoop *loop = event_loop_new(GPOINTER_TO_INT(data), NULL, &err);
    static const char *const specs[] = {"null", "capture", "file:/dev/null"};

    g_assert_no_error(err);
    for (size_t i = 0; i < G_N_ELEMENTS(specs); i++) {
        Chardev *chr = chardev_new(specs[i], NULL, &err);

        g_assert_no_error(err);
        g_assert_cmpint(chr->in_fd, ==, -1);
        g_assert_true(chardev_start_input(chr, loop, &err));
        g_assert_no_error(err);
        g_assert_null(chr->input);
        chardev_accept_input(chr);
        chardev_free(chr);
    }
    chardev_accept_input(NULL);
    g_assert_false(event_loop_iterate(loop, false));
    event_loop_free(loop);
}

/* ---- Registration ----------------------------------------------------------- */

static void add_both(const char *name, GTestDataFunc fn)
{
    static const EventLoopBackend backends[] = {EVENT_LOOP_GLIB, EVENT_LOOP_LIBEVENT};

    for (size_t i = 0; i < G_N_ELEMENTS(backends); i++) {
        g_autofree char *path =
            g_strdup_printf("/chardev/%s/%s", event_loop_backend_name(backends[i]), name);

        g_test_add_data_func(path, GINT_TO_POINTER(backends[i]), fn);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add_both("pipe-order", test_pipe_order);
    add_both("pipe-flow-control", test_pipe_flow_control);
    add_both("pipe-eof", test_pipe_eof);
    add_both("pipe-eof-pending", test_pipe_eof_pending);
    add_both("escapes", test_escapes);
    add_both("pty", test_pty);
    add_both("pty-hangup", test_pty_hangup);
    add_both("regular-file", test_regular_file);
    add_both("dev-null", test_dev_null);
    add_both("start-errors", test_start_errors);
    add_both("no-input-backends", test_no_input_backends);
    g_test_add_data_func("/chardev/tty-restored/exit", GINT_TO_POINTER(CHILD_EXIT),
                         test_tty_restored_at_death);
    g_test_add_data_func("/chardev/tty-restored/sigterm", GINT_TO_POINTER(CHILD_SIGTERM),
                         test_tty_restored_at_death);
    g_test_add_data_func("/chardev/tty-restored/sigpipe", GINT_TO_POINTER(CHILD_SIGPIPE),
                         test_tty_restored_at_death);
    g_test_add_data_func("/chardev/tty-restored/fault", GINT_TO_POINTER(CHILD_FAULT),
                         test_tty_restored_at_death);
    return g_test_run();
}
