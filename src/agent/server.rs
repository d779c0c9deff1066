//! The DHCP server of one pod bridge. It runs on its own thread, which enters the pod netns
//! once: its socket is then bound to that namespace and, with SO_BINDTODEVICE, to that bridge,
//! so it never hears or answers anything outside the pod's bridge. The thread holds the pod
//! netns while it runs, so it runs exactly as long as its `Running` handle lives.
//!
//! Every datagram comes from a guest, so from someone hostile. A token bucket caps how many the
//! server handles, `Responder::answer` reads them with checked slicing only (`client_message`;
//! the fuzz target `dhcp` runs it on arbitrary input), and a panic there all the same is caught
//! per datagram and counted.

use super::client_message::{self, ClientMessage};
use super::pool::{Pool, LEASE_TIME};
use super::protocol::BridgeSpec;
use super::rate_limit::TokenBucket;
use crate::netns::Netns;
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use dhcproto::{Encodable, Encoder};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
/// How often the server looks at its stop flag.
const POLL: Duration = Duration::from_millis(500);
/// Datagrams a server handles in a burst: every guest of a pod with 128 instances booting at
/// once (DISCOVER and REQUEST each), twice over.
const BURST: u32 = 512;
/// Datagrams a server handles per second once the burst is spent; the rest are dropped unread.
const PER_SECOND: u32 = 100;

/// Counters shared by every server of the agent.
#[derive(Default)]
pub struct Counters {
    pub leases_given: AtomicU64,
    pub errors: AtomicU64,
    pub rate_limited: AtomicU64,
}

/// A running server. Dropping it stops the server and waits for its thread to end, so no
/// server can outlive the registration that holds it.
pub struct Running {
    stop: Arc<AtomicBool>,
    /// The server's socket, to wake its blocked receive on stop.
    socket: UdpSocket,
    thread: Option<std::thread::JoinHandle<Result<(), crate::error::Error>>>,
    pub leases_active: Arc<AtomicUsize>,
    /// Datagrams dropped by the rate limit.
    pub rate_limited: Arc<AtomicU64>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // shutdown() on a UDP socket, even an unconnected one (ENOTCONN is returned, and
        // ignored), marks it shut for reading and wakes the thread blocked in recv at once:
        // stopping takes no receive timeout, and DEL no extra time.
        let _ = socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.socket),
            socket::Shutdown::Both,
        );
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No thread in the netns: it could not be started, or could not enter the namespace.
    #[error("{0}")]
    Netns(#[source] crate::error::Error),
    #[error("{0}")]
    Socket(#[source] std::io::Error),
    #[error("the DHCP server thread died")]
    ThreadDied,
}

/// Starts serving `bridge` in `netns`. Fails if the thread cannot enter the netns or the socket
/// cannot be set up.
pub fn start(
    netns: &Netns,
    bridge: &BridgeSpec,
    dns: &[Ipv4Addr],
    counters: Arc<Counters>,
) -> Result<Running, StartError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let leases_active = Arc::new(AtomicUsize::new(0));
    let rate_limited = Arc::new(AtomicU64::new(0));
    let mut server = Server {
        responder: Responder::new(bridge.clone(), dns.to_vec()),
        limit: TokenBucket::new(BURST, PER_SECOND, Instant::now()),
        counters,
        leases_active: leases_active.clone(),
        rate_limited: rate_limited.clone(),
    };
    let thread_stop = stop.clone();
    let thread = netns
        .spawn(move || match bind(&server.responder.bridge.name) {
            Ok(socket) => {
                let _ = ready_tx.send(socket.try_clone());
                server.serve(&socket, &thread_stop);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(StartError::Netns)?;
    match ready_rx.recv() {
        Ok(Ok(socket)) => Ok(Running {
            stop,
            socket,
            thread: Some(thread),
            leases_active,
            rate_limited,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(StartError::Socket(e))
        }
        // The thread ended before it got to bind: it could not enter the netns.
        Err(_) => Err(match thread.join() {
            Ok(Err(e)) => StartError::Netns(e),
            _ => StartError::ThreadDied,
        }),
    }
}

/// UDP port 67 on one device: SO_BINDTODEVICE so that each bridge has its own socket and
/// nothing else reaches it; SO_REUSEADDR because the pod's two bridges both bind 0.0.0.0:67.
fn bind(device: &str) -> std::io::Result<UdpSocket> {
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::setsockopt(&fd, sockopt::Broadcast, &true)?;
    socket::setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(device))?;
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, SERVER_PORT)),
    )?;
    let socket = UdpSocket::from(fd);
    socket.set_read_timeout(Some(POLL))?;
    Ok(socket)
}

