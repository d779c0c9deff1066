//! Persistent TAP creation through `/dev/net/tun`. The kernel refuses to create tun/tap links
//! over rtnetlink (`tun_validate`: "tun/tap creation via rtnetlink is not supported"), so we do
//! what `ip tuntap add` does: TUNSETIFF, TUNSETOWNER/TUNSETGROUP, TUNSETPERSIST, close.
//!
//! `/dev/net/tun` binds the device to the netns current at `open()`, so call this on the netns
//! worker thread.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

const TUNSETIFF: nix::libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: nix::libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: nix::libc::c_ulong = 0x4004_54cc;
const TUNSETGROUP: nix::libc::c_ulong = 0x4004_54ce;
const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;
const IFF_VNET_HDR: i16 = 0x4000;
/// Fail with EBUSY instead of attaching when a tun device of that name already exists: we never
/// adopt somebody else's TAP.
const IFF_TUN_EXCL: i16 = -0x8000;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags, padded to 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    _pad: [u8; 22],
}

/// Creates a persistent, single-queue TAP with `IFF_NO_PI|IFF_VNET_HDR`, the flags crosvm
/// attaches with (cuttlefish-net.md §3.1). A queue-count mismatch would make crosvm's TUNSETIFF
/// fail with EINVAL, so never add IFF_MULTI_QUEUE here.
///
/// With owner and group unset, any process that can open `/dev/net/tun` in the pod may attach;
/// with either set, the kernel requires the attaching process to match it (`tun_not_capable`).
pub fn create_persistent(name: &str, owner: Option<u32>, group: Option<u32>) -> io::Result<()> {
    let mut request = IfReq {
        name: [0; 16],
        flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL,
        _pad: [0; 22],
    };
    if name.len() > 15 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name longer than 15 bytes",
        ));
    }
    request.name[..name.len()].copy_from_slice(name.as_bytes());
    let tun = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    let fd = tun.as_raw_fd();
    // SAFETY: `fd` is an open /dev/net/tun descriptor and `request` is a properly sized,
    // initialised ifreq that lives across the call; the return value is checked.
    check(unsafe { nix::libc::ioctl(fd, TUNSETIFF as _, &mut request as *mut IfReq) })?;
    if let Some(uid) = owner {
        // SAFETY: TUNSETOWNER takes the uid by value on a descriptor attached by TUNSETIFF.
        check(unsafe { nix::libc::ioctl(fd, TUNSETOWNER as _, uid as nix::libc::c_ulong) })?;
    }
    if let Some(gid) = group {
        // SAFETY: TUNSETGROUP takes the gid by value on a descriptor attached by TUNSETIFF.
        check(unsafe { nix::libc::ioctl(fd, TUNSETGROUP as _, gid as nix::libc::c_ulong) })?;
    }
    // SAFETY: TUNSETPERSIST takes a flag by value on a descriptor attached by TUNSETIFF.
    // Until it succeeds, closing `tun` (also on the error paths above) removes the device.
    check(unsafe { nix::libc::ioctl(fd, TUNSETPERSIST as _, 1 as nix::libc::c_ulong) })?;
    Ok(())
}

fn check(ret: nix::libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
