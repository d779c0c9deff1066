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
    let annotations =
        |a: serde_json::Value| conf(json!({"runtimeConfig": {"io.kubernetes.cri.pod-annotations": a}}));
    let env = |what, var, value, code| BadInput {
        what,
        stdin: good.clone().into_bytes(),
        netns: ns.clone(),
        env: vec![(var, value)],
        code,
    };
    let dir = pod.dir.join("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    let node_link = pod.dir.join("node-netns-link");
    let _ = std::os::unix::fs::symlink(pod.node.path(), &node_link);

    let cases = vec![
        // Decoding: 6
        case("malformed JSON", "{\"cniVersion\":", &ns, 6),
        case("truncated JSON", &good.as_bytes()[..good.len() / 2], &ns, 6),
        case("empty stdin", "", &ns, 6),
        case("non-UTF-8", vec![0xff, 0xfe, 0xfd], &ns, 6),
        case("a JSON array", "[1, 2]", &ns, 6),
        case("a JSON string", "\"config\"", &ns, 6),
        case("oversized stdin", vec![b' '; (1 << 20) + 10], &ns, 6),
        // Versions: 1
        case("unknown version", conf(json!({"cniVersion": "9.9.9"})), &ns, 1),
        case("too old a version", conf(json!({"cniVersion": "0.2.0"})), &ns, 1),
        case("empty version", conf(json!({"cniVersion": ""})), &ns, 1),
        // Network configuration: 7
        case("cniVersion not a string", conf(json!({"cniVersion": 1})), &ns, 7),
        case("name missing", conf(json!({"name": null})), &ns, 7),
        case("name with a space", conf(json!({"name": "my net"})), &ns, 7),
        case("type not a string", conf(json!({"type": 5})), &ns, 7),
        case("instances 0", conf(json!({"instances": 0})), &ns, 7),
        case("instances 129", conf(json!({"instances": 129})), &ns, 7),
        case("instances as a string", conf(json!({"instances": "2"})), &ns, 7),
        case("instances fractional", conf(json!({"instances": 1.5})), &ns, 7),
        case("instances negative", conf(json!({"instances": -1})), &ns, 7),
        case("baseInstance 0", conf(json!({"baseInstance": 0})), &ns, 7),
        case("baseInstance 129", conf(json!({"baseInstance": 129})), &ns, 7),
        case(
            "range past 128",
            conf(json!({"baseInstance": 127, "instances": 3})),
            &ns,
            7,
        ),
        case("negative uid", conf(json!({"tapOwner": -1})), &ns, 7),
        case("uid u32::MAX", conf(json!({"tapOwner": 4294967295u64})), &ns, 7),
        case("huge uid", conf(json!({"tapOwner": 1e20})), &ns, 7),
        case("gid as a word", conf(json!({"tapGroup": "wheel"})), &ns, 7),
        case("select unknown", conf(json!({"select": "some"})), &ns, 7),
        case("select not a string", conf(json!({"select": true})), &ns, 7),
        case("relative logFile", conf(json!({"logFile": "cf.log"})), &ns, 7),
        case(
            "logFile with ..",
            conf(json!({"logFile": format!("/var/log/../..{}/cf.log", pod.dir.display())})),
            &ns,
            7,
        ),
        case("logFile a directory", conf(json!({"logFile": dir})), &ns, 7),
        case("logFile a device", conf(json!({"logFile": "/dev/null"})), &ns, 7),
        case(
            "logFile in a missing directory outside /var/log",
            conf(json!({"logFile": pod.dir.join("missing/cf.log")})),
            &ns,
            7,
        ),
        case(
            "maxInstancesPerPod 0",
            conf(json!({"maxInstancesPerPod": 0})),
            &ns,
            7,
        ),
        case(
            "maxInstancesPerPod 129",
            conf(json!({"maxInstancesPerPod": 129})),
            &ns,
            7,
        ),
        case(
            "instances above maxInstancesPerPod",
            conf(json!({"instances": 17})),
            &ns,
            7,
        ),
        case(
            "instances as a string beside a per-pod value",
            conf(json!({"instances": "2", "args": {"cni": {"instances": 2}}})),
            &ns,
            7,
        ),
        case(
            "tapOwner a word beside a per-pod value",
            conf(json!({"tapOwner": "root", "args": {"cni": {"tapOwner": 1000}}})),
            &ns,
            7,
        ),
        case(
            "dnsServers not addresses without dhcp",
            conf(json!({"dnsServers": ["dns.example"]})),
            &ns,
            7,
        ),
        case("unknown logLevel", conf(json!({"logLevel": "loud"})), &ns, 7),
        case(
            "runtimeConfig a string",
            conf(json!({"runtimeConfig": "x"})),
            &ns,
            7,
        ),
        case(
            "annotations an array",
            annotations(json!(["cuttlefish.dev/instances"])),
            &ns,
            7,
        ),
        case(
            "annotation instances 0",
            annotations(json!({"cuttlefish.dev/instances": "0"})),
            &ns,
            7,
        ),
        case(
            "annotation negative owner",
            annotations(json!({"cuttlefish.dev/tap-owner": "-5"})),
            &ns,
            7,
        ),
        case(
            "annotation range past 128",
            annotations(json!({"cuttlefish.dev/base-instance": "128", "cuttlefish.dev/instances": "2"})),
            &ns,
            7,
        ),
        case(
            "annotation instances above maxInstancesPerPod",
            annotations(json!({"cuttlefish.dev/instances": "128"})),
            &ns,
            7,
        ),
        case(
            "annotation base whose default CIDs fall in a declared cidRange",
            conf(
                json!({"cidRange": [3, 1026], "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"cuttlefish.dev/base-instance": "1"}}}),
            ),
            &ns,
            7,
        ),
        case(
            "baseInstance auto, removed",
            conf(json!({"baseInstance": "auto"})),
            &ns,
            7,
        ),
        case(
            "annotation base-instance auto, removed",
            annotations(json!({"cuttlefish.dev/base-instance": "auto"})),
            &ns,
            7,
        ),
        case(
            "instanceRange, removed",
            conf(json!({"instanceRange": [1, 128]})),
            &ns,
            7,
        ),
        case("vsockCid true", conf(json!({"vsockCid": true})), &ns, 7),
        case(
            "cidRange from 2",
            conf(json!({"vsockCid": "auto", "cidRange": [2, 10]})),
            &ns,
            7,
        ),
        case(
            "cidRange past u32::MAX - 1",
            conf(json!({"cidRange": [3, 4294967295u64]})),
            &ns,
            7,
        ),
        case(
            "more instances than cidRange holds",
            conf(json!({"vsockCid": "auto", "cidRange": [3, 4], "instances": 3})),
            &ns,
            7,
        ),
        case(
            "args.cni a string",
            conf(json!({"args": {"cni": "instances=2"}})),
            &ns,
            7,
        ),
        case(
            "args.cni.instances a word",
            conf(json!({"args": {"cni": {"instances": "two"}}})),
            &ns,
            7,
        ),
        case(
            "conflicting overrides",
            conf(
                json!({"args": {"cni": {"instances": 3}}, "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"cuttlefish.dev/instances": "2"}}}),
            ),
            &ns,
            7,
        ),
        case("missing prevResult", conf(json!({"prevResult": null})), &ns, 7),
        case("prevResult an array", conf(json!({"prevResult": []})), &ns, 7),
        case(
            "prevResult interfaces an object",
            conf(json!({"prevResult": {"interfaces": {}}})),
            &ns,
            7,
        ),
        case(
            "prevResult bad address",
            conf(json!({"prevResult": {"ips": [{"address": "10.0.0.300/24"}]}})),
            &ns,
            7,
        ),
        case(
            "prevResult dangling interface index",
            conf(
                json!({"prevResult": {"interfaces": [], "ips": [{"address": "10.0.0.2/24", "interface": 3}]}}),
            ),
            &ns,
            7,
        ),
        // Environment: 4 (and 7 for a bad per-pod value in CNI_ARGS)
        env("no command", "CNI_COMMAND", "", 4),
        env("unknown command", "CNI_COMMAND", "REMOVE", 4),
        env("no container id", "CNI_CONTAINERID", "", 4),
        env("container id with a slash", "CNI_CONTAINERID", "a/b", 4),
        env("no ifname", "CNI_IFNAME", "", 4),
        env("ifname of 16 bytes", "CNI_IFNAME", "sixteen-bytes-xx", 4),
        env("ifname with a colon", "CNI_IFNAME", "eth0:1", 4),
        env("no netns on ADD", "CNI_NETNS", "", 4),
        env("CNI_ARGS entry without =", "CNI_ARGS", "IgnoreUnknown=1;FOO", 4),
        env(
            "CNI_ARGS instances a word",
            "CNI_ARGS",
            "CUTTLEFISH_INSTANCES=abc",
            7,
        ),
        env(
            "CNI_ARGS instances above maxInstancesPerPod",
            "CNI_ARGS",
            "CUTTLEFISH_INSTANCES=17",
            7,
        ),
        env(
            "CNI_ARGS base instance auto, removed",
            "CNI_ARGS",
            "CUTTLEFISH_BASE_INSTANCE=auto",
            7,
        ),
        // The network namespace: 8
        case("netns is a regular file", good.clone(), "/etc/hostname", 8),
        case("netns is a directory", good.clone(), dir.to_str().unwrap(), 8),
        case(
            "netns is missing",
            good.clone(),
            "/run/netns/cfct-does-not-exist",
            8,
        ),
        case("netns is the node's own", good.clone(), "/proc/self/ns/net", 8),
        case(
            "netns is a symlink to the node's",
            good.clone(),
            node_link.to_str().unwrap(),
            8,
        ),
        case("netns is a UTS namespace", good.clone(), "/proc/self/ns/uts", 8),
    ];
    assert!(cases.len() >= 40, "the catalogue has {} cases", cases.len());
    for c in cases {
        let out = pod.exec_raw(PLUGIN, "ADD", &c.stdin, &c.netns, &c.env);
        assert_eq!(out.error_code(), c.code, "{}: {out:?}", c.what);
        assert_eq!(pod.snapshot(), before, "{} changed the pod", c.what);
        assert!(pod.allocated_cids().is_empty(), "{} allocated a CID", c.what);
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
