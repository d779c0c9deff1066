//! The plugin's side of the agent protocol.

use super::protocol::{Request, Response};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::{BufRead, BufReader, IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends one request, with `netns` attached (SCM_RIGHTS) when given, and returns the agent's
/// response, or why it could not be had.
pub fn call(socket: &Path, request: &Request, netns: Option<BorrowedFd>) -> Result<Response, String> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach the agent at {}: {e}", socket.display()))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let line = format!("{}\n", serde_json::to_string(request).expect("serialisable"));
    send(&stream, line.as_bytes(), netns)
        .map_err(|e| format!("writing to the agent at {}: {e}", socket.display()))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("reading from the agent at {}: {e}", socket.display()))?;
    serde_json::from_str(&answer)
        .map_err(|e| format!("the agent at {} answered {answer:?}: {e}", socket.display()))
}

/// The descriptor travels with the first bytes; whatever a short send leaves follows plainly.
fn send(mut stream: &UnixStream, bytes: &[u8], fd: Option<BorrowedFd>) -> std::io::Result<()> {
    let fds: Vec<i32> = fd.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(bytes)],
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    stream.write_all(&bytes[sent..])
}
