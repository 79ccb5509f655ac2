/* Character backends (stdio, file, null, capture) and console input: raw mode, escapes. */
#include "kvmloop/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "kvmloop/error.h"
#include "kvmloop/event_loop.h"

/* GCC says __SANITIZE_*__, clang says __has_feature(). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CHARDEV_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CHARDEV_SANITIZED 1
#endif
#endif
#ifndef CHARDEV_SANITIZED
#define CHARDEV_SANITIZED 0
#endif
#if CHARDEV_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

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
    chr->in_fd = -1;
    return chr;
}

/* ---- The terminal on stdin ------------------------------------------------ */

/*
 * Raw mode, as QEMU sets it for -serial stdio: cfmakeraw()'s input and local
 * flags (no echo, no line editing, no ISIG so that Ctrl-C and Ctrl-Z reach the
 * guest, no IXON so that Ctrl-S/Ctrl-Q do too, no CR/NL translation of input,
 * 8-bit bytes, read() returns as soon as one byte is there), but the output
 * flags are left as they were. QEMU also keeps OPOST: kvmloop's own messages
 * and guests that print a bare "\n" (test payloads, early boot code) still
 * start at column 0, while a guest's "\r\n" only gains a harmless second CR.
 *
 * The saved settings live in process-wide state on purpose: only one chardev
 * can read stdin, and the atexit and signal handlers that put the terminal
 * back can reach nothing else.
 */

/* Signals whose default action kills the process and that may end kvmloop
 * while the terminal is raw. SIGHUP, SIGINT and SIGTERM normally reach the
 * main loop through a signalfd (blocked), which stops the VM cleanly; a
 * handler here covers the case where they are not blocked. Faults are
 * handled only in builds without a sanitizer, whose own handlers must keep
 * them (see chardev_tty_install()). */
static const int chardev_tty_signals[] = {
    SIGHUP,  SIGINT, SIGQUIT, SIGTERM, SIGPIPE,
#if !CHARDEV_SANITIZED
    SIGSEGV, SIGBUS, SIGILL,  SIGFPE,  SIGABRT,
#endif
};

static struct {
    int fd;
    struct termios saved;
    /* Atomic: @fd and @saved are valid and the terminal is raw. Stored with
     * release after them; the signal and exit paths load it with acquire. */
    int active;
    bool exit_hooked;
    bool installed[G_N_ELEMENTS(chardev_tty_signals)];
} chardev_tty;

/* The chardev that reads stdin, if any. Main thread. */
static Chardev *chardev_stdin_owner;

/* Put the saved settings back if the terminal is raw. Async-signal-safe
 * (tcsetattr() and an atomic load), so any path may call it. */
static void chardev_tty_put_back(void)
{
    if (__atomic_load_n(&chardev_tty.active, __ATOMIC_ACQUIRE)) {
        tcsetattr(chardev_tty.fd, TCSANOW, &chardev_tty.saved);
    }
}

/*
 * A fatal signal while the terminal is raw: restore it, then let the signal
 * do what it would have done. SA_RESETHAND has already put back SIG_DFL (the
 * handler is only installed over SIG_DFL). A fault raised by the CPU happens
 * again when this returns and then kills the process, with a core dump of the
 * real fault; a signal that was sent (kill, raise, abort, a broken pipe) is
 * raised again and, blocked while this handler runs, kills it on return.
 */
static void chardev_tty_signal(int sig, siginfo_t *info, void *uctx)
{
    int saved_errno = errno;
    bool fault = (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) &&
                 info != NULL && info->si_code > 0;

    chardev_tty_put_back();
    if (!fault) {
        raise(sig);
    }
    errno = saved_errno;
}

static void chardev_tty_at_exit(void)
{
    chardev_tty_put_back();
}

/*
 * Arrange for the terminal to come back on every exit path: exit() and a
 * return from main() (atexit), fatal signals (chardev_tty_signal()), and a
 * sanitizer's fatal report, which ends in _exit() and so skips atexit: the
 * sanitizer's death callback is the hook there.
 *
 * Handlers go only where the disposition is SIG_DFL, so nobody else's handler
 * is replaced. Builds with a sanitizer leave the fault signals alone
 * altogether: ASan's handlers for SIGSEGV, SIGBUS and SIGFPE print its
 * reports, and TSan's sigaction() interceptor answers SIG_DFL for signals it
 * handles itself, so the SIG_DFL test cannot see them.
 */
