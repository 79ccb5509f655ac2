/* What every in-process KVM test program shares: the /dev/kvm check and the payload directory. */
#ifndef KVMLOOP_TESTS_KVM_TEST_H
#define KVMLOOP_TESTS_KVM_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Exit with CTest's SKIP status (77) when /dev/kvm cannot be opened, except
 * under CI, where that is a failure. Then return the guest payload directory
 * ($KVMLOOP_GUEST_DIR, set by CMake). */
static inline const char *kvm_test_init(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (g_getenv("CI")) {
            fprintf(stderr, "FAIL: /dev/kvm is not usable (%s) and CI needs these tests\n",
                    g_strerror(e));
            exit(1);
        }
        fprintf(stderr, "SKIP: /dev/kvm is not usable: %s\n", g_strerror(e));
        exit(77);
    }
    close(fd);
    const char *dir = g_getenv("KVMLOOP_GUEST_DIR");
    if (!dir) {
        g_error("KVMLOOP_GUEST_DIR is not set");
    }
    return dir;
}

#endif
