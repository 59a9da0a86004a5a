/*
 * ringpoke DOMID GFN OFFSET=VALUE...: a hostile peer for tests. Maps page
 * GFN of domain DOMID (a xenstore or console ring) through Linux's privcmd
 * device, as xenstored and xenconsoled do, and writes each 32-bit VALUE at
 * byte OFFSET (e.g. a ring index). Test-only; built static by the test.
 *
 * ringpoke -g DOMID GREF OFFSET=VALUE...: the same on a page DOMID granted
 * to dom0 (a PV device's shared ring, e.g. a vif's tx-ring-ref), mapped a
 * second time through Linux's gntdev device, beside the backend's own
 * mapping: a backend that scribbles on the ring.
 *
 * An OFFSET without =VALUE only prints the word there (a failing test's
 * diagnostics: a ring's indices).
 */
#include "gntdev.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* linux/include/uapi/xen/privcmd.h */
struct privcmd_mmapbatch_v2 {
    unsigned int num;
    uint16_t dom;
    uint64_t addr;
    const uint64_t *arr;
    int *err;
};
#define IOCTL_PRIVCMD_MMAPBATCH_V2 \
    _IOC(_IOC_NONE, 'P', 4, sizeof(struct privcmd_mmapbatch_v2))

static int poke(void *page, const char *dom, const char *what, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        unsigned long off = strtoul(argv[i], NULL, 0);
        if (off > 4092 || off % 4) { fprintf(stderr, "ringpoke: bad offset %lu\n", off); return 2; }
        uint32_t old = ((volatile uint32_t *)page)[off / 4];
        if (!eq) {
            printf("ringpoke: domain %s %s offset %lu: %#x\n", dom, what, off, old);
            continue;
        }
        uint32_t val = (uint32_t)strtoul(eq + 1, NULL, 0);
        ((volatile uint32_t *)page)[off / 4] = val;
        printf("ringpoke: domain %s %s offset %lu: %#x -> %#x\n", dom, what, off, old, val);
    }
    return 0;
}

static int grant_mode(int argc, char **argv)
{
    struct gnt_page g = gnt_map("ringpoke", argv[2], argv[3], PROT_READ | PROT_WRITE);
    char what[32];
    snprintf(what, sizeof what, "grant %s", argv[3]);
    int rc = poke(g.page, argv[2], what, argc - 4, argv + 4);
    gnt_unmap(g);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "-g") == 0)
        return grant_mode(argc, argv);
    if (argc < 4) {
        fprintf(stderr, "usage: ringpoke [-g] DOMID GFN|GREF OFFSET[=VALUE]...\n");
        return 2;
    }
    int fd = open("/dev/xen/privcmd", O_RDWR);
    if (fd < 0) { perror("ringpoke: /dev/xen/privcmd"); return 1; }
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (page == MAP_FAILED) { perror("ringpoke: mmap"); return 1; }
    uint64_t gfn = strtoull(argv[2], NULL, 0);
    int err = 0;
    struct privcmd_mmapbatch_v2 b = {
        .num = 1, .dom = (uint16_t)strtoul(argv[1], NULL, 0),
        .addr = (uint64_t)(uintptr_t)page, .arr = &gfn, .err = &err,
    };
    if (ioctl(fd, IOCTL_PRIVCMD_MMAPBATCH_V2, &b) < 0 || err) {
        fprintf(stderr, "ringpoke: map gfn %#llx of domain %s failed (%d)\n",
                (unsigned long long)gfn, argv[1], err);
        return 1;
    }
    char what[32];
    snprintf(what, sizeof what, "gfn %#llx", (unsigned long long)gfn);
    int rc = poke(page, argv[1], what, argc - 3, argv + 3);
    munmap(page, 4096);
    close(fd);
    return rc;
}
