/*
 * gntread DOMID GREF: map a page that domain DOMID granted to dom0 (grant
 * reference GREF) through Linux's gntdev device, print it up to the first
 * NUL, and unmap it. A dom0 test tool for tests/xen_host.rs; built static
 * by the test, never shipped.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gntread DOMID GREF\n");
        return 2;
    }
    int fd = open("/dev/xen/gntdev", O_RDWR);
    if (fd < 0) { perror("gntread: /dev/xen/gntdev"); return 1; }
    struct ioctl_gntdev_map_grant_ref map = { .count = 1 };
    map.refs[0].domid = (uint32_t)strtoul(argv[1], NULL, 0);
    map.refs[0].ref = (uint32_t)strtoul(argv[2], NULL, 0);
    if (ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, &map) < 0) { perror("gntread: map"); return 1; }
    /* The grant is read-only: map it read-only, or the mapping fails. */
    char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)map.index);
    if (p == MAP_FAILED) { perror("gntread: mmap"); return 1; }
    printf("gntread: %.*s", (int)strnlen(p, 4096), p);
    munmap(p, 4096);
    struct ioctl_gntdev_unmap_grant_ref unmap = { .index = map.index, .count = 1 };
    if (ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &unmap) < 0) { perror("gntread: unmap"); return 1; }
    close(fd);
    return 0;
}
