//! The text log line, written as tracing-subscriber's full format writes it with colours
//! off, byte for byte, for a fraction of the CPU.
//!
//! ```text
//!  2026-12-06T10:11:03.739601Z  INFO span{a=1}: switch::pipeline::observe: transaction kind="sale" amount_fen=10000 ...
//!  └─ UTC, microseconds ───────┘└level┘└ spans, root first ┘└ target ─────────────────┘ └ message, then name=value ┘
//! ```
//!
//! A value is written as tracing writes it: a string quoted and escaped as Rust's `Debug`
//! escapes it (so a control character in a peer's text can't forge a line), the message
//! bare with terminal escape sequences neutralised, numbers as digits. What differs is how:
//! the common cases (printable ASCII strings, integers, the date of the current second)
//! are copied or written digit by digit instead of going through `core::fmt` and a colour
//! painter that paints nothing. Anything unusual takes tracing's own route.
//!
//! Used when the text log goes to a file or a pipe; a terminal gets tracing's format with
//! colours.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::Layer;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::clock::{civil_from_days, put_digits};
use crate::log_sink::LogSink;

/// The daemon's text log layer, writing to `sink`: tracing's own format with colours for a
/// terminal (`ansi`), else this module's line.
pub fn layer<S>(sink: LogSink, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let l = tracing_subscriber::fmt::layer()
        .with_writer(sink)
        .with_ansi(ansi);
    if ansi {
        l.boxed()
    } else {
        l.event_format(TextLine).fmt_fields(TextFields).boxed()
    }
}

/// The event's line: time, level, spans, target, fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextLine;

/// An event's or a span's fields: `message name=value ...`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextFields;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // A `log` record's own target, not "log".
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        write_time(&mut w, SystemTime::now())?;
        w.write_str(level(meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                w.write_str(span.metadata().name())?;
                seen = true;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    w.write_str("{")?;
                    w.write_str(fields)?;
                    w.write_str("}")?;
                }
                w.write_str(":")?;
            }
            if seen {
                w.write_str(" ")?;
            }
        }
        w.write_str(meta.target())?;
        w.write_str(": ")?;
        ctx.format_fields(w.by_ref(), event)?;
        w.write_str("\n")
    }
}

/// A level as tracing pads it, five columns right-aligned, between spaces.
fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        _ => " ERROR ",
    }
}

thread_local! {
    /// The second last written by this thread and its `YYYY-MM-DDTHH:MM:SS`: the date is
    /// worked out once a second, not once a line.
    static SECOND: Cell<(i64, [u8; 19])> = const { Cell::new((i64::MIN, [0; 19])) };
}

/// `2026-12-06T10:11:03.739601Z`: UTC to the microsecond, as tracing writes it.
fn write_time(w: &mut Writer<'_>, now: SystemTime) -> fmt::Result {
    // Seconds since 1970 rounded down, and the nanoseconds past them (tracing's split).
    let (secs, nanos) = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let back = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-back, 0),
                n => (-back - 1, 1_000_000_000 - n),
            }
        }
    };
    let micros = nanos / 1_000;
    let (cached, mut text) = SECOND.with(Cell::get);
    if cached != secs {
        let c = Civil::of(secs);
        if !(0..=9_999).contains(&c.year) {
            // Outside years 0–9999: never on a running switch; tracing's layout.
            return c.write_wide(w, micros);
        }
        text = c.text();
        SECOND.with(|s| s.set((secs, text)));
    }
    let mut out = [0u8; 27];
    out[..19].copy_from_slice(&text);
    out[19] = b'.';
    put_digits(&mut out[20..26], micros);
    out[26] = b'Z';
    // Digits and punctuation only: ASCII by construction.
    w.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
}

/// A second's civil date and time in the proleptic Gregorian calendar, UTC.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    /// Seconds into the day.
    second: u32,
}

