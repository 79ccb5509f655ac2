/* The MC146818 CMOS RTC: a register core over an injected clock, and the "mc146818rtc" device. */
#include "kvmloop/rtc.h"

#include <string.h>
#include <time.h>

#include "kvmloop/device.h"
#include "kvmloop/error.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/guest_mem.h"
#include "kvmloop/klock.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"

/* ---- Constants ---------------------------------------------------------- */

#define RTC_NS_PER_SEC  1000000000LL
#define RTC_SEC_PER_DAY 86400
#define RTC_IO_SIZE     2

/* The divider chain counts a 32.768 kHz time base; the periodic rates are
 * power-of-two fractions of it (datasheet, table "Periodic interrupt rate"). */
#define RTC_TIME_BASE_HZ 32768
/* UIP rises 244 us (eight time-base cycles) before each update. */
#define RTC_UIP_NS 244141
/* DV2-0 values up to 010 run the divider; 11x holds it in reset (the others
 * are test modes, treated as held). After a reset is released the first
 * update comes half a second later. */
#define RTC_DIV_RUNNING_MAX 0x20
#define RTC_DIV_RELEASE_NS  (RTC_NS_PER_SEC / 2)

/* Power-on values as a PC's firmware leaves them: 32.768 kHz time base,
 * 1024 Hz periodic rate selected but not enabled; BCD, 24-hour. */
#define RTC_REG_A_INIT 0x26
#define RTC_REG_B_INIT RTC_24H
/* Bits of register B that the RESET pin clears. */
#define RTC_REG_B_RESET_CLEARS (RTC_PIE | RTC_AIE | RTC_UIE | RTC_SQWE)
/* The flags of register C; PIE, AIE and UIE sit at the same bit positions. */
#define RTC_FLAGS (RTC_PF | RTC_AF | RTC_UF)
#define RTC_PM    0x80 /* hours register bit 7 in 12-hour mode */

/* The PC's use of CMOS RAM (IBM AT BIOS conventions, kept by SeaBIOS). */
#define CMOS_BASE_MEM_KIB  0x15 /* 16-bit, little-endian */
#define CMOS_EXT_MEM_KIB   0x17 /* 16-bit, KiB above 1 MiB */
#define CMOS_EXT_MEM_KIB2  0x30 /* 16-bit, the same again */
#define CMOS_MEM_ABOVE_16M 0x34 /* 16-bit, 64 KiB units between 16 MiB and 4 GiB */
#define CMOS_MEM_ABOVE_4G  0x5b /* 24-bit, 64 KiB units from 4 GiB */
#define CMOS_BASE_MEM      640  /* KiB of conventional memory */

/* The pc machine puts RAM past 3 GiB above 4 GiB (the PCI hole). */
#define RTC_PC_LOWMEM_LIMIT 0xc0000000ULL

/* ---- State -------------------------------------------------------------- */

/* A point in time as seconds and nanoseconds (0 <= nsec < 1 s). Seconds hold
 * any year a guest can write, which nanoseconds in an int64_t would not. */
typedef struct RtcTime {
    int64_t sec;
    int64_t nsec;
} RtcTime;

/* Everything is guarded by the lock the caller holds (see rtc.h). */
struct Rtc {
    rtc_clock_fn clock;
    void *clock_opaque;
    IrqLine irq;
    int irq_level; /* level last driven on @irq */

    uint8_t index;   /* register selected through the index port */
    bool nmi_masked; /* bit 7 of the last index write: kept, has no effect */
    /* CMOS as the guest sees it. The time registers hold the time latched at
     * the last read or while SET is on; register C holds PF, AF and UF (IRQF
     * is computed); register A never holds UIP. */
    uint8_t cmos[RTC_CMOS_SIZE];

    /* While the divider runs, guest time is host time plus this offset
     * (0 <= off_nsec < 1 s); while it is held, guest time stands at held_at. */
    int64_t off_sec;
    int64_t off_nsec;
    bool held;
    RtcTime held_at;
    /* Guest time up to which PF, AF and UF have been accounted. */
    RtcTime last;
};

