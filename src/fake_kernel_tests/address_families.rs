//! Addresses of either family: the pod's own IPv6 addresses never conflict with our IPv4
//! plan, and CHECK compares only the families the plan uses, never IPv6 link-local ones.

use super::support::{pod, Plugin};
use crate::check::Drift;
use crate::kernel::fake::FakeKernel;
use crate::model::{Address, HostAddress};

fn put(kernel: &mut FakeKernel, link: &str, address: &str, prefix: u8) -> Address {
    let address = Address {
        index: kernel.state.link(link).unwrap().index,
        address: address.parse().unwrap(),
        prefix,
        broadcast: None,
    };
    kernel.state.addresses.push(address);
    address
}

#[test]
fn the_pods_ipv6_addresses_do_not_conflict_with_the_plan() {
    let mut kernel = pod();
    assert!(kernel.state.addresses.iter().any(|a| a.address.is_ipv6()));
    put(&mut kernel, "eth0", "::ffff:192.168.97.1", 128);
    let plugin = Plugin::one();
    plugin.add(&mut kernel).unwrap();
    assert_eq!(plugin.check(&mut kernel), []);
}

#[test]
fn check_ignores_link_local_and_advertised_ipv6_addresses_on_our_links() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    // What the kernel adds once a port has carrier, and what SLAAC adds when a guest sends a
    // router advertisement on the bridge.
    put(&mut kernel, "cvd-ebr", "fe80::ff:fe00:10", 64);
    put(&mut kernel, "cvd-ebr", "fd00:cf:1::ff:fe00:10", 64);
    put(&mut kernel, "cvd-etap-01", "fe80::ff:fe00:11", 64);
    put(&mut kernel, "cvd-mtap-01", "fe80::ff:fe00:12", 64);
    assert_eq!(plugin.check(&mut kernel), []);
}

#[test]
fn check_reports_an_ipv4_address_on_a_link_that_should_have_none() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    put(&mut kernel, "cvd-etap-01", "fe80::ff:fe00:11", 64);
    let extra = put(&mut kernel, "cvd-etap-01", "192.168.98.7", 24);
    assert_eq!(
        plugin.check(&mut kernel),
        [Drift::Addresses {
            link: "cvd-etap-01".into(),
            actual: vec![extra],
            expected: vec![],
        }]
    );
}

#[test]
fn an_ipv6_host_address_has_no_broadcast_and_is_compared_as_such() {
    let ours = HostAddress {
        address: "fd00:cf::1".parse().unwrap(),
        prefix: 64,
    };
    let mut kernel = pod();
    let on_eth0 = put(&mut kernel, "eth0", "fd00:cf::1", 64);
    assert!(ours.is(&on_eth0));
    assert!(ours.overlaps(&kernel.state.addresses[kernel.state.addresses.len() - 1]));
    assert!(
        !ours.overlaps(&kernel.state.addresses[0]),
        "127.0.0.1/8 is another family"
    );
}
