//! A netlink socket that sends requests and collects answers. A socket is bound to the netns of
//! the thread that created it, so create it on the netns worker thread.

use netlink_sys::{Socket, SocketAddr};
use std::io;
use std::time::Duration;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;

/// How often a dump interrupted by a concurrent change (`NLM_F_DUMP_INTR`) is retried before we
/// give up (the reference plugins use 5, Cilium 30).
const DUMP_ATTEMPTS: usize = 10;
/// A bound on waiting for the kernel, so a lost answer can never wedge a pod start or teardown.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);
/// Receive buffer. The kernel sizes each dump datagram after the largest buffer the socket has
/// received with (up to 32 KiB); a large buffer gets many messages per recv instead of one.
const RECV_BUFFER: usize = 64 * 1024;

/// What one queued acknowledgement costs the receive buffer, generously: the kernel charges a
/// whole socket buffer per message, well under 1 KiB for an ack that echoes only the header.
const ACK_CHARGE: usize = 1024;

/// One netlink message as received: header fields and the whole message bytes.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub bytes: Vec<u8>,
}

impl Message {
    /// The message body after the netlink header.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[NLMSG_HDRLEN..]
    }

    /// For NLMSG_ERROR: Some(errno) for a NACK, None for an ACK.
    fn error_code(&self) -> Option<i32> {
        let raw = i32::from_ne_bytes(self.payload().get(..4)?.try_into().ok()?);
        (raw != 0).then_some(-raw)
    }
}

pub struct NetlinkSocket {
    socket: Socket,
    seq: u32,
    buffer: Vec<u8>,
}