impl Civil {
    /// The civil fields of `secs` since 1970.
    fn of(secs: i64) -> Self {
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        Self {
            year,
            month,
            day,
            second: secs.rem_euclid(86_400) as u32,
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS`, for years 0–9999.
    fn text(&self) -> [u8; 19] {
        let mut t = *b"0000-00-00T00:00:00";
        put_digits(&mut t[0..4], self.year as u32);
        put_digits(&mut t[5..7], self.month);
        put_digits(&mut t[8..10], self.day);
        put_digits(&mut t[11..13], self.second / 3_600);
        put_digits(&mut t[14..16], self.second / 60 % 60);
        put_digits(&mut t[17..19], self.second % 60);
        t
    }

    /// The whole time for any year, as tracing writes it: `+10000-…`, `-0001-…`.
    fn write_wide(&self, w: &mut Writer<'_>, micros: u32) -> fmt::Result {
        if self.year > 9_999 {
            write!(w, "+{}", self.year)?;
        } else {
            write!(w, "{:05}", self.year)?;
        }
        write!(
            w,
            "-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            self.month,
            self.day,
            self.second / 3_600,
            self.second / 60 % 60,
            self.second % 60,
            micros
        )
    }
}

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = FieldWriter {
            sanitize: writer.sanitizes_ansi_escapes(),
            w: writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

/// Writes fields one by one, a space between them.
struct FieldWriter<'w> {
    w: Writer<'w>,
    /// Whether the message's terminal escape sequences are neutralised (tracing's default).
    sanitize: bool,
    empty: bool,
    result: fmt::Result,
}

impl FieldWriter<'_> {
    /// Starts a field: `false` if it is not written (an earlier write failed, or it is a
    /// `log` record's metadata, which the line's head already shows).
    fn begin(&mut self, field: &Field) -> bool {
        if self.result.is_err() || field.name().starts_with("log.") {
            return false;
        }
        if self.empty {
            self.empty = false;
        } else if let Err(e) = self.w.write_str(" ") {
            self.result = Err(e);
            return false;
        }
        true
    }

    /// `name` and `then` (`=`, or `="` before a string), a raw identifier without its `r#`.
    fn name(&mut self, field: &Field, then: &str) -> fmt::Result {
        let name = field.name();
        self.w.write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.w.write_str(then)
    }

    fn message(&mut self, value: &dyn fmt::Debug) -> fmt::Result {
        if self.sanitize {
            write!(Neutralised(&mut self.w), "{value:?}")
        } else {
            write!(self.w, "{value:?}")
        }
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.begin(field) {
            return;
        }
        self.result = if field.name() == "message" {
            if !self.sanitize || value.bytes().all(|b| !needs_neutralising(b)) {
                self.w.write_str(value)
            } else {
                Neutralised(&mut self.w).write_str(value)
            }
        } else {
            // Debug leaves printable ASCII but `"` and `\` as it is.
            if value
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
            {
                self.name(field, "=\"")
                    .and_then(|()| self.w.write_str(value))
                    .and_then(|()| self.w.write_str("\""))
            } else {
                self.name(field, "=")
                    .and_then(|()| write!(self.w, "{value:?}"))
            }
        };
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_integer(field, false, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_integer(field, value < 0, value.unsigned_abs());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_debug(field, &value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let sanitize = self.sanitize;
        match value.source() {
            Some(source) => self.record_debug(
                field,
                &format_args!(
                    "{} {}.sources={}",
                    Shown(value, sanitize),
                    field.name(),
                    Sources(source, sanitize)
                ),
            ),
            None => self.record_debug(field, &format_args!("{}", Shown(value, sanitize))),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.begin(field) {
            return;
        }
        self.result = if field.name() == "message" {
            self.message(value)
        } else {
            self.name(field, "=")
                .and_then(|()| write!(self.w, "{value:?}"))
        };
    }
}

impl FieldWriter<'_> {
    /// An integer digit by digit, as `Debug` writes it.
    fn record_integer(&mut self, field: &Field, negative: bool, magnitude: u64) {
        if field.name() == "message" {
            // A number as the message: rare; the general route.
            return if negative {
                self.record_debug(field, &format_args!("-{magnitude}"))
            } else {
                self.record_debug(field, &magnitude)
            };
        }
        if !self.begin(field) {
            return;
        }
        self.result = self.name(field, "=").and_then(|()| {
            let mut digits = [0u8; 21];
            let mut at = digits.len();
            let mut v = magnitude;
            loop {
                at -= 1;
                digits[at] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            if negative {
                at -= 1;
                digits[at] = b'-';
            }
            // Digits and a sign only: ASCII by construction.
            self.w
                .write_str(std::str::from_utf8(&digits[at..]).map_err(|_| fmt::Error)?)
        });
    }
}

/// The bytes (as the start of a character) tracing neutralises in a message: ESC, BEL, BS,
/// FF, DEL, and the lead byte of a C1 control (U+0080–U+009F is `C2 80`–`C2 9F`).
fn needs_neutralising(b: u8) -> bool {
    matches!(b, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f | 0xc2)
}

/// Writes through to `W`, with the characters a terminal would act on written as escapes.
struct Neutralised<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Neutralised<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                _ => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

/// An error's text, neutralised when asked.
struct Shown<'a>(&'a (dyn std::error::Error + 'static), bool);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 {
            write!(Neutralised(f), "{}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An error's sources, `[first, second]`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static), bool);

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(e) = next {
            list.entry(&Shown(e, self.1));
            next = e.source();
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Lines written, shared with the test.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("journal \x1b[31mfailed")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("disk \u{85}full")
        }
    }
    impl std::error::Error for Inner {}

    /// Every kind of field and text the switch or a library might log.
    fn events() {
        let a = tracing::info_span!("link", peer = "10.0.0.1:9000", r#type = 3);
        let _a = a.enter();
        let b = tracing::info_span!("empty");
        let _b = b.enter();
        let c = tracing::info_span!("late", rrn = tracing::field::Empty);
        c.record("rrn", "612340000001");
        c.record("rrn", "again");
        let _c = c.enter();
        tracing::info!(
            kind = "sale",
            mti = "0200",
            pan = "622202******0017",
            amount_fen = 10_000u64,
            fee_fen = 50i64,
            owed = -7i64,
            min = i64::MIN,
            max = u64::MAX,
            ok = true,
            no = false,
            ratio = 0.25f64,
            r#type = "raw",
            "transaction"
        );
        tracing::warn!(
            quote = "say \"hi\"",
            back = "C:\\dir",
            tab = "a\tb\nc\r\0",
            esc = "\x1b[2J",
            han = "商户",
            mark = "e\u{301}",
            c1 = "\u{85}",
            empty = "",
            "needs \x1b[31mescaping\x07 \u{9b} here"
        );
        tracing::error!(
            error = &Outer(Inner) as &(dyn std::error::Error + 'static),
            "failed"
        );
        tracing::error!(
            error = &Inner as &(dyn std::error::Error + 'static),
            message_like = %"display \x1b",
            dbg = ?Some("x"),
        );
        tracing::debug!(n = 1u64);
        tracing::trace!(msg = "no message");
        tracing::info!("{} of {:?}", "formatted", "args");
        tracing::info!(message = "message as a field", after = 1u64);
        tracing::info!(target: "custom::target", "other target");
        tracing::info!(bytes = &b"\x01\xff"[..]);
        log_record();
    }

    fn log_record() {
        let record = log::Record::builder()
            .args(format_args!("from the log crate"))
            .level(log::Level::Warn)
            .target("tokio_postgres::connection")
            .module_path_static(Some("tokio_postgres::connection"))
            .file_static(Some("src/connection.rs"))
            .line(Some(42))
            .build();
        tracing_log::format_trace(&record).unwrap();
    }

    /// The time at the head of a line, and the rest.
    fn split(line: &str) -> (&str, &str) {
        line.split_at(27)
    }

    /// The lines tracing's full format writes for [`events`] with colours off, and ours.
    fn both(sanitize: bool) -> (String, String) {
        let theirs = Lines::default();
        let ours = Lines::default();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(theirs.clone())
                    .with_ansi(false)
                    .with_ansi_sanitization(sanitize),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(ours.clone())
                    .with_ansi(false)
                    .with_ansi_sanitization(sanitize)
                    .event_format(TextLine)
                    .fmt_fields(TextFields),
            )
            .with(tracing_subscriber::filter::LevelFilter::TRACE);
        tracing::subscriber::with_default(subscriber, events);
        (theirs.text(), ours.text())
    }

    /// Line by line, all but the time (the two were written a moment apart).
    fn assert_same_but_the_time(theirs: &str, ours: &str) {
        assert_eq!(ours.lines().count(), 11, "{ours}");
        assert_eq!(theirs.lines().count(), ours.lines().count());
        for (t, o) in theirs.lines().zip(ours.lines()) {
            let (t_time, t_rest) = split(t);
            let (o_time, o_rest) = split(o);
            assert_eq!(o_rest, t_rest);
            assert_eq!(&o_time[..10], &t_time[..10]);
            assert!(
                o_time.ends_with('Z') && o_time.as_bytes()[19] == b'.',
                "{o_time}"
            );
        }
    }

    #[test]
    fn lines_are_tracing_full_format_without_colours_byte_for_byte() {
        let (theirs, ours) = both(true);
        assert!(
            ours.contains("\\x1b[31mescaping\\x07 \\u{9b} here"),
            "{ours}"
        );
        assert_same_but_the_time(&theirs, &ours);
    }

    #[test]
    fn without_sanitising_the_message_is_written_as_given() {
        let (theirs, ours) = both(false);
        assert!(ours.contains("\x1b[31mescaping"));
        assert_same_but_the_time(&theirs, &ours);
    }

    fn time_text(t: SystemTime) -> String {
        let mut s = String::new();
        write_time(&mut Writer::new(&mut s), t).unwrap();
        s
    }

    #[test]
    fn the_time_is_utc_to_the_microsecond() {
        use std::time::Duration;
        let at = |s: u64, us: u32| UNIX_EPOCH + Duration::new(s, us * 1_000);
        let before = |d: Duration| UNIX_EPOCH - d;
        for (t, want) in [
            (at(0, 0), "1970-01-01T00:00:00.000000Z"),
            (at(1_796_551_863, 739_601), "2026-12-06T10:11:03.739601Z"),
            // The same second again (its text kept), then the next.
            (at(1_796_551_863, 5), "2026-12-06T10:11:03.000005Z"),
            (at(1_796_551_864, 999_999), "2026-12-06T10:11:04.999999Z"),
            (at(951_782_400, 0), "2000-02-29T00:00:00.000000Z"),
            (at(253_402_300_799, 1), "9999-12-31T23:59:59.000001Z"),
            (at(253_402_300_800, 0), "+10000-01-01T00:00:00.000000Z"),
            (
                before(Duration::from_secs(1)),
                "1969-12-31T23:59:59.000000Z",
            ),
            (
                before(Duration::from_micros(500_001)),
                "1969-12-31T23:59:59.499999Z",
            ),
            (
                before(Duration::from_secs(62_167_219_201)),
                "-0001-12-31T23:59:59.000000Z",
            ),
        ] {
            assert_eq!(time_text(t), want);
        }
    }

    proptest::proptest! {
        #[test]
        fn the_time_agrees_with_the_time_crate(
            secs in -377_705_116_800i64..253_402_300_800,
            nanos in 0u32..1_000_000_000,
        ) {
            let t = if secs >= 0 {
                UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos)
            } else {
                UNIX_EPOCH - std::time::Duration::new(secs.unsigned_abs(), 0)
                    + std::time::Duration::new(0, nanos)
            };
            let at = time::OffsetDateTime::from(t);
            let year = if at.year() < 0 {
                format!("{:05}", at.year())
            } else {
                format!("{:04}", at.year())
            };
            let want = format!(
                "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                u8::from(at.month()), at.day(), at.hour(), at.minute(), at.second(), at.microsecond()
            );
            proptest::prop_assert_eq!(time_text(t), want);
        }
    }
}
