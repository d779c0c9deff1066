//! Logging to stderr and, when configured, to a log file. Never to stdout: stdout carries the
//! CNI protocol only.

use crate::config::LogSettings;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

struct Logger {
    file: Mutex<Option<File>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the logger at `info` on stderr; `configure` applies the network configuration's
/// settings once it is parsed.
pub fn init() {
    let logger = LOGGER.get_or_init(|| Logger {
        file: Mutex::new(None),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Applies `logLevel` and opens `logFile` (append). A log file that cannot be opened is
/// reported on stderr and does not fail the invocation.
pub fn configure(settings: &LogSettings) {
    log::set_max_level(settings.level);
    let (Some(path), Some(logger)) = (&settings.file, LOGGER.get()) else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => *logger.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(file),
        Err(e) => eprintln!("cuttlefish-cni: cannot open log file {}: {e}", path.display()),
    }
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
            "{} {:<5} cuttlefish-cni[{}]: {}\n",
            utc_timestamp(SystemTime::now()),
            record.level(),
            std::process::id(),
            record.args()
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
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(utc_timestamp(t), "2026-11-18T11:06:40.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
