/*
 * berth-runner: PID 1's only child in a pooled container; runs one command for Berth, then ends.
 *
 * Berth creates a folder on the host holding a copy of this binary and a listening Unix socket, mounts
 * it read-only at /.berth in exactly one container, and starts the container with
 * `/.berth/runner /.berth/s` under `--init`. The runner connects, says hello, and waits for one
 * request: argv, env, workdir, timeout, output cap and stdin. It forks the command (same user, same
 * limits: it is an ordinary process of the container), streams its stdout/stderr back in frames
 * (at most the cap + 1 byte of each, the rest is read and dropped so the command never blocks), kills
 * every process of the container at the timeout or when the command ends (as the end of a container's
 * main process would), and reports how it ended. It never runs a second command: the container is
 * removed after its one run. When Berth goes away (the socket closes) it kills everything and exits,
 * so a killed Berth leaves no command running. If it cannot connect at all (an engine that cannot
 * share the folder), it idles like `sleep`, and Berth uses `docker exec` in this container instead.
 *
 * Needs nothing from the image: a static binary (musl or glibc `-static`), no shell, no libc.
 *
 * Protocol, integers big-endian:
 *   runner -> Berth  frames: u8 type, u32 length, payload
 *     HELLO(0)   "berth-runner 1"
 *     STDOUT(1), STDERR(2)   output bytes
 *     EXIT(3)    i32 exit status (128+signal when killed by one), u8 timed out
 *     FAILED(4)  u8 stage (1 chdir, 2 exec, 3 other), i32 errno, text: the command did not start
 *     STARTED(5) empty: the command's program is running
 *   Berth -> runner  "BRQ1", u32 body length, body, then `stdin length` bytes of stdin
 *     body: u32 timeout ms (0: none), u32 output cap, u64 stdin length (all ones: no stdin at all),
 *           u32 argc, argc NUL-terminated strings, u32 envc, envc "K=V" strings, workdir string
 *   Anything Berth sends after that, or the socket closing, cancels the run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { HELLO = 0, OUT = 1, ERR = 2, EXIT = 3, FAILED = 4, STARTED = 5 };
enum { STAGE_CHDIR = 1, STAGE_EXEC = 2, STAGE_OTHER = 3 };
#define MAX_BODY (8u << 20)
#define NO_STDIN UINT64_MAX
#define CHUNK 65536

extern char **environ;

static int sock = -1;
static int wake[2] = {-1, -1};

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    if (write(wake[1], "x", 1) < 0) { /* the pipe is full: the loop wakes anyway */ }
    errno = saved;
}

static void write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { kill(-1, SIGKILL); _exit(0); } /* Berth is gone: so is the run */
        p += w;
        n -= (size_t)w;
    }
}

