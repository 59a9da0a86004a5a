/*
 * gntshare DOMID COUNT SECONDS: share COUNT pages with domain DOMID through
 * Linux's gntalloc device (writable grants), write "hvmlite-gnt-I-PID" at
 * the start of page I, print "gntshare: grefs R0,R1,..." and wait up to
 * SECONDS for the domain to write a NUL-terminated answer at offset 2048 of
 * every page; print each ("gntshare: answer I: TEXT"). Exit 0 when all
 * answered, 1 otherwise. A dom0 test tool for tests/xen_xsdomain.rs; built
 * static by the test, never shipped.
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

/* linux/include/uapi/xen/gntalloc.h */
struct ioctl_gntalloc_alloc_gref {
    uint16_t domid; uint16_t flags; uint32_t count;
    uint64_t index;          /* out: the mmap offset */
    uint32_t gref_ids[1];    /* out: COUNT grant references */
};
#define IOCTL_GNTALLOC_ALLOC_GREF \
    _IOC(_IOC_NONE, 'G', 5, sizeof(struct ioctl_gntalloc_alloc_gref))
#define GNTALLOC_FLAG_WRITABLE 1

#define ANSWER_AT 2048

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: gntshare DOMID COUNT SECONDS\n");
        return 2;
    }
    unsigned n = (unsigned)strtoul(argv[2], NULL, 0);
    int secs = atoi(argv[3]);
    if (n == 0 || n > 64) { fprintf(stderr, "gntshare: COUNT 1..64\n"); return 2; }
    int fd = open("/dev/xen/gntalloc", O_RDWR);
    if (fd < 0) { perror("gntshare: /dev/xen/gntalloc"); return 1; }
    struct ioctl_gntalloc_alloc_gref *a = calloc(1, sizeof(*a) + n * sizeof(uint32_t));
    a->domid = (uint16_t)strtoul(argv[1], NULL, 0);
    a->flags = GNTALLOC_FLAG_WRITABLE;
    a->count = n;
    if (ioctl(fd, IOCTL_GNTALLOC_ALLOC_GREF, a) < 0) { perror("gntshare: alloc"); return 1; }
    char *pages = mmap(NULL, 4096 * n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)a->index);
    if (pages == MAP_FAILED) { perror("gntshare: mmap"); return 1; }
    printf("gntshare: grefs ");
    for (unsigned i = 0; i < n; i++) {
        snprintf(pages + 4096 * i, 64, "hvmlite-gnt-%u-%d", i, (int)getpid());
        printf("%s%u", i ? "," : "", a->gref_ids[i]);
    }
    printf("\n");
    fflush(stdout);
    time_t end = time(NULL) + secs;
    unsigned done = 0;
    while (time(NULL) < end) {
        done = 0;
        for (unsigned i = 0; i < n; i++)
            done += ((volatile char *)pages)[4096 * i + ANSWER_AT] != 0;
        if (done == n)
            break;
        usleep(50000);
    }
    usleep(100000); /* the rest of the last answer */
    for (unsigned i = 0; i < n; i++)
        printf("gntshare: answer %u: %.*s\n", i, 64, pages + 4096 * i + ANSWER_AT);
    printf("gntshare: %u of %u answered\n", done, n);
    return done == n ? 0 : 1;
}