static void chardev_tty_install(void)
{
    if (!chardev_tty.exit_hooked) {
        chardev_tty.exit_hooked = true;
        atexit(chardev_tty_at_exit);
#if CHARDEV_SANITIZED
        __sanitizer_set_death_callback(chardev_tty_at_exit);
#endif
    }
    for (size_t i = 0; i < G_N_ELEMENTS(chardev_tty_signals); i++) {
        struct sigaction old, sa;

        if (sigaction(chardev_tty_signals[i], NULL, &old) < 0 || old.sa_handler != SIG_DFL ||
            (old.sa_flags & SA_SIGINFO)) {
            continue;
        }
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = chardev_tty_signal;
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        chardev_tty.installed[i] = sigaction(chardev_tty_signals[i], &sa, NULL) == 0;
    }
}

/* Give the signals taken by chardev_tty_install() back to SIG_DFL. */
static void chardev_tty_uninstall(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(chardev_tty_signals); i++) {
        if (chardev_tty.installed[i]) {
            signal(chardev_tty_signals[i], SIG_DFL);
            chardev_tty.installed[i] = false;
        }
    }
}

/* Save @fd's settings and make it raw. Main thread. */
static bool chardev_tty_make_raw(int fd, const char *label, GError **errp)
{
    struct termios saved, raw;

    if (tcgetattr(fd, &saved) < 0) {
        int err = errno;

        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "%s: reading the terminal settings of stdin failed: %s", label,
                    g_strerror(err));
        return false;
    }
    raw = saved;
    cfmakeraw(&raw);
    raw.c_oflag = saved.c_oflag;

    /* Saved and hooked before the change, so no window leaves it raw. */
    chardev_tty.fd = fd;
    chardev_tty.saved = saved;
    __atomic_store_n(&chardev_tty.active, 1, __ATOMIC_RELEASE);
    chardev_tty_install();
    if (tcsetattr(fd, TCSANOW, &raw) < 0) {
        int err = errno;

        __atomic_store_n(&chardev_tty.active, 0, __ATOMIC_RELEASE);
        chardev_tty_uninstall();
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "%s: putting the terminal on stdin in raw mode failed: %s", label,
                    g_strerror(err));
        return false;
    }
    return true;
}

/* Restore the terminal if it is raw. Main thread. */
static void chardev_tty_restore(void)
{
    if (!__atomic_load_n(&chardev_tty.active, __ATOMIC_ACQUIRE)) {
        return;
    }
    chardev_tty_put_back();
    __atomic_store_n(&chardev_tty.active, 0, __ATOMIC_RELEASE);
    chardev_tty_uninstall();
}

/* ---- The stdio backend ---------------------------------------------------- */

/* Claim stdin; make a terminal raw. See ChardevOps.input_open. */
static bool chardev_stdio_input_open(Chardev *chr, GError **errp)
{
    pid_t fg;

    if (chardev_stdin_owner != NULL) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY, "%s: stdin is already the input of %s",
                    chr->label, chardev_stdin_owner->label);
        return false;
    }
    if (fcntl(chr->in_fd, F_GETFL) < 0) {
        chr->in_fd = -1; /* stdin is closed: nothing to read */
        return true;
    }
    if (isatty(chr->in_fd)) {
        /* A job in the background would be stopped (SIGTTOU, SIGTTIN) by
         * the first tcsetattr() or read(). -1: not our controlling terminal,
         * so job control does not apply. */
        fg = tcgetpgrp(chr->in_fd);
        if (fg >= 0 && fg != getpgrp()) {
            fprintf(stderr,
                    "kvmloop: %s: stdin is the terminal of another job (running in the "
                    "background?); console input is off\n",
                    chr->label);
            chr->in_fd = -1;
            return true;
        }
        if (!chardev_tty_make_raw(chr->in_fd, chr->label, errp)) {
            return false;
        }
    }
    chardev_stdin_owner = chr;
    return true;
}

static void chardev_stdio_input_close(Chardev *chr)
{
    if (chardev_stdin_owner == chr) {
        chardev_tty_restore();
        chardev_stdin_owner = NULL;
    }
}

/* Output to fd 1, input from fd 0. Neither fd is ever closed or made
 * non-blocking: both belong to the process, and on a terminal they usually
 * share one open file description, so O_NONBLOCK on stdin would also change
 * stdout under everything else that prints. Input is read only after poll
 * reported it readable, which is enough for read() not to block. */
static const ChardevOps chardev_stdio_ops = {
    .write = chardev_fd_write,
    .close = chardev_fd_close,
    .input_open = chardev_stdio_input_open,
    .input_close = chardev_stdio_input_close,
};

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
        Chardev *chr = chardev_alloc(&chardev_stdio_ops, name, STDOUT_FILENO, false);

        chr->in_fd = STDIN_FILENO;
        chr->escapes = true;
        return chr;
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
    chardev_stop_input(chr);
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
    chardev_accept_input(chr);
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

/* ---- Input --------------------------------------------------------------- */

