//! Assertions on kernel state, written from cuttlefish-net.md §1.2/§7 independently of the
//! plugin's own planner: the names, addresses and formulas are Cuttlefish's, so the tests repeat
//! them on purpose. Our own marks (the link group) come from the crate.

use crate::support::Pod;
use cuttlefish_cni::mark::LINK_GROUP;
use serde_json::Value;

/// (mtap, wifiap) host addresses of instance n, with broadcast.
pub fn routed(n: u32) -> (String, String) {
    let (m, mtap_band, wifi_band) = if n <= 64 { (n, 97, 94) } else { (n - 64, 93, 95) };
    let host = 4 * m - 3;
    let fmt = |band| format!("192.168.{band}.{host}/30 brd 192.168.{band}.{}", host + 2);
    (fmt(mtap_band), fmt(wifi_band))
}

fn has_flag(link: &Value, flag: &str) -> bool {
    link["flags"].as_array().unwrap().iter().any(|f| f == flag)
}

/// Everything ADD builds for `instances`, read back from the kernel.
pub fn objects(pod: &Pod, instances: &[u32], owner: Option<u32>, group: Option<u32>) {
    links(pod, instances, owner, group);
    rules_and_sysctls(pod, instances);
}

/// The bridges, and the TAPs of `instances`, with their addresses.
pub fn links(pod: &Pod, instances: &[u32], owner: Option<u32>, group: Option<u32>) {
    for (bridge, addr) in [
        ("cvd-ebr", "192.168.98.1/24 brd 192.168.98.255"),
        ("cvd-wbr", "192.168.96.1/24 brd 192.168.96.255"),
    ] {
        let link = pod.link(bridge);
        assert_eq!(link["linkinfo"]["info_kind"], "bridge", "{bridge}");
        assert_eq!(link["linkinfo"]["info_data"]["forward_delay"], 0, "{bridge}");
        assert_eq!(link["linkinfo"]["info_data"]["stp_state"], 0, "{bridge}");
        assert!(
            has_flag(&link, "UP") && has_flag(&link, "BROADCAST"),
            "{bridge}: {}",
            link["flags"]
        );
        assert_eq!(link["group"], LINK_GROUP.to_string());
        assert_eq!(pod.addresses(bridge), [addr]);
    }
    let expect_id = |v: Option<u32>| v.map_or("-1".to_string(), |id| id.to_string());
    for &n in instances {
        let (mtap_addr, wifiap_addr) = routed(n);
        for (kind, master, addr) in [
            ("mtap", None, Some(mtap_addr)),
            ("wifiap", None, Some(wifiap_addr)),
            ("etap", Some("cvd-ebr"), None),
            ("wtap", Some("cvd-wbr"), None),
        ] {
            let name = format!("cvd-{kind}-{n:02}");
            let link = pod.link(&name);
            let data = &link["linkinfo"]["info_data"];
            assert_eq!(link["linkinfo"]["info_kind"], "tun", "{name}");
            assert_eq!(data["type"], "tap", "{name}");
            assert_eq!(data["pi"], false, "{name}: IFF_NO_PI");
            assert_eq!(data["vnet_hdr"], true, "{name}");
            assert_eq!(data["multi_queue"], false, "{name}: single queue");
            assert_eq!(data["persist"], true, "{name}");
            assert!(has_flag(&link, "UP"), "{name}: {}", link["flags"]);
            assert_eq!(link["group"], LINK_GROUP.to_string(), "{name}");
            assert_eq!(link["master"].as_str(), master, "{name}");
            assert_eq!(
                pod.addresses(&name),
                addr.into_iter().collect::<Vec<_>>(),
                "{name}"
            );
            assert_eq!(pod.tap_attr(&name, "owner"), expect_id(owner), "{name} owner");
            assert_eq!(pod.tap_attr(&name, "group"), expect_id(group), "{name} group");
        }
    }
}

/// The NAT and guard rules of `instances`, and forwarding on.
pub fn rules_and_sysctls(pod: &Pod, instances: &[u32]) {
    let mut subnets: Vec<String> = instances
        .iter()
        .flat_map(|&n| {
            let (m, w) = routed(n);
            [m, w].map(|a| {
                let ip: std::net::Ipv4Addr = a.split('/').next().unwrap().parse().unwrap();
                format!("{}/30", std::net::Ipv4Addr::from(u32::from(ip) - 1))
            })
        })
        .collect();
    subnets.extend(["192.168.98.0/24".to_string(), "192.168.96.0/24".to_string()]);
    assert_eq!(nat_rules(pod), subnets);
    assert_eq!(guard_rules(pod), expected_guard_rules(instances));
    assert_eq!(pod.sysctl("net/ipv4/ip_forward"), "1");
    assert_eq!(pod.sysctl("net/ipv6/conf/all/forwarding"), "1");
}

