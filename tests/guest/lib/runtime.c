/* Freestanding runtime: the string functions the compiler may call, and TSC-based waiting. */
#include "guest.h"

/* String instructions rather than C loops: at -O2 the compiler would turn a
 * byte loop here back into a call to memset() itself. */
void *memset(void *dst, int c, size_t n)
{
    void *d = dst;

    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;

    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n] != '\0') {
        n++;
    }
    return n;
}

void tsc_delay(uint64_t cycles)
{
    uint64_t start = rdtsc();

    while (rdtsc() - start < cycles) {
        cpu_pause();
    }
}

bool tsc_wait_ge32(const volatile uint32_t *p, uint32_t target, uint64_t timeout_cycles)
{
    uint64_t start = rdtsc();

    while (atomic_read32(p) < target) {
        if (rdtsc() - start >= timeout_cycles) {
            return atomic_read32(p) >= target;
        }
        cpu_pause();
    }
    return true;
}
