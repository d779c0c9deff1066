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

/// `cvd-vsock-cid.sh`'s flag, run through launch_cvd's rule (instance i gets
/// `vsock_guest_cid[i] + i`, one value standing for all), gives instance i the i-th CID.
#[test]
fn the_vsock_cid_script_maps_instance_i_to_the_ith_allocated_cid() {
    let run = |cids: Option<&str>| {
        let mut command = std::process::Command::new("sh");
        command
            .arg(conf_dir().join("cvd-vsock-cid.sh"))
            .env_remove("VSOCK_CIDS");
        if let Some(cids) = cids {
            command.env("VSOCK_CIDS", cids);
        }
        let out = command.output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        (
            out.status.success(),
            stdout,
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    for cids in ["3", "12", "12,13,14", "5,6,9", "3,10", "100,101,200,201,4000"] {
        let (ok, flag, stderr) = run(Some(cids));
        assert!(ok, "{cids}: {stderr}");
        let values: Vec<u64> = flag
            .trim_end()
            .strip_prefix("--vsock_guest_cid=")
            .unwrap_or_else(|| panic!("{cids}: {flag:?}"))
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        let wanted: Vec<u64> = cids.split(',').map(|c| c.parse().unwrap()).collect();
        let launched: Vec<u64> = (0..wanted.len())
            .map(|i| values.get(i).copied().unwrap_or(values[0]) + i as u64)
            .collect();
        assert_eq!(launched, wanted, "{cids}: {flag}");
        let contiguous = wanted.windows(2).all(|w| w[1] == w[0] + 1);
        assert_eq!(
            values.len() == 1,
            contiguous,
            "{cids}: one value exactly for a block"
        );
    }
    for bad in [
        None,
        Some(""),
        Some("2"),
        Some("5,5"),
        Some("6,5"),
        Some("a"),
        Some("5,,6"),
        Some("012"),
    ] {
        let (ok, flag, stderr) = run(bad);
        assert!(!ok && flag.is_empty(), "{bad:?}: {flag}");
        assert!(stderr.contains("VSOCK_CIDS"), "{bad:?}: {stderr}");
    }
}
