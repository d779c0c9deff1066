//! Pure: what Cuttlefish's `cuttlefish-host-resources` builds for a set of instances, as data.
//! Every name, address and formula from `shared/cuttlefish-net.md` §1 and §7 lives here.

use crate::config::Settings;
use crate::model::{HostAddress, IfName, IpFamily, Protocol, Rule, TapSpec};
use ipnetwork::Ipv4Network;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub const ETHERNET_BRIDGE: &str = "cvd-ebr";
pub const WIFI_BRIDGE: &str = "cvd-wbr";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePlan {
    pub name: &'static str,
    /// The bridge's address, from which the DHCP agent serves its /24.
    pub gateway: Ipv4Addr,
}

/// What the host-resources service sets on each bridge (cuttlefish-net.md §9.2), under
/// `net/ipv6/conf/<bridge>/`: IPv6 on whatever the pod's `default` says, an EUI-64 link-local
/// address, SLAAC. Cuttlefish's fastboot proxy reaches the guest over that link-local address.
const BRIDGE_IPV6_SYSCTLS: [(&str, &str); 3] =
    [("disable_ipv6", "0"), ("addr_gen_mode", "0"), ("autoconf", "1")];

impl BridgePlan {
    pub fn address(&self) -> HostAddress {
        HostAddress::v4(self.gateway, 24)
    }

    pub fn subnet(&self) -> Ipv4Network {
        self.address().ipv4_network().expect("a bridge's address is IPv4")
    }

    /// The bridge's IPv6 sysctls with their values, in the order ADD writes them.
    pub fn ipv6_sysctls(&self) -> impl Iterator<Item = (String, &'static str)> + '_ {
        BRIDGE_IPV6_SYSCTLS
            .iter()
            .map(|(key, value)| (format!("net/ipv6/conf/{}/{key}", self.name), *value))
    }
}

/// The four TAPs of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapRole {
    /// `cvd-mtap-NN`: the RIL (mobile) NIC, a routed /30.
    Mobile,
    /// `cvd-wifiap-NN`: the OpenWrt WAN, a routed /30.
    WifiAp,
    /// `cvd-etap-NN`: guest Ethernet, a port of `cvd-ebr`.
    Ethernet,
    /// `cvd-wtap-NN`: legacy bridged Wi-Fi, a port of `cvd-wbr`.
    Wifi,
}

impl TapRole {
    pub const ALL: [TapRole; 4] = [TapRole::Mobile, TapRole::WifiAp, TapRole::Ethernet, TapRole::Wifi];

    fn kind(self) -> &'static str {
        match self {
            TapRole::Mobile => "mtap",
            TapRole::WifiAp => "wifiap",
            TapRole::Ethernet => "etap",
            TapRole::Wifi => "wtap",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapPlan {
    pub name: String,
    pub instance: u32,
    pub role: TapRole,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    /// The bridge this TAP is a port of (etap, wtap).
    pub bridge: Option<&'static str>,
    /// The host side of the routed /30 (mtap, wifiap).
    pub address: Option<HostAddress>,
}

/// The forwarding switches the host-resources service turns on; in the pod netns only.
pub const FORWARDING_SYSCTLS: [&str; 2] = ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub bridges: Vec<BridgePlan>,
    pub taps: Vec<TapPlan>,
    /// Our nftables rules, in this order: one `ip saddr <subnet> masquerade` per /30 and per
    /// bridge /24, then MSS clamping and DNS redirection when asked for; then what guests may
    /// send through the pod: traffic bridged within each bridge, the guest address of each /30
    /// from its TAP, each bridge's /24 from the bridge, and a drop of everything else from a
    /// `cvd-*` link.
    pub nft_rules: Vec<Rule>,
}

/// The two bridges every pod gets, whatever its instances: the only ones the DHCP agent serves.
pub fn bridges() -> Vec<BridgePlan> {
    vec![
        BridgePlan {
            name: ETHERNET_BRIDGE,
            gateway: Ipv4Addr::new(192, 168, 98, 1),
        },
        BridgePlan {
            name: WIFI_BRIDGE,
            gateway: Ipv4Addr::new(192, 168, 96, 1),
        },
    ]
}

impl Plan {
    pub fn new(settings: &Settings) -> Plan {
        let bridges = bridges();
        let first = settings.base_instance;
        let last = first + settings.instances - 1;
        let taps: Vec<TapPlan> = (first..=last)
            .flat_map(|instance| {
                TapRole::ALL.into_iter().map(move |role| TapPlan {
                    name: tap_name(role, instance),
                    instance,
                    role,
                    owner: settings.tap_owner,
                    group: settings.tap_group,
                    bridge: match role {
                        TapRole::Ethernet => Some(ETHERNET_BRIDGE),
                        TapRole::Wifi => Some(WIFI_BRIDGE),
                        _ => None,
                    },
                    address: routed_address(role, instance),
                })
            })
            .collect();
        let mut nft_rules: Vec<Rule> = taps
            .iter()
            .filter_map(|t| t.address?.ipv4_network())
            .chain(bridges.iter().map(BridgePlan::subnet))
            .map(Rule::Masquerade)
            .collect();
        if settings.clamp_mss {
            nft_rules.push(Rule::ClampMss);
        }
        if let Some(server) = settings.dns_redirect {
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                nft_rules.push(Rule::RedirectDns { protocol, server });
            }
        }
        nft_rules.extend(bridges.iter().map(|b| Rule::Bridged(if_name(b.name))));
        nft_rules.extend(taps.iter().filter_map(|t| {
            let guest = t.address?.guest()?;
            Some(Rule::GuestSource {
                iifname: if_name(&t.name),
                source: Ipv4Network::from(guest),
            })
        }));
        nft_rules.extend(bridges.iter().map(|b| Rule::GuestSource {
            iifname: if_name(b.name),
            source: b.subnet(),
        }));
        nft_rules.push(Rule::DropOtherGuestTraffic);
        Plan {
            bridges,
            taps,
            nft_rules,
        }
    }

