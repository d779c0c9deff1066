//! Every file in conf/ is checked: it parses, the cuttlefish-cni entry of every conflist in it is
//! accepted by the plugin's own configuration parser (with no unknown key), and the files that
//! refer to each other agree. A file of a kind this test does not know fails it.

use cuttlefish_cni::cni::{Attachment, Command, Invocation};
use cuttlefish_cni::config::NetConf;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn conf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf")
}

fn add() -> Invocation {
    Invocation {
        command: Command::Add {
            attachment: Attachment {
                container_id: "conf-test".into(),
                ifname: "eth0".into(),
            },
            netns: "/run/netns/conf-test".into(),
        },
        cni_args: Vec::new(),
    }
}

/// Checks a conflist and returns our entry, as the runtime would hand it to the plugin.
fn check_conflist(text: &str, args_cni: Value, origin: &str) -> NetConf {
    let conflist: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let plugins = conflist["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("{origin}: no plugins"));
    assert!(
        plugins.len() >= 2,
        "{origin}: cuttlefish-cni must be chained after a primary"
    );
    assert_ne!(
        plugins[0]["type"], "cuttlefish-cni",
        "{origin}: cuttlefish-cni cannot be first"
    );
    let mut ours = plugins.last().unwrap().clone();
    assert_eq!(
        ours["type"], "cuttlefish-cni",
        "{origin}: cuttlefish-cni must be the last plugin"
    );
    // What a runtime adds: version, name, runtimeConfig for declared capabilities, prevResult.
    ours["cniVersion"] = conflist["cniVersion"].clone();
    ours["name"] = conflist["name"].clone();
    if ours["capabilities"]["dns"] == true {
        ours["runtimeConfig"] = json!({"dns": {"servers": ["10.96.0.10"]}});
    }
    ours["args"] = json!({"cni": args_cni});
    ours["prevResult"] =
        json!({"cniVersion": conflist["cniVersion"], "interfaces": [{"name": "eth0"}], "ips": []});
    let conf =
        NetConf::parse(ours.to_string().as_bytes(), &add()).unwrap_or_else(|e| panic!("{origin}: {e}"));
    assert!(
        conf.unknown_keys.is_empty(),
        "{origin}: unknown keys {:?}",
        conf.unknown_keys
    );
    conf
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            let value: serde_norway::Value =
                serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::to_value(value).unwrap()
        })
        .collect()
}

