/* Unit tests for the MC146818 RTC core, on a fake clock with a fake IRQ sink. */
#include "kvmloop/rtc.h"

#include <string.h>
#include <glib.h>

#define NS  1000000000LL
#define MS  1000000LL
#define US  1000LL
#define DAY 86400LL

/* 2024-02-29 13:45:56 UTC, a Thursday. */
#define T0 1709214356LL

typedef struct FakeIrq {
    int level;
    unsigned raises; /* 0 -> 1 transitions */
} FakeIrq;

static void fake_irq_set(void *opaque, int n, int level)
{
    FakeIrq *f = opaque;

    g_assert_cmpint(n, ==, 8);
    g_assert_true(level == 0 || level == 1);
    if (level && !f->level) {
        f->raises++;
    }
    f->level = level;
}

typedef struct Fixture {
    int64_t clock; /* host ns since the epoch */
    FakeIrq irq;
    Rtc *rtc;
} Fixture;

static int64_t fake_clock(void *opaque)
{
    return *(int64_t *)opaque;
}

static Rtc *fixture_rtc(Fixture *f, int64_t utc_offset)
{
    IrqLine line = {.set = fake_irq_set, .opaque = &f->irq, .n = 8};

    return rtc_new(fake_clock, &f->clock, line, utc_offset);
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    memset(f, 0, sizeof(*f));
    f->clock = T0 * NS + 250 * MS;
    f->rtc = fixture_rtc(f, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    rtc_free(f->rtc);
}

static uint8_t rd(Fixture *f, unsigned idx)
{
    rtc_write(f->rtc, RTC_PORT_INDEX, (uint8_t)idx);
    return rtc_read(f->rtc, RTC_PORT_DATA);
}

static void wr(Fixture *f, unsigned idx, uint8_t v)
{
    rtc_write(f->rtc, RTC_PORT_INDEX, (uint8_t)idx);
    rtc_write(f->rtc, RTC_PORT_DATA, v);
}

/* Move the fake clock to the core's deadline and let the timer run. */
static int64_t fire(Fixture *f)
{
    int64_t deadline = rtc_next_deadline(f->rtc);

    g_assert_cmpint(deadline, !=, RTC_NO_DEADLINE);
    g_assert_cmpint(deadline, >=, f->clock);
    f->clock = deadline;
    rtc_update(f->rtc);
    return deadline;
}

typedef struct Fields {
    uint8_t sec, min, hour, wday, mday, mon, year, century;
} Fields;

static void assert_time(Fixture *f, Fields e)
{
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, e.sec);
    g_assert_cmphex(rd(f, RTC_MINUTES), ==, e.min);
    g_assert_cmphex(rd(f, RTC_HOURS), ==, e.hour);
    g_assert_cmphex(rd(f, RTC_DAY_OF_WEEK), ==, e.wday);
    g_assert_cmphex(rd(f, RTC_DAY_OF_MONTH), ==, e.mday);
    g_assert_cmphex(rd(f, RTC_MONTH), ==, e.mon);
    g_assert_cmphex(rd(f, RTC_YEAR), ==, e.year);
    g_assert_cmphex(rd(f, RTC_CENTURY), ==, e.century);
}

/* ---- Registers ---------------------------------------------------------- */

static void test_reset_values(Fixture *f, gconstpointer data)
{
    g_assert_cmphex(rd(f, RTC_REG_A), ==, 0x26);
    g_assert_cmphex(rd(f, RTC_REG_B), ==, RTC_24H);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, 0x00);
    g_assert_cmphex(rd(f, RTC_REG_D), ==, RTC_VRT);
    /* The index port is write-only; offsets past the data port are nothing. */
    g_assert_cmphex(rtc_read(f->rtc, RTC_PORT_INDEX), ==, 0xff);
    g_assert_cmphex(rtc_read(f->rtc, 2), ==, 0xff);
    rtc_write(f->rtc, 2, 0x55);
    /* Bit 7 of the index is the NMI mask: it selects nothing. */
    rtc_write(f->rtc, RTC_PORT_INDEX, 0x80 | RTC_REG_D);
    g_assert_cmphex(rtc_read(f->rtc, RTC_PORT_DATA), ==, RTC_VRT);
    /* C and D are read-only; UIP cannot be written. */
    wr(f, RTC_REG_C, 0xff);
    wr(f, RTC_REG_D, 0x00);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, 0x00);
    g_assert_cmphex(rd(f, RTC_REG_D), ==, RTC_VRT);
    wr(f, RTC_REG_A, 0xa6);
    g_assert_cmphex(rd(f, RTC_REG_A), ==, 0x26);
    g_assert_cmpint(f->irq.level, ==, 0);
}