/* ---- Time arithmetic ---------------------------------------------------- */

static int64_t rtc_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t rtc_floor_mod(int64_t a, int64_t b)
{
    return a - rtc_floor_div(a, b) * b;
}

static RtcTime rtc_time_from_ns(int64_t ns)
{
    return (RtcTime){rtc_floor_div(ns, RTC_NS_PER_SEC), rtc_floor_mod(ns, RTC_NS_PER_SEC)};
}

/* @t plus @sec seconds and @nsec (0 <= nsec < 1 s) nanoseconds. */
static RtcTime rtc_time_add(RtcTime t, int64_t sec, int64_t nsec)
{
    t.sec += sec;
    t.nsec += nsec;
    if (t.nsec >= RTC_NS_PER_SEC) {
        t.nsec -= RTC_NS_PER_SEC;
        t.sec++;
    }
    return t;
}

static int rtc_time_cmp(RtcTime a, RtcTime b)
{
    if (a.sec != b.sec) {
        return a.sec < b.sec ? -1 : 1;
    }
    return a.nsec < b.nsec ? -1 : a.nsec > b.nsec;
}

static RtcTime rtc_host_now(Rtc *s)
{
    return rtc_time_from_ns(s->clock(s->clock_opaque));
}

/* The guest's time now. */
static RtcTime rtc_now(Rtc *s)
{
    if (s->held) {
        return s->held_at;
    }
    return rtc_time_add(rtc_host_now(s), s->off_sec, s->off_nsec);
}

/* Make the guest's clock read @t now, and account from there. */
static void rtc_set_now(Rtc *s, RtcTime t)
{
    if (s->held) {
        s->held_at = t;
    } else {
        RtcTime host = rtc_host_now(s);

        s->off_sec = t.sec - host.sec;
        s->off_nsec = t.nsec - host.nsec;
        if (s->off_nsec < 0) {
            s->off_nsec += RTC_NS_PER_SEC;
            s->off_sec--;
        }
    }
    s->last = t;
}

/* ---- Register encoding -------------------------------------------------- */

static bool rtc_binary(const Rtc *s)
{
    return (s->cmos[RTC_REG_B] & RTC_DM_BINARY) != 0;
}

static bool rtc_24h(const Rtc *s)
{
    return (s->cmos[RTC_REG_B] & RTC_24H) != 0;
}

/* Values are non-negative but for years before 0 AD, which a guest can
 * only reach by writing month 0 in year 0; they show as 0. */
static uint8_t rtc_to_reg(const Rtc *s, int v)
{
    v = MAX(v, 0);
    if (rtc_binary(s)) {
        return (uint8_t)v;
    }
    return (uint8_t)(((v / 10 % 10) << 4) | (v % 10));
}

