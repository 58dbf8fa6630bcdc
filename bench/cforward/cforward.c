// The baseline for udr's CPU per frame (issue 16): a minimal direct-routing forwarder written the plain way in C.
// One TPACKET_V3 receive ring on IFNAME; for each IPv4 UDP/TCP frame to VIP:PORT the destination MAC becomes one of
// two servers' (by a hash of the source address and port, so a flow keeps its server), the source MAC the interface's,
// the TTL is decremented with an RFC 1624 checksum patch; the frames of a block go out in place, straight from the
// ring, by sendmmsg on a second packet socket with PACKET_QDISC_BYPASS. No connection table, no rules: what any
// forwarder must pay to the kernel, and nothing more. Bounded: it exits after SECONDS and prints what it forwarded.
// THREADS (default 1) threads each run their own ring and transmit socket, the rings joined in one PACKET_FANOUT_HASH
// group (the kernel spreads flows over them), as udr's workers are: the many-core scaling baseline (issue 16, goal 5).
// With CFORWARD_TX_RING=1 in the environment the frames are copied into a PACKET_TX_RING (TPACKET_V2) on the transmit
// socket instead, and one send() per block hands them all to the kernel: the two ways of transmitting, compared.
//
//   cforward IFNAME VIP PORT SERVER_MAC_1 SERVER_MAC_2 SECONDS [THREADS]
//
// Built by bench/cpu-bench.sh and bench/scaling-bench.sh with: cc -O2 -Wall -Wextra -pthread -o cforward cforward.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BLOCK_SIZE (1u << 20)
#define BLOCK_COUNT 16u
#define FRAME_SIZE 2048u
#define BATCH 64
#define TX_FRAME_SIZE 2048u
#define TX_FRAMES 1024u

static int parse_mac(const char *text, uint8_t mac[6]) {
    return sscanf(text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) == 6 ? 0 : -1;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

// What every thread shares (read only) and what each one counts.
struct config {
    unsigned ifindex;
    const char *ifname;
    struct in_addr vip;
    uint16_t port;
    uint8_t servers[2][6];
    int seconds;
    int fanout_group; // 0: a lone ring
    int tx_ring;      // 1: transmit through a PACKET_TX_RING, else sendmmsg
};

struct counts {
    unsigned long long forwarded, other, send_errors;
    unsigned ring_drops;
};

struct job {
    const struct config *config;
    struct counts counts;
    pthread_t thread;
};

static void *forward(void *argument);

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: %s IFNAME VIP PORT SERVER_MAC_1 SERVER_MAC_2 SECONDS [THREADS]\n", argv[0]);
        return 2;
    }
    struct config config = {.ifindex = if_nametoindex(argv[1]), .ifname = argv[1], .port = htons((uint16_t)atoi(argv[3])), .seconds = atoi(argv[6])};
    int threads = argc == 8 ? atoi(argv[7]) : 1;
    if (config.ifindex == 0 || inet_pton(AF_INET, argv[2], &config.vip) != 1 || parse_mac(argv[4], config.servers[0]) ||
        parse_mac(argv[5], config.servers[1]) || config.seconds <= 0 || threads < 1 || threads > 256) {
        fprintf(stderr, "cforward: bad arguments\n");
        return 2;
    }
    config.fanout_group = threads > 1 ? (getpid() & 0xFFFF) : 0;
    const char *tx_ring = getenv("CFORWARD_TX_RING");
    config.tx_ring = tx_ring != NULL && strcmp(tx_ring, "1") == 0;
    struct job *jobs = calloc((size_t)threads, sizeof *jobs);
    if (jobs == NULL) die("calloc");
    for (int i = 0; i < threads; i++) {
        jobs[i].config = &config;
        if (pthread_create(&jobs[i].thread, NULL, forward, &jobs[i]) != 0) die("pthread_create");
    }
    struct counts total = {0};
    for (int i = 0; i < threads; i++) {
        pthread_join(jobs[i].thread, NULL);
        total.forwarded += jobs[i].counts.forwarded;
        total.other += jobs[i].counts.other;
        total.send_errors += jobs[i].counts.send_errors;
        total.ring_drops += jobs[i].counts.ring_drops;
    }
    printf("cforward: forwarded=%llu other=%llu send-errors=%llu ring-drops=%u threads=%d\n", total.forwarded, total.other,
        total.send_errors, total.ring_drops, threads);
    free(jobs);
    return 0;
}

