/* seccomp-probe: makes the system calls that decide whether a seccomp profile fits a CVD
 * container, and prints one line per call:
 *
 *   PROBE <name> ok             the call succeeded (what it created is closed again)
 *   PROBE <name> <ERRNO>        it failed with this errno (EPERM is a seccomp refusal when the
 *                               kernel itself would have answered otherwise: compare the runs)
 *
 * The first line is "PROBE seccomp-mode N" (2 = a filter is installed, from /proc/self/status).
 * It refuses to run as root. Built static (gcc -static, non-PIE: socketcall-alg needs its argument block below 4 GiB). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

static void report(const char *name, long rc, int err) {
    if (rc >= 0)
        printf("PROBE %s ok\n", name);
    else
        printf("PROBE %s %s\n", name, strerrorname_np(err) ? strerrorname_np(err) : "E?");
}

/* a call whose success returns a file descriptor */
static void fd_call(const char *name, long rc) {
    int err = errno;
    if (rc >= 0) close((int)rc);
    report(name, rc, err);
}

/* unshare changes the caller: run it in a child, which reports through its exit status */
static void in_child(const char *name, int (*call)(void)) {
    pid_t pid = fork();
    if (pid == 0) _exit(call() == 0 ? 0 : errno);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
        printf("PROBE %s probe-failed\n", name);
        return;
    }
    int code = WEXITSTATUS(status);
    report(name, code ? -1 : 0, code);
}
static int unshare_user(void) { return unshare(CLONE_NEWUSER); }

#ifdef __x86_64__
/* socket(AF_ALG) through the i386 socketcall(2) entry point (int 0x80): the profile lets
 * socketcall through without looking at its arguments, as containerd's default does. */
static uint32_t socketcall_args[3];
static void socketcall_alg(void) {
    long rc;
    socketcall_args[0] = AF_ALG;
    socketcall_args[1] = SOCK_SEQPACKET;
    socketcall_args[2] = 0;
    __asm__ volatile("int $0x80" : "=a"(rc) : "a"(102 /* i386 socketcall */), "b"(1 /* SYS_SOCKET */),
                     "c"(socketcall_args) : "memory");
    if (rc >= 0) close((int)rc);
    report("socketcall-alg", rc >= 0 ? rc : -1, rc >= 0 ? 0 : (int)-rc);
}
#endif

int main(void) {
    if (getuid() == 0 || geteuid() == 0) {
        fprintf(stderr, "seccomp-probe: refusing to run as root (run it as an unprivileged uid)\n");
        return 2;
    }
    char line[256];
    FILE *st = fopen("/proc/self/status", "r");
    while (st && fgets(line, sizeof line, st))
        if (!strncmp(line, "Seccomp:", 8)) printf("PROBE seccomp-mode %d\n", atoi(line + 8));
    if (st) fclose(st);

    fd_call("socket-vsock", socket(AF_VSOCK, SOCK_STREAM, 0));
    fd_call("socket-alg", socket(AF_ALG, SOCK_SEQPACKET, 0));
    fd_call("socket-inet", socket(AF_INET, SOCK_STREAM, 0));
    fd_call("socket-inet6", socket(AF_INET6, SOCK_DGRAM, 0));
    fd_call("socket-unix", socket(AF_UNIX, SOCK_STREAM, 0));
    fd_call("socket-netlink", socket(AF_NETLINK, SOCK_RAW, 0));
    /* the family is an int: the kernel drops the upper 32 bits that a 64-bit filter compares */
    fd_call("socket-alg-hi32", syscall(SYS_socket, (1UL << 32) | AF_ALG, SOCK_SEQPACKET, 0));
#ifdef __x86_64__
    socketcall_alg();
#endif

    long rc = syscall(SYS_add_key, "user", "cfsec-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    report("add_key", rc, errno);
    rc = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    report("keyctl", rc, errno);
    in_child("unshare-user", unshare_user);
    /* a target that cannot exist: unconfined, the call fails with ENOENT before any permission
     * check; a seccomp refusal answers EPERM. */
    rc = mount("cfsec-probe", "/proc/self/cfsec-probe-no-such-dir", "tmpfs", 0, NULL);
    report("mount", rc, errno);
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    fd_call("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    fd_call("io_uring_setup", syscall(SYS_io_uring_setup, 1, &params));
    rc = syscall(SYS_clone3, NULL, 0);
    report("clone3", rc, errno);
    rc = personality(0xffffffff);
    report("personality-query", rc, errno);
    return 0;
}
