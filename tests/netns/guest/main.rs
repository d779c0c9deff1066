//! `cvd-test-guest`: the guest side of a TAP, for the integration tests only (built with the
//! `netns-tests` feature). It attaches to a TAP exactly as crosvm does and can play a tiny guest.
//!
//!   cvd-test-guest attach TUN_DEV IFNAME
//!       TUNSETIFF(IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) on IFNAME; prints "attached" or the errno.
//!   cvd-test-guest udp TUN_DEV IFNAME GUEST_IP GATEWAY_IP PEER_IP PORT
//!       attaches, resolves the gateway by ARP, sends one UDP datagram from GUEST_IP to PEER_IP
//!       through the TAP, answers the host's ARP for GUEST_IP, prints the reply's payload.
//!   cvd-test-guest send TUN_DEV IFNAME GUEST_IP GATEWAY_IP SRC DST PORT
//!       attaches, resolves the gateway by ARP as GUEST_IP, then sends three UDP datagrams from
//!       SRC to DST:PORT to the gateway's MAC, 50 ms apart, and prints "sent". SRC and DST are
//!       both IPv4 or both IPv6: a guest that spoofs its source, or routes IPv6 through the pod.
//!   cvd-test-guest reflect ADDR:PORT
//!       UDP server for one datagram: answers with the source address it saw.
//!   cvd-test-guest reflect-tcp ADDR:PORT
//!       TCP server for one connection: writes the source address it saw, closes.
//!   cvd-test-guest udp-ask ADDR:PORT / tcp-ask ADDR:PORT
//!       a client of the two above (from an ordinary socket): prints the answer.
//!   cvd-test-guest dhcp-flood COUNT
//!       broadcasts up to COUNT DHCP DISCOVERs with random MACs, one at a time, until five go
//!       unanswered; prints how many distinct addresses were offered.
//!   cvd-test-guest dhcp-burst COUNT PER_SECOND
//!       broadcasts COUNT DHCP DISCOVERs with random MACs at PER_SECOND, answers unread.
//!   cvd-test-guest dhcp-malformed
//!       broadcasts malformed BOOTREQUESTs: hlen 0, 7, 16, 17 and 255, truncated messages,
//!       overflowing options and options of impossible lengths; prints how many.
//!   cvd-test-guest garbage ADDR:PORT COUNT
//!       sends COUNT datagrams that are not DHCP.
//!   cvd-test-guest tcp-serve ADDR:PORT BYTES / tcp-exchange ADDR:PORT BYTES
//!       the client sends BYTES bytes, the server reads them and sends BYTES back. An IPv6
//!       ADDR may name its link as Cuttlefish's fastboot proxy does: `[fe80::…%cvd-ebr]:5554`.
//!   cvd-test-guest relay TUN_DEV IFNAME NETNS GUEST_IFNAME
//!       a wire between two TAPs, for a guest with a kernel network stack: attaches to IFNAME
//!       here and to GUEST_IFNAME in the network namespace NETNS, then copies frames both ways
//!       until killed. Entering NETNS needs CAP_SYS_ADMIN.
//!
//! TUN_DEV is the path of a /dev/net/tun character device (10:200), so tests can use a node
//! with the mode a stock host has without changing the host's own.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const TUNSETIFF: nix::libc::c_ulong = 0x4004_54ca;
const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;
const IFF_VNET_HDR: i16 = 0x4000;
/// sizeof(struct virtio_net_hdr), the default TUNSETVNETHDRSZ.
const VNET_HDR_LEN: usize = 10;
const GUEST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["attach", dev, ifname] => attach(dev, ifname).map(|_| "attached".to_string()),
        ["udp", dev, ifname, guest, gateway, peer, port] => (|| {
            let parse = |s: &str| s.parse::<Ipv4Addr>().map_err(|e| format!("{s}: {e}"));
            let port = port.parse::<u16>().map_err(|e| e.to_string())?;
            udp_roundtrip(
                attach(dev, ifname)?,
                parse(guest)?,
                parse(gateway)?,
                parse(peer)?,
                port,
            )
        })(),
        ["send", dev, ifname, guest, gateway, src, dst, port] => (|| {
            let parse = |s: &str| s.parse::<Ipv4Addr>().map_err(|e| format!("{s}: {e}"));
            let ip = |s: &str| s.parse::<IpAddr>().map_err(|e| format!("{s}: {e}"));
            let port = port.parse::<u16>().map_err(|e| e.to_string())?;
            let mut tap = attach(dev, ifname)?;
            let gateway_mac = resolve(&mut tap, parse(guest)?, parse(gateway)?)?;
            let frame = match (ip(src)?, ip(dst)?) {
                (IpAddr::V4(src), IpAddr::V4(dst)) => {
                    udp_frame(gateway_mac, src, dst, port, b"from the guest")
                }
                (IpAddr::V6(src), IpAddr::V6(dst)) => {
                    udp6_frame(gateway_mac, src, dst, port, b"from the guest")
                }
                _ => return Err("SRC and DST must be of one family".into()),
            };
            for _ in 0..3 {
                send(&mut tap, &frame)?;
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok("sent".to_string())
        })(),
        ["reflect", addr] => reflect(addr),
        ["dhcp-flood", count] => count.parse().map_err(|e| format!("{e}")).and_then(dhcp_flood),
        ["dhcp-burst", count, rate] => (|| {
            let count = count.parse().map_err(|e| format!("{count}: {e}"))?;
            dhcp_burst(count, rate.parse().map_err(|e| format!("{rate}: {e}"))?)
        })(),
        ["dhcp-malformed"] => dhcp_malformed(),
        ["garbage", addr, count] => count
            .parse()
            .map_err(|e| format!("{e}"))
            .and_then(|n| garbage(addr, n)),
        ["reflect-tcp", addr] => reflect_tcp(addr),
        ["udp-ask", addr] => udp_ask(addr),
        ["tcp-ask", addr] => tcp_ask(addr),
        ["tcp-serve", addr, bytes] => bytes
            .parse()
            .map_err(|e| format!("{e}"))
            .and_then(|n| tcp_serve(addr, n)),
        ["tcp-exchange", addr, bytes] => bytes
            .parse()
            .map_err(|e| format!("{e}"))
            .and_then(|n| tcp_exchange(addr, n)),
        ["relay", dev, ifname, netns, guest_ifname] => relay(dev, ifname, netns, guest_ifname),
        _ => Err("usage: see the comment at the top of tests/netns/guest/main.rs".into()),
    };
    match outcome {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    _pad: [u8; 22],
}

