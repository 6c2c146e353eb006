/*
 * udpgen: a UDP traffic generator for the forwarding benchmark (bench/forward.ts).
 *
 *   udpgen DST_IP PORT PAYLOAD SECONDS [scan NFLOWS RATE]
 *
 * Sends PAYLOAD-byte datagrams to DST_IP:PORT as fast as sendmmsg(2) allows for SECONDS and prints
 * the number sent. With "scan NFLOWS RATE" it sends one datagram to each of NFLOWS distinct
 * (source port, destination port) pairs instead (new flows), paced at RATE per second, then exits.
 * UDPGEN_SPORT=N in the environment binds the blast's source port (the same flow run after run), or
 * sets the scan's first source port (1024 by default).
 * C99, Linux only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: udpgen DST_IP PORT PAYLOAD SECONDS [scan NFLOWS]\n");
        return 2;
    }
    const char *dst = argv[1];
    int port = atoi(argv[2]);
    int payload = atoi(argv[3]);
    double secs = atof(argv[4]);
    long scan = (argc >= 7 && strcmp(argv[5], "scan") == 0) ? atol(argv[6]) : 0;
    double rate = argc >= 8 ? atof(argv[7]) : 0;
    if (payload < 1 || payload > 65000) payload = 18;

    static char buf[65536];
    memset(buf, 0x5a, sizeof buf);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, dst, &to.sin_addr) != 1) {
        fprintf(stderr, "udpgen: bad address %s\n", dst);
        return 2;
    }
    long sent = 0;
    if (scan > 0) {
        /* One datagram per (source port, destination port): a socket per source port. */
        long per = 60000;
        long sport0 = getenv("UDPGEN_SPORT") ? atol(getenv("UDPGEN_SPORT")) : 1024;
        double t0 = now();
        for (long base = 0; base < scan; base += per) {
            int s = socket(AF_INET, SOCK_DGRAM, 0);
            struct sockaddr_in me;
            memset(&me, 0, sizeof me);
            me.sin_family = AF_INET;
            me.sin_port = htons((unsigned short)(sport0 + base / per));
            if (s < 0 || bind(s, (struct sockaddr *)&me, sizeof me) < 0) {
                perror("udpgen: socket");
                return 1;
            }
            for (long k = 0; k < per && base + k < scan; k++) {
                if (rate > 0 && (k & 63) == 0) {
                    double due = t0 + (double)(base + k) / rate;
                    while (now() < due) { /* pace */ }
                }
                to.sin_port = htons((unsigned short)(1 + k % 65534));
                if (sendto(s, buf, (size_t)payload, 0, (struct sockaddr *)&to, sizeof to) > 0) sent++;
                else if (errno == ENOBUFS || errno == EAGAIN) usleep(50);
            }
            close(s);
        }
        printf("%ld\n", sent);
        return 0;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    const char *sport = getenv("UDPGEN_SPORT");
    if (s >= 0 && sport != NULL) {
        int one = 1;
        struct sockaddr_in me;
        memset(&me, 0, sizeof me);
        me.sin_family = AF_INET;
        me.sin_port = htons((unsigned short)atoi(sport));
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s, (struct sockaddr *)&me, sizeof me) < 0) {
            perror("udpgen: bind");
            return 1;
        }
    }
    if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to) < 0) {
        perror("udpgen: socket");
        return 1;
    }
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = buf;
        iov[i].iov_len = (size_t)payload;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    double end = now() + secs;
    while (now() < end) {
        for (int r = 0; r < 16; r++) {
            int n = sendmmsg(s, msgs, BATCH, 0);
            if (n > 0) sent += n;
        }
    }
    printf("%ld\n", sent);
    return 0;
}