static void test_cmos_ram(Fixture *f, gconstpointer data)
{
    for (unsigned i = 0x0e; i < RTC_CMOS_SIZE; i++) {
        if (i != RTC_CENTURY) {
            wr(f, i, (uint8_t)(i * 7 + 1));
        }
    }
    for (unsigned i = 0x0e; i < RTC_CMOS_SIZE; i++) {
        if (i != RTC_CENTURY) {
            g_assert_cmphex(rd(f, i), ==, (uint8_t)(i * 7 + 1));
        }
    }
    /* The alarm bytes are plain storage too. */
    wr(f, RTC_SECONDS_ALARM, 0x12);
    wr(f, RTC_MINUTES_ALARM, 0x34);
    wr(f, RTC_HOURS_ALARM, 0x05);
    g_assert_cmphex(rd(f, RTC_SECONDS_ALARM), ==, 0x12);
    g_assert_cmphex(rd(f, RTC_MINUTES_ALARM), ==, 0x34);
    g_assert_cmphex(rd(f, RTC_HOURS_ALARM), ==, 0x05);
    /* The shutdown status byte survives a reset: that is what it is for. */
    wr(f, 0x0f, 0x0a);
    rtc_reset(f->rtc);
    g_assert_cmphex(rd(f, 0x0f), ==, 0x0a);
    g_assert_cmphex(rd(f, 0x7f), ==, (uint8_t)(0x7f * 7 + 1));
}

/* ---- Time formats ------------------------------------------------------- */

static void test_bcd(Fixture *f, gconstpointer data)
{
    assert_time(f, (Fields){0x56, 0x45, 0x13, 5, 0x29, 0x02, 0x24, 0x20});
}

static void test_binary(Fixture *f, gconstpointer data)
{
    wr(f, RTC_REG_B, RTC_24H | RTC_DM_BINARY);
    assert_time(f, (Fields){56, 45, 13, 5, 29, 2, 24, 20});
}

static void test_12_hour(Fixture *f, gconstpointer data)
{
    static const struct {
        int hour;
        uint8_t bcd, bin;
    } cases[] = {
        {0, 0x12, 12},           {1, 0x01, 1},
        {11, 0x11, 11},          {12, 0x80 | 0x12, 0x8c},
        {13, 0x80 | 0x01, 0x81}, {23, 0x80 | 0x11, 0x8b},
    };
    int64_t midnight = T0 - T0 % DAY;

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        f->clock = (midnight + cases[i].hour * 3600 + 59) * NS;
        wr(f, RTC_REG_B, 0);
        g_assert_cmphex(rd(f, RTC_HOURS), ==, cases[i].bcd);
        wr(f, RTC_REG_B, RTC_DM_BINARY);
        g_assert_cmphex(rd(f, RTC_HOURS), ==, cases[i].bin);
        wr(f, RTC_REG_B, RTC_24H);
        g_assert_cmpuint(rd(f, RTC_HOURS), ==, (cases[i].hour / 10) << 4 | cases[i].hour % 10);
    }
}

static void test_utc_offset(Fixture *f, gconstpointer data)
{
    Rtc *local = fixture_rtc(f, 3600);

    rtc_write(local, RTC_PORT_INDEX, RTC_HOURS);
    g_assert_cmphex(rtc_read(local, RTC_PORT_DATA), ==, 0x14);
    rtc_free(local);
}

/* ---- Setting the time --------------------------------------------------- */

static void set_time(Fixture *f, uint8_t b, Fields t)
{
    wr(f, RTC_REG_B, b | RTC_SET);
    wr(f, RTC_SECONDS, t.sec);
    wr(f, RTC_MINUTES, t.min);
    wr(f, RTC_HOURS, t.hour);
    wr(f, RTC_DAY_OF_MONTH, t.mday);
    wr(f, RTC_MONTH, t.mon);
    wr(f, RTC_YEAR, t.year);
    wr(f, RTC_CENTURY, t.century);
}