/* Garbage BCD decodes to out-of-range numbers, which timegm() normalises. */
static int rtc_from_reg(const Rtc *s, uint8_t v)
{
    return rtc_binary(s) ? v : (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t rtc_hour_to_reg(const Rtc *s, int hour)
{
    int h12;

    if (rtc_24h(s)) {
        return rtc_to_reg(s, hour);
    }
    h12 = hour % 12 == 0 ? 12 : hour % 12;
    return rtc_to_reg(s, h12) | (hour >= 12 ? RTC_PM : 0);
}

static int rtc_hour_from_reg(const Rtc *s, uint8_t v)
{
    int hour;

    if (rtc_24h(s)) {
        return rtc_from_reg(s, v);
    }
    hour = rtc_from_reg(s, v & ~RTC_PM);
    if (hour == 12) {
        hour = 0;
    }
    return (v & RTC_PM) ? hour + 12 : hour;
}

/* Store the calendar fields of @t in the time registers, in the current
 * format. The day of the week follows the date. */
static void rtc_latch_time(Rtc *s, RtcTime t)
{
    time_t secs = (time_t)t.sec;
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL) {
        return; /* unreachable for the years registers can hold */
    }
    s->cmos[RTC_SECONDS] = rtc_to_reg(s, tm.tm_sec);
    s->cmos[RTC_MINUTES] = rtc_to_reg(s, tm.tm_min);
    s->cmos[RTC_HOURS] = rtc_hour_to_reg(s, tm.tm_hour);
    s->cmos[RTC_DAY_OF_WEEK] = rtc_to_reg(s, tm.tm_wday + 1);
    s->cmos[RTC_DAY_OF_MONTH] = rtc_to_reg(s, tm.tm_mday);
    s->cmos[RTC_MONTH] = rtc_to_reg(s, tm.tm_mon + 1);
    s->cmos[RTC_YEAR] = rtc_to_reg(s, (tm.tm_year + 1900) % 100);
    s->cmos[RTC_CENTURY] = rtc_to_reg(s, (tm.tm_year + 1900) / 100);
}

/* The time the time registers hold, in seconds since the epoch. Fields out
 * of range (month 13, BCD 0x5f) roll over into the next unit, so any bytes a
 * guest writes give some time; the registers are at most 255, so it cannot
 * overflow. */
static int64_t rtc_parse_time(const Rtc *s)
{
    struct tm tm = {
        .tm_sec = rtc_from_reg(s, s->cmos[RTC_SECONDS]),
        .tm_min = rtc_from_reg(s, s->cmos[RTC_MINUTES]),
        .tm_hour = rtc_hour_from_reg(s, s->cmos[RTC_HOURS]),
        .tm_mday = rtc_from_reg(s, s->cmos[RTC_DAY_OF_MONTH]),
        .tm_mon = rtc_from_reg(s, s->cmos[RTC_MONTH]) - 1,
        .tm_year =
            rtc_from_reg(s, s->cmos[RTC_CENTURY]) * 100 + rtc_from_reg(s, s->cmos[RTC_YEAR]) - 1900,
    };

    return (int64_t)timegm(&tm);
}

/* The guest wrote the time registers (SET went off, or one was written while
 * the clock runs): move the clock to them, keeping the phase of the second so
 * that updates stay where the divider puts them. */
static void rtc_apply_time(Rtc *s, RtcTime now)
{
    rtc_set_now(s, (RtcTime){rtc_parse_time(s), now.nsec});
}

/* ---- Events: periodic ticks, updates, alarms ----------------------------- */

/* Updates happen (UIP, UF, AF) only while the divider runs and SET is off. */
static bool rtc_updating(const Rtc *s)
{
    return !s->held && !(s->cmos[RTC_REG_B] & RTC_SET);
}

/* The periodic interrupt's period in time-base cycles, or 0 when off. */
static unsigned rtc_period(const Rtc *s)
{
    unsigned rs = s->cmos[RTC_REG_A] & RTC_RATE_SELECT;

    if (rs == 0) {
        return 0;
    }
    /* RS 1 and 2 give 256 and 128 Hz, not 16 and 8 kHz (datasheet table 4). */
    return rs <= 2 ? 1u << (rs + 6) : 1u << (rs - 1);
}

/* The number of periodic ticks from the epoch to @t, floored. Ticks are
 * aligned to the second, as the divider chain aligns them. */
static int64_t rtc_periodic_index(RtcTime t, unsigned period)
{
    int64_t cycles = t.nsec * RTC_TIME_BASE_HZ / RTC_NS_PER_SEC;

    return t.sec * (RTC_TIME_BASE_HZ / period) + cycles / period;
}

/* The first periodic tick after @t. */
static RtcTime rtc_next_periodic(RtcTime t, unsigned period)
{
    int64_t k = t.nsec * RTC_TIME_BASE_HZ / RTC_NS_PER_SEC / period + 1;
    int64_t cycles = k * period;

    if (cycles >= RTC_TIME_BASE_HZ) {
        return (RtcTime){t.sec + 1, 0};
    }
    /* Round up so that rtc_periodic_index() has moved on at that time. */
    return (RtcTime){t.sec, (cycles * RTC_NS_PER_SEC + RTC_TIME_BASE_HZ - 1) / RTC_TIME_BASE_HZ};
}

#define RTC_ALARM_ANY   (-1)
#define RTC_ALARM_NEVER (-2)

/* The value (below @limit) an alarm byte asks for, RTC_ALARM_ANY for a
 * don't-care byte, RTC_ALARM_NEVER for a byte no time encodes to (bad BCD,
 * minute 61): hardware compares bytes, so such an alarm never fires. */
static int rtc_alarm_want(const Rtc *s, uint8_t alarm, int limit, bool hours)
{
    int v;

    if ((alarm & RTC_ALARM_DONT_CARE) == RTC_ALARM_DONT_CARE) {
        return RTC_ALARM_ANY;
    }
    v = hours ? rtc_hour_from_reg(s, alarm) : rtc_from_reg(s, alarm);
    if (v < 0 || v >= limit) {
        return RTC_ALARM_NEVER;
    }
    if ((hours ? rtc_hour_to_reg(s, v) : rtc_to_reg(s, v)) != alarm) {
        return RTC_ALARM_NEVER;
    }
    return v;
}

/* The first second after @sec whose time matches the alarm registers, or
 * INT64_MAX if none does. Jumps field by field rather than second by second;
 * a match, if any, is within a day, and each step lands on a field boundary,
 * so a handful of iterations decide. */
static int64_t rtc_next_alarm(const Rtc *s, int64_t sec)
{
    int want_h = rtc_alarm_want(s, s->cmos[RTC_HOURS_ALARM], 24, true);
    int want_m = rtc_alarm_want(s, s->cmos[RTC_MINUTES_ALARM], 60, false);
    int want_s = rtc_alarm_want(s, s->cmos[RTC_SECONDS_ALARM], 60, false);
    int64_t t = sec + 1;

    if (want_h == RTC_ALARM_NEVER || want_m == RTC_ALARM_NEVER || want_s == RTC_ALARM_NEVER) {
        return INT64_MAX;
    }
    for (int i = 0; i < 16; i++) {
        int64_t sod = rtc_floor_mod(t, RTC_SEC_PER_DAY);
        int h = (int)(sod / 3600), m = (int)(sod / 60 % 60), ss = (int)(sod % 60);

        if (want_h >= 0 && h != want_h) {
            t += (int64_t)((want_h - h + 24) % 24) * 3600 - sod % 3600;
        } else if (want_m >= 0 && m != want_m) {
            t += want_m > m ? (int64_t)(want_m - m) * 60 - ss : 3600 - sod % 3600;
        } else if (want_s >= 0 && ss != want_s) {
            t += want_s > ss ? want_s - ss : 60 - ss;
        } else {
            return t;
        }
    }
    return INT64_MAX;
}

/* Set the flags of the events between the last accounting and @now. A clock
 * that went backwards (the host's was stepped) restarts from @now. The
 * flags are set whether or not their interrupt is enabled, as on the chip. */
static void rtc_account(Rtc *s, RtcTime now)
{
    unsigned period = rtc_period(s);

    if (rtc_time_cmp(now, s->last) > 0 && !s->held) {
        if (period && rtc_periodic_index(now, period) > rtc_periodic_index(s->last, period)) {
            s->cmos[RTC_REG_C] |= RTC_PF;
        }
        if (rtc_updating(s) && now.sec > s->last.sec) {
            s->cmos[RTC_REG_C] |= RTC_UF;
            if (rtc_next_alarm(s, s->last.sec) <= now.sec) {
                s->cmos[RTC_REG_C] |= RTC_AF;
            }
        }
    }
    s->last = now;
}

/* ---- Derived state: IRQF and the IRQ level ------------------------------ */

/* IRQF = PF.PIE + AF.AIE + UF.UIE (datasheet, register C). */
static bool rtc_irqf(const Rtc *s)
{
    return (s->cmos[RTC_REG_C] & s->cmos[RTC_REG_B] & RTC_FLAGS) != 0;
}

/* The IRQ pin follows IRQF; it is only driven when the level changes. */
static void rtc_update_irq(Rtc *s)
{
    int level = rtc_irqf(s);

    if (level != s->irq_level) {
        s->irq_level = level;
        irq_set(&s->irq, level);
    }
}

/* ---- Register access ---------------------------------------------------- */

static bool rtc_is_time_reg(unsigned idx)
{
    switch (idx) {
    case RTC_SECONDS:
    case RTC_MINUTES:
    case RTC_HOURS:
    case RTC_DAY_OF_WEEK:
    case RTC_DAY_OF_MONTH:
    case RTC_MONTH:
    case RTC_YEAR:
    case RTC_CENTURY:
        return true;
    default:
        return false;
    }
}

static uint8_t rtc_read_reg(Rtc *s, unsigned idx, RtcTime now)
{
    uint8_t val;

    if (rtc_is_time_reg(idx)) {
        if (!(s->cmos[RTC_REG_B] & RTC_SET)) {
            rtc_latch_time(s, now);
        }
        return s->cmos[idx];
    }
    switch (idx) {
    case RTC_REG_A:
        val = s->cmos[RTC_REG_A];
        if (rtc_updating(s) && now.nsec >= RTC_NS_PER_SEC - RTC_UIP_NS) {
            val |= RTC_UIP;
        }
        return val;
    case RTC_REG_C:
        val = s->cmos[RTC_REG_C] | (rtc_irqf(s) ? RTC_IRQF : 0);
        s->cmos[RTC_REG_C] = 0;
        return val;
    case RTC_REG_D:
        return RTC_VRT; /* the battery is always good */
    default:
        return s->cmos[idx];
    }
}

static void rtc_write_reg_a(Rtc *s, uint8_t value, RtcTime now)
{
    bool run = (value & RTC_DIV_CTL) <= RTC_DIV_RUNNING_MAX;

    s->cmos[RTC_REG_A] = value & ~RTC_UIP;
    if (s->held && run) {
        /* Released from reset: the first update comes half a second on. */
        RtcTime start = {s->held_at.sec, RTC_DIV_RELEASE_NS};

        s->held = false;
        rtc_set_now(s, start);
    } else if (!s->held && !run) {
        s->held_at = now;
        s->held = true;
    }
}

static void rtc_write_reg_b(Rtc *s, uint8_t value, RtcTime now)
{
    uint8_t old = s->cmos[RTC_REG_B];

    if (value & RTC_SET) {
        if (!(old & RTC_SET)) {
            /* Updates stop; the registers keep the time in the old format. */
            rtc_latch_time(s, now);
        }
        value &= ~RTC_UIE; /* the datasheet: SET clears UIE */
    }
    s->cmos[RTC_REG_B] = value;
    if ((old & RTC_SET) && !(value & RTC_SET)) {
        rtc_apply_time(s, now);
    }
}

static void rtc_write_reg(Rtc *s, unsigned idx, uint8_t value, RtcTime now)
{
    if (rtc_is_time_reg(idx)) {
        if (!(s->cmos[RTC_REG_B] & RTC_SET)) {
            /* A write while the clock runs sets that field of the running
             * time: latch the rest, replace one, restart from there. */
            rtc_latch_time(s, now);
            s->cmos[idx] = value;
            rtc_apply_time(s, now);
        } else {
            s->cmos[idx] = value;
        }
        return;
    }
    switch (idx) {
    case RTC_REG_A:
        rtc_write_reg_a(s, value, now);
        break;
    case RTC_REG_B:
        rtc_write_reg_b(s, value, now);
        break;
    case RTC_REG_C:
    case RTC_REG_D:
        break; /* read-only */
    default:
        s->cmos[idx] = value;
        break;
    }
}

/* Read a port. See rtc.h. */
uint8_t rtc_read(Rtc *s, unsigned offset)
{
    RtcTime now;
    uint8_t val;

    if (offset != RTC_PORT_DATA) {
        return 0xff;
    }
    now = rtc_now(s);
    rtc_account(s, now);
    val = rtc_read_reg(s, s->index, now);
    rtc_update_irq(s);
    return val;
}

/* Write a port. See rtc.h. */
void rtc_write(Rtc *s, unsigned offset, uint8_t value)
{
    RtcTime now;

    if (offset == RTC_PORT_INDEX) {
        s->index = value & (RTC_CMOS_SIZE - 1);
        s->nmi_masked = (value & 0x80) != 0;
        return;
    }
    if (offset != RTC_PORT_DATA) {
        return;
    }
    now = rtc_now(s);
    rtc_account(s, now);
    rtc_write_reg(s, s->index, value, now);
    rtc_update_irq(s);
}

/* ---- Timer support ------------------------------------------------------ */

/* Account for elapsed time. See rtc.h. */
void rtc_update(Rtc *s)
{
    rtc_account(s, rtc_now(s));
    rtc_update_irq(s);
}

/* The next time an enabled interrupt needs the clock looked at. See rtc.h. */
int64_t rtc_next_deadline(Rtc *s)
{
    uint8_t enabled = s->cmos[RTC_REG_B];
    RtcTime next = {INT64_MAX, 0}, t;
    unsigned period = rtc_period(s);

    /* While IRQF is set nothing can change the line: no timer until register
     * C is read. When it is clear, no enabled event is pending either. */
    if (rtc_irqf(s) || s->held) {
        return RTC_NO_DEADLINE;
    }
    if ((enabled & RTC_PIE) && period) {
        next = rtc_next_periodic(s->last, period);
    }
    if (rtc_updating(s) && (enabled & RTC_UIE)) {
        t = (RtcTime){s->last.sec + 1, 0};
        next = rtc_time_cmp(t, next) < 0 ? t : next;
    }
    if (rtc_updating(s) && (enabled & RTC_AIE)) {
        t = (RtcTime){rtc_next_alarm(s, s->last.sec), 0};
        next = rtc_time_cmp(t, next) < 0 ? t : next;
    }
    if (next.sec == INT64_MAX) {
        return RTC_NO_DEADLINE;
    }
    /* Back to host time. The host clock counts nanoseconds in an int64_t, so
     * an event beyond its range never comes. */
    t = (RtcTime){next.sec - s->off_sec, next.nsec - s->off_nsec};
    if (t.nsec < 0) {
        t.nsec += RTC_NS_PER_SEC;
        t.sec--;
    }
    if (t.sec >= INT64_MAX / RTC_NS_PER_SEC || t.sec <= INT64_MIN / RTC_NS_PER_SEC) {
        return RTC_NO_DEADLINE;
    }
    return t.sec * RTC_NS_PER_SEC + t.nsec;
}

/* ---- CMOS memory size bytes --------------------------------------------- */

static void rtc_cmos_set(Rtc *s, unsigned idx, uint64_t value, unsigned bytes, uint64_t max)
{
    value = MIN(value, max);
    for (unsigned i = 0; i < bytes; i++) {
        s->cmos[idx + i] = (uint8_t)(value >> (8 * i));
    }
}

/* Memory size bytes for the pc layout. See rtc.h. */
void rtc_set_ram_size(Rtc *s, uint64_t ram_size)
{
    uint64_t below = MIN(ram_size, RTC_PC_LOWMEM_LIMIT);
    uint64_t above = ram_size - below;
    uint64_t ext_kib = below > (1 << 20) ? (below - (1 << 20)) >> 10 : 0;
    uint64_t above_16m = below > (16 << 20) ? (below - (16 << 20)) >> 16 : 0;

    rtc_cmos_set(s, CMOS_BASE_MEM_KIB, CMOS_BASE_MEM, 2, 0xffff);
    rtc_cmos_set(s, CMOS_EXT_MEM_KIB, ext_kib, 2, 0xffff);
    rtc_cmos_set(s, CMOS_EXT_MEM_KIB2, ext_kib, 2, 0xffff);
    rtc_cmos_set(s, CMOS_MEM_ABOVE_16M, above_16m, 2, 0xffff);
    rtc_cmos_set(s, CMOS_MEM_ABOVE_4G, above >> 16, 3, 0xffffff);
}

/* ---- Life cycle of the core --------------------------------------------- */

/* Create a core. See rtc.h. */
Rtc *rtc_new(rtc_clock_fn clock, void *clock_opaque, IrqLine irq, int64_t utc_offset_sec)
{
    Rtc *s = g_new0(Rtc, 1);

    s->clock = clock;
    s->clock_opaque = clock_opaque;
    s->irq = irq;
    s->cmos[RTC_REG_A] = RTC_REG_A_INIT;
    s->cmos[RTC_REG_B] = RTC_REG_B_INIT;
    s->off_sec = utc_offset_sec;
    s->last = rtc_now(s);
    rtc_latch_time(s, s->last);
    return s;
}

/* The RESET pin. See rtc.h. */
void rtc_reset(Rtc *s)
{
    rtc_account(s, rtc_now(s));
    s->cmos[RTC_REG_B] &= ~RTC_REG_B_RESET_CLEARS;
    s->cmos[RTC_REG_C] = 0;
    rtc_update_irq(s);
}

/* Free a core. See rtc.h. */
void rtc_free(Rtc *s)
{
    if (s == NULL) {
        return;
    }
    if (s->irq_level) {
        irq_set(&s->irq, 0);
    }
    g_free(s);
}

/* ---- The "mc146818rtc" device ------------------------------------------- */

typedef struct RtcDevice {
    Device parent; /* first: the framework allocates instance_size and casts */
    Rtc *core;
    MemoryRegion region;
    Timer *timer;
    int64_t armed; /* host-clock deadline the timer is armed for, or RTC_NO_DEADLINE */
} RtcDevice;

static int64_t rtc_dev_clock(void *opaque)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * RTC_NS_PER_SEC + ts.tv_nsec;
}