fn attach(dev: &str, ifname: &str) -> Result<File, String> {
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| format!("open {dev}: {e}"))?;
    let mut req = IfReq {
        name: [0; 16],
        flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
        _pad: [0; 22],
    };
    req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    // SAFETY: valid tun fd and a properly sized ifreq that outlives the call.
    let ret = unsafe { nix::libc::ioctl(tun.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if ret < 0 {
        return Err(format!("TUNSETIFF {ifname}: {}", std::io::Error::last_os_error()));
    }
    Ok(tun)
}

/// A TAP is bound to the network namespace of the thread that opens `/dev/net/tun`, so the
/// guest's end is opened by a thread that entered `netns` first. Both ends keep the virtio-net
/// header (the same size and format on both), so a frame passes as it is, header included.
/// Like a wire, a frame the other end refuses is dropped.
fn relay(dev: &str, ifname: &str, netns: &str, guest_ifname: &str) -> Result<String, String> {
    let host_end = attach(dev, ifname)?;
    let guest_end = std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(netns).map_err(|e| format!("open {netns}: {e}"))?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {netns}: {e}"))?;
            attach(dev, guest_ifname)
        })
        .join()
        .map_err(|_| "the thread opening the guest's TAP panicked".to_string())?
    })?;
    let copy = |mut from: File, mut to: File| -> Result<String, String> {
        let mut frame = vec![0u8; VNET_HDR_LEN + 65536];
        loop {
            let n = from.read(&mut frame).map_err(|e| format!("read: {e}"))?;
            let _ = to.write(&frame[..n]);
        }
    };
    let (host_in, guest_out) = (
        host_end.try_clone().map_err(|e| e.to_string())?,
        guest_end.try_clone().map_err(|e| e.to_string())?,
    );
    std::thread::spawn(move || copy(guest_out, host_in));
    copy(host_end, guest_end)
}

