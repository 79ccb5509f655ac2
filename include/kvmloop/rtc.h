/* The MC146818 CMOS real-time clock: a register core and the "mc146818rtc" device built on it. */
#ifndef KVMLOOP_RTC_H
#define KVMLOOP_RTC_H

#include <stdint.h>
#include "kvmloop/irq.h"

struct DeviceClass;

/* The two I/O ports, as offsets from the base (0x70 on a PC). Bit 7 of an
 * index write is the NMI mask of a PC. */
#define RTC_PORT_INDEX 0
#define RTC_PORT_DATA  1

/* CMOS register indexes (MC146818A datasheet, "Address map"). The century
 * byte is not the chip's but the PC's (and ACPI's FADT) convention. */
#define RTC_SECONDS       0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES       0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS         0x04
#define RTC_HOURS_ALARM   0x05
#define RTC_DAY_OF_WEEK   0x06 /* 1 = Sunday */
#define RTC_DAY_OF_MONTH  0x07
#define RTC_MONTH         0x08
#define RTC_YEAR          0x09
#define RTC_REG_A         0x0a
#define RTC_REG_B         0x0b
#define RTC_REG_C         0x0c
#define RTC_REG_D         0x0d
#define RTC_CENTURY       0x32
#define RTC_CMOS_SIZE     128

/* Register A. */
#define RTC_UIP         0x80 /* update in progress (read-only) */
#define RTC_DIV_CTL     0x70 /* DV2-0: 0x20 is the 32.768 kHz time base, 0x60/0x70 reset */
#define RTC_RATE_SELECT 0x0f /* RS3-0: periodic rate, 0 = off */
/* Register B. */
#define RTC_SET       0x80 /* updates inhibited while the time is set */
#define RTC_PIE       0x40
#define RTC_AIE       0x20
#define RTC_UIE       0x10
#define RTC_SQWE      0x08
#define RTC_DM_BINARY 0x04 /* binary rather than BCD */
#define RTC_24H       0x02
#define RTC_DST_EN    0x01
/* Register C (read-only; reading clears it). */
#define RTC_IRQF 0x80
#define RTC_PF   0x40
#define RTC_AF   0x20
#define RTC_UF   0x10
/* Register D. */
#define RTC_VRT 0x80

/* An alarm byte with both top bits set matches every value. */
#define RTC_ALARM_DONT_CARE 0xc0

/* rtc_next_deadline() when no timer is needed. */
#define RTC_NO_DEADLINE INT64_MAX

/* The host's wall clock in nanoseconds since the Unix epoch (the device uses
 * CLOCK_REALTIME; tests inject a fake). */
typedef int64_t (*rtc_clock_fn)(void *opaque);

/* The register core. It knows nothing of regions, timers or locks: every
 * function below must be called with the lock that serialises the device held
 * (the BQL by default, the device's mutex with lock=device). It reads the
 * clock on every access and keeps no thread of its own. */
typedef struct Rtc Rtc;

/* Create an RTC in its power-on state (register A 0x26, B 0x02: BCD, 24-hour,
 * no interrupts) driving @irq. Its time reads @clock plus @utc_offset_sec
 * seconds: 0 for an RTC in UTC, the host's UTC offset for one in local time.
 * Never fails. */
Rtc *rtc_new(rtc_clock_fn clock, void *clock_opaque, IrqLine irq, int64_t utc_offset_sec);
/* Lower the IRQ and free. NULL is allowed. */
void rtc_free(Rtc *s);
/* The RESET pin: clears PIE, AIE, UIE, SQWE and every flag of register C, and
 * lowers the IRQ. Time, date, alarm, CMOS RAM and the time offset survive. */
void rtc_reset(Rtc *s);

/* Guest access at @offset (RTC_PORT_INDEX or RTC_PORT_DATA), one byte wide.
 * Reading the index port gives 0xff (it is write-only). Reading register C
 * clears it and lowers the IRQ. Other offsets read 0xff and ignore writes. */
uint8_t rtc_read(Rtc *s, unsigned offset);
void rtc_write(Rtc *s, unsigned offset, uint8_t value);

/* Account for the time that passed: set the flags of the periodic, alarm and
 * update-ended events that happened and drive the IRQ. For the timer that
 * rtc_next_deadline() asks for; register accesses do it themselves. */
void rtc_update(Rtc *s);
/* When rtc_update() must next run for an enabled interrupt to be raised on
 * time, in the clock's nanoseconds (possibly already past), or
 * RTC_NO_DEADLINE when no interrupt is enabled or IRQF is already set (only a
 * read of register C can change the line then). No side effects. */
int64_t rtc_next_deadline(Rtc *s);

/* Fill the memory-size bytes of CMOS as a PC BIOS does, for @ram_size bytes
 * of RAM laid out as the pc machine does (up to 3 GiB below 4 GiB, the rest
 * from 4 GiB): 0x15-0x16 base KiB (640), 0x17-0x18 and 0x30-0x31 KiB above
 * 1 MiB (at most 0xffff), 0x34-0x35 64 KiB units above 16 MiB below 4 GiB
 * (at most 0xffff), 0x5b-0x5d 64 KiB units above 4 GiB. */
void rtc_set_ram_size(Rtc *s, uint64_t ram_size);

/* "mc146818rtc": props iobase (default 0x70), irq (8), base (utc or
 * localtime), lock (bql|device). Listed in the device registry. */
extern const struct DeviceClass mc146818rtc_device_class;

#endif
