/*
 * blkpoke DOMID GREF ENTRIES MODE MS: a block backend that lies, for
 * tests. Maps the first page of a frontend's blkif ring of ENTRIES entries
 * (grant GREF of domain DOMID, which the frontend granted to dom0 for
 * blkback) through Linux's gntdev device and, for MS milliseconds, keeps
 * breaking the protocol there:
 *   index  rsp_prod far ahead of anything the frontend asked
 *   id     a published response renamed to request id 0xdead, never
 *          outstanding, whenever its slot lies in the mapped page
 * It waits for the frontend's first request: by then blkback has attached
 * the ring (before, it would refuse a ring whose indexes are already
 * wrong), and nothing slower than this loop stands between that moment
 * and the lie. blkback writes the ring too, so the lie is repeated every
 * 100 us until the frontend has read it. Test-only; built static by the
 * test.
 */
#include "gntdev.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* public/io/blkif.h, x86_64: the ring header, then 112-byte entries. */
#define REQ_PROD 0
#define RSP_PROD 8
#define ENTRIES 64
#define ENTRY 112

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[4], "index") && strcmp(argv[4], "id"))) {
        fprintf(stderr, "usage: blkpoke DOMID GREF ENTRIES index|id MS\n");
        return 2;
    }
    uint32_t entries = (uint32_t)strtoul(argv[3], NULL, 0);
    if (entries == 0 || (entries & (entries - 1))) { fprintf(stderr, "blkpoke: ENTRIES must be a power of two\n"); return 2; }
    struct gnt_page g = gnt_map("blkpoke", argv[1], argv[2], PROT_READ | PROT_WRITE);
    /* The test may hold the frontend paused until the ring is mapped. */
    printf("blkpoke: mapped\n");
    fflush(stdout);
    volatile uint8_t *p = g.page;
    volatile uint32_t *req_prod = (volatile uint32_t *)(p + REQ_PROD);
    volatile uint32_t *rsp_prod = (volatile uint32_t *)(p + RSP_PROD);
    const char *mode = argv[4];
    double end = now() + strtoul(argv[5], NULL, 0) / 1000.0;
    unsigned long writes = 0;
    uint32_t ours = 0xffffffff;
    while (now() < end) {
        uint32_t prod = *rsp_prod;
        if (*req_prod == 0) {
            /* No request yet: blkback may not have attached. */
        } else if (!strcmp(mode, "index")) {
            if (prod != 0x40000000) { *rsp_prod = 0x40000000; writes++; }
        } else if (prod != ours && prod != 0 && ((prod - 1) & (entries - 1)) < 32) {
            /* Rename the response blkback just published to request id
             * 0xdead, never sent. blkback does not write that slot again
             * until the ring wraps, so the lie stands until the frontend
             * reads it (if it has not already). Only the first 36 entries
             * lie in this page: take 32. */
            volatile uint8_t *e = p + ENTRIES + ((prod - 1) & (entries - 1)) * ENTRY;
            uint64_t id = 0xdead;
            memcpy((void *)e, &id, 8);
            ours = prod;
            writes++;
        }
        usleep(100);
    }
    printf("blkpoke: domain %s ring %s: %s lie written %lu times\n", argv[1], argv[2], mode, writes);
    return 0;
}