static void test_set_time(Fixture *f, gconstpointer data)
{
    set_time(f, RTC_24H, (Fields){0x58, 0x59, 0x23, 0, 0x31, 0x12, 0x99, 0x19});
    /* While SET is on, the registers hold what was written and do not count. */
    f->clock += 5 * NS;
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x58);
    g_assert_cmphex(rd(f, RTC_REG_A) & RTC_UIP, ==, 0);
    wr(f, RTC_REG_B, RTC_24H);
    assert_time(f, (Fields){0x58, 0x59, 0x23, 6, 0x31, 0x12, 0x99, 0x19});
    /* The second keeps its phase: the host clock is at .25 of its second. */
    f->clock += 740 * MS;
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x58);
    f->clock += 20 * MS;
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x59);
    /* Across the century. */
    f->clock += 2 * NS;
    assert_time(f, (Fields){0x01, 0x00, 0x00, 7, 0x01, 0x01, 0x00, 0x20});
    /* And much later: a day and an hour. */
    f->clock += (DAY + 3600) * NS;
    assert_time(f, (Fields){0x01, 0x00, 0x01, 1, 0x02, 0x01, 0x00, 0x20});
}

static void test_set_time_12h_binary(Fixture *f, gconstpointer data)
{
    /* 2023-02-28 11:59:59 PM, binary, 12-hour. */
    set_time(f, RTC_DM_BINARY, (Fields){59, 59, 0x80 | 11, 0, 28, 2, 23, 20});
    wr(f, RTC_REG_B, RTC_DM_BINARY);
    g_assert_cmphex(rd(f, RTC_HOURS), ==, 0x80 | 11);
    f->clock += NS;
    /* Midnight is 12 AM; 2023 is no leap year. */
    assert_time(f, (Fields){0, 0, 12, 4, 1, 3, 23, 20});
    wr(f, RTC_REG_B, RTC_24H);
    assert_time(f, (Fields){0x00, 0x00, 0x00, 4, 0x01, 0x03, 0x23, 0x20});

    /* 12 AM is hour 0 and 12 PM hour 12, in BCD too. SET goes off in the
     * format the fields were written in; then the format changes. */
    set_time(f, 0, (Fields){0x30, 0x15, 0x12, 0, 0x01, 0x03, 0x23, 0x20});
    wr(f, RTC_REG_B, 0);
    wr(f, RTC_REG_B, RTC_24H);
    g_assert_cmphex(rd(f, RTC_HOURS), ==, 0x00);
    set_time(f, 0, (Fields){0x30, 0x15, 0x80 | 0x12, 0, 0x01, 0x03, 0x23, 0x20});
    wr(f, RTC_REG_B, 0);
    wr(f, RTC_REG_B, RTC_24H);
    g_assert_cmphex(rd(f, RTC_HOURS), ==, 0x12);
    g_assert_cmphex(rd(f, RTC_MINUTES), ==, 0x15);
}

static void test_write_running(Fixture *f, gconstpointer data)
{
    /* A field written while the clock runs sets just that field. */
    wr(f, RTC_MINUTES, 0x10);
    assert_time(f, (Fields){0x56, 0x10, 0x13, 5, 0x29, 0x02, 0x24, 0x20});
    f->clock += 4 * NS;
    assert_time(f, (Fields){0x00, 0x11, 0x13, 5, 0x29, 0x02, 0x24, 0x20});
}

static void test_offset_survives_reset(Fixture *f, gconstpointer data)
{
    set_time(f, RTC_24H, (Fields){0x00, 0x00, 0x08, 0, 0x15, 0x06, 0x30, 0x20});
    wr(f, RTC_REG_B, RTC_24H);
    rtc_reset(f->rtc);
    f->clock += 61 * NS;
    assert_time(f, (Fields){0x01, 0x01, 0x08, 7, 0x15, 0x06, 0x30, 0x20});
}

static void test_set_clears_uie(Fixture *f, gconstpointer data)
{
    wr(f, RTC_REG_B, RTC_24H | RTC_UIE | RTC_SET);
    g_assert_cmphex(rd(f, RTC_REG_B), ==, RTC_24H | RTC_SET);
}

