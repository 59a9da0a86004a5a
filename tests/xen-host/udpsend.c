/* udpsend IP PORT TEXT: send TEXT as one UDP datagram to IP:PORT, wait up
 * to 3 s for one back, and print it (exit 1 if none came). Busybox's nc
 * has no UDP mode; the runtime's UDP sockets are tested with this. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: udpsend IP PORT TEXT\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    if (s < 0 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
        perror("udpsend");
        return 2;
    }
    struct timeval tv = { .tv_sec = 3 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (sendto(s, argv[3], strlen(argv[3]), 0, (struct sockaddr *)&to, sizeof to) < 0) {
        perror("sendto");
        return 1;
    }
    char buf[2048];
    ssize_t n = recv(s, buf, sizeof buf - 1, 0);
    if (n < 0) {
        perror("recv");
        return 1;
    }
    buf[n] = 0;
    printf("%s\n", buf);
    return 0;
}
