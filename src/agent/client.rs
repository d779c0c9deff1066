//! The plugin's side of the agent protocol.

use super::protocol::{Request, Response};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends one request and returns the agent's response, or why it could not be had.
pub fn call(socket: &Path, request: &Request) -> Result<Response, String> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach the agent at {}: {e}", socket.display()))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    writeln!(
        stream,
        "{}",
        serde_json::to_string(request).expect("serialisable")
    )
    .map_err(|e| format!("writing to the agent at {}: {e}", socket.display()))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("reading from the agent at {}: {e}", socket.display()))?;
    serde_json::from_str(&line)
        .map_err(|e| format!("the agent at {} answered {line:?}: {e}", socket.display()))
}
