/* tunprobe: what an unprivileged CVD process can do with /dev/net/tun.
 * Built static (gcc -static) so it runs in any container image.
 *
 *   tunprobe attach IFNAME   open /dev/net/tun, TUNSETIFF(IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) on the
 *                            existing TAP IFNAME, as crosvm does. Prints "TUNPROBE-ATTACH-OK <name>".
 *   tunprobe create IFNAME   try to create a NEW tap (IFF_TUN_EXCL): must fail with EPERM when
 *                            the caller has no CAP_NET_ADMIN. Prints "TUNPROBE-CREATE-DENIED <errno>".
 *
 * Every line starts with "TUNPROBE-". The first line reports uid, gid and the capability sets,
 * so the log shows who made the call. Exit 0 when the outcome is the expected one. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void whoami(void) {
    char line[256];
    FILE *st = fopen("/proc/self/status", "r");
    printf("TUNPROBE-ID uid=%d euid=%d gid=%d", (int)getuid(), (int)geteuid(), (int)getgid());
    while (st && fgets(line, sizeof line, st)) {
        if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapPrm:", 7) ||
            !strncmp(line, "CapBnd:", 7) || !strncmp(line, "NoNewPrivs:", 11)) {
            line[strcspn(line, "\n")] = 0;
            for (char *p = line; *p; p++) if (*p == '\t') *p = ' ';
            printf(" %s", line);
        }
    }
    if (st) fclose(st);
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "attach") && strcmp(argv[1], "create"))) {
        fprintf(stderr, "usage: tunprobe attach|create IFNAME\n");
        return 64;
    }
    int create = !strcmp(argv[1], "create");
    whoami();
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        printf("TUNPROBE-OPEN-FAILED %s\n", strerror(errno));
        return 2;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (create ? IFF_TUN_EXCL : 0);
    strncpy(ifr.ifr_name, argv[2], IFNAMSIZ - 1);
    int rc = ioctl(fd, TUNSETIFF, &ifr);
    int err = errno;
    if (create) {
        if (rc == 0) {
            printf("TUNPROBE-CREATE-SUCCEEDED %s (the caller can create TAPs)\n", ifr.ifr_name);
            close(fd); /* not persistent: the device goes with the fd */
            return 1;
        }
        printf("TUNPROBE-CREATE-DENIED %s\n", strerror(err));
        return err == EPERM ? 0 : 1;
    }
    if (rc < 0) {
        printf("TUNPROBE-ATTACH-FAILED %s: %s\n", argv[2], strerror(err));
        return 3;
    }
    printf("TUNPROBE-ATTACH-OK %s\n", ifr.ifr_name);
    close(fd);
    return 0;
}