/* Bytes read ahead of the frontend. Small enough that a paste into a guest
 * that does not read stays in the pipe or the terminal, large enough that an
 * escape typed behind a few lines of input is still seen. */
#define CHARDEV_INPUT_BUF_SIZE 4096
/* Ctrl-a, QEMU's default escape character. */
#define CHARDEV_ESCAPE_CHAR 0x01

static const char chardev_escape_help[] =
    "\n"
    "Console escapes: type Ctrl-a, then\n"
    "  h       print this help\n"
    "  x       quit kvmloop\n"
    "  c       switch to the monitor (there is none on this console)\n"
    "  Ctrl-a  send Ctrl-a to the guest\n"
    "Any other key goes to the guest, as do Ctrl-C and Ctrl-Z.\n";

/* All fields but @waiting belong to the loop thread. */
struct ChardevInput {
    Chardev *chr;
    EventLoop *loop;
    /* Readiness of a fd that poll(2) can wait on; NULL while the buffer is
     * full (a paused watch would still wake GLib's poll on a hang-up) and
     * after end of file. */
    EventWatch *watch;
    /* Resumes delivery after chardev_accept_input(); for a fd that poll
     * cannot wait on (always ready) it is also the reader. */
    BH *bh;
    bool pollable;
    bool eof;
    bool escape; /* the previous byte was the escape character */
    bool error_logged;
    /* Atomic: bytes wait for the frontend, so chardev_accept_input() must
     * schedule @bh. See chardev_input_flush(). */
    int waiting;
    size_t head, len; /* buf[head, head + len) waits for the frontend */
    uint8_t buf[CHARDEV_INPUT_BUF_SIZE];
};

static void chardev_input_ready(void *opaque, int fd, unsigned revents);

static void chardev_print(Chardev *chr, const char *text)
{
    (void)chardev_write_all(chr, (const uint8_t *)text, strlen(text));
}

static void chardev_input_queue(ChardevInput *in, uint8_t byte)
{
    in->buf[in->head + in->len] = byte;
    in->len++;
}

/* The key after the escape character. */
static void chardev_input_escape(ChardevInput *in, uint8_t key)
{
    Chardev *chr = in->chr;

    switch (key) {
    case 'x':
        /* Without a handler there is nothing to quit: ignored. */
        if (chr->quit != NULL) {
            chr->quit(chr->quit_opaque);
        }
        break;
    case 'h':
    case '?':
        chardev_print(chr, chardev_escape_help);
        break;
    case 'c':
        chardev_print(chr, "\nkvmloop: no monitor is multiplexed on this console\n");
        break;
    default:
        /* Ctrl-a Ctrl-a sends one Ctrl-a; any other key is sent alone. */
        chardev_input_queue(in, key);
        break;
    }
}

static void chardev_input_byte(ChardevInput *in, uint8_t byte)
{
    if (in->escape) {
        in->escape = false;
        chardev_input_escape(in, byte);
    } else if (in->chr->escapes && byte == CHARDEV_ESCAPE_CHAR) {
        in->escape = true;
    } else {
        chardev_input_queue(in, byte);
    }
}

/* Read once, at most what the buffer has room for (each byte read queues at
 * most one), and pass it through the escapes. End of file, a hang-up (EIO
 * from a terminal) or an error ends the input. */
static void chardev_input_read(ChardevInput *in)
{
    uint8_t tmp[CHARDEV_INPUT_BUF_SIZE];
    size_t room;
    ssize_t n;

    if (in->head > 0) {
        memmove(in->buf, in->buf + in->head, in->len);
        in->head = 0;
    }
    room = sizeof(in->buf) - in->len;
    if (room == 0 || in->eof) {
        return;
    }
    n = read(in->chr->in_fd, tmp, room);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return;
    }
    if (n < 0 && errno != EIO && !in->error_logged) {
        in->error_logged = true;
        g_warning("%s: reading input failed: %s; input ends", in->chr->label, g_strerror(errno));
    }
    if (n <= 0) {
        in->eof = true;
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        chardev_input_byte(in, tmp[i]);
    }
}

/* Hand waiting bytes to the frontend as far as it takes them. */
static void chardev_input_flush(ChardevInput *in)
{
    size_t n;

    if (in->len == 0) {
        return;
    }
    n = chardev_deliver(in->chr, in->buf + in->head, in->len);
    in->head += n;
    in->len -= n;
    if (in->len == 0) {
        in->head = 0;
        return;
    }
    /* The frontend is full. Ask chardev_accept_input() to call back, then
     * look once more: room made after the look above but before this store
     * would otherwise be missed. Pairs with the load in
     * chardev_accept_input(), which follows the frontend's making room. */
    __atomic_store_n(&in->waiting, 1, __ATOMIC_SEQ_CST);
    n = chardev_deliver(in->chr, in->buf + in->head, in->len);
    in->head += n;
    in->len -= n;
}

