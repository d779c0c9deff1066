//! DEL reads its state record from the pod's own netns, where anyone with `CAP_NET_ADMIN` in
//! the pod can rewrite it. Whatever the record says, DEL answers in CNI JSON, never panics, and
//! removes every link that carries our mark, and every table whose comment names our owner.

use crate::support::{Outcome, Pod};
use serde_json::json;

/// Our nft tables, as `nft` names them.
const OUR_TABLES: [&str; 2] = ["ip cuttlefish_nat", "inet cuttlefish_filter"];

/// Rewrites the comment of each of our tables with `new(old comment)`, keeping its chains and
/// rules: nft cannot change a table's comment in place, so the table is replaced in one
/// transaction.
fn rewrite_comments(pod: &Pod, new: impl Fn(&str) -> String) {
    for table in OUR_TABLES {
        let mut args = vec!["nft", "list", "table"];
        args.extend(table.split(' '));
        let listing = pod.pod.exec(&args);
        let old = listing
            .lines()
            .find_map(|l| l.trim().strip_prefix("comment \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no comment in {listing}"));
        let replaced = listing.replacen(
            &format!("comment \"{old}\""),
            &format!("comment \"{}\"", new(old)),
            1,
        );
        let file = pod.dir.join("tampered.nft");
        std::fs::write(&file, format!("delete table {table}\n{replaced}")).unwrap();
        pod.pod.exec(&["nft", "-f", file.to_str().unwrap()]);
    }
}

fn owner_tag(pod: &Pod) -> String {
    let alias = pod.link("cvd-ebr")["ifalias"].as_str().unwrap().to_string();
    alias
        .split(' ')
        .find_map(|w| w.strip_prefix("owner="))
        .unwrap()
        .to_string()
}

/// A CNI answer: success with nothing on stdout, or an error object with a code and a message.
fn assert_cni_answer(out: &Outcome, context: &str) {
    assert!(
        !out.stderr.contains("panicked") && out.signal.is_none(),
        "{context}: the plugin crashed: {out:?}"
    );
    if out.success {
        assert!(out.stdout.is_empty(), "{context}: {out:?}");
    } else {
        let err = out.json();
        assert!(
            err["code"].is_u64() && err["msg"].is_string(),
            "{context}: not a CNI error: {out:?}"
        );
    }
}

/// A new comment from the old one and our owner tag.
type Tamper = fn(&str, &str) -> String;

#[test]
fn del_survives_any_tampered_state_record() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    let before = pod.snapshot();
    let tampered: Vec<(&str, Tamper)> = vec![
        ("huge base", |_, t| {
            format!("cuttlefish-cni owner={t} base=4294967295 instances=2 sysctls=0,0")
        }),
        ("huge instances", |_, t| {
            format!("cuttlefish-cni owner={t} base=1 instances=4294967295 sysctls=0,0")
        }),
        ("past instance 128", |_, t| {
            format!("cuttlefish-cni owner={t} base=100 instances=100 sysctls=0,0")
        }),
        ("20 digits", |_, t| {
            format!("cuttlefish-cni owner={t} base=99999999999999999999 instances=1 sysctls=0,0")
        }),
        ("zero", |_, t| {
            format!("cuttlefish-cni owner={t} base=0 instances=0 sysctls=0,0")
        }),
        ("negative", |_, t| {
            format!("cuttlefish-cni owner={t} base=-1 instances=1 sysctls=0,0")
        }),
        ("no base", |_, t| {
            format!("cuttlefish-cni owner={t} instances=1 sysctls=0,0")
        }),
        ("no sysctls", |_, t| {
            format!("cuttlefish-cni owner={t} base=1 instances=1")
        }),
        ("owner only", |_, t| format!("cuttlefish-cni owner={t}")),
        ("garbage sysctls", |_, t| {
            format!("cuttlefish-cni owner={t} base=1 instances=1 sysctls=1;reboot,/../x,,,")
        }),
        ("garbage words", |_, t| {
            format!("cuttlefish-cni owner={t} base=1 base=2 é=% ==== instances=1 sysctls=0,0")
        }),
        ("the longest comment nft writes", |_, t| {
            let head = format!("cuttlefish-cni owner={t} base=1 instances=1 sysctls=");
            let pad = "9".repeat(128 - head.len());
            format!("{head}{pad}")
        }),
        ("foreign text", |_, _| "written by hand".to_string()),
        ("another owner", |old, t| old.replace(t, "0123456789abcdef")),
    ];
    for (what, comment) in tampered {
        pod.plugin("ADD", &conf).assert_ok();
        let tag = owner_tag(&pod);
        rewrite_comments(&pod, |old| comment(old, &tag));
        let out = pod.plugin("DEL", &conf);
        assert_cni_answer(&out, what);
        let ours: Vec<String> = pod
            .links()
            .iter()
            .filter(|l| l["ifalias"].as_str().is_some_and(|a| a.contains(&tag)))
            .map(|l| l["ifname"].to_string())
            .collect();
        assert!(ours.is_empty(), "{what}: DEL left links of ours: {ours:?}");
        let listing = pod.pod.exec(&["nft", "list", "ruleset"]);
        if comment("", &tag).contains(&format!("owner={tag}")) {
            assert!(
                !listing.contains("cuttlefish"),
                "{what}: DEL left a table that names our owner:\n{listing}"
            );
        }
        // Reset what a damaged record cannot restore, and a table that is not ours, for the
        // next case.
        for table in OUR_TABLES {
            if listing.contains(&format!("table {table}")) {
                let mut args = vec!["nft", "delete", "table"];
                args.extend(table.split(' '));
                pod.pod.exec(&args);
            }
        }
        pod.pod.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
        pod.pod.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"]);
        assert_eq!(pod.snapshot(), before, "{what}");
    }
}