static void test_divider_reset(Fixture *f, gconstpointer data)
{
    /* Linux holds the divider in reset while it sets the time. */
    wr(f, RTC_REG_B, RTC_24H | RTC_SET);
    wr(f, RTC_REG_A, 0x70);
    wr(f, RTC_SECONDS, 0x30);
    wr(f, RTC_REG_B, RTC_24H);
    f->clock += 10 * NS;
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x30);
    g_assert_cmphex(rd(f, RTC_REG_A), ==, 0x70); /* no UIP while held */
    wr(f, RTC_REG_A, 0x26);
    /* The first update comes half a second after the release. */
    f->clock += 499 * MS;
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x30);
    f->clock += 2 * MS;
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x31);
    f->clock += NS;
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x32);
    g_assert_cmphex(rd(f, RTC_MINUTES), ==, 0x45);
}

/* ---- UIP ------------------------------------------------------------------ */

static void test_uip(Fixture *f, gconstpointer data)
{
    int polls = 0;

    f->clock = T0 * NS + 999700 * US;
    g_assert_cmphex(rd(f, RTC_REG_A), ==, 0x26);
    f->clock = T0 * NS + 999800 * US;
    g_assert_cmphex(rd(f, RTC_REG_A), ==, 0x26 | RTC_UIP);
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x56); /* the old second until the boundary */
    f->clock = (T0 + 1) * NS;
    g_assert_cmphex(rd(f, RTC_REG_A), ==, 0x26);
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x57);

    /* A "wait for UIP to fall" loop that takes 10 us per poll ends. */
    f->clock = (T0 + 1) * NS + 999900 * US;
    while (rd(f, RTC_REG_A) & RTC_UIP) {
        f->clock += 10 * US;
        g_assert_cmpint(++polls, <, 30);
    }
    g_assert_cmpint(polls, >, 0);
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x58);

    /* No updates while SET is on, so no UIP. */
    wr(f, RTC_REG_B, RTC_24H | RTC_SET);
    f->clock = (T0 + 5) * NS + 999900 * US;
    g_assert_cmphex(rd(f, RTC_REG_A), ==, 0x26);
}

/* ---- Interrupts ------------------------------------------------------------- */

static void test_register_c(Fixture *f, gconstpointer data)
{
    /* Flags are set with their interrupts disabled; IRQF and the line are not. */
    f->clock += NS;
    g_assert_cmphex(rd(f, RTC_REG_C), ==, RTC_PF | RTC_UF);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, 0);
    g_assert_cmpuint(f->irq.raises, ==, 0);

    /* Enabling an interrupt whose flag is pending raises IRQF at once. */
    wr(f, RTC_REG_A, 0x20); /* periodic off */
    f->clock += NS;
    wr(f, RTC_REG_B, RTC_24H | RTC_UIE);
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(f->irq.raises, ==, 1);
    /* Reading C returns IRQF, clears everything and lowers the line. */
    g_assert_cmphex(rd(f, RTC_REG_C), ==, RTC_IRQF | RTC_UF);
    g_assert_cmpint(f->irq.level, ==, 0);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, 0);

    /* Disabling the interrupt drops IRQF with it. */
    f->clock += NS;
    rtc_update(f->rtc);
    g_assert_cmpint(f->irq.level, ==, 1);
    wr(f, RTC_REG_B, RTC_24H);
    g_assert_cmpint(f->irq.level, ==, 0);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, RTC_UF);
}

static unsigned count_periodic(Fixture *f, uint8_t reg_a)
{
    int64_t end;
    unsigned n = 0;

    f->clock = T0 * NS;
    wr(f, RTC_REG_A, reg_a);
    rd(f, RTC_REG_C);
    wr(f, RTC_REG_B, RTC_24H | RTC_PIE);
    end = f->clock + NS;
    while (rtc_next_deadline(f->rtc) <= end) {
        g_assert_cmpint(f->irq.level, ==, 0);
        fire(f);
        g_assert_cmpint(f->irq.level, ==, 1);
        g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
        /* UF too where a tick falls on a second boundary. */
        g_assert_cmphex(rd(f, RTC_REG_C) & ~RTC_UF, ==, RTC_IRQF | RTC_PF);
        n++;
    }
    wr(f, RTC_REG_B, RTC_24H);
    return n;
}