/*
 * Arm the timer for the core's next deadline, on the virtual clock so that
 * it stands while the VM is stopped (the flags catch up on the next access).
 * The deadline is in host wall-clock time; both clocks advance at the same
 * rate, so the distance carries over. It is cached so that the many accesses
 * that change nothing do not touch the timer. Caller holds the device's lock.
 */
static void rtc_dev_rearm(RtcDevice *d)
{
    int64_t deadline = rtc_next_deadline(d->core);
    int64_t delay;

    if (deadline == d->armed) {
        return;
    }
    d->armed = deadline;
    if (deadline == RTC_NO_DEADLINE) {
        timer_del(d->timer);
        return;
    }
    delay = MAX(deadline - rtc_dev_clock(NULL), 0);
    timer_mod(d->timer, clock_get_ns(CLOCK_TYPE_VIRTUAL) + delay);
}

static uint64_t rtc_dev_read(void *opaque, uint64_t offset, unsigned size)
{
    RtcDevice *d = opaque;
    uint8_t val = rtc_read(d->core, (unsigned)offset);

    rtc_dev_rearm(d);
    return val;
}

static void rtc_dev_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    RtcDevice *d = opaque;

    rtc_write(d->core, (unsigned)offset, (uint8_t)value);
    rtc_dev_rearm(d);
}

