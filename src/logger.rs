//! Logging to stderr and, when configured, to a log file. Never to stdout: stdout carries the
//! CNI protocol only. Every message has its control characters escaped here, whatever it holds
//! (config keys, `CNI_ARGS` values, paths), so no value can start a line of its own.

use crate::config::LogSettings;
use crate::error::Error;
use crate::log_file::{self, OpenError};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

struct Logger {
    /// The binary's name, which every line carries with the pid: `cuttlefish-cni-agent[42]:`.
    binary: &'static str,
    file: Mutex<Option<File>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the logger at `info` on stderr, naming `binary` (`env!("CARGO_BIN_NAME")`) in
/// every line; `configure` applies the network configuration's settings once it is parsed.
pub fn init(binary: &'static str) {
    let logger = LOGGER.get_or_init(|| Logger {
        binary,
        file: Mutex::new(None),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

pub fn set_level(level: log::LevelFilter) {
    log::set_max_level(level);
}

/// Applies `logLevel` and opens `logFile` (append; see `log_file`). A log file that breaks the
/// rules of `log_file` is a configuration error (code 7). One the file system refuses (a full
/// or read-only disk) is reported on stderr and does not fail the invocation.
pub fn configure(settings: &LogSettings) -> Result<(), Error> {
    set_level(settings.level);
    let (Some(path), Some(logger)) = (&settings.file, LOGGER.get()) else {
        return Ok(());
    };
    match log_file::open(path, Path::new(log_file::CREATABLE_UNDER)) {
        Ok(file) => *logger.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(file),
        Err(OpenError::Refused(reason)) => return Err(Error::invalid("logFile", path.display(), reason)),
        Err(OpenError::Io(e)) => log::warn!("cannot open log file {}: {e}", path.display()),
    }
    Ok(())
}

/// `text` with backslashes doubled and control characters (and the Unicode line and paragraph
/// separators) written as escapes, so it stays on one line and reads back unambiguously.
pub fn escape(text: &str) -> Cow<'_, str> {
    let needs_escape = |c: char| c == '\\' || c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.contains(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}[{}]: {}\n",
            utc_timestamp(SystemTime::now()),
            record.level(),
            self.binary,
            std::process::id(),
            escape(&record.args().to_string())
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        if let Some(file) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            // One write per line with O_APPEND: lines of concurrent invocations do not interleave.
            let _ = file.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// RFC 3339 UTC with milliseconds, without a date crate (days-to-civil, Howard Hinnant).
fn utc_timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn control_characters_and_backslashes_are_escaped() {
        assert!(matches!(escape("pod=ns/name ok"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape("back\\slash \\n"), "back\\\\slash \\\\n");
        assert_eq!(
            escape("\u{1b}[31m\u{0}\u{7f}\u{85}"),
            "\\u{1b}[31m\\u{0}\\u{7f}\\u{85}"
        );
        assert_eq!(escape("x\u{2028}y\u{2029}"), "x\\u{2028}y\\u{2029}");
        assert_eq!(escape("ünïcödé stays"), "ünïcödé stays");
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(utc_timestamp(t), "2026-11-18T11:06:40.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
