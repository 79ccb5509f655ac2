/* Unit tests of the split virtqueue on a fake guest memory, hostile drivers included. */
#include "kvmloop/virtio.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

#define RAM_SIZE  (1u << 20)
#define DESC_GPA  0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA  0x3000
#define DATA_GPA  0x10000
#define QSIZE     8

typedef struct Fake {
    uint8_t *ram;
    GuestMem gm;
    VirtQueue vq;
    uint16_t avail_idx;
} Fake;

static void fake_init(Fake *f)
{
    memset(f, 0, sizeof(*f));
    f->ram = g_malloc0(RAM_SIZE);
    f->gm.blocks[0] = (GuestMemBlock){.gpa = 0, .size = RAM_SIZE, .host = f->ram};
    f->gm.nblocks = 1;
    f->gm.ram_size = RAM_SIZE;
    virtqueue_init(&f->vq, QSIZE);
    f->vq.desc = DESC_GPA;
    f->vq.avail = AVAIL_GPA;
    f->vq.used = USED_GPA;
    g_assert_cmpint(virtqueue_enable(&f->vq, &f->gm), ==, 0);
}

static void fake_free(Fake *f)
{
    g_free(f->ram);
}

static void set_desc(Fake *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    memcpy(f->ram + DESC_GPA + 16 * i, &d, sizeof(d));
}

static void offer(Fake *f, uint16_t head)
{
    uint16_t *ring = (uint16_t *)(f->ram + AVAIL_GPA + 4);
    ring[f->avail_idx % QSIZE] = head;
    f->avail_idx++;
    memcpy(f->ram + AVAIL_GPA + 2, &f->avail_idx, 2);
}

static uint16_t used_idx(Fake *f)
{
    uint16_t v;
    memcpy(&v, f->ram + USED_GPA + 2, 2);
    return v;
}

static int pop(Fake *f, VirtQueueElement **e)
{
    return virtqueue_pop(&f->vq, &f->gm, e);
}

static void expect_broken(Fake *f)
{
    VirtQueueElement *e;
    g_assert_cmpint(pop(f, &e), ==, -EINVAL);
    g_assert_null(e);
}

static void test_enable_checks(void)
{
    Fake f;
    fake_init(&f);
    struct {
        uint16_t size;
        gpa_t desc, avail, used;
    } bad[] = {
        {0, DESC_GPA, AVAIL_GPA, USED_GPA},          {6, DESC_GPA, AVAIL_GPA, USED_GPA},
        {512, DESC_GPA, AVAIL_GPA, USED_GPA},        {8, DESC_GPA + 8, AVAIL_GPA, USED_GPA},
        {8, DESC_GPA, AVAIL_GPA + 1, USED_GPA},      {8, DESC_GPA, AVAIL_GPA, USED_GPA + 2},
        {8, RAM_SIZE - 64, AVAIL_GPA, USED_GPA},     /* runs past RAM */
        {8, DESC_GPA, AVAIL_GPA, 0xfe000000},        /* in MMIO space */
        {8, DESC_GPA, 0xfffffffffffffff0, USED_GPA}, /* wraps */
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        VirtQueue vq;
        virtqueue_init(&vq, 8);
        vq.size = bad[i].size;
        vq.desc = bad[i].desc;
        vq.avail = bad[i].avail;
        vq.used = bad[i].used;
        g_assert_cmpint(virtqueue_enable(&vq, &f.gm), ==, -EINVAL);
        g_assert_false(vq.enabled);
        VirtQueueElement *e;
        g_assert_cmpint(virtqueue_pop(&vq, &f.gm, &e), ==, 0);
    }
    fake_free(&f);
}

static void test_pop_push(void)
{
    Fake f;
    VirtQueueElement *e;
    fake_init(&f);

    g_assert_cmpint(pop(&f, &e), ==, 0);
    memcpy(f.ram + DATA_GPA, "request!", 8);
    set_desc(&f, 3, DATA_GPA, 8, VRING_DESC_F_NEXT, 5);
    set_desc(&f, 5, DATA_GPA + 0x100, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 6);
    set_desc(&f, 6, DATA_GPA + 0x200, 16, VRING_DESC_F_WRITE, 0);
    offer(&f, 3);
    g_assert_cmpint(pop(&f, &e), ==, 1);
    g_assert_cmpuint(e->head, ==, 3);
    g_assert_cmpuint(e->out_num, ==, 1);
    g_assert_cmpuint(e->in_num, ==, 2);
    g_assert_cmpuint(e->out_len, ==, 8);
    g_assert_cmpuint(e->in_len, ==, 32);
    char buf[9] = {0};
    g_assert_cmpuint(virtqueue_elem_from_guest(e, 0, buf, 100), ==, 8);
    g_assert_cmpstr(buf, ==, "request!");
    /* Copy across the boundary of the two writable buffers. */
    g_assert_cmpuint(virtqueue_elem_to_guest(e, 12, "ABCDEFGH", 8), ==, 8);
    g_assert_cmpmem(f.ram + DATA_GPA + 0x100 + 12, 4, "ABCD", 4);
    g_assert_cmpmem(f.ram + DATA_GPA + 0x200, 4, "EFGH", 4);
    g_assert_cmpuint(virtqueue_elem_to_guest(e, 30, "XYZ", 3), ==, 2);
    g_assert_true(virtqueue_needs_notify(&f.vq));
    g_assert_cmpint(virtqueue_push(&f.vq, e, 1000), ==, 0);
    g_assert_cmpuint(used_idx(&f), ==, 1);
    uint32_t elem[2];
    memcpy(elem, f.ram + USED_GPA + 4, 8);
    g_assert_cmpuint(elem[0], ==, 3);
    g_assert_cmpuint(elem[1], ==, 32); /* clamped to the writable length */
    /* Pushed twice: the head is no longer in flight. */
    g_assert_cmpint(virtqueue_push(&f.vq, e, 0), ==, -EINVAL);
    g_free(e);

    uint16_t flags = VRING_AVAIL_F_NO_INTERRUPT;
    memcpy(f.ram + AVAIL_GPA, &flags, 2);
    g_assert_false(virtqueue_needs_notify(&f.vq));
    fake_free(&f);
}