struct Server {
    responder: Responder,
    limit: TokenBucket,
    counters: Arc<Counters>,
    leases_active: Arc<AtomicUsize>,
    rate_limited: Arc<AtomicU64>,
}

impl Server {
    fn serve(&mut self, socket: &UdpSocket, stop: &AtomicBool) {
        let mut buf = [0u8; 1500];
        while !stop.load(Ordering::Relaxed) {
            // recv, not recv_from: replies go to the broadcast address or the client's own, and
            // after stop()'s shutdown the kernel returns no source address at all.
            let n = match socket.recv(&mut buf) {
                Ok(_) if stop.load(Ordering::Relaxed) => break,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    log::warn!("DHCP on {}: {e}", self.responder.bridge.name);
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let now = Instant::now();
            if !self.limit.take(now) {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let datagram = &buf[..n];
            if let Some((reply, to)) =
                self.isolated(|responder, counters| responder.answer(datagram, now, counters))
            {
                if let Err(e) = socket.send_to(&reply, to) {
                    log::warn!("DHCP on {}: sending to {to}: {e}", self.responder.bridge.name);
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            // After every datagram: a RELEASE frees a lease and gets no reply.
            self.leases_active
                .store(self.responder.leases_active(now), Ordering::Relaxed);
        }
    }

    /// Runs `handle` on the responder. A panic in it (the release profile unwinds for this) is
    /// counted as an error and costs this one datagram, not the agent; the pool starts over
    /// empty, as after an agent restart, because the panic may have left it half-updated.
    fn isolated<T>(&mut self, handle: impl FnOnce(&mut Responder, &Counters) -> Option<T>) -> Option<T> {
        let (responder, counters) = (&mut self.responder, &*self.counters);
        match catch_unwind(AssertUnwindSafe(|| handle(responder, counters))) {
            Ok(answer) => answer,
            Err(_) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                log::error!(
                    "DHCP on {}: handling a datagram panicked; the pool starts over empty",
                    self.responder.bridge.name
                );
                self.responder.pool = Pool::for_gateway(self.responder.bridge.gateway);
                None
            }
        }
    }
}

/// What one bridge's server answers, from its bridge, its DNS servers and its pool alone: the
/// socket loop calls `answer` for each datagram, and so does the fuzz target.
pub struct Responder {
    bridge: BridgeSpec,
    dns: Vec<Ipv4Addr>,
    pool: Pool,
}

impl Responder {
    pub fn new(bridge: BridgeSpec, dns: Vec<Ipv4Addr>) -> Responder {
        let pool = Pool::for_gateway(bridge.gateway);
        Responder { bridge, dns, pool }
    }

    pub fn leases_active(&self, now: Instant) -> usize {
        self.pool.active(now)
    }

    /// The reply to one datagram and where to send it, or None (not for us, malformed, or no
    /// address left to offer).
    pub fn answer(
        &mut self,
        datagram: &[u8],
        now: Instant,
        counters: &Counters,
    ) -> Option<(Vec<u8>, SocketAddrV4)> {
        let Some(request) = client_message::parse(datagram) else {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "DHCP on {}: unusable datagram of {} bytes",
                self.bridge.name,
                datagram.len()
            );
            return None;
        };
        let mac = request.mac;
        if request.server_id.is_some_and(|id| id != self.bridge.gateway) {
            // The client chose another server's offer.
            self.pool
                .release(mac, request.requested.unwrap_or(Ipv4Addr::UNSPECIFIED));
            return None;
        }
        match request.kind? {
            MessageType::Discover => {
                let address = self.pool.offer(mac, request.requested, now)?;
                self.reply(&request, MessageType::Offer, address, counters)
            }
            MessageType::Request => {
                let address = request.requested.unwrap_or(request.ciaddr);
                if self.pool.request(mac, address, now) {
                    counters.leases_given.fetch_add(1, Ordering::Relaxed);
                    self.reply(&request, MessageType::Ack, address, counters)
                } else {
                    self.reply(&request, MessageType::Nak, Ipv4Addr::UNSPECIFIED, counters)
                }
            }
            MessageType::Release | MessageType::Decline => {
                self.pool
                    .release(mac, request.requested.unwrap_or(request.ciaddr));
                None
            }
            MessageType::Inform => self.reply(&request, MessageType::Ack, Ipv4Addr::UNSPECIFIED, counters),
            _ => None,
        }
    }

    fn reply(
        &self,
        request: &ClientMessage,
        kind: MessageType,
        yiaddr: Ipv4Addr,
        counters: &Counters,
    ) -> Option<(Vec<u8>, SocketAddrV4)> {
        let mut reply = Message::new_with_id(
            request.xid,
            Ipv4Addr::UNSPECIFIED,
            yiaddr,
            Ipv4Addr::UNSPECIFIED,
            request.giaddr,
            &request.mac,
        );
        reply
            .set_opcode(Opcode::BootReply)
            .set_flags(request.flags.into());
        let opts = reply.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        opts.insert(DhcpOption::ServerIdentifier(self.bridge.gateway));
        if kind != MessageType::Nak {
            let is_inform = yiaddr.is_unspecified();
            if !is_inform {
                opts.insert(DhcpOption::AddressLeaseTime(LEASE_TIME.as_secs() as u32));
            }
            opts.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
            opts.insert(DhcpOption::Router(vec![self.bridge.gateway]));
            if !self.dns.is_empty() {
                opts.insert(DhcpOption::DomainNameServer(self.dns.clone()));
            }
        }
        let mut bytes = Vec::new();
        if let Err(e) = reply.encode(&mut Encoder::new(&mut bytes)) {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            log::warn!("DHCP on {}: encoding a {kind:?}: {e}", self.bridge.name);
            return None;
        }
        // A client with an address (renewing, INFORM) gets a unicast; one without gets a
        // broadcast on the bridge, which reaches it whatever its link state.
        let to = match request.ciaddr {
            ciaddr if !ciaddr.is_unspecified() && kind != MessageType::Nak => ciaddr,
            _ => Ipv4Addr::BROADCAST,
        };
        Some((bytes, SocketAddrV4::new(to, CLIENT_PORT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::OptionCode;
    use dhcproto::{Decodable, Decoder};

    fn server() -> Server {
        let bridge = BridgeSpec {
            name: "cvd-ebr".into(),
            gateway: Ipv4Addr::new(192, 168, 98, 1),
        };
        Server {
            responder: Responder::new(bridge, vec![Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)]),
            limit: TokenBucket::new(BURST, PER_SECOND, Instant::now()),
            counters: Arc::new(Counters::default()),
            leases_active: Arc::new(AtomicUsize::new(0)),
            rate_limited: Arc::new(AtomicU64::new(0)),
        }
    }

    impl Server {
        fn answer(&mut self, datagram: &[u8], now: Instant) -> Option<(Vec<u8>, SocketAddrV4)> {
            self.isolated(|responder, counters| responder.answer(datagram, now, counters))
        }
    }

    fn client_message(kind: MessageType, mac: u8, opts: Vec<DhcpOption>) -> Vec<u8> {
        let unspec = Ipv4Addr::UNSPECIFIED;
        let mut m = Message::new_with_id(7, unspec, unspec, unspec, unspec, &[2, 0, 0, 0, 0, mac]);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        for o in opts {
            m.opts_mut().insert(o);
        }
        let mut bytes = Vec::new();
        m.encode(&mut Encoder::new(&mut bytes)).unwrap();
        bytes
    }

    fn decode(bytes: &[u8]) -> Message {
        Message::decode(&mut Decoder::new(bytes)).unwrap()
    }

    #[test]
    fn discover_request_gives_a_lease_with_cuttlefish_options() {
        let mut s = server();
        let now = Instant::now();
        let (offer, to) = s
            .answer(&client_message(MessageType::Discover, 1, vec![]), now)
            .unwrap();
        let offer = decode(&offer);
        assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(offer.yiaddr(), Ipv4Addr::new(192, 168, 98, 2));
        assert_eq!(to, SocketAddrV4::new(Ipv4Addr::BROADCAST, 68));
        let request = client_message(
            MessageType::Request,
            1,
            vec![
                DhcpOption::RequestedIpAddress(offer.yiaddr()),
                DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 168, 98, 1)),
            ],
        );
        let ack = decode(&s.answer(&request, now).unwrap().0);
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(
            ack.opts().get(OptionCode::AddressLeaseTime),
            Some(&DhcpOption::AddressLeaseTime(3600))
        );
        assert_eq!(
            ack.opts().get(OptionCode::Router),
            Some(&DhcpOption::Router(vec![Ipv4Addr::new(192, 168, 98, 1)]))
        );
        assert_eq!(
            ack.opts().get(OptionCode::DomainNameServer),
            Some(&DhcpOption::DomainNameServer(vec![
                Ipv4Addr::new(8, 8, 8, 8),
                Ipv4Addr::new(8, 8, 4, 4)
            ]))
        );
        assert_eq!(s.counters.leases_given.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn another_clients_address_is_refused_and_garbage_is_counted() {
        let mut s = server();
        let now = Instant::now();
        let taken = Ipv4Addr::new(192, 168, 98, 2);
        assert!(s.responder.pool.request([2, 0, 0, 0, 0, 1], taken, now));
        let nak = s.answer(
            &client_message(
                MessageType::Request,
                2,
                vec![DhcpOption::RequestedIpAddress(taken)],
            ),
            now,
        );
        assert_eq!(decode(&nak.unwrap().0).opts().msg_type(), Some(MessageType::Nak));
        assert!(s.answer(&[1, 2, 3], now).is_none());
        assert_eq!(s.counters.errors.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_hardware_address_length_other_than_6_is_ignored() {
        let mut s = server();
        let now = Instant::now();
        for hlen in [0, 5, 7, 16, 17, 255] {
            let mut discover = client_message(MessageType::Discover, 1, vec![]);
            discover[2] = hlen;
            assert!(s.answer(&discover, now).is_none(), "hlen {hlen}");
        }
        assert_eq!(s.responder.pool.active(now), 0);
    }

    #[test]
    fn options_with_impossible_lengths_are_skipped_or_refused_not_a_panic() {
        let mut s = server();
        let now = Instant::now();
        let header = &client_message(MessageType::Discover, 1, vec![])[..240];
        // Client FQDN (81) shorter than its 3 fixed bytes, Rapid Commit (80) with a value, a
        // bulk leasequery time (154) that is not 4 bytes: dhcproto's decoder panics on each in
        // a debug build. None is an option the server reads, so it skips them.
        for option in [&[81u8, 0][..], &[80, 1, 0], &[154, 1, 0]] {
            let datagram = [header, option, &[53, 1, 1, 255]].concat();
            let offer = s.responder.answer(&datagram, now, &s.counters);
            assert!(offer.is_some(), "{option:?}");
        }
        let two_byte_type = [header, &[53, 2, 1, 1, 255]].concat();
        assert!(s.responder.answer(&two_byte_type, now, &s.counters).is_none());
        assert_eq!(s.counters.errors.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_panic_costs_one_datagram_and_is_counted() {
        let mut s = server();
        let now = Instant::now();
        s.answer(&client_message(MessageType::Discover, 1, vec![]), now)
            .unwrap();
        assert!(s.isolated(|_, _| -> Option<()> { panic!("a bug") }).is_none());
        assert_eq!(s.counters.errors.load(Ordering::Relaxed), 1);
        assert_eq!(s.responder.pool.active(now), 0, "the pool starts over");
        let offer = s.answer(&client_message(MessageType::Discover, 2, vec![]), now);
        assert_eq!(
            decode(&offer.unwrap().0).yiaddr(),
            Ipv4Addr::new(192, 168, 98, 2),
            "and serves on"
        );
    }

    #[test]
    fn a_request_for_another_server_releases_our_offer() {
        let mut s = server();
        let now = Instant::now();
        s.answer(&client_message(MessageType::Discover, 1, vec![]), now)
            .unwrap();
        let elsewhere = client_message(
            MessageType::Request,
            1,
            vec![
                DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)),
                DhcpOption::RequestedIpAddress(Ipv4Addr::new(192, 168, 98, 2)),
            ],
        );
        assert!(s.answer(&elsewhere, now).is_none());
        assert_eq!(s.responder.pool.active(now), 0);
    }
}
