//! GC of the node-side state: the vsock CIDs `vsockCid: "auto"` allocated (and the instance
//! numbers an earlier release's `baseInstance: "auto"` allocated) go for attachments that are
//! not in the valid list, and stay for those that are. Our links and rules live in the pod
//! netns and die with it, so GC has nothing to do there.

use crate::alloc::{Allocations, Holder};
use crate::check::Drift;
use crate::cni::{Attachment, Command, Invocation};
use crate::config::NetConf;
use crate::error::Error;
use crate::instances;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A data directory of this test's own, removed when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        let dir = std::env::temp_dir().join(format!("cfcni-gc-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn attachment(container_id: &str) -> Attachment {
    Attachment {
        container_id: container_id.into(),
        ifname: "eth0".into(),
    }
}

fn conf(dir: &Path, network: &str, command: Command, extra: Value) -> NetConf {
    let mut conf = json!({"cniVersion": "1.1.0", "name": network, "type": "cuttlefish-cni",
                          "vsockCid": "auto", "dataDir": dir});
    for (key, value) in extra.as_object().unwrap() {
        conf[key] = value.clone();
    }
    let invocation = Invocation {
        command,
        cni_args: Vec::new(),
    };
    NetConf::parse(conf.to_string().as_bytes(), &invocation).unwrap()
}

/// The CIDs ADD allocates for `container_id` on `network`; returns the first.
fn add(dir: &Path, network: &str, container_id: &str, instances: u32) -> u32 {
    let command = Command::Add {
        attachment: attachment(container_id),
        netns: "/run/netns/pod".into(),
    };
    let conf = conf(dir, network, command, json!({"instances": instances}));
    let settings = instances::acquire(&conf, &attachment(container_id)).unwrap();
    settings.vsock_cid.unwrap()
}

fn gc(dir: &Path, network: &str, valid: Option<&[&str]>) {
    let extra = match valid {
        Some(ids) => {
            let list: Vec<Value> = ids
                .iter()
                .map(|id| json!({"containerID": id, "ifname": "eth0"}))
                .collect();
            json!({"cni.dev/valid-attachments": list})
        }
        None => json!({}),
    };
    instances::gc(&conf(dir, network, Command::Gc, extra)).unwrap();
}

/// Who holds which CID, as `(cid, container id, network)`.
fn cids(dir: &Path) -> Vec<(u32, String, Option<String>)> {
    Allocations::lock(&dir.join("_vsock-cids"))
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .map(|(cid, holder)| (cid, holder.attachment.container_id, holder.network))
        .collect()
}

fn held(id: &str, network: &str) -> (String, Option<String>) {
    (id.to_string(), Some(network.to_string()))
}

#[test]
fn gc_releases_the_cids_of_attachments_no_longer_valid_and_keeps_the_others() {
    let dir = DataDir::new("valid");
    assert_eq!(add(&dir.0, "cfnet", "a", 1), 3);
    assert_eq!(add(&dir.0, "cfnet", "b", 2), 4);
    assert_eq!(add(&dir.0, "cfnet", "c", 1), 6);
    gc(&dir.0, "cfnet", Some(&["a", "c"]));
    let holders: Vec<_> = cids(&dir.0)
        .into_iter()
        .map(|(cid, id, net)| (cid, (id, net)))
        .collect();
    assert_eq!(holders, [(3, held("a", "cfnet")), (6, held("c", "cfnet"))]);
    assert_eq!(add(&dir.0, "cfnet", "d", 2), 4, "b's CIDs are free again");
}

#[test]
fn gc_without_a_valid_list_releases_nothing() {
    let dir = DataDir::new("nolist");
    add(&dir.0, "cfnet", "a", 2);
    let before = cids(&dir.0);
    gc(&dir.0, "cfnet", None);
    assert_eq!(cids(&dir.0), before);
    assert_eq!(before.len(), 2);
}

#[test]
fn gc_of_one_network_leaves_the_cids_of_another_alone() {
    let dir = DataDir::new("networks");
    add(&dir.0, "cfnet", "a", 1);
    add(&dir.0, "other", "x", 1);
    gc(&dir.0, "cfnet", Some(&[]));
    assert_eq!(cids(&dir.0), [(4, "x".to_string(), Some("other".to_string()))]);
}

#[test]
fn gc_releases_the_instance_numbers_of_an_earlier_release() {
    let dir = DataDir::new("legacy");
    let legacy = Allocations::lock(&dir.0.join("cfnet")).unwrap();
    for id in ["live", "gone"] {
        let holder = Holder {
            attachment: attachment(id),
            network: None,
        };
        legacy.allocate(&holder, 2, (1, 128)).unwrap().unwrap();
    }
    drop(legacy);
    gc(&dir.0, "cfnet", Some(&["live"]));
    let left: Vec<(u32, String)> = Allocations::lock(&dir.0.join("cfnet"))
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .map(|(n, h)| (n, h.attachment.container_id))
        .collect();
    assert_eq!(left, [(1, "live".to_string()), (2, "live".to_string())]);
}

#[test]
fn check_of_an_attachment_whose_cids_gc_released_names_them() {
    let dir = DataDir::new("check");
    add(&dir.0, "cfnet", "a", 1);
    gc(&dir.0, "cfnet", Some(&["someone-else"]));
    let command = Command::Check {
        attachment: attachment("a"),
        netns: "/run/netns/pod".into(),
    };
    let error = instances::current(&conf(&dir.0, "cfnet", command, json!({})), &attachment("a")).unwrap_err();
    let Error::CheckFailed(drifts) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        drifts,
        &[Drift::VsockCids {
            held: vec![],
            expected: 1,
        }]
    );
    assert_eq!(
        error.to_string(),
        "CHECK found 1 difference(s): the attachment holds vsock CIDs [], expected 1 of them (vsockCid: \"auto\")"
    );
}
