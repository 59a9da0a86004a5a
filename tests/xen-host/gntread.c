/*
 * gntread DOMID GREF: map a page that domain DOMID granted to dom0 (grant
 * reference GREF) through Linux's gntdev device, print it up to the first
 * NUL, and unmap it. A dom0 test tool for tests/xen_host.rs; built static
 * by the test, never shipped.
 */
#include "gntdev.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gntread DOMID GREF\n");
        return 2;
    }
    /* The grant is read-only: map it read-only, or the mapping fails. */
    struct gnt_page g = gnt_map("gntread", argv[1], argv[2], PROT_READ);
    const char *p = g.page;
    printf("gntread: %.*s", (int)strnlen(p, 4096), p);
    if (gnt_unmap(g) < 0) { perror("gntread: unmap"); return 1; }
    return 0;
}