static void test_periodic(Fixture *f, gconstpointer data)
{
    int64_t deadline;

    /* 1024 Hz: the first tick is at most 976.5625 us away, and exactly on time. */
    f->clock = T0 * NS + 100 * US;
    wr(f, RTC_REG_B, RTC_24H | RTC_PIE);
    deadline = rtc_next_deadline(f->rtc);
    g_assert_cmpint(deadline, ==, T0 * NS + 976563);
    f->clock = deadline - 1;
    rtc_update(f->rtc);
    g_assert_cmpint(f->irq.level, ==, 0);
    f->clock = deadline;
    rtc_update(f->rtc);
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, RTC_IRQF | RTC_PF);
    g_assert_cmpint(f->irq.level, ==, 0);
    wr(f, RTC_REG_B, RTC_24H);

    /* Rates per RS (32.768 kHz time base; RS 1 and 2 are 256 and 128 Hz). */
    g_assert_cmpuint(count_periodic(f, 0x26), ==, 1024);
    g_assert_cmpuint(count_periodic(f, 0x2f), ==, 2);
    g_assert_cmpuint(count_periodic(f, 0x23), ==, 8192);
    g_assert_cmpuint(count_periodic(f, 0x21), ==, 256);
    g_assert_cmpuint(count_periodic(f, 0x22), ==, 128);
    g_assert_cmpuint(count_periodic(f, 0x20), ==, 0);
}

static void test_update_interrupt(Fixture *f, gconstpointer data)
{
    static const uint8_t seconds[] = {0x57, 0x58, 0x59, 0x00, 0x01};

    wr(f, RTC_REG_A, 0x20);
    wr(f, RTC_REG_B, RTC_24H | RTC_UIE);
    for (int i = 1; i <= 5; i++) {
        g_assert_cmpint(fire(f), ==, (T0 + i) * NS);
        g_assert_cmpint(f->irq.level, ==, 1);
        g_assert_cmphex(rd(f, RTC_SECONDS), ==, seconds[i - 1]);
        g_assert_cmphex(rd(f, RTC_REG_C), ==, RTC_IRQF | RTC_UF);
    }
    g_assert_cmpuint(f->irq.raises, ==, 5);
}

static void test_alarm(Fixture *f, gconstpointer data)
{
    wr(f, RTC_REG_A, 0x20);
    /* 13:46:10, a specific time today and then tomorrow. */
    wr(f, RTC_HOURS_ALARM, 0x13);
    wr(f, RTC_MINUTES_ALARM, 0x46);
    wr(f, RTC_SECONDS_ALARM, 0x10);
    wr(f, RTC_REG_B, RTC_24H | RTC_AIE);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, (T0 + 14) * NS);
    f->clock = (T0 + 14) * NS - 1;
    rtc_update(f->rtc);
    g_assert_cmpint(f->irq.level, ==, 0);
    fire(f);
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, RTC_IRQF | RTC_AF | RTC_UF);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, (T0 + 14 + DAY) * NS);

    /* Don't-care hours and minutes: every minute at :30. */
    wr(f, RTC_HOURS_ALARM, 0xc0);
    wr(f, RTC_MINUTES_ALARM, 0xff);
    wr(f, RTC_SECONDS_ALARM, 0x30);
    g_assert_cmpint(fire(f), ==, (T0 + 34) * NS);
    rd(f, RTC_REG_C);
    g_assert_cmpint(fire(f), ==, (T0 + 94) * NS);
    rd(f, RTC_REG_C);

    /* Every second of one minute: 14:00:xx. */
    wr(f, RTC_HOURS_ALARM, 0x14);
    wr(f, RTC_MINUTES_ALARM, 0x00);
    wr(f, RTC_SECONDS_ALARM, 0xc0);
    g_assert_cmpint(fire(f), ==, (T0 + 844) * NS);
    rd(f, RTC_REG_C);
    g_assert_cmpint(fire(f), ==, (T0 + 845) * NS);
    rd(f, RTC_REG_C);

    /* 12-hour binary: 0x81 is 1 PM. */
    wr(f, RTC_REG_B, RTC_DM_BINARY | RTC_AIE);
    wr(f, RTC_HOURS_ALARM, 0x81);
    wr(f, RTC_MINUTES_ALARM, 0);
    wr(f, RTC_SECONDS_ALARM, 5);
    g_assert_cmpint(fire(f), ==, (T0 - 2756 + 5 + DAY) * NS);
    g_assert_cmphex(rd(f, RTC_HOURS), ==, 0x81);
    rd(f, RTC_REG_C);

    /* Bytes no time encodes to never match. */
    wr(f, RTC_REG_B, RTC_24H | RTC_AIE);
    wr(f, RTC_HOURS_ALARM, 0xc0);
    wr(f, RTC_SECONDS_ALARM, 0x5a);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
    wr(f, RTC_SECONDS_ALARM, 0x00);
    wr(f, RTC_HOURS_ALARM, 0x24);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
}

