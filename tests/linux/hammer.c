/* Guest program: two threads pinned to CPUs 0 and 1 write the test device's PIO counter 100000
 * times each from user mode at once, then the counter is read back once. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/io.h>

#define TESTDEV_PORT 0x700
#define WRITES       100000
#define NCPUS        2

static void *hammer(void *arg)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(long)arg, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        perror("hammer: sched_setaffinity");
        return (void *)1;
    }
    for (int i = 0; i < WRITES; i++) {
        outl(1, TESTDEV_PORT);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[NCPUS];
    if (ioperm(TESTDEV_PORT, 16, 1) != 0) {
        perror("hammer: ioperm");
        return 1;
    }
    for (long i = 0; i < NCPUS; i++) {
        pthread_create(&t[i], NULL, hammer, (void *)i);
    }
    int failed = 0;
    for (int i = 0; i < NCPUS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed |= r != NULL;
    }
    if (failed) {
        return 1;
    }
    printf("hammer: %d cpus x %d writes done\n", NCPUS, WRITES);
    printf("hammer: counter %u\n", inl(TESTDEV_PORT));
    return 0;
}
