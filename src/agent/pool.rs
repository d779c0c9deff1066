//! One bridge's address pool and its leases, as dnsmasq keeps them for Cuttlefish: `.2`–`.254`
//! of the bridge's /24, the gateway `.1`, one hour leases. Pure: time comes in as an argument.
//!
//! Guests are hostile, so the table is bounded by construction: one slot per address, and each
//! client holds at most one slot. Whatever a guest sends, the pool never keeps more than 253
//! leases, and every lookup, by address or by client, is O(1).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub const LEASE_TIME: Duration = Duration::from_secs(3600);
/// How long an offered address stays reserved for the client it was offered to, unless the pool
/// runs out of addresses first.
const OFFER_HOLD: Duration = Duration::from_secs(60);
/// `.2` to `.254`.
const SIZE: usize = 253;

pub type Mac = [u8; 6];

#[derive(Debug, Clone, Copy)]
struct Lease {
    client: Mac,
    expires: Instant,
    /// Confirmed by a REQUEST; an offer that is not may be reclaimed for another client.
    bound: bool,
}

#[derive(Debug)]
pub struct Pool {
    first: u32,
    /// The lease on each address, `.2` first. An expired lease stays until its slot is needed,
    /// so that its client gets the same address back.
    slots: Vec<Option<Lease>>,
    /// The slot of each client in `slots`.
    clients: HashMap<Mac, usize>,
}

impl Pool {
    /// The pool of a /24 whose gateway is `.1`: `.2` to `.254`.
    pub fn for_gateway(gateway: Ipv4Addr) -> Pool {
        Pool {
            first: (u32::from(gateway) & 0xffff_ff00) + 2,
            slots: vec![None; SIZE],
            clients: HashMap::with_capacity(SIZE),
        }
    }

    fn slot_of(&self, address: Ipv4Addr) -> Option<usize> {
        let slot = usize::try_from(u32::from(address).checked_sub(self.first)?).ok()?;
        (slot < SIZE).then_some(slot)
    }

    fn address(&self, slot: usize) -> Ipv4Addr {
        // slot < SIZE, so this stays inside the /24.
        Ipv4Addr::from(self.first + slot as u32)
    }

    /// The lease on `slot` if it has not expired.
    fn live(&self, slot: usize, now: Instant) -> Option<&Lease> {
        self.slots[slot].as_ref().filter(|l| l.expires > now)
    }

    fn free_for(&self, mac: &Mac, slot: usize, now: Instant) -> bool {
        self.live(slot, now).is_none_or(|l| l.client == *mac)
    }

    /// DISCOVER: the address to offer `mac`, reserved for a while. In the order of RFC 2131
    /// 4.3.1: its current or previous address, the one it asks for if free, the lowest free one.
    /// When every address is taken, the oldest offer nobody confirmed is reclaimed, so a flood
    /// of DISCOVERs cannot lock new clients out. None when every address is bound.
    pub fn offer(&mut self, mac: Mac, requested: Option<Ipv4Addr>, now: Instant) -> Option<Ipv4Addr> {
        let slot = self
            .clients
            .get(&mac)
            .copied()
            .or_else(|| {
                requested
                    .and_then(|r| self.slot_of(r))
                    .filter(|s| self.free_for(&mac, *s, now))
            })
            .or_else(|| (0..SIZE).find(|s| self.live(*s, now).is_none()))
            .or_else(|| {
                (0..SIZE)
                    .filter_map(|s| self.slots[s].filter(|l| !l.bound).map(|l| (l.expires, s)))
                    .min()
                    .map(|(_, s)| s)
            })?;
        let hold = now + OFFER_HOLD;
        let lease = match self.live(slot, now) {
            Some(own) if own.client == mac => Lease {
                expires: own.expires.max(hold),
                ..*own
            },
            _ => Lease {
                client: mac,
                expires: hold,
                bound: false,
            },
        };
        self.assign(slot, lease);
        Some(self.address(slot))
    }

    /// REQUEST (selecting, renewing or rebooting): binds `address` to `mac` for LEASE_TIME when
    /// it is in the pool and not held by another client.
    pub fn request(&mut self, mac: Mac, address: Ipv4Addr, now: Instant) -> bool {
        let Some(slot) = self.slot_of(address).filter(|s| self.free_for(&mac, *s, now)) else {
            return false;
        };
        self.assign(
            slot,
            Lease {
                client: mac,
                expires: now + LEASE_TIME,
                bound: true,
            },
        );
        true
    }

