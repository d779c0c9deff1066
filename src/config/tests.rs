use super::*;
use crate::cni::{Command, Invocation};
use serde_json::json;

fn add_invocation(cni_args: &[(&str, &str)]) -> Invocation {
    Invocation {
        command: Command::Add {
            attachment: Attachment {
                container_id: "c1".into(),
                ifname: "eth0".into(),
            },
            netns: "/run/netns/x".into(),
        },
        cni_args: cni_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn parse(conf: Value) -> Result<NetConf, Error> {
    NetConf::parse(conf.to_string().as_bytes(), &add_invocation(&[]))
}

fn base() -> Value {
    json!({"cniVersion": "1.0.0", "name": "cilium", "type": "cuttlefish-cni"})
}

fn with(mut conf: Value, key: &str, value: Value) -> Value {
    conf.as_object_mut().unwrap().insert(key.into(), value);
    conf
}

#[test]
fn defaults() {
    let conf = parse(base()).unwrap();
    assert_eq!(
        conf.request,
        PodRequest {
            instances: 1,
            base: 1,
            tap_owner: None,
            tap_group: None,
            clamp_mss: true,
            dns_redirect: None,
        }
    );
    assert!(!conf.allocation.vsock_cid);
    assert_eq!(conf.allocation.cid_range, (3, 1026));
    assert!(conf.obsolete.is_empty());
    assert_eq!(
        conf.allocation.data_dir,
        PathBuf::from("/var/lib/cni/cuttlefish-cni")
    );
    assert_eq!(conf.select, Select::Annotated);
    assert!(!conf.selected);
    assert_eq!(conf.log.level, log::LevelFilter::Info);
    assert!(conf.unknown_keys.is_empty());
}

#[test]
fn plugin_keys_are_read() {
    let conf = parse(json!({
        "cniVersion": "0.3.1", "name": "n", "type": "cuttlefish-cni", "instances": 3,
        "baseInstance": 63, "tapOwner": 1000, "tapGroup": 0, "select": "all",
        "logFile": "/var/log/cf.log", "logLevel": "debug", "extra": 1
    }))
    .unwrap();
    assert_eq!(conf.request.instances, 3);
    assert_eq!(conf.request.base, 63);
    assert_eq!(conf.request.tap_owner, Some(1000));
    assert_eq!(conf.request.tap_group, Some(0));
    assert!(conf.selected);
    assert_eq!(conf.unknown_keys, vec!["extra".to_string()]);
}

#[test]
fn annotations_select_and_override() {
    let conf = parse(with(
        base(),
        "runtimeConfig",
        json!({"io.kubernetes.cri.pod-annotations": {"cuttlefish.dev/instances": "4", "cuttlefish.dev/tap-owner": "107"}}),
    ))
    .unwrap();
    assert!(conf.selected);
    assert_eq!(conf.request.instances, 4);
    assert_eq!(conf.request.tap_owner, Some(107));
}

#[test]
fn multus_args_and_cni_args_override() {
    let conf = parse(with(
        base(),
        "args",
        json!({"cni": {"instances": 2, "baseInstance": "5"}}),
    ))
    .unwrap();
    assert_eq!((conf.request.instances, conf.request.base), (2, 5));
    let inv = add_invocation(&[("IgnoreUnknown", "1"), ("CUTTLEFISH_TAP_GROUP", "44")]);
    let conf = NetConf::parse(base().to_string().as_bytes(), &inv).unwrap();
    assert!(conf.selected);
    assert_eq!(conf.request.tap_group, Some(44));
}

#[test]
fn per_pod_value_beats_plugin_key() {
    let conf = parse(with(
        with(base(), "instances", json!(8)),
        "args",
        json!({"cni": {"instances": 2}}),
    ))
    .unwrap();
    assert_eq!(conf.request.instances, 2);
}

#[test]
fn bad_values_name_field_and_value() {
    let cases: Vec<(Value, &str)> = vec![
        (with(base(), "instances", json!(0)), "instances"),
        (with(base(), "instances", json!(129)), "instances"),
        (with(base(), "instances", json!("2")), "instances"),
        (with(base(), "instances", json!(1.5)), "instances"),
        (with(base(), "baseInstance", json!(0)), "baseInstance"),
        (
            with(with(base(), "baseInstance", json!(100)), "instances", json!(30)),
            "instances",
        ),
        (with(base(), "tapOwner", json!(-1)), "tapOwner"),
        (with(base(), "tapOwner", json!(4294967295u64)), "tapOwner"),
        (with(base(), "tapGroup", json!(1e20)), "tapGroup"),
        (with(base(), "select", json!("some")), "select"),
        (with(base(), "logFile", json!("relative.log")), "logFile"),
        (
            with(base(), "logFile", json!("/var/log/../etc/cf.log")),
            "logFile",
        ),
        (with(base(), "logFile", json!("/var/log/./cf.log")), "logFile"),
        (with(base(), "logFile", json!("/var/log/")), "logFile"),
        (with(base(), "logLevel", json!("loud")), "logLevel"),
        (with(base(), "name", json!("bad name")), "name"),
        (with(base(), "prevResult", json!([])), "prevResult"),
        (
            with(base(), "prevResult", json!({"interfaces": [{"name": 1}]})),
            "prevResult.interfaces[0].name",
        ),
        (
            with(base(), "prevResult", json!({"ips": [{"address": "10.0.0.1"}]})),
            "prevResult.ips[0].address",
        ),
        (
            with(
                base(),
                "prevResult",
                json!({"interfaces": [], "ips": [{"address": "10.0.0.1/24", "interface": 0}]}),
            ),
            "prevResult.ips[0].interface",
        ),
        (
            with(base(), "args", json!({"cni": {"tapOwner": "root"}})),
            "args.cni.tapOwner",
        ),
        (
            with(base(), "cni.dev/valid-attachments", json!([{"containerID": 1}])),
            "cni.dev/valid-attachments[0].containerID",
        ),
    ];
    for (conf, field) in cases {
        let err = parse(conf.clone()).unwrap_err();
        assert_eq!(err.code(), 7, "{conf}: {err}");
        assert!(err.to_string().starts_with(field), "{conf}: {err}");
    }
}

#[test]
fn version_and_decoding_errors_have_their_codes() {
    assert_eq!(
        parse(with(base(), "cniVersion", json!("0.2.0")))
            .unwrap_err()
            .code(),
        1
    );
    let inv = add_invocation(&[]);
    assert_eq!(NetConf::parse(b"{not json", &inv).unwrap_err().code(), 6);
    assert_eq!(NetConf::parse(b"[1]", &inv).unwrap_err().code(), 6);
    assert_eq!(NetConf::parse(&[0xff, 0xfe], &inv).unwrap_err().code(), 6);
    let huge = vec![b' '; MAX_STDIN_BYTES + 1];
    assert_eq!(NetConf::parse(&huge, &inv).unwrap_err().code(), 6);
}

#[test]
fn conflicting_overrides_are_rejected() {
    let conf = with(
        with(base(), "args", json!({"cni": {"instances": 2}})),
        "runtimeConfig",
        json!({"io.kubernetes.cri.pod-annotations": {"cuttlefish.dev/instances": "3"}}),
    );
    let err = parse(conf).unwrap_err();
    assert_eq!(err.code(), 7);
    assert!(err.to_string().contains("conflicting"), "{err}");
}

#[test]
fn gc_attachments_accept_both_spellings() {
    let list = json!([{"containerID": "a", "ifname": "eth0"}]);
    for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
        let conf = parse(with(base(), key, list.clone())).unwrap();
        assert_eq!(conf.valid_attachments.unwrap().len(), 1, "{key}");
    }
}

#[test]
fn peek_version_reads_only_the_version() {
    assert_eq!(
        peek_version(br#"{"cniVersion":"0.4.0"}"#).as_deref(),
        Some("0.4.0")
    );
    assert_eq!(peek_version(b"garbage"), None);
}

#[test]
fn answers_are_in_the_configurations_version_when_supported_else_the_latest() {
    assert_eq!(answer_version(br#"{"cniVersion":"0.3.1"}"#), "0.3.1");
    for unsupported in [&br#"{"cniVersion":"0.2.0"}"#[..], b"{}", b"garbage", b""] {
        assert_eq!(answer_version(unsupported), "1.1.0");
    }
}

fn del_invocation_with(cni_args: &[(&str, &str)]) -> Invocation {
    Invocation {
        cni_args: cni_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..del_invocation()
    }
}

fn check_invocation() -> Invocation {
    Invocation {
        command: Command::Check {
            attachment: Attachment {
                container_id: "c1".into(),
                ifname: "eth0".into(),
            },
            netns: "/run/netns/x".into(),
        },
        cni_args: Vec::new(),
    }
}

#[test]
fn base_instance_auto_is_refused_by_add_and_accepted_for_pods_built_before_the_upgrade() {
    let plugin_key = with(base(), "baseInstance", json!("auto"));
    let err = parse(plugin_key.clone()).unwrap_err();
    assert_eq!(err.code(), 7);
    let text = err.to_string();
    assert!(
        text.starts_with("baseInstance = \"auto\": was removed")
            && text.contains("cuttlefish.dev/vsock-cid")
            && text.contains("vsockCid: \"auto\""),
        "{text}"
    );
    let annotation = with(
        base(),
        "runtimeConfig",
        json!({"io.kubernetes.cri.pod-annotations": {"cuttlefish.dev/base-instance": "auto"}}),
    );
    let err = parse(annotation.clone()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("runtimeConfig[\"io.kubernetes.cri.pod-annotations\"][\"cuttlefish.dev/base-instance\"] = auto: was removed"),
        "{err}"
    );
    let pod_auto = [("CUTTLEFISH_BASE_INSTANCE", "auto")];
    let err = error_of(&base(), &add_invocation(&pod_auto));
    assert!(
        err.to_string()
            .starts_with("CNI_ARGS CUTTLEFISH_BASE_INSTANCE = auto"),
        "{err}"
    );

    for (conf, invocation) in [
        (plugin_key.clone(), del_invocation()),
        (plugin_key, check_invocation()),
        (annotation, del_invocation()),
        (base(), del_invocation_with(&pod_auto)),
    ] {
        let conf = NetConf::parse(conf.to_string().as_bytes(), &invocation).unwrap();
        assert_eq!(conf.request.base, 1);
        assert_eq!(conf.obsolete.len(), 1, "{:?}", conf.obsolete);
        assert!(conf.obsolete[0].contains("accepted for pods built before the upgrade"));
    }
}

#[test]
fn instance_range_is_refused_by_add_and_accepted_otherwise() {
    let conf = with(base(), "instanceRange", json!([10, 128]));
    let err = parse(conf.clone()).unwrap_err();
    assert_eq!(err.code(), 7);
    assert!(
        err.to_string()
            .starts_with("instanceRange = [10,128]: was removed")
            && err.to_string().contains("cidRange"),
        "{err}"
    );
    let del = NetConf::parse(conf.to_string().as_bytes(), &del_invocation()).unwrap();
    assert_eq!(del.obsolete.len(), 1);
    // As the previous release wrote it: both removed keys, and each is reported.
    let old = with(conf, "baseInstance", json!("auto"));
    let del = NetConf::parse(old.to_string().as_bytes(), &del_invocation()).unwrap();
    assert_eq!(del.obsolete.len(), 2);
    assert!(del.unknown_keys.is_empty());
}

#[test]
fn vsock_cid_auto_and_cid_range() {
    let conf = parse(with(base(), "vsockCid", json!("auto"))).unwrap();
    assert!(conf.allocation.vsock_cid);
    assert_eq!(conf.allocation.cid_range, (3, 1026));
    let conf = with(
        with(
            with(base(), "vsockCid", json!("auto")),
            "cidRange",
            json!([1000, 1002]),
        ),
        "instances",
        json!(3),
    );
    assert_eq!(parse(conf).unwrap().allocation.cid_range, (1000, 1002));
    let widest = with(base(), "cidRange", json!([3, 4294967294u64]));
    assert_eq!(parse(widest).unwrap().allocation.cid_range, (3, u32::MAX - 1));
}

#[test]
fn allocation_keys_are_checked() {
    let auto = with(base(), "vsockCid", json!("auto"));
    let cases = [
        (with(auto.clone(), "cidRange", json!([2, 10])), "cidRange"),
        (with(auto.clone(), "cidRange", json!([5, 4])), "cidRange"),
        (
            with(auto.clone(), "cidRange", json!([3, 4294967295u64])),
            "cidRange",
        ),
        (with(auto.clone(), "cidRange", json!([3])), "cidRange"),
        (with(auto.clone(), "cidRange", json!([3, 4, 5])), "cidRange"),
        (with(auto.clone(), "cidRange", json!("3-1026")), "cidRange"),
        (with(auto.clone(), "cidRange", json!([3.5, 10])), "cidRange"),
        (
            with(
                with(auto.clone(), "cidRange", json!([3, 4])),
                "instances",
                json!(3),
            ),
            "instances",
        ),
        (with(auto.clone(), "dataDir", json!("var/lib")), "dataDir"),
        (with(base(), "vsockCid", json!(true)), "vsockCid"),
        (with(base(), "vsockCid", json!("automatic")), "vsockCid"),
        (with(base(), "vsockCid", json!(3)), "vsockCid"),
        (with(base(), "baseInstance", json!("automatic")), "baseInstance"),
    ];
    refused_on_add_and_del(&cases);
}

#[test]
fn dns_redirect_takes_the_runtime_dns_or_a_list() {
    let acting = with(base(), "select", json!("all"));
    let from_runtime = with(
        with(acting, "dnsRedirect", json!(true)),
        "runtimeConfig",
        json!({"dns": {"servers": ["fd00::10", "10.96.0.10"]}}),
    );
    assert_eq!(
        parse(from_runtime).unwrap().request.dns_redirect,
        Some("10.96.0.10".parse().unwrap())
    );
    let listed = with(base(), "dnsRedirect", json!(["10.0.0.53"]));
    assert_eq!(
        parse(listed).unwrap().request.dns_redirect,
        Some("10.0.0.53".parse().unwrap())
    );
    assert_eq!(parse(base()).unwrap().request.dns_redirect, None);
    assert!(
        !parse(with(base(), "clampMss", json!(false)))
            .unwrap()
            .request
            .clamp_mss
    );
}

#[test]
fn dns_redirect_without_a_server_fails_add_but_not_del() {
    let conf = with(with(base(), "select", json!("all")), "dnsRedirect", json!(true));
    let err = parse(conf.clone()).unwrap_err();
    assert_eq!(err.code(), 7);
    assert!(err.to_string().starts_with("runtimeConfig.dns.servers"), "{err}");
    let del = Invocation {
        command: Command::Del {
            attachment: Attachment {
                container_id: "c1".into(),
                ifname: "eth0".into(),
            },
            netns: None,
        },
        cni_args: Vec::new(),
    };
    assert!(NetConf::parse(conf.to_string().as_bytes(), &del).is_ok());
    for bad in [json!("yes"), json!(["dns.example"]), json!([53])] {
        assert_eq!(
            parse(with(base(), "dnsRedirect", bad.clone()))
                .unwrap_err()
                .code(),
            7,
            "{bad}"
        );
    }
    assert_eq!(
        parse(with(base(), "clampMss", json!("no"))).unwrap_err().code(),
        7
    );
}

#[test]
fn plugin_keys_raise_no_unknown_key_warning() {
    let conf = json!({
        "cniVersion": "1.1.0", "name": "n", "type": "cuttlefish-cni", "instances": 1, "baseInstance": 2,
        "tapOwner": 1, "tapGroup": 1, "select": "all", "maxInstancesPerPod": 4, "logFile": "/l", "logLevel": "info",
        "vsockCid": "auto", "cidRange": [3, 4], "dataDir": "/d", "clampMss": true, "dnsRedirect": ["10.0.0.1"],
        "capabilities": {}, "runtimeConfig": {}, "args": {}, "ipam": {}, "dns": {}, "cni.dev/valid-attachments": []
    });
    assert_eq!(parse(conf).unwrap().unknown_keys, Vec::<String>::new());
}

fn del_invocation() -> Invocation {
    Invocation {
        command: Command::Del {
            attachment: Attachment {
                container_id: "c1".into(),
                ifname: "eth0".into(),
            },
            netns: None,
        },
        cni_args: Vec::new(),
    }
}

fn error_of(conf: &Value, invocation: &Invocation) -> Error {
    NetConf::parse(conf.to_string().as_bytes(), invocation).unwrap_err()
}

#[test]
fn plugin_keys_are_checked_even_when_a_pod_overrides_them() {
    let cases = [
        (
            with(
                with(base(), "instances", json!("2")),
                "args",
                json!({"cni": {"instances": 2}}),
            ),
            "instances",
        ),
        (
            with(
                with(base(), "baseInstance", json!("first")),
                "args",
                json!({"cni": {"baseInstance": 3}}),
            ),
            "baseInstance",
        ),
        (
            with(
                with(base(), "tapOwner", json!("root")),
                "args",
                json!({"cni": {"tapOwner": 1000}}),
            ),
            "tapOwner",
        ),
        (
            with(
                with(base(), "tapGroup", json!(-1)),
                "args",
                json!({"cni": {"tapGroup": 1000}}),
            ),
            "tapGroup",
        ),
        (
            with(
                with(with(base(), "baseInstance", json!(127)), "instances", json!(3)),
                "args",
                json!({"cni": {"instances": 1}}),
            ),
            "instances",
        ),
        (with(base(), "agentSocket", json!("relative.sock")), "agentSocket"),
        (with(base(), "dnsServers", json!(["dns.example"])), "dnsServers"),
        (with(base(), "dnsRedirect", json!(["fd00::10"])), "dnsRedirect"),
    ];
    refused_on_add_and_del(&cases);
}

#[test]
fn dns_redirect_is_resolved_only_for_pods_that_act() {
    let annotated = with(
        with(base(), "dnsRedirect", json!(true)),
        "runtimeConfig",
        json!({"dns": {"servers": 53}}),
    );
    let conf = parse(annotated.clone()).unwrap();
    assert!(!conf.selected);
    assert_eq!(conf.request.dns_redirect, None);
    let acting = add_invocation(&[("CUTTLEFISH_INSTANCES", "1")]);
    let err = error_of(&annotated, &acting);
    assert_eq!(err.code(), 7);
    assert!(err.to_string().starts_with("runtimeConfig.dns.servers"), "{err}");
    // The value itself is still checked for every pod.
    let err = parse(with(base(), "dnsRedirect", json!("yes"))).unwrap_err();
    assert!(err.to_string().starts_with("dnsRedirect"), "{err}");
}

#[test]
fn a_pod_may_not_ask_for_more_than_max_instances_per_pod() {
    let asks = |n: &str| add_invocation(&[("CUTTLEFISH_INSTANCES", n)]);
    let sixteen = NetConf::parse(base().to_string().as_bytes(), &asks("16")).unwrap();
    assert_eq!(sixteen.request.instances, 16);
    let err = error_of(&base(), &asks("17"));
    assert_eq!(err.code(), 7);
    let text = err.to_string();
    assert!(
        text.starts_with("CNI_ARGS CUTTLEFISH_INSTANCES = 17") && text.contains("maxInstancesPerPod (16)"),
        "{text}"
    );
    let auto = with(base(), "vsockCid", json!("auto"));
    let err = error_of(&auto, &asks("128"));
    assert!(err.to_string().contains("maxInstancesPerPod (16)"), "{err}");
    let four = with(base(), "maxInstancesPerPod", json!(4));
    assert!(error_of(&four, &asks("5"))
        .to_string()
        .contains("maxInstancesPerPod (4)"));
    let raised = with(base(), "maxInstancesPerPod", json!(32));
    assert_eq!(
        NetConf::parse(raised.to_string().as_bytes(), &asks("32"))
            .unwrap()
            .request
            .instances,
        32
    );
    // A pod admitted under an earlier limit can still be deleted.
    let del = Invocation {
        cni_args: vec![("CUTTLEFISH_INSTANCES".into(), "17".into())],
        ..del_invocation()
    };
    assert!(NetConf::parse(base().to_string().as_bytes(), &del).is_ok());
}

#[test]
fn max_instances_per_pod_is_checked_and_bounds_the_plugin_key() {
    let cases = [
        (with(base(), "maxInstancesPerPod", json!(0)), "maxInstancesPerPod"),
        (
            with(base(), "maxInstancesPerPod", json!(129)),
            "maxInstancesPerPod",
        ),
        (
            with(base(), "maxInstancesPerPod", json!("16")),
            "maxInstancesPerPod",
        ),
        (with(base(), "instances", json!(17)), "instances"),
        (
            with(
                with(base(), "instances", json!(8)),
                "maxInstancesPerPod",
                json!(4),
            ),
            "instances",
        ),
    ];
    refused_on_add_and_del(&cases);
    let conf = with(
        with(base(), "instances", json!(20)),
        "maxInstancesPerPod",
        json!(20),
    );
    assert_eq!(parse(conf).unwrap().request.instances, 20);
}

#[test]
fn an_explicit_base_whose_default_cids_fall_in_a_declared_cid_range_is_refused() {
    let pod = |base: &str, n: &str| {
        add_invocation(&[("CUTTLEFISH_BASE_INSTANCE", base), ("CUTTLEFISH_INSTANCES", n)])
    };
    // cidRange set in a network that allocates no CIDs: the device plugin's range.
    let declared = with(base(), "cidRange", json!([100, 1123]));
    let ok = NetConf::parse(declared.to_string().as_bytes(), &pod("90", "8")).unwrap();
    assert_eq!(ok.request.base, 90);
    let err = error_of(&declared, &pod("97", "2"));
    assert_eq!(err.code(), 7);
    let text = err.to_string();
    assert!(
        text.starts_with("CNI_ARGS CUTTLEFISH_BASE_INSTANCE = 97")
            && text.contains("vsock CIDs 99..100")
            && text.contains("cidRange [100, 1123]"),
        "{text}"
    );
    let annotation = with(
        declared.clone(),
        "runtimeConfig",
        json!({"io.kubernetes.cri.pod-annotations": {"cuttlefish.dev/base-instance": "98"}}),
    );
    let err = parse(annotation).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "runtimeConfig[\"io.kubernetes.cri.pod-annotations\"][\"cuttlefish.dev/base-instance\"] = 98"
        ),
        "{err}"
    );
    // With vsockCid "auto" every pod's CIDs are allocated: any base is harmless.
    let allocating = with(declared.clone(), "vsockCid", json!("auto"));
    assert_eq!(
        NetConf::parse(allocating.to_string().as_bytes(), &pod("98", "1"))
            .unwrap()
            .request
            .base,
        98
    );
    // Without a declared range the plugin knows of no other allocator.
    let fixed = NetConf::parse(base().to_string().as_bytes(), &pod("5", "1")).unwrap();
    assert_eq!(fixed.request.base, 5);
    // A plugin-level base is the network's own choice.
    assert_eq!(
        parse(with(declared.clone(), "baseInstance", json!(98)))
            .unwrap()
            .request
            .base,
        98
    );
    // DEL of a pod admitted under an earlier configuration still works.
    let del = del_invocation_with(&[("CUTTLEFISH_BASE_INSTANCE", "98")]);
    assert!(NetConf::parse(declared.to_string().as_bytes(), &del).is_ok());
}

/// Each configuration fails ADD and DEL alike with code 7, its message starting with the field.
fn refused_on_add_and_del(cases: &[(Value, &str)]) {
    for (conf, field) in cases {
        for invocation in [add_invocation(&[]), del_invocation()] {
            let err = error_of(conf, &invocation);
            assert_eq!(err.code(), 7, "{conf}: {err}");
            assert!(err.to_string().starts_with(field), "{conf}: {err}");
        }
    }
}