impl NetlinkSocket {
    pub fn open(protocol: isize) -> io::Result<NetlinkSocket> {
        let mut socket = Socket::new(protocol)?;
        // An ack echoes only the header of the request, not the whole request.
        socket.set_cap_ack(true)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let timeout = nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)
            .map_err(io::Error::from)?;
        Ok(NetlinkSocket {
            socket,
            seq: 0,
            buffer: Vec::with_capacity(RECV_BUFFER),
        })
    }

    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Makes room in the receive queue for `count` acknowledgements at once. An nf_tables batch
    /// gets one per message, all queued before we read the first, and the kernel drops those
    /// that do not fit and reports ENOBUFS. Never shrinks the buffer: dumps need it.
    pub fn make_room_for_acks(&self, count: usize) -> io::Result<()> {
        use nix::sys::socket::{getsockopt, setsockopt, sockopt};
        let wanted = count.saturating_mul(ACK_CHARGE);
        // The kernel reports (and charges) twice what was set.
        if getsockopt(&self.socket, sockopt::RcvBuf)? / 2 >= wanted {
            return Ok(());
        }
        match setsockopt(&self.socket, sockopt::RcvBufForce, &wanted) {
            Err(nix::errno::Errno::EPERM) => setsockopt(&self.socket, sockopt::RcvBuf, &wanted),
            result => result,
        }
        .map_err(io::Error::from)
    }

    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let sent = self.socket.send(bytes, 0)?;
        if sent != bytes.len() {
            return Err(io::Error::other(format!(
                "netlink sent {sent} of {} bytes",
                bytes.len()
            )));
        }
        Ok(())
    }

    /// Reads one datagram and splits it into messages.
    fn recv(&mut self) -> io::Result<Vec<Message>> {
        self.buffer.clear();
        // MSG_TRUNC makes recv return the datagram's real length, so truncation is detected.
        let len = self.socket.recv(&mut self.buffer, nix::libc::MSG_TRUNC)?;
        if len > self.buffer.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("netlink datagram of {len} bytes truncated"),
            ));
        }
        let mut messages = Vec::new();
        let mut rest = &self.buffer[..];
        while rest.len() >= NLMSG_HDRLEN {
            let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
            if len < NLMSG_HDRLEN || len > rest.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "truncated netlink message",
                ));
            }
            messages.push(Message {
                kind: u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes")),
                flags: u16::from_ne_bytes(rest[6..8].try_into().expect("2 bytes")),
                seq: u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes")),
                bytes: rest[..len].to_vec(),
            });
            rest = &rest[(len + 3) & !3..];
        }
        Ok(messages)
    }

    /// Waits for the answers to `seqs` (each sent with NLM_F_ACK). Returns the first error the
    /// kernel reported, or Ok once every request was acknowledged.
    pub fn wait_acks(&mut self, seqs: &[u32]) -> io::Result<()> {
        let mut pending: Vec<u32> = seqs.to_vec();
        let mut first_error = None;
        while !pending.is_empty() {
            let messages = match self.recv() {
                Ok(m) => m,
                // After a failed nf_tables batch the kernel may not answer the remaining
                // messages; the error we already have is the answer.
                Err(e) if first_error.is_some() && e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            for message in messages.iter().filter(|m| m.kind == NLMSG_ERROR) {
                pending.retain(|s| *s != message.seq);
                if let (Some(errno), None) = (message.error_code(), &first_error) {
                    first_error = Some(io::Error::from_raw_os_error(errno));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Sends one request built by `build(seq)` with NLM_F_ACK and waits for its answer.
    pub fn request(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> io::Result<()> {
        let seq = self.next_seq();
        self.send(&build(seq))?;
        self.wait_acks(&[seq])
    }

    /// Runs a dump and returns its messages; a dump the kernel marks as interrupted by a
    /// concurrent change (`NLM_F_DUMP_INTR`) is run again instead of failing.
    pub fn dump(&mut self, build: impl Fn(u32) -> Vec<u8>) -> io::Result<Vec<Message>> {
        retry_interrupted(|| self.dump_once(&build))
    }

    /// One dump: its messages, and whether any of them carried NLM_F_DUMP_INTR.
    fn dump_once(&mut self, build: &impl Fn(u32) -> Vec<u8>) -> io::Result<(Vec<Message>, bool)> {
        let seq = self.next_seq();
        self.send(&build(seq))?;
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            for message in self.recv()? {
                if message.seq != seq {
                    continue;
                }
                interrupted |= message.flags & NLM_F_DUMP_INTR != 0;
                match message.kind {
                    NLMSG_DONE => return Ok((out, interrupted)),
                    NLMSG_ERROR => match message.error_code() {
                        Some(errno) => return Err(io::Error::from_raw_os_error(errno)),
                        None => return Ok((out, interrupted)),
                    },
                    _ => out.push(message),
                }
            }
        }
    }
}

/// Runs `attempt` until it reports an uninterrupted result, at most DUMP_ATTEMPTS times.
fn retry_interrupted<T>(mut attempt: impl FnMut() -> io::Result<(T, bool)>) -> io::Result<T> {
    for _ in 0..DUMP_ATTEMPTS {
        let (value, interrupted) = attempt()?;
        if !interrupted {
            return Ok(value);
        }
        log::debug!("netlink dump interrupted by a concurrent change; retrying");
    }
    Err(io::Error::new(
        io::ErrorKind::Interrupted,
        format!("netlink dump interrupted {DUMP_ATTEMPTS} times in a row"),
    ))
}

/// Frames a netlink message: header plus `body`.
pub fn frame(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body.len();
    let mut out = Vec::with_capacity((len + 3) & !3);
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(body);
    out.resize((len + 3) & !3, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_dumps_are_retried_until_consistent() {
        let mut calls = 0;
        let value = retry_interrupted(|| {
            calls += 1;
            Ok((calls, calls < 4))
        })
        .unwrap();
        assert_eq!((value, calls), (4, 4));
    }

    #[test]
    fn a_dump_interrupted_every_time_fails_in_the_end() {
        let mut calls = 0;
        let err = retry_interrupted(|| {
            calls += 1;
            Ok(((), true))
        })
        .unwrap_err();
        assert_eq!(calls, DUMP_ATTEMPTS);
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    }

    #[test]
    fn errors_are_not_retried() {
        let mut calls = 0;
        let err = retry_interrupted::<()>(|| {
            calls += 1;
            Err(io::Error::from_raw_os_error(1))
        })
        .unwrap_err();
        assert_eq!((calls, err.raw_os_error()), (1, Some(1)));
    }

    #[test]
    fn frames_are_padded_and_carry_the_unpadded_length() {
        let f = frame(16, NLM_F_REQUEST, 7, &[1, 2, 3]);
        assert_eq!(f.len(), 20);
        assert_eq!(u32::from_ne_bytes(f[0..4].try_into().unwrap()), 19);
        assert_eq!(u32::from_ne_bytes(f[8..12].try_into().unwrap()), 7);
    }
}
