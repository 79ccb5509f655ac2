/* Image files: advisory locks between processes that share an image. */
#include "kvmloop/block.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/*
 * The bytes QEMU locks for the same meanings (its file-posix driver), so
 * that kvmloop and QEMU see each other's locks: a shared lock on byte
 * 100 + n means "I hold permission n", on byte 200 + n "nobody else may
 * have permission n". The locks are OFD locks: they belong to the open
 * file, go when it closes, and are never merged with or dropped by another
 * descriptor of the same process.
 */
#define BLOCK_LOCK_READ     100 /* permission 0: consistent read */
#define BLOCK_LOCK_WRITE    101 /* permission 1: write */
#define BLOCK_LOCK_NO_WRITE 201 /* others may not write */

static int block_lock_range(int fd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        return errno == EACCES ? -EAGAIN : -errno;
    }
    return 0;
}

/* -EAGAIN when another open file holds any lock on the byte at @start. */
static int block_lock_test(int fd, off_t start)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        return -errno;
    }
    return fl.l_type == F_UNLCK ? 0 : -EAGAIN;
}

int block_image_lock(int fd, bool write)
{
    int r;
    if (write) {
        /* Exclusive on "read" and "write": no other reader or writer. */
        r = block_lock_range(fd, F_WRLCK, BLOCK_LOCK_READ, 2);
        if (r == 0) {
            r = block_lock_test(fd, BLOCK_LOCK_NO_WRITE);
        }
    } else {
        /* Shared: other readers are welcome, writers are not. */
        r = block_lock_range(fd, F_RDLCK, BLOCK_LOCK_READ, 1);
        if (r == 0) {
            r = block_lock_range(fd, F_RDLCK, BLOCK_LOCK_NO_WRITE, 1);
        }
        if (r == 0) {
            r = block_lock_test(fd, BLOCK_LOCK_WRITE);
        }
    }
    if (r < 0) {
        struct flock all = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
        fcntl(fd, F_OFD_SETLK, &all);
    }
    return r;
}
