//! A pod netns as the primary plugin leaves it, and the plugin's ADD, DEL and CHECK for one
//! attachment, run on the fake kernel as `plugin.rs` runs them on the real one.

use crate::check::{self, Drift};
use crate::cni::Attachment;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kernel::fake::FakeKernel;
use crate::kernel::Kernel;
use crate::mark::AttachmentTag;
use crate::model::{Address, Change, Link};
use crate::plan::Plan;
use crate::{setup, teardown};

/// A pod netns after a dual-stack primary plugin: `lo`, `eth0` with the pod's addresses of
/// both families and its IPv6 link-local one, forwarding off, IPv6 on.
pub fn pod() -> FakeKernel {
    let mut kernel = with_eth0(FakeKernel::new_netns(true));
    let eth0 = kernel.state.link("eth0").unwrap().index;
    for (address, prefix) in [("fd00:10:88::5", 64), ("fe80::200:ff:fe00:2", 64)] {
        kernel.state.addresses.push(Address {
            index: eth0,
            address: address.parse().unwrap(),
            prefix,
            broadcast: None,
        });
    }
    kernel
}

/// An IPv4-only pod on a node booted with `ipv6.disable=1`.
pub fn pod_without_ipv6() -> FakeKernel {
    with_eth0(FakeKernel::new_netns(false))
}

fn with_eth0(mut kernel: FakeKernel) -> FakeKernel {
    let eth0 = kernel.add_link(Link {
        name: "eth0".into(),
        up: true,
        kind: Some("veth".into()),
        ..Link::default()
    });
    kernel.state.addresses.push(Address {
        index: eth0,
        address: [10, 88, 0, 5].into(),
        prefix: 16,
        broadcast: Some([10, 88, 255, 255].into()),
    });
    kernel
}

/// What the configuration's defaults give: one instance, MSS clamping on.
pub fn settings(base_instance: u32, instances: u32) -> Settings {
    Settings {
        instances,
        base_instance,
        vsock_cid: None,
        tap_owner: None,
        tap_group: None,
        clamp_mss: true,
        dns_redirect: None,
    }
}

/// The plugin for one attachment (a container id, `eth0`) with fixed settings.
pub struct Plugin {
    pub settings: Settings,
    pub plan: Plan,
    pub tag: AttachmentTag,
}

impl Plugin {
    pub fn new(container_id: &str, settings: Settings) -> Plugin {
        Plugin {
            plan: Plan::new(&settings),
            tag: AttachmentTag::of(&Attachment {
                container_id: container_id.into(),
                ifname: "eth0".into(),
            }),
            settings,
        }
    }

    /// One instance, instance 1.
    pub fn one() -> Plugin {
        Plugin::new("pod-a", settings(1, 1))
    }

    pub fn alias(&self) -> String {
        self.tag.link_alias(&self.settings)
    }

    pub fn add(&self, kernel: &mut FakeKernel) -> Result<Vec<Link>> {
        setup::build(kernel, &self.plan, &self.tag, &self.settings)
    }

    pub fn del(&self, kernel: &mut FakeKernel) -> Result<()> {
        teardown::remove(kernel, &self.tag)
    }

    /// What CHECK finds: the namespace read back and compared with the plan.
    pub fn check(&self, kernel: &mut FakeKernel) -> Vec<Drift> {
        let observed = kernel
            .observe(&self.plan.sysctl_names())
            .expect("the fake kernel reads");
        check::diff(&self.plan, &observed, &self.tag, &self.alias())
    }

    /// ADD on `kernel`, which must succeed and pass CHECK; the journal starts over empty.
    pub fn added(&self, kernel: &mut FakeKernel) {
        self.add(kernel).expect("ADD");
        assert_eq!(self.check(kernel), [], "CHECK right after ADD");
        kernel.take_journal();
    }
}

/// The changes as error messages name them.
pub fn steps(journal: &[Change]) -> Vec<String> {
    journal.iter().map(ToString::to_string).collect()
}

/// The errno of a kernel error.
pub fn errno(error: &Error) -> Option<i32> {
    match error {
        Error::Kernel { source, .. } => source.raw_os_error(),
        _ => None,
    }
}