    /// Every link name of the plan, bridges first.
    pub fn link_names(&self) -> impl Iterator<Item = &str> {
        self.bridges
            .iter()
            .map(|b| b.name)
            .chain(self.taps.iter().map(|t| t.name.as_str()))
    }

    /// Every sysctl the plan sets, with its value: the bridges' IPv6 settings, then the
    /// forwarding switches.
    pub fn sysctls(&self) -> impl Iterator<Item = (String, &'static str)> + '_ {
        self.bridges
            .iter()
            .flat_map(BridgePlan::ipv6_sysctls)
            .chain(FORWARDING_SYSCTLS.iter().map(|name| (name.to_string(), "1")))
    }

    /// The names of [`Plan::sysctls`]: what CHECK must observe.
    pub fn sysctl_names(&self) -> Vec<String> {
        self.sysctls().map(|(name, _)| name).collect()
    }

    /// The address families the plan puts on links: the only ones CHECK compares.
    pub fn families(&self) -> BTreeSet<IpFamily> {
        self.addresses().map(|(_, a)| a.family()).collect()
    }

    /// Every address of the plan with the link that carries it.
    pub fn addresses(&self) -> impl Iterator<Item = (&str, HostAddress)> {
        self.bridges.iter().map(|b| (b.name, b.address())).chain(
            self.taps
                .iter()
                .filter_map(|t| t.address.map(|a| (t.name.as_str(), a))),
        )
    }
}

impl TapPlan {
    pub fn spec(&self) -> TapSpec {
        TapSpec {
            name: self.name.clone(),
            owner: self.owner,
            group: self.group,
        }
    }
}

/// The names of the links of instances `base_instance..base_instance + instances`, bridges
/// first, as [`Plan::link_names`] lists them: all that DEL needs to know of an earlier ADD.
pub fn link_names(base_instance: u32, instances: u32) -> Vec<String> {
    let taps = (base_instance..base_instance + instances)
        .flat_map(|instance| TapRole::ALL.into_iter().map(move |role| tap_name(role, instance)));
    [ETHERNET_BRIDGE, WIFI_BRIDGE]
        .map(String::from)
        .into_iter()
        .chain(taps)
        .collect()
}

fn if_name(name: &str) -> IfName {
    IfName::new(name).expect("our link names have at most 15 bytes")
}

/// `cvd-<kind>-%02d`, as assemble_cvd's `InterfaceName` (cuttlefish-net.md §2.1).
pub fn tap_name(role: TapRole, instance: u32) -> String {
    format!("cvd-{}-{:02}", role.kind(), instance)
}

/// The host side of an instance's routed /30: `.(4M-3)`, where instances 1–64 use the first
/// band and 65–128 the second with M = N-64 (cuttlefish-net.md §1.2).
fn routed_address(role: TapRole, instance: u32) -> Option<HostAddress> {
    let (low_band, high_band) = match role {
        TapRole::Mobile => (97, 93),
        TapRole::WifiAp => (94, 95),
        TapRole::Ethernet | TapRole::Wifi => return None,
    };
    let (band, m) = if instance <= 64 {
        (low_band, instance)
    } else {
        (high_band, instance - 64)
    };
    let host = u8::try_from(4 * m - 3).expect("instance <= 128 keeps the host octet below 256");
    Some(HostAddress::v4(Ipv4Addr::new(192, 168, band, host), 30))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(base_instance: u32, instances: u32) -> Plan {
        Plan::new(&Settings {
            instances,
            base_instance,
            vsock_cid: None,
            tap_owner: Some(7),
            tap_group: None,
            clamp_mss: false,
            dns_redirect: None,
        })
    }

    fn masquerade(plan: &Plan) -> Vec<Ipv4Network> {
        plan.nft_rules
            .iter()
            .filter_map(|r| match r {
                Rule::Masquerade(net) => Some(*net),
                _ => None,
            })
            .collect()
    }

    /// The guard rules as nft would print them.
    fn guard(plan: &Plan) -> Vec<String> {
        plan.nft_rules
            .iter()
            .filter(|r| r.chain() == &crate::model::GUARD)
            .map(ToString::to_string)
            .collect()
    }

    fn tap(plan: &Plan, name: &str) -> TapPlan {
        plan.taps.iter().find(|t| t.name == name).unwrap().clone()
    }

    fn addr(text: &str) -> Option<HostAddress> {
        let (ip, prefix) = text.split_once('/').unwrap();
        Some(HostAddress {
            address: ip.parse().unwrap(),
            prefix: prefix.parse().unwrap(),
        })
    }

    #[test]
    fn instance_1_matches_cuttlefish_net_section_7() {
        let p = plan(1, 1);
        assert_eq!(
            p.link_names().collect::<Vec<_>>(),
            [
                "cvd-ebr",
                "cvd-wbr",
                "cvd-mtap-01",
                "cvd-wifiap-01",
                "cvd-etap-01",
                "cvd-wtap-01"
            ]
        );
        assert_eq!(tap(&p, "cvd-mtap-01").address, addr("192.168.97.1/30"));
        assert_eq!(
            tap(&p, "cvd-mtap-01").address.unwrap().broadcast(),
            Some(Ipv4Addr::new(192, 168, 97, 3))
        );
        assert_eq!(tap(&p, "cvd-wifiap-01").address, addr("192.168.94.1/30"));
        assert_eq!(tap(&p, "cvd-etap-01").bridge, Some("cvd-ebr"));
        assert_eq!(tap(&p, "cvd-wtap-01").bridge, Some("cvd-wbr"));
        assert_eq!(tap(&p, "cvd-etap-01").address, None);
        assert_eq!(tap(&p, "cvd-wtap-01").owner, Some(7));
        assert_eq!(
            p.bridges[0].address().to_string(),
            "192.168.98.1/24 brd 192.168.98.255"
        );
        assert_eq!(
            p.bridges[1].address().to_string(),
            "192.168.96.1/24 brd 192.168.96.255"
        );
        let masq: Vec<String> = masquerade(&p).iter().map(|n| n.to_string()).collect();
        assert_eq!(
            p.nft_rules
                .iter()
                .filter(|r| r.chain().table == crate::model::NAT)
                .count(),
            4,
            "no clamping or DNS rules unless asked for"
        );
        assert_eq!(
            masq,
            [
                "192.168.97.0/30",
                "192.168.94.0/30",
                "192.168.98.0/24",
                "192.168.96.0/24"
            ]
        );
    }

    #[test]
    fn guests_may_send_only_from_their_own_addresses() {
        assert_eq!(
            guard(&plan(1, 1)),
            [
                r#"iifname "cvd-ebr" oifname "cvd-ebr" accept"#,
                r#"iifname "cvd-wbr" oifname "cvd-wbr" accept"#,
                r#"iifname "cvd-mtap-01" ip saddr 192.168.97.2 accept"#,
                r#"iifname "cvd-wifiap-01" ip saddr 192.168.94.2 accept"#,
                r#"iifname "cvd-ebr" ip saddr 192.168.98.0/24 accept"#,
                r#"iifname "cvd-wbr" ip saddr 192.168.96.0/24 accept"#,
                r#"iifname "cvd-*" drop"#,
            ]
        );
        let high = guard(&plan(64, 65));
        assert_eq!(high.len(), 2 + 2 * 65 + 2 + 1);
        for expected in [
            r#"iifname "cvd-mtap-64" ip saddr 192.168.97.254 accept"#,
            r#"iifname "cvd-mtap-65" ip saddr 192.168.93.2 accept"#,
            r#"iifname "cvd-wifiap-128" ip saddr 192.168.95.254 accept"#,
        ] {
            assert!(high.iter().any(|r| r == expected), "{expected} missing");
        }
        assert_eq!(high.last().unwrap(), r#"iifname "cvd-*" drop"#);
    }

    #[test]
    fn both_bridges_get_ipv6_as_cuttlefish_sets_it() {
        let plan = plan(1, 1);
        let sysctls: Vec<Vec<(String, &str)>> =
            plan.bridges.iter().map(|b| b.ipv6_sysctls().collect()).collect();
        let expect = |bridge: &str| {
            [("disable_ipv6", "0"), ("addr_gen_mode", "0"), ("autoconf", "1")]
                .map(|(key, value)| (format!("net/ipv6/conf/{bridge}/{key}"), value))
                .to_vec()
        };
        assert_eq!(sysctls, [expect("cvd-ebr"), expect("cvd-wbr")]);
    }

    #[test]
    fn link_names_from_a_record_are_the_plans() {
        for (base, count) in [(1, 1), (2, 3), (64, 65)] {
            let p = plan(base, count);
            assert_eq!(link_names(base, count), p.link_names().collect::<Vec<_>>());
        }
    }

    #[test]
    fn instance_2_is_the_next_slash_30() {
        let p = plan(2, 1);
        assert_eq!(tap(&p, "cvd-mtap-02").address, addr("192.168.97.5/30"));
        assert_eq!(
            tap(&p, "cvd-wifiap-02").address.unwrap().network().to_string(),
            "192.168.94.4/30"
        );
    }

    #[test]
    fn instance_10_matches_the_worked_example() {
        assert_eq!(tap(&plan(10, 1), "cvd-mtap-10").address, addr("192.168.97.37/30"));
    }

    #[test]
    fn instances_64_and_65_sit_on_either_side_of_the_band_change() {
        let p = plan(64, 2);
        assert_eq!(tap(&p, "cvd-mtap-64").address, addr("192.168.97.253/30"));
        assert_eq!(
            tap(&p, "cvd-mtap-64").address.unwrap().broadcast(),
            Some(Ipv4Addr::new(192, 168, 97, 255))
        );
        assert_eq!(tap(&p, "cvd-wifiap-64").address, addr("192.168.94.253/30"));
        assert_eq!(tap(&p, "cvd-mtap-65").address, addr("192.168.93.1/30"));
        assert_eq!(tap(&p, "cvd-wifiap-65").address, addr("192.168.95.1/30"));
    }

    #[test]
    fn instance_128_is_the_last_slot() {
        let p = plan(128, 1);
        assert_eq!(tap(&p, "cvd-mtap-128").address, addr("192.168.93.253/30"));
        assert_eq!(tap(&p, "cvd-wifiap-128").address, addr("192.168.95.253/30"));
        assert!(p.link_names().all(|n| n.len() <= 15));
    }

    #[test]
    fn every_instance_gets_four_taps_and_distinct_subnets() {
        let p = plan(1, 128);
        assert_eq!(p.taps.len(), 512);
        let all = masquerade(&p);
        assert_eq!(all.len(), 2 * 128 + 2);
        let mut nets: Vec<_> = all.clone();
        nets.sort();
        nets.dedup();
        assert_eq!(nets.len(), all.len());
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(!a.overlaps(*b), "{a} overlaps {b}");
            }
        }
    }

    #[test]
    fn clamping_and_dns_redirect_come_after_the_masquerades() {
        let dns = std::net::Ipv4Addr::new(10, 96, 0, 10);
        let p = Plan::new(&Settings {
            instances: 1,
            base_instance: 1,
            vsock_cid: None,
            tap_owner: None,
            tap_group: None,
            clamp_mss: true,
            dns_redirect: Some(dns),
        });
        assert_eq!(
            p.nft_rules[4..7],
            [
                Rule::ClampMss,
                Rule::RedirectDns {
                    protocol: Protocol::Udp,
                    server: dns
                },
                Rule::RedirectDns {
                    protocol: Protocol::Tcp,
                    server: dns
                },
            ]
        );
    }
}
