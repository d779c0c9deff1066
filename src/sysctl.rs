//! Sysctls under `/proc/sys`. Files under `/proc/sys/net` belong to the netns of the thread that
//! opens them, so call these on the netns worker thread.

use std::io;

fn path(name: &str) -> String {
    format!("/proc/sys/{name}")
}

/// The value, or None when the sysctl does not exist (IPv6 disabled on the node).
pub fn read(name: &str) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path(name)) {
        Ok(value) => Ok(Some(value.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn write(name: &str, value: &str) -> io::Result<()> {
    std::fs::write(path(name), value)
}
