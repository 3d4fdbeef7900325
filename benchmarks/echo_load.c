/* Load generator for benchmarks/echo.py: CONNS connections to 127.0.0.1:PORT, each keeping one
 * 64-byte message in flight (send, wait for the 64-byte echo, send again). Counts round trips
 * over SECONDS after a one-second warm-up and prints the rate. Written in C so that the load is
 * never the bottleneck of a pure-Python server. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: echo_load PORT CONNS SECONDS\n");
        return 2;
    }
    int port = atoi(argv[1]), conns = atoi(argv[2]);
    double seconds = atof(argv[3]);
    int ep = epoll_create1(0);
    int *got = calloc(conns, sizeof(int));
    int *fds = calloc(conns, sizeof(int));
    char msg[MSG], buf[MSG];
    memset(msg, 'x', MSG);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            perror("connect");
            return 1;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds[i] = fd;
    }
    for (int i = 0; i < conns; i++)
        if (send(fds[i], msg, MSG, 0) != MSG) { perror("send"); return 1; }
    struct epoll_event events[256];
    long trips = 0;
    double start = now(), measure_from = start + 1.0, end = measure_from + seconds;
    int measuring = 0;
    for (;;) {
        double t = now();
        if (!measuring && t >= measure_from) { measuring = 1; trips = 0; }
        if (t >= end) break;
        int n = epoll_wait(ep, events, 256, 100);
        for (int k = 0; k < n; k++) {
            int i = events[k].data.u32;
            ssize_t r = recv(fds[i], buf, MSG - got[i], 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                fprintf(stderr, "connection %d closed\n", i);
                return 1;
            }
            got[i] += r;
            if (got[i] == MSG) {
                got[i] = 0;
                trips++;
                if (send(fds[i], msg, MSG, 0) != MSG) { perror("send"); return 1; }
            }
        }
    }
    printf("%.0f\n", trips / seconds);
    return 0;
}