/// The masquerade rules of `ip cuttlefish_nat postrouting` as "subnet/len", asserting the
/// table holds exactly the chains Cuttlefish plus the default MSS clamping need, and that every
/// postrouting rule is `ip saddr X masquerade`.
pub fn nat_rules(pod: &Pod) -> Vec<String> {
    let ruleset = pod.nft();
    let items = ruleset["nftables"].as_array().unwrap();
    let chains: Vec<(String, String, String, i64)> = items
        .iter()
        .filter_map(|i| i.get("chain"))
        .filter(|c| c["table"] == "cuttlefish_nat")
        .map(|c| {
            assert_eq!(c["family"], "ip");
            let text = |k: &str| c[k].as_str().unwrap().to_string();
            (
                text("name"),
                text("type"),
                text("hook"),
                c["prio"].as_i64().unwrap(),
            )
        })
        .collect();
    let chain = |name: &str, kind: &str, hook: &str, prio: i64| {
        (name.to_string(), kind.to_string(), hook.to_string(), prio)
    };
    assert_eq!(
        chains,
        [
            chain("forward", "filter", "forward", -150),
            chain("postrouting", "nat", "postrouting", 100)
        ]
    );
    let rules_of = |name: &str| -> Vec<Value> {
        items
            .iter()
            .filter_map(|i| i.get("rule"))
            .filter(|r| r["table"] == "cuttlefish_nat" && r["chain"] == name)
            .cloned()
            .collect()
    };
    let forward = rules_of("forward");
    assert_eq!(forward.len(), 1, "{forward:?}");
    let clamp = &forward[0]["expr"][1]["mangle"];
    assert_eq!(clamp["key"]["tcp option"]["name"], "maxseg", "{forward:?}");
    assert_eq!(clamp["value"]["rt"]["key"], "mtu", "{forward:?}");
    rules_of("postrouting")
        .iter()
        .map(|rule| {
            let expr = rule["expr"].as_array().unwrap();
            assert_eq!(expr.len(), 2, "{rule}");
            assert_eq!(expr[1], serde_json::json!({"masquerade": null}), "{rule}");
            let m = &expr[0]["match"];
            assert_eq!(m["left"]["payload"]["field"], "saddr", "{rule}");
            let prefix = &m["right"]["prefix"];
            format!("{}/{}", prefix["addr"].as_str().unwrap(), prefix["len"])
        })
        .collect()
}

/// The rules of `inet cuttlefish_filter` as `nft` prints them, comments left out, asserting
/// that its only chain is `forward` (filter, priority filter, policy accept).
pub fn guard_rules(pod: &Pod) -> Vec<String> {
    let listing = pod
        .pod
        .exec(&["nft", "list", "table", "inet", "cuttlefish_filter"]);
    let lines: Vec<&str> = listing.lines().map(str::trim).collect();
    let chains: Vec<&&str> = lines.iter().filter(|l| l.starts_with("chain ")).collect();
    assert_eq!(chains, [&"chain forward {"], "{listing}");
    assert!(
        lines.contains(&"type filter hook forward priority filter; policy accept;"),
        "{listing}"
    );
    lines
        .iter()
        .filter(|l| l.starts_with("iifname "))
        .map(|l| l.split(" comment ").next().unwrap().to_string())
        .collect()
}

/// What may leave the pod for `instances`: bridged traffic stays on its bridge; the guest of a
/// /30 takes the host address + 1; the bridges' guests their /24; nothing else from `cvd-*`.
pub fn expected_guard_rules(instances: &[u32]) -> Vec<String> {
    let mut rules = vec![
        r#"iifname "cvd-ebr" oifname "cvd-ebr" accept"#.to_string(),
        r#"iifname "cvd-wbr" oifname "cvd-wbr" accept"#.to_string(),
    ];
    for &n in instances {
        let (mtap, wifiap) = routed(n);
        for (kind, host) in [("mtap", mtap), ("wifiap", wifiap)] {
            let host: std::net::Ipv4Addr = host.split('/').next().unwrap().parse().unwrap();
            let guest = std::net::Ipv4Addr::from(u32::from(host) + 1);
            rules.push(format!(r#"iifname "cvd-{kind}-{n:02}" ip saddr {guest} accept"#));
        }
    }
    rules.extend([
        r#"iifname "cvd-ebr" ip saddr 192.168.98.0/24 accept"#.to_string(),
        r#"iifname "cvd-wbr" ip saddr 192.168.96.0/24 accept"#.to_string(),
        r#"iifname "cvd-*" drop"#.to_string(),
    ]);
    rules
}

/// The pod holds only what the primary plugin made: lo and eth0, no nft table.
pub fn untouched(pod: &Pod) {
    assert_eq!(pod.link_names(), ["lo", "eth0"]);
    assert!(pod.nft()["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i.get("table").is_none()));
}