fn udp_roundtrip(
    mut tap: File,
    guest: Ipv4Addr,
    gateway: Ipv4Addr,
    peer: Ipv4Addr,
    port: u16,
) -> Result<String, String> {
    nix::fcntl::fcntl(&tap, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + TIMEOUT;
    let mut gateway_mac = None;
    let mut last_arp = Instant::now() - Duration::from_secs(1);
    let mut sent = false;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        match (gateway_mac, sent) {
            (None, _) if last_arp.elapsed() >= Duration::from_millis(200) => {
                send(&mut tap, &arp(1, GUEST_MAC, guest, [0; 6], gateway, [0xff; 6]))?;
                last_arp = Instant::now();
            }
            (Some(mac), false) => {
                send(
                    &mut tap,
                    &udp_frame(mac, guest, peer, port, b"hello from the guest"),
                )?;
                sent = true;
            }
            _ => {}
        }
        let Some(frame) = receive(&mut tap, &mut buf)? else {
            continue;
        };
        if frame.len() < 14 {
            continue;
        }
        let src_mac: [u8; 6] = frame[6..12].try_into().unwrap();
        match u16::from_be_bytes([frame[12], frame[13]]) {
            0x0806 if frame.len() >= 42 => {
                let op = u16::from_be_bytes([frame[20], frame[21]]);
                let sender_ip = Ipv4Addr::new(frame[28], frame[29], frame[30], frame[31]);
                let target_ip = Ipv4Addr::new(frame[38], frame[39], frame[40], frame[41]);
                if op == 2 && sender_ip == gateway {
                    gateway_mac = Some(src_mac);
                } else if op == 1 && target_ip == guest {
                    send(&mut tap, &arp(2, GUEST_MAC, guest, src_mac, sender_ip, src_mac))?;
                }
            }
            0x0800 if frame.len() >= 42 && frame[23] == 17 => {
                let ihl = usize::from(frame[14] & 0x0f) * 4;
                let udp = &frame[14 + ihl..];
                if udp.len() >= 8 && u16::from_be_bytes([udp[0], udp[1]]) == port {
                    return Ok(String::from_utf8_lossy(&udp[8..]).into_owned());
                }
            }
            _ => {}
        }
    }
    Err(format!(
        "no reply within {TIMEOUT:?} (gateway MAC {})",
        if gateway_mac.is_some() { "known" } else { "unknown" }
    ))
}

/// The gateway's MAC, asked by ARP as `guest`.
fn resolve(tap: &mut File, guest: Ipv4Addr, gateway: Ipv4Addr) -> Result<[u8; 6], String> {
    nix::fcntl::fcntl(
        &*tap,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + TIMEOUT;
    let mut last_arp = Instant::now() - Duration::from_secs(1);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if last_arp.elapsed() >= Duration::from_millis(200) {
            send(tap, &arp(1, GUEST_MAC, guest, [0; 6], gateway, [0xff; 6]))?;
            last_arp = Instant::now();
        }
        let Some(frame) = receive(tap, &mut buf)? else {
            continue;
        };
        if frame.len() >= 42 && frame[12..14] == [0x08, 0x06] {
            let op = u16::from_be_bytes([frame[20], frame[21]]);
            let sender_ip = Ipv4Addr::new(frame[28], frame[29], frame[30], frame[31]);
            if op == 2 && sender_ip == gateway {
                return Ok(frame[6..12].try_into().unwrap());
            }
        }
    }
    Err(format!("no ARP reply from {gateway} within {TIMEOUT:?}"))
}

/// The next frame on the non-blocking `tap`, without its virtio-net header; `None` (after a
/// short sleep) when none is waiting.
fn receive<'a>(tap: &mut File, buf: &'a mut [u8]) -> Result<Option<&'a [u8]>, String> {
    match tap.read(buf) {
        Ok(n) => Ok(Some(&buf[VNET_HDR_LEN.min(n)..n])),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            std::thread::sleep(Duration::from_millis(5));
            Ok(None)
        }
        Err(e) => Err(format!("read: {e}")),
    }
}

fn send(tap: &mut File, frame: &[u8]) -> Result<(), String> {
    let mut out = vec![0u8; VNET_HDR_LEN];
    out.extend_from_slice(frame);
    tap.write_all(&out).map_err(|e| format!("write: {e}"))
}

fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr, dst: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f
}

fn udp_frame(dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::with_capacity(14 + total);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum (allowed for IPv4)
    f.extend_from_slice(payload);
    f
}

