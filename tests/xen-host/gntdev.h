/*
 * What the dom0 test tools (gntread, ringpoke, blkpoke) share: mapping a
 * page another domain granted to dom0, through Linux's gntdev device.
 * Test-only.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* linux/include/uapi/xen/gntdev.h */
struct ioctl_gntdev_grant_ref { uint32_t domid; uint32_t ref; };
struct ioctl_gntdev_map_grant_ref {
    uint32_t count; uint32_t pad; uint64_t index;
    struct ioctl_gntdev_grant_ref refs[1];
};
struct ioctl_gntdev_unmap_grant_ref { uint64_t index; uint32_t count; uint32_t pad; };
#define IOCTL_GNTDEV_MAP_GRANT_REF \
    _IOC(_IOC_NONE, 'G', 0, sizeof(struct ioctl_gntdev_map_grant_ref))
#define IOCTL_GNTDEV_UNMAP_GRANT_REF \
    _IOC(_IOC_NONE, 'G', 1, sizeof(struct ioctl_gntdev_unmap_grant_ref))

/* A grant mapped into this process; `fd` and `index` undo it. */
struct gnt_page { int fd; uint64_t index; void *page; };

/* Map grant REF of domain DOMID (both as the command line gave them) with
 * PROT (a read-only grant needs PROT_READ, or the mapping fails). On
 * failure, says so prefixed with WHO and exits 1. */
static inline struct gnt_page gnt_map(const char *who, const char *domid, const char *ref, int prot)
{
    struct gnt_page g;
    g.fd = open("/dev/xen/gntdev", O_RDWR);
    if (g.fd < 0) { fprintf(stderr, "%s: ", who); perror("/dev/xen/gntdev"); exit(1); }
    struct ioctl_gntdev_map_grant_ref map = { .count = 1 };
    map.refs[0].domid = (uint32_t)strtoul(domid, NULL, 0);
    map.refs[0].ref = (uint32_t)strtoul(ref, NULL, 0);
    if (ioctl(g.fd, IOCTL_GNTDEV_MAP_GRANT_REF, &map) < 0) { fprintf(stderr, "%s: ", who); perror("map grant"); exit(1); }
    g.index = map.index;
    g.page = mmap(NULL, 4096, prot, MAP_SHARED, g.fd, (off_t)map.index);
    if (g.page == MAP_FAILED) { fprintf(stderr, "%s: ", who); perror("mmap grant"); exit(1); }
    return g;
}

/* Unmap what gnt_map mapped; 0, or -1 when the kernel refused. */
static inline int gnt_unmap(struct gnt_page g)
{
    munmap(g.page, 4096);
    struct ioctl_gntdev_unmap_grant_ref unmap = { .index = g.index, .count = 1 };
    int rc = ioctl(g.fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &unmap) < 0 ? -1 : 0;
    close(g.fd);
    return rc;
}