    /// Gives `slot` to `lease.client`: the client leaves its old slot, and the slot's previous
    /// holder (expired, or an unconfirmed offer) loses it.
    fn assign(&mut self, slot: usize, lease: Lease) {
        if let Some(old) = self.clients.insert(lease.client, slot) {
            if old != slot {
                self.slots[old] = None;
            }
        }
        if let Some(previous) = self.slots[slot].replace(lease) {
            if previous.client != lease.client {
                self.clients.remove(&previous.client);
            }
        }
        debug_assert_eq!(self.clients.len(), self.slots.iter().flatten().count());
    }

    /// RELEASE or DECLINE: forget `mac`'s lease on `address`.
    pub fn release(&mut self, mac: Mac, address: Ipv4Addr) {
        let Some(slot) = self.slot_of(address) else {
            return;
        };
        if self.clients.get(&mac) == Some(&slot) {
            self.clients.remove(&mac);
            self.slots[slot] = None;
        }
    }

    pub fn active(&self, now: Instant) -> usize {
        (0..SIZE).filter(|s| self.live(*s, now).is_some()).count()
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
        let first = [2, 0, 0, 0, 0, 0];
        pool.release(first, Ipv4Addr::new(192, 168, 98, 2));
        assert_eq!(
            pool.offer(mac(255), None, now),
            Some(Ipv4Addr::new(192, 168, 98, 2))
        );
        let later = now + OFFER_HOLD + Duration::from_secs(1);
        assert_eq!(pool.active(later), 0, "offers that were never requested expire");
        assert_eq!(
            pool.offer([2, 9, 0, 0, 0, 0], None, later),
            Some(Ipv4Addr::new(192, 168, 98, 2)),
            "a new client gets the lowest expired address"
        );
    }

    #[test]
    fn a_flood_of_new_clients_never_grows_the_table_past_the_pool() {
        let mut pool = Pool::for_gateway(GW);
        let start = Instant::now();
        for n in 0..20_000u32 {
            // Time passes: the earlier offers expire while new clients keep coming.
            let now = start + OFFER_HOLD * (n / 100);
            let m = [2, 1, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
            pool.offer(m, None, now);
            assert!(
                pool.clients.len() <= SIZE,
                "{} entries after {n} clients",
                pool.clients.len()
            );
        }
    }

    #[test]
    fn a_pool_full_of_bound_leases_offers_nothing() {
        let mut pool = Pool::for_gateway(GW);
        let now = Instant::now();
        for n in 0..253u32 {
            let m = [2, 0, 0, 0, (n >> 8) as u8, n as u8];
            assert!(pool.request(m, Ipv4Addr::from(u32::from(GW) + 1 + n), now), "{n}");
        }
        assert_eq!(pool.offer(mac(255), None, now), None, "253 addresses: .2 to .254");
        assert_eq!(pool.active(now), 253);
    }

    #[test]
    fn a_client_moves_and_keeps_one_address() {
        let mut pool = Pool::for_gateway(GW);
        let now = Instant::now();
        assert!(pool.request(mac(1), Ipv4Addr::new(192, 168, 98, 10), now));
        assert!(pool.request(mac(1), Ipv4Addr::new(192, 168, 98, 20), now));
        assert_eq!(pool.active(now), 1);
        assert_eq!(
            pool.offer(mac(2), Some(Ipv4Addr::new(192, 168, 98, 10)), now),
            Some(Ipv4Addr::new(192, 168, 98, 10)),
            "the address the client left is free"
        );
        let expired = now + LEASE_TIME + Duration::from_secs(1);
        assert_eq!(
            pool.offer(mac(1), None, expired),
            Some(Ipv4Addr::new(192, 168, 98, 20)),
            "a client whose lease ran out gets its previous address back"
        );
    }

    #[test]
    fn a_full_pool_of_unconfirmed_offers_still_serves_a_new_client() {
        let mut pool = Pool::for_gateway(GW);
        let now = Instant::now();
        assert!(pool.request(mac(0), Ipv4Addr::new(192, 168, 98, 2), now));
        for n in 1..253u32 {
            let m = [2, 1, 0, 0, (n >> 8) as u8, n as u8];
            assert!(pool
                .offer(m, None, now + Duration::from_millis(n.into()))
                .is_some());
        }
        let later = now + Duration::from_secs(1);
        assert_eq!(
            pool.offer(mac(1), None, later),
            Some(Ipv4Addr::new(192, 168, 98, 3)),
            "the oldest unconfirmed offer is reclaimed"
        );
        assert!(pool.request(mac(1), Ipv4Addr::new(192, 168, 98, 3), later));
        assert_eq!(
            pool.offer(mac(2), None, later),
            Some(Ipv4Addr::new(192, 168, 98, 4)),
            "bound leases are never reclaimed"
        );
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