static void test_alarm_flag_lazily(Fixture *f, gconstpointer data)
{
    /* With AIE off there is no timer, but AF is there when C is read. */
    wr(f, RTC_HOURS_ALARM, 0xc0);
    wr(f, RTC_MINUTES_ALARM, 0xc0);
    wr(f, RTC_SECONDS_ALARM, 0x00);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
    f->clock += 3 * NS;
    g_assert_cmphex(rd(f, RTC_REG_C) & RTC_AF, ==, 0);
    f->clock += 2 * NS;
    g_assert_cmphex(rd(f, RTC_REG_C) & RTC_AF, ==, RTC_AF);
    /* A long gap that spans a match counts too. */
    f->clock += 3600 * NS;
    g_assert_cmphex(rd(f, RTC_REG_C) & RTC_AF, ==, RTC_AF);
}

static void test_no_busy_work(Fixture *f, gconstpointer data)
{
    /* Nothing enabled: no timer, although PF and UF keep being flagged. */
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
    /* PIE with no rate. */
    wr(f, RTC_REG_A, 0x20);
    wr(f, RTC_REG_B, RTC_24H | RTC_PIE);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
    /* UIE and AIE while the divider is held. */
    wr(f, RTC_REG_A, 0x60);
    wr(f, RTC_REG_B, RTC_24H | RTC_UIE | RTC_AIE);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
    /* AIE while SET is on. */
    wr(f, RTC_REG_A, 0x26);
    wr(f, RTC_REG_B, RTC_24H | RTC_SET | RTC_AIE);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
    /* And once IRQF is up, nothing until C is read. */
    wr(f, RTC_REG_B, RTC_24H | RTC_UIE);
    fire(f);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
    f->clock += 10 * NS;
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
    rd(f, RTC_REG_C);
    g_assert_cmpint(rtc_next_deadline(f->rtc), !=, RTC_NO_DEADLINE);
}

static void test_reset(Fixture *f, gconstpointer data)
{
    wr(f, RTC_REG_B, RTC_PIE | RTC_AIE | RTC_UIE | RTC_SQWE | RTC_DM_BINARY | RTC_DST_EN);
    f->clock += NS;
    rtc_update(f->rtc);
    g_assert_cmpint(f->irq.level, ==, 1);
    rtc_reset(f->rtc);
    g_assert_cmpint(f->irq.level, ==, 0);
    g_assert_cmphex(rd(f, RTC_REG_B), ==, RTC_DM_BINARY | RTC_DST_EN);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, 0);
    g_assert_cmphex(rd(f, RTC_REG_A), ==, 0x26);
    g_assert_cmpint(rtc_next_deadline(f->rtc), ==, RTC_NO_DEADLINE);
}

static void test_clock_backwards(Fixture *f, gconstpointer data)
{
    wr(f, RTC_REG_A, 0x20);
    wr(f, RTC_REG_B, RTC_24H | RTC_UIE);
    f->clock -= 3600 * NS;
    g_assert_cmphex(rd(f, RTC_HOURS), ==, 0x12);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, 0);
    g_assert_cmpint(fire(f), ==, (T0 - 3600 + 1) * NS);
    g_assert_cmphex(rd(f, RTC_REG_C), ==, RTC_IRQF | RTC_UF);
}

/* ---- Memory size bytes ---------------------------------------------------- */

static unsigned rd16(Fixture *f, unsigned idx)
{
    return rd(f, idx) | rd(f, idx + 1) << 8;
}