static const MemoryRegionOps rtc_dev_ops = {
    .read = rtc_dev_read,
    .write = rtc_dev_write,
    .min_access_size = 1,
    .max_access_size = 1,
};

/*
 * The timer runs on the main loop with the BQL held. With lock=device vCPUs
 * reach the core under the device mutex only, so take it too (BQL first, the
 * order address_space_rw() implies); under the BQL policy it is uncontended.
 */
static void rtc_dev_timer(void *opaque)
{
    RtcDevice *d = opaque;

    klock_lock(&d->parent.lock);
    d->armed = RTC_NO_DEADLINE; /* it fired, so it is no longer armed */
    rtc_update(d->core);
    rtc_dev_rearm(d);
    klock_unlock(&d->parent.lock);
}

/* The host's offset from UTC now, for base=localtime. Daylight-saving changes
 * while the VM runs are not followed, as on a PC whose DSE bit is off. */
static int64_t rtc_dev_local_offset(void)
{
    time_t now = time(NULL);
    struct tm tm;

    if (localtime_r(&now, &tm) == NULL) {
        return 0;
    }
    return tm.tm_gmtoff;
}

static bool rtc_dev_props(Device *dev, uint64_t *iobase, uint64_t *irq, int64_t *offset,
                          GError **errp)
{
    const char *base = device_prop_str(dev, "base", "utc");

    if (!device_prop_u64(dev, "iobase", 0x70, iobase, errp) ||
        !device_prop_u64(dev, "irq", 8, irq, errp)) {
        return false;
    }
    if (*iobase > 0x10000 - RTC_IO_SIZE) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "mc146818rtc: iobase=0x%" G_GINT64_MODIFIER "x is outside the I/O space",
                    *iobase);
        return false;
    }
    if (*irq > 15) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "mc146818rtc: irq=%" G_GUINT64_FORMAT " is not an ISA IRQ (0-15)", *irq);
        return false;
    }
    if (strcmp(base, "utc") == 0) {
        *offset = 0;
    } else if (strcmp(base, "localtime") == 0) {
        *offset = rtc_dev_local_offset();
    } else {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "mc146818rtc: base must be utc or localtime, got '%s'", base);
        return false;
    }
    return true;
}