// One thread: its own ring (in the fanout group when there are several) and its own transmit socket.
static void *forward(void *argument) {
    struct job *job = argument;
    const struct config *config = job->config;
    unsigned ifindex = config->ifindex;
    struct in_addr vip = config->vip;
    uint16_t port = config->port;
    const uint8_t (*servers)[6] = config->servers;
    int seconds = config->seconds;
    uint8_t own[6];
    int rx = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    int tx = socket(AF_PACKET, SOCK_RAW, 0);
    if (rx < 0 || tx < 0) die("socket");
    struct ifreq ifr = {0};
    strncpy(ifr.ifr_name, config->ifname, IFNAMSIZ - 1);
    if (ioctl(rx, SIOCGIFHWADDR, &ifr) < 0) die("SIOCGIFHWADDR");
    memcpy(own, ifr.ifr_hwaddr.sa_data, 6);

    int version = TPACKET_V3, one = 1;
    if (setsockopt(rx, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0) die("PACKET_VERSION");
    struct tpacket_req3 req = {
        .tp_block_size = BLOCK_SIZE, .tp_block_nr = BLOCK_COUNT, .tp_frame_size = FRAME_SIZE,
        .tp_frame_nr = BLOCK_SIZE / FRAME_SIZE * BLOCK_COUNT, .tp_retire_blk_tov = 10,
    };
    if (setsockopt(rx, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) die("PACKET_RX_RING");
    // Our own transmissions are not ours to receive again.
    setsockopt(rx, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    uint8_t *ring = mmap(NULL, (size_t)BLOCK_SIZE * BLOCK_COUNT, PROT_READ | PROT_WRITE, MAP_SHARED, rx, 0);
    if (ring == MAP_FAILED) die("mmap");
    struct sockaddr_ll at = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)ifindex};
    if (bind(rx, (struct sockaddr *)&at, sizeof at) < 0) die("bind rx");
    if (config->fanout_group != 0) {
        int fanout = config->fanout_group | (PACKET_FANOUT_HASH << 16);
        if (setsockopt(rx, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof fanout) < 0) die("PACKET_FANOUT");
    }
    at.sll_protocol = 0;
    if (bind(tx, (struct sockaddr *)&at, sizeof at) < 0) die("bind tx");
    setsockopt(tx, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    // The transmit ring (CFORWARD_TX_RING=1): TPACKET_V2 slots the thread fills and marks, then one send() per block.
    uint8_t *tx_slots = NULL;
    unsigned tx_next = 0;
    if (config->tx_ring) {
        int v2 = TPACKET_V2;
        if (setsockopt(tx, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) < 0) die("PACKET_VERSION tx");
        struct tpacket_req tx_req = {.tp_block_size = TX_FRAME_SIZE * 64, .tp_block_nr = TX_FRAMES / 64,
            .tp_frame_size = TX_FRAME_SIZE, .tp_frame_nr = TX_FRAMES};
        if (setsockopt(tx, SOL_PACKET, PACKET_TX_RING, &tx_req, sizeof tx_req) < 0) die("PACKET_TX_RING");
        tx_slots = mmap(NULL, (size_t)TX_FRAME_SIZE * TX_FRAMES, PROT_READ | PROT_WRITE, MAP_SHARED, tx, 0);
        if (tx_slots == MAP_FAILED) die("mmap tx");
    }

    struct mmsghdr messages[BATCH];
    struct iovec vectors[BATCH];
    memset(messages, 0, sizeof messages);
    for (int i = 0; i < BATCH; i++) {
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long forwarded = 0, other = 0, send_errors = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned block = 0;
    struct pollfd waiter = {.fd = rx, .events = POLLIN | POLLERR};
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= seconds) break;
        struct tpacket_block_desc *desc = (struct tpacket_block_desc *)(ring + (size_t)block * BLOCK_SIZE);
        if (!(__atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
            poll(&waiter, 1, 100);
            continue;
        }
        uint32_t count = desc->hdr.bh1.num_pkts;
        struct tpacket3_hdr *frame = (struct tpacket3_hdr *)((uint8_t *)desc + desc->hdr.bh1.offset_to_first_pkt);
        int pending = 0;
        for (uint32_t i = 0; i < count; i++) {
            uint8_t *data = (uint8_t *)frame + frame->tp_mac;
            uint32_t length = frame->tp_snaplen;
            struct iphdr *ip = (struct iphdr *)(data + 14);
            if (length >= 14 + 20 + 4 && data[12] == 0x08 && data[13] == 0x00 && ip->daddr == vip.s_addr &&
                (ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_TCP) && ip->ttl > 1) {
                uint8_t *l4 = data + 14 + ip->ihl * 4;
                uint16_t source_port, destination_port;
                memcpy(&source_port, l4, 2);
                memcpy(&destination_port, l4 + 2, 2);
                if (destination_port == port) {
                    uint32_t hash = (ntohl(ip->saddr) ^ ntohs(source_port)) * 2654435761u;
                    memcpy(data, servers[hash >> 31], 6);
                    memcpy(data + 6, own, 6);
                    // TTL - 1: the checksum word (TTL, protocol) drops by 0x0100 (RFC 1624: HC' = ~(~HC + ~m + m')).
                    uint32_t sum = (uint32_t)(uint16_t)~ntohs(ip->check) + 0xFEFFu;
                    sum = (sum & 0xFFFF) + (sum >> 16);
                    ip->ttl--;
                    ip->check = htons((uint16_t)~((sum & 0xFFFF) + (sum >> 16)));
                    if (tx_slots != NULL) {
                        struct tpacket2_hdr *slot = (struct tpacket2_hdr *)(tx_slots + (size_t)tx_next * TX_FRAME_SIZE);
                        uint32_t offset = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
                        if (__atomic_load_n(&slot->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE || length > TX_FRAME_SIZE - offset) {
                            send_errors++; // the ring is full (the kernel has not sent what it holds) or the frame too long
                        } else {
                            memcpy((uint8_t *)slot + offset, data, length);
                            slot->tp_len = length;
                            __atomic_store_n(&slot->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
                            tx_next = (tx_next + 1) % TX_FRAMES;
                            pending++;
                        }
                        frame = (struct tpacket3_hdr *)((uint8_t *)frame + frame->tp_next_offset);
                        continue;
                    }
                    vectors[pending].iov_base = data;
                    vectors[pending].iov_len = length;
                    if (++pending == BATCH) {
                        int sent = sendmmsg(tx, messages, (unsigned)pending, 0);
                        forwarded += sent > 0 ? (unsigned)sent : 0;
                        send_errors += sent == pending ? 0 : (unsigned)(pending - (sent > 0 ? sent : 0));
                        pending = 0;
                    }
                } else {
                    other++;
                }
            } else {
                other++;
            }
            frame = (struct tpacket3_hdr *)((uint8_t *)frame + frame->tp_next_offset);
        }
        if (pending > 0 && tx_slots != NULL) {
            // Every slot marked is sent by this one call (the frames were copied, so the block can go back at once).
            if (send(tx, NULL, 0, MSG_DONTWAIT) < 0) send_errors += (unsigned)pending; else forwarded += (unsigned)pending;
        } else if (pending > 0) {
            int sent = sendmmsg(tx, messages, (unsigned)pending, 0);
            forwarded += sent > 0 ? (unsigned)sent : 0;
            send_errors += sent == pending ? 0 : (unsigned)(pending - (sent > 0 ? sent : 0));
        }
        __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        block = (block + 1) % BLOCK_COUNT;
    }
    struct tpacket_stats_v3 stats;
    socklen_t size = sizeof stats;
    getsockopt(rx, SOL_PACKET, PACKET_STATISTICS, &stats, &size);
    job->counts = (struct counts){.forwarded = forwarded, .other = other, .send_errors = send_errors, .ring_drops = stats.tp_drops};
    munmap(ring, (size_t)BLOCK_SIZE * BLOCK_COUNT);
    if (tx_slots != NULL) munmap(tx_slots, (size_t)TX_FRAME_SIZE * TX_FRAMES);
    close(rx);
    close(tx);
    return NULL;
}
