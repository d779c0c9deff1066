//! The plugin's side of the agent protocol.

use super::protocol::{Request, Response};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::{self, BufRead, BufReader, IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call got no answer; each names the agent's socket.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach the agent at {}: {source}", socket.display())]
    Unreachable { socket: PathBuf, source: io::Error },
    #[error("{step} the agent at {}: {source}", socket.display())]
    Io {
        step: &'static str,
        socket: PathBuf,
        source: io::Error,
    },
    #[error("the agent at {} answered {answer:?}: {source}", socket.display())]
    Answer {
        socket: PathBuf,
        answer: String,
        source: serde_json::Error,
    },
}

/// Sends one request, with `netns` attached (SCM_RIGHTS) when given, and returns the agent's
/// response, or why it could not be had.
pub fn call(socket: &Path, request: &Request, netns: Option<BorrowedFd>) -> Result<Response, CallError> {
    let io = |step| {
        move |source| CallError::Io {
            step,
            socket: socket.to_path_buf(),
            source,
        }
    };
    let stream = UnixStream::connect(socket).map_err(|source| CallError::Unreachable {
        socket: socket.to_path_buf(),
        source,
    })?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(io("setting a timeout on the connection to"))?;
    let line = format!("{}\n", serde_json::to_string(request).expect("serialisable"));
    send(&stream, line.as_bytes(), netns).map_err(io("writing to"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(io("reading from"))?;
    serde_json::from_str(&answer).map_err(|source| CallError::Answer {
        socket: socket.to_path_buf(),
        answer,
        source,
    })
}

/// The descriptor travels with the first bytes; whatever a short send leaves follows plainly.
fn send(mut stream: &UnixStream, bytes: &[u8], fd: Option<BorrowedFd>) -> io::Result<()> {
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