#[test]
fn every_file_in_conf_is_valid() {
    let mut seen = Vec::new();
    let mut configmap = None;
    let mut helm = None;
    let mut nad_name = None;
    let mut multus_pod = None;
    for entry in std::fs::read_dir(conf_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match path.extension().and_then(|e| e.to_str()) {
            Some("conflist") => {
                check_conflist(&std::fs::read_to_string(&path).unwrap(), json!({}), &name);
            }
            Some("sh") => {
                let status = std::process::Command::new("sh")
                    .arg("-n")
                    .arg(&path)
                    .status()
                    .unwrap();
                assert!(status.success(), "{name}: shell syntax");
            }
            Some("yaml") => {
                for doc in yaml_documents(&path) {
                    match doc["kind"].as_str() {
                        Some("ConfigMap") => {
                            let text = doc["data"]["cni-config"].as_str().expect("data.cni-config");
                            let conf = check_conflist(text, json!({}), &name);
                            assert_eq!(
                                conf.name, "cilium",
                                "{name}: Cilium needs its network named cilium"
                            );
                            configmap = Some(doc);
                        }
                        Some("NetworkAttachmentDefinition") => {
                            check_conflist(
                                doc["spec"]["config"].as_str().expect("spec.config"),
                                json!({}),
                                &name,
                            );
                            nad_name = Some(doc["metadata"]["name"].as_str().unwrap().to_string());
                        }
                        Some("Pod") => multus_pod = Some(doc),
                        None if doc.get("cni").is_some() => helm = Some(doc),
                        other => panic!("{name}: no check for a document of kind {other:?}"),
                    }
                }
            }
            _ => panic!("{name}: no check for this kind of file; add one to tests/conf.rs"),
        }
        seen.push(name);
    }
    assert!(seen.len() >= 6, "{seen:?}");

    // Helm values point at the ConfigMap.
    let (helm, configmap) = (helm.expect("Helm values"), configmap.expect("a ConfigMap"));
    assert_eq!(helm["cni"]["customConf"], true);
    assert_eq!(helm["cni"]["configMap"], configmap["metadata"]["name"]);
    assert!(configmap["data"]
        .get(helm["cni"]["configMapKey"].as_str().unwrap())
        .is_some());

    // The Multus example pod selects the NAD, and its cni-args are valid per-pod keys.
    let pod = multus_pod.expect("a Multus example pod");
    let selection: Value = serde_json::from_str(
        pod["metadata"]["annotations"]["v1.multus-cni.io/default-network"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(selection[0]["name"].as_str(), nad_name.as_deref());
    let nad = yaml_documents(&conf_dir().join("multus-nad.yaml")).remove(0);
    let conf = check_conflist(
        nad["spec"]["config"].as_str().unwrap(),
        selection[0]["cni-args"].clone(),
        "multus pod",
    );
    assert_eq!(conf.request.instances, 2);
    assert!(conf.selected);
}

/// Runs conf/cvd-vsock-cid.sh with only `env` (and PATH) set; its stdout on success.
fn vsock_cid_script(env: &[(&str, &str)]) -> Result<String, String> {
    let out = std::process::Command::new("sh")
        .arg(conf_dir().join("cvd-vsock-cid.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    if out.status.success() {
        assert!(stderr.is_empty(), "{env:?}: {stderr}");
        Ok(stdout.trim_end_matches('\n').to_string())
    } else {
        assert!(stdout.is_empty(), "{env:?}: printed {stdout:?} and failed");
        Err(stderr)
    }
}

/// The CID launch_cvd gives each of `instances` instances for a `--vsock_guest_cid` flag:
/// `vsock_guest_cid_vec[i] + num - GetInstance()`, that is vector[i] + i with instances
/// numbered from the base, where an index past the vector's end takes its first value
/// (assemble_cvd's flags.cc, GetFlagIntValueForInstances).
fn launch_cvd_cids(flag: &str, instances: usize) -> Vec<u64> {
    let vector: Vec<u64> = flag
        .strip_prefix("--vsock_guest_cid=")
        .unwrap_or_else(|| panic!("not the flag: {flag:?}"))
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    (0..instances)
        .map(|i| vector.get(i).copied().unwrap_or(vector[0]) + i as u64)
        .collect()
}

#[test]
fn the_vsock_cid_script_maps_instance_i_to_the_i_th_cid_from_the_device_plugin() {
    let sets: [&[u64]; 6] = [
        &[3],
        &[3, 4, 5],
        &[3, 7, 8],
        &[10, 12, 14, 15],
        &[1000, 1001, 1003, 1004, 1010],
        &[4294967290, 4294967294],
    ];
    for set in sets {
        let list = set.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let lowest = set[0].to_string();
        for env in [
            vec![("VSOCK_CIDS", list.as_str())],
            vec![("VSOCK_CIDS", list.as_str()), ("VSOCK_CID", lowest.as_str())],
        ] {
            let flag = vsock_cid_script(&env).unwrap_or_else(|e| panic!("{env:?}: {e}"));
            assert_eq!(launch_cvd_cids(&flag, set.len()), set, "{env:?}: {flag}");
            let contiguous = set.windows(2).all(|w| w[1] == w[0] + 1);
            assert_eq!(!flag.contains(','), contiguous, "{env:?}: {flag}");
        }
    }
    // VSOCK_CID alone: the lowest of a contiguous set.
    let flag = vsock_cid_script(&[("VSOCK_CID", "41")]).unwrap();
    assert_eq!(launch_cvd_cids(&flag, 3), [41, 42, 43]);
}

#[test]
fn the_vsock_cid_script_refuses_what_is_not_an_ascending_cid_list() {
    for env in [
        vec![("VSOCK_CIDS", "5,4")],
        vec![("VSOCK_CIDS", "4,4")],
        vec![("VSOCK_CIDS", "2")],
        vec![("VSOCK_CIDS", "4294967295")],
        vec![("VSOCK_CIDS", "99999999999999999999")],
        vec![("VSOCK_CIDS", "3,,4")],
        vec![("VSOCK_CIDS", "3,4,")],
        vec![("VSOCK_CIDS", "-3")],
        vec![("VSOCK_CIDS", "03")],
        vec![("VSOCK_CIDS", "3 4")],
        vec![("VSOCK_CIDS", "$(id)")],
        vec![("VSOCK_CID", "x")],
        vec![("VSOCK_CIDS", "3,4"), ("VSOCK_CID", "4")],
    ] {
        let err = vsock_cid_script(&env).expect_err(&format!("{env:?} was accepted"));
        assert!(err.starts_with("cvd-vsock-cid.sh: "), "{env:?}: {err}");
    }
}

#[test]
fn the_vsock_cid_script_reads_the_cid_of_vsock_cid_auto_from_the_link_alias() {
    let sysfs = std::env::temp_dir().join(format!("cfcni-conf-sysfs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sysfs);
    std::fs::create_dir_all(sysfs.join("cvd-ebr")).unwrap();
    let root = sysfs.to_str().unwrap();
    let alias = |text: &str| std::fs::write(sysfs.join("cvd-ebr/ifalias"), text).unwrap();

    alias("cuttlefish-cni owner=0123456789abcdef base=1 instances=2 cid=41\n");
    let flag = vsock_cid_script(&[("CVD_VSOCK_CID_SYSFS_NET", root)]).unwrap();
    assert_eq!(launch_cvd_cids(&flag, 2), [41, 42]);
    // The device plugin's variables come first.
    let flag = vsock_cid_script(&[("CVD_VSOCK_CID_SYSFS_NET", root), ("VSOCK_CIDS", "7,9")]).unwrap();
    assert_eq!(launch_cvd_cids(&flag, 2), [7, 9]);
    // Without vsockCid "auto" (and in the previous release) the alias has no cid=.
    alias("cuttlefish-cni owner=0123456789abcdef base=1 instances=1\n");
    let err = vsock_cid_script(&[("CVD_VSOCK_CID_SYSFS_NET", root)]).unwrap_err();
    assert!(err.contains("VSOCK_CIDS") && err.contains("vsockCid"), "{err}");
    alias("my own bridge cid=5\n");
    assert!(vsock_cid_script(&[("CVD_VSOCK_CID_SYSFS_NET", root)]).is_err());
    std::fs::remove_file(sysfs.join("cvd-ebr/ifalias")).unwrap();
    assert!(vsock_cid_script(&[("CVD_VSOCK_CID_SYSFS_NET", root)]).is_err());
    std::fs::remove_dir_all(&sysfs).unwrap();
}
