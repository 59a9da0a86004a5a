/*
 * blkpoke DOMID GREF ENTRIES MODE MS: a block backend that lies, for
 * tests. Maps the first page of a frontend's blkif ring of ENTRIES entries
 * (grant GREF of domain DOMID, which the frontend granted to dom0 for
 * blkback) through Linux's gntdev device and, for MS milliseconds, keeps
 * breaking the protocol there:
 *   index  rsp_prod far ahead of anything the frontend asked
 *   id     a response naming request id 0xdead, which is never outstanding,
 *          whenever the next response slot lies in the mapped page
 * blkback writes the ring too, so the lie is repeated every 100 us until
 * the frontend has read it. Test-only; built static by the test.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* linux/include/uapi/xen/gntdev.h */
struct ioctl_gntdev_grant_ref { uint32_t domid; uint32_t ref; };
struct ioctl_gntdev_map_grant_ref {
    uint32_t count; uint32_t pad; uint64_t index;
    struct ioctl_gntdev_grant_ref refs[1];
};
#define IOCTL_GNTDEV_MAP_GRANT_REF \
    _IOC(_IOC_NONE, 'G', 0, sizeof(struct ioctl_gntdev_map_grant_ref))

/* public/io/blkif.h, x86_64: the ring header, then 112-byte entries. */
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
    int fd = open("/dev/xen/gntdev", O_RDWR);
    if (fd < 0) { perror("blkpoke: /dev/xen/gntdev"); return 1; }
    struct ioctl_gntdev_map_grant_ref map = { .count = 1 };
    map.refs[0].domid = (uint32_t)strtoul(argv[1], NULL, 0);
    map.refs[0].ref = (uint32_t)strtoul(argv[2], NULL, 0);
    if (ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, &map) < 0) { perror("blkpoke: map"); return 1; }
    volatile uint8_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)map.index);
    if (p == MAP_FAILED) { perror("blkpoke: mmap"); return 1; }
    volatile uint32_t *rsp_prod = (volatile uint32_t *)(p + RSP_PROD);
    const char *mode = argv[4];
    double end = now() + strtoul(argv[5], NULL, 0) / 1000.0;
    unsigned long writes = 0;
    uint32_t ours = 0xffffffff;
    while (now() < end) {
        uint32_t prod = *rsp_prod;
        if (!strcmp(mode, "index")) {
            if (prod != 0x40000000) { *rsp_prod = 0x40000000; writes++; }
        } else if (prod != ours && (prod & (entries - 1)) < 32) {
            /* Publish one more response, naming an id never sent, each time
             * blkback has moved the index and the slot is in this page
             * (the first 36 entries are; take 32). */
            volatile uint8_t *e = p + ENTRIES + (prod & (entries - 1)) * ENTRY;
            uint64_t id = 0xdead;
            memcpy((void *)e, &id, 8);
            e[8] = 0;                    /* BLKIF_OP_READ */
            e[10] = 0; e[11] = 0;        /* BLKIF_RSP_OKAY */
            __sync_synchronize();
            *rsp_prod = prod + 1;
            ours = prod + 1;
            writes++;
        }
        usleep(100);
    }
    printf("blkpoke: domain %s ring %s: %s lie written %lu times\n", argv[1], argv[2], mode, writes);
    return 0;
}
