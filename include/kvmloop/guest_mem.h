/* Guest RAM as the host sees it, reached only through checked translation. */
#ifndef KVMLOOP_GUEST_MEM_H
#define KVMLOOP_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kvmloop/types.h"

#define GUEST_MEM_MAX_BLOCKS 4

/* One contiguous block of guest RAM. */
typedef struct GuestMemBlock {
    gpa_t gpa;
    uint64_t size;
    uint8_t *host;
} GuestMemBlock;

typedef struct GuestMem {
    GuestMemBlock blocks[GUEST_MEM_MAX_BLOCKS];
    unsigned nblocks;
    uint64_t ram_size; /* total bytes of RAM */
} GuestMem;

/* Host pointer for [@gpa, @gpa + @len), or NULL if any byte of it is not RAM
 * or the range wraps. A range never spans two blocks. */
static inline void *guest_mem_ptr(const GuestMem *gm, gpa_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < gm->nblocks; i++) {
        const GuestMemBlock *b = &gm->blocks[i];
        if (gpa >= b->gpa && gpa - b->gpa <= b->size && len <= b->size - (gpa - b->gpa)) {
            return b->host + (gpa - b->gpa);
        }
    }
    return NULL;
}

#endif
