/* loopblk DEV SIZE: give loop device DEV logical blocks of SIZE bytes
 * (LOOP_SET_BLOCK_SIZE), which busybox's losetup cannot; blkback then
 * serves the disk with that sector size. */
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: loopblk DEV SIZE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    if (ioctl(fd, LOOP_SET_BLOCK_SIZE, strtoul(argv[2], NULL, 0)) < 0) {
        perror("LOOP_SET_BLOCK_SIZE");
        return 1;
    }
    return 0;
}
