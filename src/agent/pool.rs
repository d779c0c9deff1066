//! One bridge's address pool and its leases, as dnsmasq keeps them for Cuttlefish: `.2`–`.254`
//! of the bridge's /24, the gateway `.1`, one hour leases. Pure: time comes in as an argument.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub const LEASE_TIME: Duration = Duration::from_secs(3600);
/// How long an offered address stays reserved for the client it was offered to.
const OFFER_HOLD: Duration = Duration::from_secs(60);

pub type Mac = [u8; 6];

#[derive(Debug, Clone, Copy)]
struct Lease {
    address: Ipv4Addr,
    expires: Instant,
}

#[derive(Debug)]
pub struct Pool {
    first: u32,
    last: u32,
    leases: HashMap<Mac, Lease>,
}

impl Pool {
    /// The pool of a /24 whose gateway is `.1`: `.2` to `.254`.
    pub fn for_gateway(gateway: Ipv4Addr) -> Pool {
        let base = u32::from(gateway) & 0xffff_ff00;
        Pool {
            first: base + 2,
            last: base + 254,
            leases: HashMap::new(),
        }
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(address))
    }

    fn holder(&self, address: Ipv4Addr, now: Instant) -> Option<Mac> {
        self.leases
            .iter()
            .find(|(_, l)| l.address == address && l.expires > now)
            .map(|(m, _)| *m)
    }

    fn free_for(&self, mac: &Mac, address: Ipv4Addr, now: Instant) -> bool {
        self.contains(address) && self.holder(address, now).is_none_or(|h| h == *mac)
    }

    /// DISCOVER: the address to offer `mac` (its current one, the one it asks for if free, or
    /// the lowest free one), reserved for a while; None when the pool is full.
    pub fn offer(&mut self, mac: Mac, requested: Option<Ipv4Addr>, now: Instant) -> Option<Ipv4Addr> {
        let current = self
            .leases
            .get(&mac)
            .filter(|l| l.expires > now)
            .map(|l| l.address);
        let address = current
            .or(requested.filter(|r| self.free_for(&mac, *r, now)))
            .or_else(|| {
                (self.first..=self.last)
                    .map(Ipv4Addr::from)
                    .find(|a| self.free_for(&mac, *a, now))
            })?;
        let expires = self
            .leases
            .get(&mac)
            .filter(|l| l.address == address)
            .map_or(now, |l| l.expires);
        self.leases.insert(
            mac,
            Lease {
                address,
                expires: expires.max(now + OFFER_HOLD),
            },
        );
        Some(address)
    }

    /// REQUEST (selecting, renewing or rebooting): binds `address` to `mac` for LEASE_TIME when
    /// it is in the pool and not held by another client.
    pub fn request(&mut self, mac: Mac, address: Ipv4Addr, now: Instant) -> bool {
        if !self.free_for(&mac, address, now) {
            return false;
        }
        self.leases.insert(
            mac,
            Lease {
                address,
                expires: now + LEASE_TIME,
            },
        );
        true
    }

    /// RELEASE or DECLINE: forget `mac`'s lease on `address`.
    pub fn release(&mut self, mac: Mac, address: Ipv4Addr) {
        if self.leases.get(&mac).is_some_and(|l| l.address == address) {
            self.leases.remove(&mac);
        }
    }

    pub fn active(&self, now: Instant) -> usize {
        self.leases.values().filter(|l| l.expires > now).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 98, 1);

    fn mac(n: u8) -> Mac {
        [2, 0, 0, 0, 0, n]
    }

    #[test]
    fn offers_lowest_free_then_binds_and_keeps_it() {
        let mut pool = Pool::for_gateway(GW);
        let now = Instant::now();
        let a = pool.offer(mac(1), None, now).unwrap();
        assert_eq!(a, Ipv4Addr::new(192, 168, 98, 2));
        assert!(pool.request(mac(1), a, now));
        assert_eq!(
            pool.offer(mac(2), None, now),
            Some(Ipv4Addr::new(192, 168, 98, 3))
        );
        assert_eq!(
            pool.offer(mac(1), None, now),
            Some(a),
            "a client gets its own address back"
        );
        assert!(
            !pool.request(mac(2), a, now),
            "nobody takes another client's address"
        );
    }

    #[test]
    fn honours_a_requested_address_when_free() {
        let mut pool = Pool::for_gateway(GW);
        let now = Instant::now();
        let wanted = Ipv4Addr::new(192, 168, 98, 77);
        assert_eq!(pool.offer(mac(1), Some(wanted), now), Some(wanted));
        assert_eq!(
            pool.offer(mac(2), Some(wanted), now),
            Some(Ipv4Addr::new(192, 168, 98, 2))
        );
        assert_eq!(
            pool.offer(mac(3), Some(GW), now),
            Some(Ipv4Addr::new(192, 168, 98, 3)),
            "never the gateway"
        );
    }

    #[test]
    fn fills_up_and_frees_on_release_and_expiry() {
        let mut pool = Pool::for_gateway(GW);
        let now = Instant::now();
        for n in 0..253u32 {
            let m = [2, 0, 0, 0, (n >> 8) as u8, n as u8];
            assert!(pool.offer(m, None, now).is_some(), "{n}");
        }
        assert_eq!(pool.offer(mac(255), None, now), None, "253 addresses: .2 to .254");
        let first = [2, 0, 0, 0, 0, 0];
        pool.release(first, Ipv4Addr::new(192, 168, 98, 2));
        assert_eq!(
            pool.offer(mac(255), None, now),
            Some(Ipv4Addr::new(192, 168, 98, 2))
        );
        assert!(
            pool.offer(mac(254), None, now + OFFER_HOLD + Duration::from_secs(1))
                .is_some(),
            "offers that were never requested expire"
        );
        assert!(pool.active(now + LEASE_TIME) < 253);
    }

    #[test]
    fn a_renewal_after_an_agent_restart_is_accepted() {
        let mut fresh = Pool::for_gateway(GW);
        assert!(fresh.request(mac(9), Ipv4Addr::new(192, 168, 98, 40), Instant::now()));
        assert!(
            !fresh.request(mac(9), Ipv4Addr::new(192, 168, 99, 40), Instant::now()),
            "outside the pool"
        );
    }
}
