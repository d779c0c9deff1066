//! Bad input through the real binary: a CNI error JSON on stdout with the right code, a
//! non-zero exit, and nothing created in the pod.

use crate::support::{Pod, PLUGIN};
use serde_json::json;

/// One hostile or broken invocation and the CNI error code it must get.
struct BadInput {
    what: &'static str,
    stdin: Vec<u8>,
    netns: String,
    env: Vec<(&'static str, &'static str)>,
    code: u64,
}

fn case(what: &'static str, stdin: impl Into<Vec<u8>>, netns: &str, code: u64) -> BadInput {
    BadInput {
        what,
        stdin: stdin.into(),
        netns: netns.to_string(),
        env: Vec::new(),
        code,
    }
}

#[test]
fn bad_input_gets_the_right_code_and_creates_nothing() {
    let pod = Pod::new("1.0.0");
    let before = pod.snapshot();
    let good = pod.conf(json!({})).to_string();
    let ns = pod.pod.path();
    let conf = |extra: serde_json::Value| pod.conf(extra).to_string();
    let with_env = |mut c: BadInput, env: Vec<(&'static str, &'static str)>| {
        c.env = env;
        c
    };
    let cases = vec![
        case("malformed JSON", "{\"cniVersion\":", &ns, 6),
        case("non-UTF-8", vec![0xff, 0xfe, 0xfd], &ns, 6),
        case("unknown version", conf(json!({"cniVersion": "9.9.9"})), &ns, 1),
        case("instances 0", conf(json!({"instances": 0})), &ns, 7),
        case(
            "range past 128",
            conf(json!({"baseInstance": 127, "instances": 3})),
            &ns,
            7,
        ),
        case("negative uid", conf(json!({"tapOwner": -1})), &ns, 7),
        case("missing prevResult", conf(json!({"prevResult": null})), &ns, 7),
        with_env(
            case("ifname too long", good.clone(), &ns, 4),
            vec![("CNI_IFNAME", "sixteen-bytes-xx")],
        ),
        with_env(
            case("no container id", good.clone(), &ns, 4),
            vec![("CNI_CONTAINERID", "")],
        ),
        case("netns is a file", good.clone(), "/etc/hostname", 8),
        case(
            "netns is missing",
            good.clone(),
            "/run/netns/cfct-does-not-exist",
            8,
        ),
        case("netns is the node's own", good.clone(), "/proc/self/ns/net", 8),
        case("oversized stdin", vec![b' '; (1 << 20) + 10], &ns, 6),
    ];
    for c in cases {
        let out = pod.exec_raw(PLUGIN, "ADD", &c.stdin, &c.netns, &c.env);
        assert_eq!(out.error_code(), c.code, "{}: {out:?}", c.what);
        assert_eq!(pod.snapshot(), before, "{} changed the pod", c.what);
    }
}

#[test]
fn version_lists_every_supported_version() {
    let pod = Pod::new("1.0.0");
    let out = pod.exec_raw(PLUGIN, "VERSION", br#"{"cniVersion":"0.3.1"}"#, "", &[]);
    let answer = out.assert_ok().json();
    assert_eq!(answer["cniVersion"], "0.3.1");
    assert_eq!(
        answer["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

#[test]
fn gc_and_status_succeed_and_change_nothing() {
    let pod = Pod::new("1.1.0");
    pod.plugin("ADD", &pod.conf(json!({}))).assert_ok();
    let snapshot = pod.snapshot();
    let gc = json!({"cniVersion": "1.1.0", "name": "cfnet", "type": "cuttlefish-cni",
                    "cni.dev/valid-attachments": [], "cni.dev/attachments": []});
    let out = pod.exec_raw(PLUGIN, "GC", gc.to_string().as_bytes(), "", &[]);
    assert!(out.assert_ok().stdout.is_empty());
    let out = pod.exec_raw(PLUGIN, "STATUS", gc.to_string().as_bytes(), "", &[]);
    assert!(out.assert_ok().stdout.is_empty());
    assert_eq!(pod.snapshot(), snapshot);
    let old = json!({"cniVersion": "1.0.0", "name": "cfnet", "type": "cuttlefish-cni"});
    assert_eq!(
        pod.exec_raw(PLUGIN, "GC", old.to_string().as_bytes(), "", &[])
            .error_code(),
        1
    );
}
