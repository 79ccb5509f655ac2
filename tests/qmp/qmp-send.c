/* qmp-send: what `socat - UNIX-CONNECT:PATH` does, for tests that must not need socat.
 *
 * Usage: qmp-send [-t SECONDS] PATH
 * Connects to the unix socket PATH (retrying while it is not there yet) and,
 * as a user typing at socat would, sends the lines read from stdin one at a
 * time, each once the server answered the one before. Everything the server
 * sends goes to stdout, until it closes the connection. Exit status: 0 when
 * the server closed it, 1 on a connection error or after SECONDS (default
 * 60).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_retry(const char *path, long long deadline)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "qmp-send: path too long: %s\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            perror("qmp-send: socket");
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return fd;
        }
        int e = errno;
        close(fd);
        if (now_ms() > deadline) {
            fprintf(stderr, "qmp-send: cannot connect to %s: %s\n", path, strerror(e));
            return -1;
        }
        usleep(10000);
    }
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A server line that answers a request (not an event, not the greeting). */
static int is_reply(const char *line)
{
    return strncmp(line, "{\"return\"", 9) == 0 || strncmp(line, "{\"error\"", 8) == 0;
}

int main(int argc, char **argv)
{
    int timeout_s = 60;
    int opt;
    while ((opt = getopt(argc, argv, "t:")) != -1) {
        if (opt == 't') {
            timeout_s = atoi(optarg);
        } else {
            fprintf(stderr, "usage: qmp-send [-t SECONDS] PATH\n");
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: qmp-send [-t SECONDS] PATH\n");
        return 2;
    }
    long long deadline = now_ms() + (long long)timeout_s * 1000;
    int fd = connect_retry(argv[optind], deadline);
    if (fd < 0) {
        return 1;
    }
    /* As a user at a terminal: wait for the greeting, then send one line
     * and wait for its reply before the next. */
    static char in[1 << 20], out[1 << 20];
    size_t in_len = 0, out_len = 0;
    int waiting = 1, stdin_open = 1;
    for (;;) {
        char *nl;
        while (!waiting && (nl = memchr(in, '\n', in_len))) {
            size_t n = (size_t)(nl - in) + 1;
            size_t i = 0;
            while (i < n && (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n')) {
                i++;
            }
            if (i < n) {
                if (write_all(fd, in, n) < 0) {
                    fprintf(stderr, "qmp-send: the server closed the connection\n");
                    return 1;
                }
                waiting = 1;
            }
            memmove(in, in + n, in_len - n);
            in_len -= n;
        }
        long long left = deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "qmp-send: timed out\n");
            return 1;
        }
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN},
                                {.fd = STDIN_FILENO, .events = POLLIN}};
        int nfds = !waiting && stdin_open && in_len < sizeof(in) ? 2 : 1;
        if (poll(pfd, nfds, (int)left) < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("qmp-send: poll");
            return 1;
        }
        if (pfd[0].revents) {
            ssize_t n = read(fd, out + out_len, sizeof(out) - out_len);
            if (n <= 0) {
                fwrite(out, 1, out_len, stdout);
                return n == 0 || errno == ECONNRESET ? 0 : 1;
            }
            out_len += (size_t)n;
            while ((nl = memchr(out, '\n', out_len))) {
                size_t len = (size_t)(nl - out) + 1;
                fwrite(out, 1, len, stdout);
                fflush(stdout);
                out[len - 1] = '\0';
                if (waiting && (is_reply(out) || strncmp(out, "{\"QMP\"", 6) == 0)) {
                    waiting = 0;
                }
                memmove(out, out + len, out_len - len);
                out_len -= len;
            }
            if (out_len == sizeof(out)) {
                fwrite(out, 1, out_len, stdout);
                out_len = 0;
            }
        }
        if (nfds == 2 && pfd[1].revents) {
            ssize_t n = read(STDIN_FILENO, in + in_len, sizeof(in) - in_len);
            if (n <= 0) {
                stdin_open = 0; /* keep the connection: events may still come */
                if (in_len > 0 && in_len < sizeof(in)) {
                    in[in_len++] = '\n'; /* a last line without its newline */
                }
            } else {
                in_len += (size_t)n;
            }
        }
    }
}
