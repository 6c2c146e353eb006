/*
 * pktrx: drain an interface through an AF_PACKET socket for a while, two ways (bench/attach.ts).
 *
 *   pktrx IFNAME mmsg|ring|ring2 SECONDS
 *
 * mmsg: SOCK_RAW with PACKET_VNET_HDR, as the emulator's packet-socket vifs read (src/native, packetReadBatch):
 *       poll(), then recvmmsg(MSG_DONTWAIT) batches of 16 into 64 KiB staging buffers until the queue is
 *       empty; a 4 MiB receive buffer.
 * ring: the same socket with a TPACKET_V3 RX ring (64 blocks of 1 MiB, frame size 2048, block timeout
 *       4 ms), mapped once; poll() until the next block belongs to user space, walk its frames, give the
 *       block back.
 * ring2: a TPACKET_V2 RX ring with the emulator's geometry (src/native/pktring.h: 64 blocks of 64 KiB,
 *       39 frames of 1664 bytes each); poll() until the next frame belongs to user space, take it, give
 *       it back.
 * Either way each frame (after its virtio-net header) is copied into one of 256 slots of 2048 bytes, as
 * the datapath takes frames into its slab. After SECONDS of that it prints one JSON line: frames, bytes,
 * the kernel's packet/drop counts (PACKET_STATISTICS), the process's CPU time (getrusage) and the busy
 * time of each CPU (/proc/stat) over the window.
 *
 * Written from packet(7) and Documentation/networking/packet_mmap.rst. C99, Linux only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VLEN 16
#define STAGE (sizeof(struct virtio_net_hdr) + 65536 + 32)
#define SLOTS 256
#define SLOT 2048
#define BLOCK_SIZE (1u << 20)
#define BLOCK_NR 64u
#define FRAME_SIZE 2048u
#define BLOCK_TOV_MS 4u
#define V2_BLOCK_SIZE (64u << 10)
#define V2_BLOCK_NR 64u
#define V2_FRAME_SIZE 1664u
#define V2_PER_BLOCK (V2_BLOCK_SIZE / V2_FRAME_SIZE)
#define MAXCPU 64

static uint8_t slab[SLOTS][SLOT];
static unsigned long long frames, bytes, csum_partial, outgoing, wakeups;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

/* Busy seconds (everything but idle and iowait) of cpu0..cpuN-1; returns N. */
static int cpu_busy(double *busy) {
    FILE *f = fopen("/proc/stat", "r");
    char line[512];
    int n = 0;
    long hz = sysconf(_SC_CLK_TCK);
    if (f == NULL) return 0;
    while (fgets(line, sizeof line, f) != NULL && n < MAXCPU) {
        unsigned long long v[8] = {0};
        int cpu;
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') continue;
        if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) < 9)
            continue;
        /* user nice system idle iowait irq softirq steal */
        busy[n++] = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz;
    }
    fclose(f);
    return n;
}

/* What the datapath does with a frame: note its virtio-net header, copy it into a slot. */
static void take(const uint8_t *vnet, const uint8_t *frame, size_t len) {
    struct virtio_net_hdr h;
    memcpy(&h, vnet, sizeof h);
    if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) csum_partial++;
    if (len > SLOT) len = SLOT;
    memcpy(slab[frames % SLOTS], frame, len);
    frames++;
    bytes += len;
}