static void put32(unsigned char *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void frame(int type, const void *data, uint32_t n) {
    unsigned char head[5];
    head[0] = (unsigned char)type;
    put32(head + 1, n);
    write_all(sock, head, 5);
    if (n) write_all(sock, data, n);
}

/* Read exactly n bytes from the socket; 0 at end of file (Berth closed: nothing to do). */
static int read_exact(void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(sock, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

/* After the result: wait until Berth closes the socket (it reads the container's counters first). */
static void linger(void) {
    char buf[256];
    for (;;) {
        ssize_t r = read(sock, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
    }
    kill(-1, SIGKILL);
    _exit(0);
}

static void failed(int stage, int err, const char *what) {
    unsigned char buf[5 + 200];
    buf[0] = (unsigned char)stage;
    put32(buf + 1, (uint32_t)err);
    size_t n = strlen(what);
    if (n > 200) n = 200;
    memcpy(buf + 5, what, n);
    frame(FAILED, buf, (uint32_t)(5 + n));
    linger();
}

/* Split `n` bytes of NUL-terminated strings at *pos into a NULL-terminated vector of `count`. */
static char **strings(char *body, uint32_t len, uint32_t *pos, uint32_t count) {
    if (count > len) return NULL;
    char **v = calloc((size_t)count + 1, sizeof *v);
    if (!v) return NULL;
    for (uint32_t i = 0; i < count; i++) {
        char *end = memchr(body + *pos, 0, len - *pos);
        if (!end) return NULL;
        v[i] = body + *pos;
        *pos = (uint32_t)(end - body) + 1;
    }
    return v;
}

/* The container's environment with the request's variables on top (same name: the request's wins). */
static char **merged_env(char **extra) {
    size_t n = 0, m = 0;
    while (environ[n]) n++;
    while (extra[m]) m++;
    char **env = calloc(n + m + 1, sizeof *env);
    if (!env) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t name = strcspn(environ[i], "=");
        int overridden = 0;
        for (size_t j = 0; j < m && !overridden; j++)
            overridden = strncmp(extra[j], environ[i], name) == 0 && extra[j][name] == '=';
        if (!overridden) env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++) env[k++] = extra[j];
    return env;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/.berth/s";
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) return 2;
    strcpy(addr.sun_path, path);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        for (;;) pause(); /* no Berth to talk to: idle like `sleep`; Berth execs into this container */
    }
    signal(SIGPIPE, SIG_IGN);
    const char hello[] = "berth-runner 1";
    frame(HELLO, hello, sizeof hello - 1);

    unsigned char head[8];
    if (!read_exact(head, 8)) _exit(0); /* closed before a run: the pool let this container go */
    uint32_t len = get32(head + 4);
    if (memcmp(head, "BRQ1", 4) != 0 || len < 24 || len > MAX_BODY) failed(STAGE_OTHER, EPROTO, "bad request");
    char *body = malloc((size_t)len + 1);
    if (!body) failed(STAGE_OTHER, ENOMEM, "out of memory");
    if (!read_exact(body, len)) _exit(0);
    body[len] = 0;
    const unsigned char *b = (const unsigned char *)body;
    uint32_t timeout_ms = get32(b), cap = get32(b + 4);
    uint64_t stdin_left = ((uint64_t)get32(b + 8) << 32) | get32(b + 12);
    int has_stdin = stdin_left != NO_STDIN;
    if (!has_stdin) stdin_left = 0;
    uint32_t pos = 20;
    char **args = strings(body, len, &pos, get32(b + 16));
    if (!args || !args[0] || pos + 4 > len) failed(STAGE_OTHER, EPROTO, "bad argv");
    uint32_t envc = get32(b + pos);
    pos += 4;
    char **extra = strings(body, len, &pos, envc);
    char **workdir = strings(body, len, &pos, 1);
    if (!extra || !workdir) failed(STAGE_OTHER, EPROTO, "bad env or workdir");
    char **env = merged_env(extra);
    if (!env) failed(STAGE_OTHER, ENOMEM, "out of memory");

    int out[2], err[2], in[2] = {-1, -1}, ep[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(ep, O_CLOEXEC) || pipe2(wake, O_CLOEXEC | O_NONBLOCK) ||
        (has_stdin && pipe2(in, O_CLOEXEC)))
        failed(STAGE_OTHER, errno, "pipe");
    struct sigaction sa = {.sa_handler = on_child, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);

    pid_t pid = fork();
    if (pid < 0) failed(STAGE_OTHER, errno, "fork");
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        int fd0 = has_stdin ? in[0] : open("/dev/null", O_RDONLY);
        if (fd0 < 0 || dup2(fd0, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) {
            int e[2] = {STAGE_OTHER, errno};
            if (write(ep[1], e, sizeof e) < 0) _exit(127);
            _exit(127);
        }
        if (chdir(workdir[0]) < 0) {
            int e[2] = {STAGE_CHDIR, errno};
            if (write(ep[1], e, sizeof e) < 0) _exit(127);
            _exit(127);
        }
        environ = env;
        execvp(args[0], args);
        int e[2] = {STAGE_EXEC, errno};
        if (write(ep[1], e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    close(ep[1]);
    if (has_stdin) close(in[0]);
    int e[2];
    ssize_t got;
    while ((got = read(ep[0], e, sizeof e)) < 0 && errno == EINTR) {
    }
    if (got == (ssize_t)sizeof e) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        failed(e[0], e[1], e[0] == STAGE_CHDIR ? "chdir" : "exec");
    }
    close(ep[0]);
    frame(STARTED, NULL, 0);

    int fds[2] = {out[0], err[0]};
    uint64_t sent[2] = {0, 0};
    uint64_t limit = (uint64_t)cap + 1; /* one byte past the cap tells Berth the output was cut */
    int in_fd = has_stdin ? in[1] : -1;
    if (in_fd >= 0) fcntl(in_fd, F_SETFL, O_NONBLOCK);
    static char inbuf[CHUNK], buf[CHUNK];
    size_t in_have = 0, in_off = 0;
    int exited = 0, status = 0, timed_out = 0;
    int64_t deadline = timeout_ms ? now_ms() + timeout_ms : -1;

    while (fds[0] >= 0 || fds[1] >= 0 || !exited) {
        struct pollfd p[5];
        int n = 0, i_sock = -1, i_in = -1, i_out[2] = {-1, -1};
        p[n] = (struct pollfd){.fd = wake[0], .events = POLLIN};
        n++;
        if (stdin_left == 0 || in_have == 0) { /* stdin to read, or (all read) a cancel to notice */
            i_sock = n;
            p[n++] = (struct pollfd){.fd = sock, .events = POLLIN};
        }
        if (in_fd >= 0 && in_have > in_off) {
            i_in = n;
            p[n++] = (struct pollfd){.fd = in_fd, .events = POLLOUT};
        }
        for (int s = 0; s < 2; s++)
            if (fds[s] >= 0) {
                i_out[s] = n;
                p[n++] = (struct pollfd){.fd = fds[s], .events = POLLIN};
            }
        int wait_ms = -1;
        if (deadline >= 0 && !timed_out) {
            int64_t left = deadline - now_ms();
            wait_ms = left < 0 ? 0 : (int)(left > 60000 ? 60000 : left);
        }
        int r = poll(p, (nfds_t)n, wait_ms);
        if (r < 0 && errno != EINTR) break;
        if (deadline >= 0 && !timed_out && now_ms() >= deadline) {
            timed_out = 1;
            kill(-1, SIGKILL); /* every process of the run, also those that left its process group */
        }
        if (r <= 0) continue;
        if (p[0].revents) {
            char drain[64];
            while (read(wake[0], drain, sizeof drain) > 0) {
            }
        }
        if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
            exited = 1;
            kill(-1, SIGKILL); /* the main process ended: so does the rest, as at the end of a container */
        }
        if (i_sock >= 0 && p[i_sock].revents) {
            if (stdin_left > 0) {
                size_t want = stdin_left < CHUNK ? (size_t)stdin_left : CHUNK;
                ssize_t got_in = read(sock, inbuf, want);
                if (got_in == 0 || (got_in < 0 && errno != EINTR && errno != EAGAIN)) {
                    kill(-1, SIGKILL); /* Berth went away in the middle of stdin */
                    _exit(0);
                }
                if (got_in > 0) {
                    stdin_left -= (uint64_t)got_in;
                    in_have = (size_t)got_in;
                    in_off = 0;
                    if (in_fd < 0) in_have = 0; /* the command closed its stdin: drop the rest */
                }
            } else {
                kill(-1, SIGKILL); /* Berth cancelled the run (or went away) */
                _exit(0);
            }
        }
        if (i_in >= 0 && p[i_in].revents) {
            ssize_t w = write(in_fd, inbuf + in_off, in_have - in_off);
            if (w > 0) in_off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) { close(in_fd); in_fd = -1; in_have = 0; }
        }
        if (in_have && in_off >= in_have) in_have = in_off = 0;
        if (in_fd >= 0 && stdin_left == 0 && in_have == 0) { close(in_fd); in_fd = -1; }
        if (in_fd < 0) in_have = 0;
        for (int s = 0; s < 2; s++) {
            if (i_out[s] < 0 || !p[i_out[s]].revents) continue;
            ssize_t got_out = read(fds[s], buf, sizeof buf);
            if (got_out < 0 && errno == EINTR) continue;
            if (got_out <= 0) { close(fds[s]); fds[s] = -1; continue; }
            uint64_t room = sent[s] < limit ? limit - sent[s] : 0;
            uint32_t fwd = (uint64_t)got_out < room ? (uint32_t)got_out : (uint32_t)room;
            if (fwd) frame(s == 0 ? OUT : ERR, buf, fwd);
            sent[s] += fwd;
        }
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
    if (timed_out) code = 128 + SIGKILL;
    unsigned char res[5];
    put32(res, (uint32_t)code);
    res[4] = (unsigned char)timed_out;
    frame(EXIT, res, 5);
    linger();
    return 0;
}
