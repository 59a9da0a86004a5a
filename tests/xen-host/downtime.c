/* downtime IP PORT: what a client of a TCP echo service sees while its
 * domain is saved and restored or migrated. Every 10 ms a new connection
 * to IP:PORT (100 ms to connect, 100 ms for the answer) sends one line and
 * reads it back. On SIGTERM or SIGINT it prints
 *   downtime ms=LONGEST answered=N failed=M
 * where LONGEST is the longest time between two answered tries (from the
 * start of the one before to the end of the one after), i.e. the longest
 * time the client saw no answer. Busybox's nc starts a process a try and
 * has no connect timeout under a second: too coarse for this. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One try: 1 when the line came back whole. */
static int try_once(const struct sockaddr_in *to)
{
    static const char line[] = "downtime probe\n";
    char buf[sizeof line];
    int ok = 0;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return 0;
    fcntl(s, F_SETFL, O_NONBLOCK);
    struct pollfd p = { .fd = s, .events = POLLOUT };
    if (connect(s, (const struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS)
        goto out;
    if (poll(&p, 1, 100) != 1)
        goto out;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
        goto out;
    if (write(s, line, sizeof line - 1) != (ssize_t)(sizeof line - 1))
        goto out;
    size_t got = 0;
    long long deadline = now_ms() + 100;
    while (got < sizeof line - 1) {
        long long left = deadline - now_ms();
        p.events = POLLIN;
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            goto out;
        ssize_t n = read(s, buf + got, sizeof line - 1 - got);
        if (n <= 0)
            goto out;
        got += (size_t)n;
    }
    ok = memcmp(buf, line, sizeof line - 1) == 0;
out:
    close(s);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: downtime IP PORT\n");
        return 2;
    }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
        fprintf(stderr, "downtime: bad address %s\n", argv[1]);
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    /* A try whose connection the peer reset is a failed try, not the
     * end of the probe (a write to it would raise SIGPIPE). */
    signal(SIGPIPE, SIG_IGN);
    long long last_start = -1, longest = 0, answered = 0, failed = 0;
    while (!stop) {
        long long start = now_ms();
        if (try_once(&to)) {
            long long end = now_ms();
            if (last_start >= 0 && end - last_start > longest)
                longest = end - last_start;
            last_start = start;
            answered++;
        } else {
            failed++;
        }
        usleep(10000);
    }
    printf("downtime ms=%lld answered=%lld failed=%lld\n", longest, answered, failed);
    return answered > 0 ? 0 : 1;
}