static int die(const char *what) {
    fprintf(stderr, "pktrx: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[2], "mmsg") != 0 && strcmp(argv[2], "ring") != 0 && strcmp(argv[2], "ring2") != 0)) {
        fprintf(stderr, "usage: pktrx IFNAME mmsg|ring|ring2 SECONDS\n");
        return 2;
    }
    const char *ifname = argv[1];
    int ring = strcmp(argv[2], "ring") == 0;
    int ring2 = strcmp(argv[2], "ring2") == 0;
    size_t maplen = ring ? (size_t)BLOCK_SIZE * BLOCK_NR : (size_t)V2_BLOCK_SIZE * V2_BLOCK_NR;
    double secs = atof(argv[3]);
    unsigned ifindex = if_nametoindex(ifname);
    if (ifindex == 0) return die(ifname);

    /* Protocol 0: nothing is queued before bind(), which comes after the ring exists. */
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) return die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) return die("PACKET_VNET_HDR");
    (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);

    uint8_t *map = NULL;
    if (ring) {
        int ver = TPACKET_V3;
        if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof ver) < 0) return die("PACKET_VERSION");
        struct tpacket_req3 req;
        memset(&req, 0, sizeof req);
        req.tp_block_size = BLOCK_SIZE;
        req.tp_block_nr = BLOCK_NR;
        req.tp_frame_size = FRAME_SIZE;
        req.tp_frame_nr = (BLOCK_SIZE / FRAME_SIZE) * BLOCK_NR;
        req.tp_retire_blk_tov = BLOCK_TOV_MS;
        if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return die("PACKET_RX_RING");
        map = mmap(NULL, (size_t)BLOCK_SIZE * BLOCK_NR, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        if (map == MAP_FAILED) return die("mmap");
    } else if (ring2) {
        int ver = TPACKET_V2;
        if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof ver) < 0) return die("PACKET_VERSION");
        struct tpacket_req req;
        memset(&req, 0, sizeof req);
        req.tp_block_size = V2_BLOCK_SIZE;
        req.tp_block_nr = V2_BLOCK_NR;
        req.tp_frame_size = V2_FRAME_SIZE;
        req.tp_frame_nr = V2_PER_BLOCK * V2_BLOCK_NR;
        if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return die("PACKET_RX_RING");
        map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        if (map == MAP_FAILED) return die("mmap");
    } else {
        int rcvbuf = 4 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) return die("bind");

    static uint8_t stage[VLEN][STAGE];
    struct mmsghdr msgs[VLEN];
    struct iovec iov[VLEN];
    struct sockaddr_ll from[VLEN];
    unsigned block = 0;

    /* The window starts here: counters reset (PACKET_STATISTICS clears on read), times taken. */
    union { struct tpacket_stats s; struct tpacket_stats_v3 s3; } st;
    socklen_t stlen = sizeof st;
    (void)getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &stlen);
    double busy0[MAXCPU], busy1[MAXCPU];
    int ncpu = cpu_busy(busy0);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now(), end = t0 + secs, t;
    struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLERR };

    while ((t = now()) < end) {
        int ms = (int)((end - t) * 1000) + 1;
        if (ms > 100) ms = 100;
        if (ring2) {
            struct tpacket2_hdr *h = (struct tpacket2_hdr *)(map + (size_t)(block / V2_PER_BLOCK) * V2_BLOCK_SIZE +
                                                             (size_t)(block % V2_PER_BLOCK) * V2_FRAME_SIZE);
            if ((__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) {
                wakeups++;
                if (poll(&pfd, 1, ms) < 0 && errno != EINTR) return die("poll");
                continue;
            }
            uint8_t *mac = (uint8_t *)h + h->tp_mac;
            take(mac - sizeof(struct virtio_net_hdr), mac, h->tp_snaplen);
            __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
            block = (block + 1) % (V2_PER_BLOCK * V2_BLOCK_NR);
        } else if (ring) {
            struct tpacket_block_desc *bd = (struct tpacket_block_desc *)(map + (size_t)block * BLOCK_SIZE);
            if ((__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) {
                wakeups++;
                if (poll(&pfd, 1, ms) < 0 && errno != EINTR) return die("poll");
                continue;
            }
            uint32_t n = bd->hdr.bh1.num_pkts;
            uint8_t *p = (uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt;
            for (uint32_t k = 0; k < n; k++) {
                struct tpacket3_hdr *h = (struct tpacket3_hdr *)p;
                uint8_t *mac = p + h->tp_mac;
                take(mac - sizeof(struct virtio_net_hdr), mac, h->tp_snaplen);
                p += h->tp_next_offset;
            }
            __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
            block = (block + 1) % BLOCK_NR;
        } else {
            wakeups++;
            if (poll(&pfd, 1, ms) < 0 && errno != EINTR) return die("poll");
            if ((pfd.revents & POLLIN) == 0) continue;
            for (;;) {
                memset(msgs, 0, sizeof msgs);
                for (int k = 0; k < VLEN; k++) {
                    iov[k].iov_base = stage[k];
                    iov[k].iov_len = STAGE;
                    msgs[k].msg_hdr.msg_iov = &iov[k];
                    msgs[k].msg_hdr.msg_iovlen = 1;
                    msgs[k].msg_hdr.msg_name = &from[k];
                    msgs[k].msg_hdr.msg_namelen = sizeof from[k];
                }
                int got = recvmmsg(fd, msgs, VLEN, MSG_DONTWAIT, NULL);
                if (got < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    return die("recvmmsg");
                }
                for (int k = 0; k < got; k++) {
                    if (from[k].sll_pkttype == PACKET_OUTGOING) {
                        outgoing++;
                        continue;
                    }
                    if (msgs[k].msg_len <= sizeof(struct virtio_net_hdr)) continue;
                    take(stage[k], stage[k] + sizeof(struct virtio_net_hdr), msgs[k].msg_len - sizeof(struct virtio_net_hdr));
                }
                if (got < VLEN) break;
            }
        }
    }
    double dt = now() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    cpu_busy(busy1);
    stlen = sizeof st;
    unsigned kpackets = 0, kdrops = 0;
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &stlen) == 0) {
        kpackets = st.s.tp_packets; /* the first two fields of both shapes */
        kdrops = st.s.tp_drops;
    }
    double user = tv(ru1.ru_utime) - tv(ru0.ru_utime), sys = tv(ru1.ru_stime) - tv(ru0.ru_stime);
    printf("{\"mode\":\"%s\",\"secs\":%.4f,\"frames\":%llu,\"bytes\":%llu,\"kernelPackets\":%u,\"kernelDrops\":%u,"
           "\"userSecs\":%.4f,\"sysSecs\":%.4f,\"csumPartial\":%llu,\"outgoing\":%llu,\"wakeups\":%llu,\"cpuBusySecs\":[",
           argv[2], dt, frames, bytes, kpackets, kdrops, user, sys, csum_partial, outgoing, wakeups);
    for (int c = 0; c < ncpu; c++) printf("%s%.3f", c ? "," : "", busy1[c] - busy0[c]);
    printf("]}\n");
    if (map != NULL) munmap(map, maplen);
    close(fd);
    return 0;
}
