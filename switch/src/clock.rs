//! Time: UTC for the journal, China Standard Time (UTC+8, no daylight saving) for the
//! terminal-facing fields 12 (hhmmss) and 13 (MMDD) and for report days.
//!
//! The switch reads the wall clock through a [`Clock`], so a simulation runs it on
//! simulated time; durations (time-outs, back-off, the circuit breaker) use
//! `tokio::time`, which a paused runtime controls.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment, in milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Where the switch reads the time of day.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Civil date and time fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month 1–12.
    pub month: u32,
    /// Day 1–31.
    pub day: u32,
    /// Hour 0–23.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// Millisecond.
    pub millis: u32,
}

impl Civil {
    /// The date, `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        let mut out = String::with_capacity(10);
        self.push_date(&mut out);
        out
    }

    /// `YYYY-MM-DD` onto `out`, digit by digit (every journalled request writes two dates:
    /// `format!` costs several times as much).
    fn push_date(&self, out: &mut String) {
        match u32::try_from(self.year) {
            Ok(year) if year <= 9_999 => push_digits(out, year, 4),
            _ => out.push_str(&format!("{:04}", self.year)),
        }
        out.push('-');
        push_digits(out, self.month, 2);
        out.push('-');
        push_digits(out, self.day, 2);
    }
}

/// The last `width` decimal digits of `v`, zero-padded (the terminal-facing fields and the
/// journal's times are written this way on every request: `format!` costs several times as
/// much).
fn push_digits(out: &mut String, v: u32, width: usize) {
    let mut buf = [0u8; 10];
    let digits = &mut buf[..width.min(10)];
    put_digits(digits, v);
    out.extend(digits.iter().map(|&b| char::from(b)));
}

/// Two digits of each of `values`, one after the other (MMDD, hhmmss).
fn two_digits(values: &[u32]) -> String {
    let mut out = String::with_capacity(2 * values.len());
    for &v in values {
        push_digits(&mut out, v, 2);
    }
    out
}