/* Realize: core, memory size bytes, timer, the two ports. Main thread, BQL held. */
static bool rtc_dev_realize(Device *dev, Machine *m, GError **errp)
{
    RtcDevice *d = (RtcDevice *)dev;
    EventLoop *loop = machine_main_loop(m);
    uint64_t iobase, irq;
    int64_t offset;

    if (!rtc_dev_props(dev, &iobase, &irq, &offset, errp)) {
        return false;
    }
    if (dev->policy == LOCK_POLICY_NONE) {
        /* The core keeps no lock of its own (see rtc.h). */
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "mc146818rtc: lock=none is not supported (use bql or device)");
        return false;
    }
    if (loop == NULL) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "mc146818rtc: the machine has no main loop for its timer");
        return false;
    }
    d->core = rtc_new(rtc_dev_clock, NULL, machine_isa_irq(m, (int)irq), offset);
    rtc_set_ram_size(d->core, machine_guest_mem(m)->ram_size);
    d->timer = timer_new(loop, CLOCK_TYPE_VIRTUAL, "rtc", rtc_dev_timer, d);
    d->armed = RTC_NO_DEADLINE;
    if (!device_map_region(dev, machine_pio(m), &d->region, "cmos", RTC_IO_SIZE, &rtc_dev_ops, d,
                           iobase, errp)) {
        goto free_core;
    }
    return true;