static void test_memory_size(Fixture *f, gconstpointer data)
{
    static const struct {
        uint64_t ram;
        unsigned ext_kib, above_16m, above_4g;
    } cases[] = {
        {8ULL << 20, 7 * 1024, 0, 0},
        {128ULL << 20, 0xffff, (128 - 16) * 16, 0},
        {3584ULL << 20, 0xffff, (3072 - 16) * 16, 512 * 16},
        {8ULL << 30, 0xffff, (3072 - 16) * 16, 5 * 1024 * 16},
        {1ULL << 40, 0xffff, (3072 - 16) * 16, (1024 * 1024 - 3072) * 16},
        {4ULL << 50, 0xffff, (3072 - 16) * 16, 0xffffff},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        rtc_set_ram_size(f->rtc, cases[i].ram);
        g_assert_cmpuint(rd16(f, 0x15), ==, 640);
        g_assert_cmpuint(rd16(f, 0x17), ==, cases[i].ext_kib);
        g_assert_cmpuint(rd16(f, 0x30), ==, cases[i].ext_kib);
        g_assert_cmpuint(rd16(f, 0x34), ==, cases[i].above_16m);
        g_assert_cmpuint(rd16(f, 0x5b) | rd(f, 0x5d) << 16, ==, cases[i].above_4g);
    }
}

/* ---- Hostile guests ------------------------------------------------------- */

static void test_hostile(Fixture *f, gconstpointer data)
{
    GRand *rand = g_rand_new_with_seed(8);

    for (int i = 0; i < 200000; i++) {
        uint32_t r = g_rand_int(rand);
        int64_t deadline;

        switch (r % 8) {
        case 0:
            rtc_write(f->rtc, RTC_PORT_INDEX, (uint8_t)(r >> 8));
            break;
        case 1:
        case 2:
            rtc_write(f->rtc, RTC_PORT_DATA, (uint8_t)(r >> 8));
            break;
        case 3:
        case 4:
            rtc_read(f->rtc, RTC_PORT_DATA);
            break;
        case 5:
            /* The host clock jumps, mostly forwards, sometimes back. */
            f->clock += (int64_t)(r >> 8) * US - ((r & 0x80) ? 4 * NS : 0);
            break;
        case 6:
            deadline = rtc_next_deadline(f->rtc);
            if (deadline != RTC_NO_DEADLINE) {
                g_assert_cmpint(deadline, <=, f->clock + 2 * DAY * NS);
                f->clock = MAX(f->clock, deadline);
            }
            rtc_update(f->rtc);
            break;
        default:
            if ((r >> 8) % 1000 == 0) {
                rtc_reset(f->rtc);
            }
            break;
        }
    }
    g_rand_free(rand);

    /* Still a working clock afterwards. */
    wr(f, RTC_REG_A, 0x26);
    set_time(f, RTC_24H, (Fields){0x00, 0x00, 0x12, 0, 0x01, 0x01, 0x25, 0x20});
    wr(f, RTC_REG_B, RTC_24H);
    f->clock += 2 * NS;
    g_assert_cmphex(rd(f, RTC_SECONDS), ==, 0x02);
    g_assert_cmphex(rd(f, RTC_REG_D), ==, RTC_VRT);
}

#define RTC_TEST(path, fn)                                                                         \
    g_test_add("/rtc/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    RTC_TEST("reset-values", test_reset_values);
    RTC_TEST("cmos-ram", test_cmos_ram);
    RTC_TEST("bcd", test_bcd);
    RTC_TEST("binary", test_binary);
    RTC_TEST("12-hour", test_12_hour);
    RTC_TEST("utc-offset", test_utc_offset);
    RTC_TEST("set-time", test_set_time);
    RTC_TEST("set-time-12h-binary", test_set_time_12h_binary);
    RTC_TEST("write-running", test_write_running);
    RTC_TEST("offset-survives-reset", test_offset_survives_reset);
    RTC_TEST("set-clears-uie", test_set_clears_uie);
    RTC_TEST("divider-reset", test_divider_reset);
    RTC_TEST("uip", test_uip);
    RTC_TEST("register-c", test_register_c);
    RTC_TEST("periodic", test_periodic);
    RTC_TEST("update-interrupt", test_update_interrupt);
    RTC_TEST("alarm", test_alarm);
    RTC_TEST("alarm-flag-lazily", test_alarm_flag_lazily);
    RTC_TEST("no-busy-work", test_no_busy_work);
    RTC_TEST("reset", test_reset);
    RTC_TEST("clock-backwards", test_clock_backwards);
    RTC_TEST("memory-size", test_memory_size);
    RTC_TEST("hostile", test_hostile);

    return g_test_run();
}