/// The last `out.len()` decimal digits of `v`, zero-padded.
pub(crate) fn put_digits(out: &mut [u8], mut v: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// The proleptic Gregorian date (year, month 1–12, day 1–31) of `days` since 1970-01-01,
/// by Howard Hinnant's `civil_from_days`: exact for every day an `i64` of seconds reaches.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

impl Timestamp {
    /// Now, by the operating system's clock (the switch asks its [`Clock`]).
    pub fn now() -> Self {
        Self(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        )
    }

    /// Civil fields at an offset from UTC in hours.
    pub fn civil(self, offset_hours: i64) -> Civil {
        let ms = self
            .0
            .saturating_add(offset_hours.saturating_mul(3_600_000));
        let secs = ms.div_euclid(1_000);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let second = secs.rem_euclid(86_400) as u32;
        Civil {
            year,
            month,
            day,
            hour: second / 3_600,
            minute: second / 60 % 60,
            second: second % 60,
            millis: ms.rem_euclid(1_000) as u32,
        }
    }

    /// ISO 8601 UTC with milliseconds: `2026-11-22T03:04:05.678Z`.
    pub fn iso_utc(self) -> String {
        let c = self.civil(0);
        let mut out = String::with_capacity(24);
        c.push_date(&mut out);
        out.push('T');
        push_digits(&mut out, c.hour, 2);
        out.push(':');
        push_digits(&mut out, c.minute, 2);
        out.push(':');
        push_digits(&mut out, c.second, 2);
        out.push('.');
        push_digits(&mut out, c.millis, 3);
        out.push('Z');
        out
    }

    /// Field 12 (hhmmss) and 13 (MMDD) in China Standard Time.
    pub fn cst_fields(self) -> (String, String) {
        let c = self.civil(8);
        (
            two_digits(&[c.hour, c.minute, c.second]),
            two_digits(&[c.month, c.day]),
        )
    }

    /// The date in China Standard Time, `YYYY-MM-DD`.
    pub fn cst_date(self) -> String {
        self.civil(8).date()
    }

    /// Days since 1970-01-01 of this moment's date in China Standard Time.
    pub fn cst_day_number(self) -> i64 {
        (self.0 + 8 * 3_600_000).div_euclid(86_400_000)
    }

    /// The YYMM of this moment in China Standard Time, for expiry checks.
    pub fn cst_yymm(self) -> u32 {
        let c = self.civil(8);
        (c.year.rem_euclid(100) as u32) * 100 + c.month
    }

    /// The MMDD of this moment's date in China Standard Time (a refund's 61.3).
    pub fn cst_mmdd(self) -> String {
        let c = self.civil(8);
        two_digits(&[c.month, c.day])
    }

    /// Field 7, the transmission time: MMDDhhmmss in UTC.
    pub fn transmission_time(self) -> String {
        let c = self.civil(0);
        two_digits(&[c.month, c.day, c.hour, c.minute, c.second])
    }

    /// Reads [`Timestamp::iso_utc`]'s form back (milliseconds optional).
    pub fn parse_iso(iso: &str) -> Option<Self> {
        let days = day_number(iso.get(..10)?)?;
        let num = |r: std::ops::Range<usize>| iso.get(r)?.parse::<i64>().ok();
        Some(Self(
            days * 86_400_000
                + num(11..13)? * 3_600_000
                + num(14..16)? * 60_000
                + num(17..19)? * 1_000
                + num(20..23).unwrap_or(0),
        ))
    }

    /// Milliseconds later.
    pub fn plus_ms(self, ms: i64) -> Self {
        Self(self.0 + ms)
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date; `None` if it is not one (the calendar
/// check is the `time` crate's: `2026-02-31` is refused).
pub fn day_number(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    let y: i32 = date[..4].parse().ok()?;
    let m: u8 = date[5..7].parse().ok()?;
    let d: u8 = date[8..].parse().ok()?;
    let month = time::Month::try_from(m).ok()?;
    let date = time::Date::from_calendar_date(y, month, d).ok()?;
    Some(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_written_digit_by_digit_are_what_format_writes() {
        // Every day from 1970 to 2100 at a moving time of day, and the edges.
        let mut ms = 0i64;
        while ms < 4_102_444_800_000 {
            let t = Timestamp(ms);
            let c = t.civil(0);
            assert_eq!(
                t.iso_utc(),
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
                )
            );
            let cst = t.civil(8);
            assert_eq!(
                t.cst_date(),
                format!("{:04}-{:02}-{:02}", cst.year, cst.month, cst.day)
            );
            ms += 86_400_000 + 3_723_457;
        }
        assert_eq!(Timestamp(0).iso_utc(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(86_399_999).iso_utc(), "1970-01-01T23:59:59.999Z");
        let far = Civil {
            year: 12_345,
            month: 1,
            day: 2,
            hour: 0,
            minute: 0,
            second: 0,
            millis: 0,
        };
        assert_eq!(far.date(), "12345-01-02");
    }

    #[test]
    fn impossible_dates_have_no_day_number() {
        assert!(day_number("2026-02-28").is_some());
        assert!(day_number("2028-02-29").is_some(), "a leap year");
        assert!(day_number("2000-02-29").is_some(), "a leap century");
        for bad in [
            "2026-02-29",
            "2100-02-29",
            "2026-02-31",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "2026-1-5",
            "26-01-05",
            "2026/01/05",
            "2026-01-05x",
        ] {
            assert!(day_number(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(Timestamp(0).iso_utc(), "1970-01-01T00:00:00.000Z");
        // 2026-11-22T03:04:05.678Z
        let t = Timestamp(1_795_316_645_678);
        assert_eq!(Timestamp::parse_iso(&t.iso_utc()), Some(t));
        assert_eq!(t.transmission_time(), "1122030405");
        assert_eq!(t.cst_mmdd(), "1122");
        assert_eq!(t.iso_utc(), "2026-11-22T03:04:05.678Z");
        assert_eq!(t.cst_fields(), ("110405".to_owned(), "1122".to_owned()));
        assert_eq!(t.cst_yymm(), 2611);
        // Leap day and the CST date roll-over at 16:00 UTC.
        let leap = Timestamp(1_709_222_400_000); // 2024-02-29T16:00:00Z
        assert_eq!(leap.iso_utc(), "2024-02-29T16:00:00.000Z");
        assert_eq!(leap.cst_fields().1, "0301");
        assert_eq!(leap.cst_date(), "2024-03-01");
        assert_eq!(day_number("2024-03-01"), Some(leap.cst_day_number()));
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2026-13-01"), None);
    }

    proptest::proptest! {
        /// Every moment from 1970 to 2199: its UTC form reads back, its CST day number is
        /// its CST date's, and the CST date is the UTC one or the next.
        #[test]
        fn moments_read_back_and_days_agree(ms in 0i64..7_258_118_400_000) {
            let t = Timestamp(ms);
            proptest::prop_assert_eq!(Timestamp::parse_iso(&t.iso_utc()), Some(t));
            proptest::prop_assert_eq!(day_number(&t.cst_date()), Some(t.cst_day_number()));
            let utc_day = day_number(&t.iso_utc()[..10]).unwrap_or(-1);
            let d = t.cst_day_number() - utc_day;
            proptest::prop_assert!(d == 0 || d == 1);
        }

        /// The calendar agrees with the `time` crate's, in UTC and China Standard Time,
        /// from year 1 to 9999 and on both sides of 1970.
        #[test]
        fn civil_fields_are_the_time_crates(
            ms in -62_135_596_800_000i64..253_402_300_799_999,
            offset in proptest::sample::select(vec![0i64, 8]),
        ) {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap()
                .to_offset(time::UtcOffset::from_whole_seconds((offset * 3_600) as i32).unwrap());
            proptest::prop_assume!((1..=9_999).contains(&at.year()));
            let expected = Civil {
                year: i64::from(at.year()),
                month: u32::from(u8::from(at.month())),
                day: u32::from(at.day()),
                hour: u32::from(at.hour()),
                minute: u32::from(at.minute()),
                second: u32::from(at.second()),
                millis: u32::from(at.millisecond()),
            };
            proptest::prop_assert_eq!(Timestamp(ms).civil(offset), expected);
        }

        /// The fields written digit by digit are what `format!` writes of the same civil
        /// time.
        #[test]
        fn terminal_fields_are_the_civil_time(ms in 0i64..7_258_118_400_000) {
            let t = Timestamp(ms);
            let (c, u) = (t.civil(8), t.civil(0));
            proptest::prop_assert_eq!(
                t.cst_fields(),
                (
                    format!("{:02}{:02}{:02}", c.hour, c.minute, c.second),
                    format!("{:02}{:02}", c.month, c.day)
                )
            );
            proptest::prop_assert_eq!(t.cst_mmdd(), format!("{:02}{:02}", c.month, c.day));
            proptest::prop_assert_eq!(
                t.transmission_time(),
                format!("{:02}{:02}{:02}{:02}{:02}", u.month, u.day, u.hour, u.minute, u.second)
            );
        }
    }
}