/* Read on while there is room and input has not ended; otherwise stop. */
static void chardev_input_rearm(ChardevInput *in)
{
    bool want = !in->eof && in->len < sizeof(in->buf);

    if (!in->pollable) {
        if (want) {
            bh_schedule(in->bh);
        }
        return;
    }
    if (want && in->watch == NULL) {
        in->watch = event_loop_add_fd(in->loop, in->chr->in_fd, EVENT_IN, "chardev-input",
                                      chardev_input_ready, in);
        if (in->watch == NULL) {
            in->eof = true; /* the loop said why */
        }
    } else if (!want && in->watch != NULL) {
        event_watch_remove(in->watch);
        in->watch = NULL;
    }
}

/* The input fd is readable (or hung up). Loop thread. */
static void chardev_input_ready(void *opaque, int fd, unsigned revents)
{
    ChardevInput *in = opaque;

    chardev_input_read(in);
    chardev_input_flush(in);
    chardev_input_rearm(in);
}

/* Scheduled by chardev_accept_input() and, for an always-ready fd, by
 * chardev_input_rearm(). Loop thread. */
static void chardev_input_bh(void *opaque)
{
    ChardevInput *in = opaque;

    /* Cleared before delivering, so room made from here on schedules the BH
     * again. Pairs with the load in chardev_accept_input(). */
    __atomic_store_n(&in->waiting, 0, __ATOMIC_SEQ_CST);
    chardev_input_flush(in);
    if (!in->pollable) {
        chardev_input_read(in);
        chardev_input_flush(in);
    }
    chardev_input_rearm(in);
}

/*
 * Whether poll can wait for @fd. Files whose driver cannot wait (regular
 * files, /dev/null) are always ready: poll(2) says so at once, but epoll,
 * which the libevent backend uses, refuses them with EPERM. Such input is
 * read from a bottom half instead of a watch, the same on both backends.
 */
static bool chardev_fd_pollable(int fd)
{
    struct epoll_event ev = {.events = EPOLLIN};
    int ep = epoll_create1(EPOLL_CLOEXEC);
    bool pollable;

    if (ep < 0) {
        return true; /* cannot tell: let the loop try */
    }
    pollable = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 || errno != EPERM;
    close(ep);
    return pollable;
}

/* Start input. See chardev.h. Main thread, BQL held. */
bool chardev_start_input(Chardev *chr, EventLoop *loop, GError **errp)
{
    ChardevInput *in;

    if (chr->input != NULL) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "%s: input is already running",
                    chr->label);
        return false;
    }
    if (chr->in_fd < 0) {
        return true;
    }
    if (chr->ops->input_open && !chr->ops->input_open(chr, errp)) {
        return false;
    }
    if (chr->in_fd < 0) {
        return true;
    }
    in = g_new0(ChardevInput, 1);
    in->chr = chr;
    in->loop = loop;
    in->pollable = chardev_fd_pollable(chr->in_fd);
    in->bh = bh_new(loop, "chardev-input", chardev_input_bh, in);
    /* Publishes @in to chardev_accept_input() on other threads. */
    __atomic_store_n(&chr->input, in, __ATOMIC_RELEASE);
    chardev_input_rearm(in);
    if (in->pollable && in->watch == NULL) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: cannot watch input fd %d", chr->label,
                    chr->in_fd);
        chardev_stop_input(chr);
        return false;
    }
    return true;
}

/* Stop input. See chardev.h. */
void chardev_stop_input(Chardev *chr)
{
    ChardevInput *in = chr->input;

    if (in == NULL) {
        return;
    }
    __atomic_store_n(&chr->input, NULL, __ATOMIC_RELEASE);
    if (in->watch != NULL) {
        event_watch_remove(in->watch);
    }
    bh_delete(in->bh);
    if (chr->ops->input_close) {
        chr->ops->input_close(chr);
    }
    g_free(in);
}

/* The frontend has room. See chardev.h. Any thread. */
void chardev_accept_input(Chardev *chr)
{
    ChardevInput *in;

    if (chr == NULL) {
        return;
    }
    in = __atomic_load_n(&chr->input, __ATOMIC_ACQUIRE);
    /* Pairs with the store in chardev_input_flush(): either this load sees
     * the flag, or the flush's second look sees the room made before it. */
    if (in != NULL && __atomic_load_n(&in->waiting, __ATOMIC_SEQ_CST)) {
        bh_schedule(in->bh);
    }
}

/* Register the Ctrl-a x handler. See chardev.h. */
void chardev_set_quit_handler(Chardev *chr, chr_quit_fn fn, void *opaque)
{
    chr->quit = fn;
    chr->quit_opaque = opaque;
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
