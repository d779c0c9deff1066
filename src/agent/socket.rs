//! The agent's end of its Unix socket: who is calling (SO_PEERCRED), and one request line with
//! the descriptor passed along with it (SCM_RIGHTS).

use nix::errno::Errno;
use nix::sys::socket::{getsockopt, recvmsg, sockopt, ControlMessageOwned, MsgFlags};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// A request larger than this is refused: registrations are a few hundred bytes.
const MAX_REQUEST: usize = 64 * 1024;
/// The kernel's limit of descriptors in one SCM_RIGHTS message (`SCM_MAX_FD`). Room for all
/// of them means the control data is never truncated, so every descriptor a client sends is
/// received, and closed unless it is the one expected.
const SCM_MAX_FD: usize = 253;

/// Why a caller or its request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("SO_PEERCRED: {0}")]
    PeerCredentials(#[source] Errno),
    #[error("reading the request: {0}")]
    Read(#[source] Errno),
    #[error("reading the request's control data: {0}")]
    ControlData(#[source] Errno),
    #[error("bad request: longer than {MAX_REQUEST} bytes")]
    TooLong,
    #[error("bad request: {0} descriptors came with it, at most one is expected")]
    Descriptors(usize),
    #[error("bad request: {0}")]
    NotUtf8(#[source] std::string::FromUtf8Error),
}

/// Binds `path`, replacing the socket a previous agent left there. The file's mode comes from
/// the process umask (set by `Agent::start`), so it is never open to others, not even between
/// `bind` and a later `chmod`.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
            std::fs::remove_file(path)?
        }
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a socket",
                path.display()
            )))
        }
        Err(_) => {}
    }
    UnixListener::bind(path)
}

/// The caller's uid and pid, as the kernel recorded them when it connected.
pub fn peer(stream: &UnixStream) -> Result<(u32, i32), SocketError> {
    let credentials = getsockopt(stream, sockopt::PeerCredentials).map_err(SocketError::PeerCredentials)?;
    Ok((credentials.uid(), credentials.pid()))
}

/// One request: the bytes up to the first newline, and the descriptor that came with them.
pub fn receive(stream: &UnixStream) -> Result<(String, Option<OwnedFd>), SocketError> {
    let mut data = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut chunk = [0u8; 4096];
    while !data.contains(&b'\n') {
        if data.len() > MAX_REQUEST {
            return Err(SocketError::TooLong);
        }
        let mut control = nix::cmsg_space!([RawFd; SCM_MAX_FD]);
        let (read, received) = {
            let mut iov = [IoSliceMut::new(&mut chunk)];
            let message = recvmsg::<()>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut control),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(SocketError::Read)?;
            let received: Vec<RawFd> = message
                .cmsgs()
                .map_err(SocketError::ControlData)?
                .flat_map(|cmsg| match cmsg {
                    ControlMessageOwned::ScmRights(fds) => fds,
                    _ => Vec::new(),
                })
                .collect();
            (message.bytes, received)
        };
        // SAFETY: the kernel has just installed each of these descriptors in our table for
        // this message; nothing else refers to them, so each gets exactly one owner.
        fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        if read == 0 {
            break;
        }
        data.extend_from_slice(&chunk[..read]);
    }
    if fds.len() > 1 {
        return Err(SocketError::Descriptors(fds.len()));
    }
    let line = data.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8(line.to_vec()).map_err(SocketError::NotUtf8)?;
    Ok((line, fds.pop()))
}