/* The 16-bit indexes wrap; nothing changes at 65535. */
static void test_index_wrap(void)
{
    Fake f;
    VirtQueueElement *e;
    fake_init(&f);
    set_desc(&f, 0, DATA_GPA, 4, VRING_DESC_F_WRITE, 0);
    for (unsigned i = 0; i < 70000; i++) {
        offer(&f, 0);
        g_assert_cmpint(pop(&f, &e), ==, 1);
        g_assert_cmpint(virtqueue_push(&f.vq, e, 4), ==, 0);
        g_free(e);
    }
    g_assert_cmpuint(used_idx(&f), ==, (uint16_t)70000);
    fake_free(&f);
}

typedef void (*hostile_fn)(Fake *f);

static void hostile_avail_ahead(Fake *f)
{
    set_desc(f, 0, DATA_GPA, 4, 0, 0);
    offer(f, 0);
    f->avail_idx = QSIZE + 1;
    memcpy(f->ram + AVAIL_GPA + 2, &f->avail_idx, 2);
}

static void hostile_head_range(Fake *f)
{
    offer(f, QSIZE);
}

static void hostile_next_range(Fake *f)
{
    set_desc(f, 0, DATA_GPA, 4, VRING_DESC_F_NEXT, 200);
    offer(f, 0);
}

static void hostile_loop(Fake *f)
{
    set_desc(f, 0, DATA_GPA, 4, VRING_DESC_F_NEXT, 1);
    set_desc(f, 1, DATA_GPA, 4, VRING_DESC_F_NEXT, 0);
    offer(f, 0);
}

static void hostile_self_loop(Fake *f)
{
    set_desc(f, 2, DATA_GPA, 4, VRING_DESC_F_NEXT, 2);
    offer(f, 2);
}

static void hostile_past_ram(Fake *f)
{
    set_desc(f, 0, RAM_SIZE - 16, 32, VRING_DESC_F_WRITE, 0);
    offer(f, 0);
}

static void hostile_huge_len(Fake *f)
{
    set_desc(f, 0, DATA_GPA, 0xffffffffu, 0, 0);
    offer(f, 0);
}

static void hostile_wrap_addr(Fake *f)
{
    set_desc(f, 0, 0xffffffffffffff00ULL, 0x200, 0, 0);
    offer(f, 0);
}

static void hostile_mmio_buffer(Fake *f)
{
    set_desc(f, 0, 0xfee00000, 16, VRING_DESC_F_WRITE, 0);
    offer(f, 0);
}

static void hostile_order(Fake *f)
{
    set_desc(f, 0, DATA_GPA, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    set_desc(f, 1, DATA_GPA, 4, 0, 0);
    offer(f, 0);
}

static void hostile_indirect(Fake *f)
{
    set_desc(f, 0, DATA_GPA, 16, VRING_DESC_F_INDIRECT, 0);
    offer(f, 0);
}

static void hostile_head_twice(Fake *f)
{
    VirtQueueElement *e;
    set_desc(f, 0, DATA_GPA, 4, 0, 0);
    offer(f, 0);
    g_assert_cmpint(pop(f, &e), ==, 1);
    g_free(e); /* left in flight */
    offer(f, 0);
}

static void test_hostile(gconstpointer data)
{
    Fake f;
    fake_init(&f);
    ((hostile_fn)data)(&f);
    expect_broken(&f);
    /* The queue stays where it was: the same violation again, no progress. */
    expect_broken(&f);
    fake_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/virtqueue/enable-checks", test_enable_checks);
    g_test_add_func("/virtqueue/pop-push", test_pop_push);
    g_test_add_func("/virtqueue/index-wrap", test_index_wrap);
    static const struct {
        const char *name;
        hostile_fn fn;
    } hostile[] = {
        {"avail-ahead", hostile_avail_ahead}, {"head-range", hostile_head_range},
        {"next-range", hostile_next_range},   {"loop", hostile_loop},
        {"self-loop", hostile_self_loop},     {"past-ram", hostile_past_ram},
        {"huge-len", hostile_huge_len},       {"wrap-addr", hostile_wrap_addr},
        {"mmio-buffer", hostile_mmio_buffer}, {"readable-after-writable", hostile_order},
        {"indirect", hostile_indirect},       {"head-twice", hostile_head_twice},
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(hostile); i++) {
        g_autofree char *path = g_strdup_printf("/virtqueue/hostile/%s", hostile[i].name);
        g_test_add_data_func(path, (gconstpointer)hostile[i].fn, test_hostile);
    }
    return g_test_run();
}