fn udp6_frame(dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = (8 + payload.len()) as u16;
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    // The UDP checksum is mandatory over IPv6; it covers a pseudo-header.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&u32::from(udp_len).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    pseudo.extend_from_slice(&udp);
    let sum = match checksum(&pseudo) {
        0 => 0xffff,
        sum => sum,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::with_capacity(14 + 40 + udp.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[17, 64]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&udp);
    f
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn reflect(addr: &str) -> Result<String, String> {
    let socket = UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    socket
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let (_, from) = socket.recv_from(&mut buf).map_err(|e| format!("recv: {e}"))?;
    let answer = format!("peer saw {}", from.ip());
    socket
        .send_to(answer.as_bytes(), from)
        .map_err(|e| format!("send: {e}"))?;
    Ok(answer)
}

fn reflect_tcp(addr: &str) -> Result<String, String> {
    let (mut stream, from) = accept_one(addr)?;
    let answer = format!("peer saw {}", from.ip());
    stream
        .write_all(answer.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    Ok(answer)
}

fn udp_ask(addr: &str) -> Result<String, String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    socket
        .send_to(b"question", addr)
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = [0u8; 1500];
    let (n, _) = socket
        .recv_from(&mut buf)
        .map_err(|e| format!("no reply from {addr}: {e}"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn tcp_ask(addr: &str) -> Result<String, String> {
    let mut stream = connect(addr)?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    Ok(answer)
}

fn tcp_serve(addr: &str, bytes: usize) -> Result<String, String> {
    let (mut stream, _) = accept_one(addr)?;
    let mut got = vec![0u8; bytes];
    stream.read_exact(&mut got).map_err(|e| format!("read: {e}"))?;
    stream.write_all(&got).map_err(|e| format!("write: {e}"))?;
    Ok(format!("served {bytes} bytes"))
}

fn tcp_exchange(addr: &str, bytes: usize) -> Result<String, String> {
    let mut stream = connect(addr)?;
    let sent: Vec<u8> = (0..bytes).map(|i| i as u8).collect();
    stream.write_all(&sent).map_err(|e| format!("write: {e}"))?;
    let mut back = vec![0u8; bytes];
    stream.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
    if back != sent {
        return Err("the data came back changed".into());
    }
    Ok(format!("exchanged {bytes} bytes"))
}

fn accept_one(addr: &str) -> Result<(TcpStream, std::net::SocketAddr), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, from)) => {
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                set_timeouts(&stream)?;
                return Ok((stream, from));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    }
}

fn connect(addr: &str) -> Result<TcpStream, String> {
    let target = socket_addr(addr)?;
    let stream = TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    set_timeouts(&stream)?;
    Ok(stream)
}

/// `addr` with a link name as its IPv6 scope (`[fe80::1%cvd-ebr]:5554`) turned into the link's
/// index: the standard parser takes only a numeric scope.
fn socket_addr(addr: &str) -> Result<SocketAddr, String> {
    let resolved = match (addr.find('%'), addr.find(']')) {
        (Some(start), Some(end)) if start < end && addr[start + 1..end].parse::<u32>().is_err() => {
            let name = &addr[start + 1..end];
            let index = nix::net::if_::if_nametoindex(name).map_err(|e| format!("link {name}: {e}"))?;
            format!("{}{index}{}", &addr[..=start], &addr[end..])
        }
        _ => addr.to_string(),
    };
    resolved.parse().map_err(|e| format!("{addr}: {e}"))
}

fn set_timeouts(stream: &TcpStream) -> Result<(), String> {
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())
}

/// A UDP socket on the DHCP client port that may broadcast.
fn dhcp_client_socket() -> Result<UdpSocket, String> {
    let socket = UdpSocket::bind("0.0.0.0:68").map_err(|e| format!("bind :68: {e}"))?;
    socket.set_broadcast(true).map_err(|e| e.to_string())?;
    Ok(socket)
}

/// Random MACs and transaction ids from a seeded LCG.
struct Clients(u64);

impl Clients {
    fn new() -> Clients {
        Clients(std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// A DISCOVER from a new random MAC, and its xid.
    fn discover(&mut self) -> Result<(Vec<u8>, u32), String> {
        use dhcproto::v4::{DhcpOption, Message, MessageType};
        use dhcproto::{Encodable, Encoder};
        let seed = &mut self.0;
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mac = [
            0x02,
            (*seed >> 8) as u8,
            (*seed >> 16) as u8,
            (*seed >> 24) as u8,
            (*seed >> 32) as u8,
            (*seed >> 40) as u8,
        ];
        let xid = (*seed >> 16) as u32;
        let unspec = Ipv4Addr::UNSPECIFIED;
        let mut discover = Message::new_with_id(xid, unspec, unspec, unspec, unspec, &mac);
        discover
            .opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        let mut bytes = Vec::new();
        discover
            .encode(&mut Encoder::new(&mut bytes))
            .map_err(|e| e.to_string())?;
        Ok((bytes, xid))
    }
}

const DHCP_SERVERS: &str = "255.255.255.255:67";

fn dhcp_flood(count: u32) -> Result<String, String> {
    use dhcproto::v4::{Message, MessageType};
    use dhcproto::{Decodable, Decoder};
    let socket = dhcp_client_socket()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let mut clients = Clients::new();
    let mut offers = std::collections::HashSet::new();
    let mut misses = 0;
    let mut buf = [0u8; 1500];
    // One DISCOVER at a time, each waiting for its OFFER: a burst would only measure socket
    // buffers. Five DISCOVERs in a row that bring no new address mean the pool is full.
    for _ in 0..count {
        let (bytes, xid) = clients.discover()?;
        socket
            .send_to(&bytes, DHCP_SERVERS)
            .map_err(|e| format!("send: {e}"))?;
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut answered = false;
        while !answered && Instant::now() < deadline {
            let Ok(n) = socket.recv(&mut buf) else { continue };
            if let Ok(m) = Message::decode(&mut Decoder::new(&buf[..n])) {
                if m.xid() == xid && m.opts().msg_type() == Some(MessageType::Offer) {
                    answered = offers.insert(m.yiaddr());
                }
            }
        }
        misses = if answered { 0 } else { misses + 1 };
        if misses == 5 {
            break;
        }
    }
    Ok(format!("{} offers", offers.len()))
}

fn dhcp_burst(count: u32, per_second: u32) -> Result<String, String> {
    let socket = dhcp_client_socket()?;
    let mut clients = Clients::new();
    let started = Instant::now();
    for i in 0..count {
        let due = started + Duration::from_secs_f64(f64::from(i) / f64::from(per_second.max(1)));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let (bytes, _) = clients.discover()?;
        socket
            .send_to(&bytes, DHCP_SERVERS)
            .map_err(|e| format!("send: {e}"))?;
    }
    Ok(format!("sent {count} in {:?}", started.elapsed()))
}

/// BOOTREQUESTs a hostile guest may send: each a DISCOVER broken in one way.
fn dhcp_malformed() -> Result<String, String> {
    let socket = dhcp_client_socket()?;
    let (discover, _) = Clients::new().discover()?;
    // The fixed header is 236 bytes, then the magic cookie; options start at 240.
    const OPTIONS: usize = 240;
    let mut datagrams: Vec<Vec<u8>> = [0u8, 7, 16, 17, 255]
        .iter()
        .map(|hlen| {
            let mut d = discover.clone();
            d[2] = *hlen;
            d
        })
        .collect();
    // Truncated: inside the fixed header, inside the cookie, inside an option.
    datagrams.extend([100, OPTIONS - 2, OPTIONS + 2].map(|n| discover[..n].to_vec()));
    // Options that overflow: a parameter list longer than the datagram, an option with no END
    // that runs to the last byte, and option overload (52) claiming `file` and `sname` hold
    // options that are themselves unterminated.
    let mut header = discover[..OPTIONS].to_vec();
    header[2] = 6;
    let with_options = |options: &[u8]| [header.as_slice(), options].concat();
    datagrams.push(with_options(&[53, 1, 1, 55, 200, 1, 3, 6]));
    datagrams.push(with_options(&[53, 1, 1, 12, 255]));
    let mut overloaded = with_options(&[53, 1, 1, 52, 1, 3, 255]);
    overloaded[44..236].fill(61);
    datagrams.push(overloaded);
    // Options whose length dhcproto's decoder asserts, or subtracts from unchecked: Client FQDN
    // (81) shorter than 3 bytes, Rapid Commit (80) with a value, a bulk leasequery time (154)
    // that is not 4 bytes.
    for odd in [&[81u8, 0][..], &[80, 1, 0], &[154, 1, 0]] {
        datagrams.push(with_options(&[odd, &[53, 1, 1, 255]].concat()));
    }
    for d in &datagrams {
        socket
            .send_to(d, DHCP_SERVERS)
            .map_err(|e| format!("send: {e}"))?;
    }
    Ok(format!("sent {}", datagrams.len()))
}

fn garbage(addr: &str, count: u32) -> Result<String, String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    socket.set_broadcast(true).map_err(|e| e.to_string())?;
    for i in 0..count {
        let junk: Vec<u8> = (0..(i % 300) as u8).collect();
        socket.send_to(&junk, addr).map_err(|e| format!("send: {e}"))?;
    }
    Ok(format!("sent {count}"))
}
