/* Image files: advisory locks between processes that share an image, and O_DIRECT alignment. */
#include "kvmloop/block.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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

/* ---- O_DIRECT alignment ------------------------------------------------- */

#define BLOCK_ALIGN_MIN 512
#define BLOCK_ALIGN_MAX 4096

/* Whether a read of @len bytes at @offset into @buf is refused for its
 * alignment alone (anything else, the end of the file included, is not). */
static bool block_read_misaligned(int fd, void *buf, size_t len, off_t offset)
{
    ssize_t n;
    do {
        n = pread(fd, buf, len, offset);
    } while (n < 0 && errno == EINTR);
    return n < 0 && errno == EINVAL;
}

int block_direct_probe_by_reads(int fd, BlockDirectAlign *out)
{
    uint8_t *buf = NULL;
    /* Twice the largest alignment: room for a buffer at @a past an aligned start. */
    if (posix_memalign((void **)&buf, BLOCK_ALIGN_MAX, 2 * BLOCK_ALIGN_MAX) != 0) {
        return -ENOMEM;
    }
    BlockDirectAlign al = {0, 0};
    for (uint32_t a = BLOCK_ALIGN_MIN; a <= BLOCK_ALIGN_MAX && !al.io; a *= 2) {
        if (!block_read_misaligned(fd, buf, a, 0)) {
            al.io = a;
        }
    }
    for (uint32_t a = BLOCK_ALIGN_MIN; a <= BLOCK_ALIGN_MAX && al.io && !al.mem; a *= 2) {
        if (!block_read_misaligned(fd, buf + a, al.io, 0)) {
            al.mem = a;
        }
    }
    free(buf);
    if (!al.io || !al.mem) {
        return -EINVAL; /* not even 4096 works: not an O_DIRECT file */
    }
    *out = al;
    return 0;
}

int block_direct_probe(int fd, BlockDirectAlign *out)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (S_ISBLK(st.st_mode)) {
        int logical = 0;
        if (ioctl(fd, BLKSSZGET, &logical) < 0) {
            return -errno;
        }
        if (logical < BLOCK_ALIGN_MIN || (logical & (logical - 1))) {
            return -EINVAL;
        }
        /* The memory alignment the queue wants (its DMA alignment) is not
         * available by ioctl; the logical block size always suffices. */
        BlockDirectAlign al = {.mem = (uint32_t)logical, .io = (uint32_t)logical};
        struct statx sx;
        if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
            (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_mem_align) {
            al.mem = sx.stx_dio_mem_align;
        }
        *out = al;
        return 0;
    }
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
        sx.stx_dio_mem_align && sx.stx_dio_offset_align) {
        *out = (BlockDirectAlign){.mem = sx.stx_dio_mem_align, .io = sx.stx_dio_offset_align};
        return 0;
    }
    return block_direct_probe_by_reads(fd, out);
}

bool block_direct_iov_ok(const struct iovec *iov, unsigned n, const BlockDirectAlign *al)
{
    for (unsigned i = 0; i < n; i++) {
        if ((uintptr_t)iov[i].iov_base % al->mem || iov[i].iov_len % al->io) {
            return false;
        }
    }
    return true;
}