free_core:
    timer_free(d->timer);
    d->timer = NULL;
    rtc_free(d->core);
    d->core = NULL;
    return false;
}

static void rtc_dev_reset(Device *dev)
{
    RtcDevice *d = (RtcDevice *)dev;

    if (d->core != NULL) {
        klock_lock(&dev->lock);
        rtc_reset(d->core);
        rtc_dev_rearm(d);
        klock_unlock(&dev->lock);
    }
}

/* The framework has unmapped the region, so no vCPU can reach the core; this
 * runs on the main thread, so the timer callback cannot be running. */
static void rtc_dev_unrealize(Device *dev)
{
    RtcDevice *d = (RtcDevice *)dev;

    timer_free(d->timer);
    d->timer = NULL;
    rtc_free(d->core);
    d->core = NULL;
}

static const char *const rtc_dev_props_list[] = {"iobase", "irq", "base", "lock", NULL};

const DeviceClass mc146818rtc_device_class = {
    .name = "mc146818rtc",
    .desc = "MC146818 CMOS real-time clock with 128 bytes of CMOS",
    .props_help = "iobase=0x70,irq=8,base=utc|localtime,lock=bql|device",
    .props = rtc_dev_props_list,
    .instance_size = sizeof(RtcDevice),
    .user_creatable = false,
    .realize = rtc_dev_realize,
    .reset = rtc_dev_reset,
    .unrealize = rtc_dev_unrealize,
};
