//! One invocation, start to end: the typed command and the validated configuration in, the
//! protocol answer out. Kernel work runs on the pod netns worker thread.

use crate::check::Drift;
use crate::cni::{self, Attachment, Command, Invocation, Version};
use crate::config::NetConf;
use crate::error::{Error, Result};
use crate::kernel::{Kernel, NetnsKernel};
use crate::mark::AttachmentTag;
use crate::netns::{Netns, OpenError};
use crate::plan::Plan;
use crate::{check, dhcp, instances, logger, result, setup, teardown};
use serde_json::{Map, Value};

/// What the invocation prints on stdout on success (GC and DEL print nothing).
pub fn run(invocation: &Invocation, stdin: &[u8]) -> Result<Option<Value>> {
    if invocation.command == Command::Version {
        // VERSION may ignore stdin; answer in the version asked for when we support it.
        return Ok(Some(cni::version_json(&crate::config::answer_version(stdin))));
    }
    let conf = NetConf::parse(stdin, invocation)?;
    logger::configure(&conf.log)?;
    if !conf.unknown_keys.is_empty() {
        log::warn!(
            "ignoring unknown configuration keys: {}",
            conf.unknown_keys.join(", ")
        );
    }
    for obsolete in &conf.obsolete {
        log::warn!("{obsolete}");
    }
    let conf = &conf;
    match &invocation.command {
        Command::Add { netns, attachment } => add(conf, netns, attachment).map(Some),
        Command::Check { netns, attachment } => check(conf, netns, attachment).map(|()| None),
        Command::Del { netns, attachment } => del(conf, netns.as_deref(), attachment).map(|()| None),
        Command::Gc => gc(conf).map(|()| None),
        Command::Status => status(conf).map(|()| None),
        Command::Version => unreachable!("answered above"),
    }
}

fn prev_result<'a>(conf: &'a NetConf, command: &str) -> Result<&'a Map<String, Value>> {
    conf.prev_result.as_ref().ok_or_else(|| {
        Error::invalid(
            "prevResult",
            "(missing)",
            format!("{command} needs the result of the plugins before cuttlefish-cni: chain it after the primary plugin in a conflist"),
        )
    })
}

fn open_pod_netns(path: &str) -> Result<Netns> {
    let netns = Netns::open(path).map_err(OpenError::into_error)?;
    if netns.is_own()? {
        return Err(Error::InvalidNetns {
            path: path.to_string(),
            reason: "is the namespace the plugin runs in (the node's), not a pod's".into(),
        });
    }
    Ok(netns)
}

fn add(conf: &NetConf, netns_path: &str, attachment: &Attachment) -> Result<Value> {
    let prev = prev_result(conf, "ADD")?;
    if !conf.selected {
        log::info!(
            "pod did not ask for Cuttlefish networking (select=annotated); passing prevResult through"
        );
        return Ok(Value::Object(result::passthrough(prev, &conf.version_text)));
    }
    let netns = open_pod_netns(netns_path)?;
    let settings = instances::acquire(conf, attachment)?;
    let plan = Plan::new(&settings);
    let tag = AttachmentTag::of(attachment);
    let built = netns.run(|| {
        let mut kernel = open_kernel(netns_path)?;
        let links = setup::build(&mut kernel, &plan, &tag, &settings)?;
        if let Some(dhcp) = &conf.dhcp {
            if let Err(e) = dhcp::register(conf, dhcp, attachment, &netns, &plan) {
                if let Err(cleanup) = teardown::remove(&mut kernel, &tag) {
                    log::error!("rolling back the ADD the DHCP agent did not take: {cleanup}");
                }
                return Err(e);
            }
        }
        Ok(links)
    });
    match built {
        Ok(links) => Ok(result::with_our_interfaces(
            prev,
            &conf.version_text,
            netns_path,
            &plan,
            &links,
        )),
        Err(e) => {
            if let Err(release) = instances::release(conf, attachment) {
                log::error!("releasing the vsock CIDs of the failed ADD: {release}");
            }
            Err(e)
        }
    }
}

fn check(conf: &NetConf, netns_path: &str, attachment: &Attachment) -> Result<()> {
    conf.version.require(Version::V0_4_0, "CHECK")?;
    prev_result(conf, "CHECK")?;
    if !conf.selected {
        return Ok(());
    }
    let netns = open_pod_netns(netns_path)?;
    let settings = instances::current(conf, attachment)?;
    let plan = Plan::new(&settings);
    let tag = AttachmentTag::of(attachment);
    let alias = tag.link_alias(&settings);
    let observed = netns.run(|| open_kernel(netns_path)?.observe(&plan.sysctl_names()))?;
    let mut drifts = check::diff(&plan, &observed, &tag, &alias);
    if let Some(dhcp) = &conf.dhcp {
        drifts.extend(dhcp::check(conf, dhcp, attachment).map(Drift::DhcpAgent));
    }
    if drifts.is_empty() {
        Ok(())
    } else {
        Err(Error::CheckFailed(drifts))
    }
}

/// The kernel of the pod netns; call on the netns worker thread.
#[cfg(not(feature = "netns-tests"))]
fn open_kernel(netns: &str) -> Result<impl Kernel> {
    NetnsKernel::open(netns)
}

/// Test builds wrap the kernel in the fault injector (see `fault`).
#[cfg(feature = "netns-tests")]
fn open_kernel(netns: &str) -> Result<impl Kernel> {
    NetnsKernel::open(netns).map(crate::fault::Faulty::from_env)
}

/// DEL removes what carries this attachment's mark, whatever the configuration says now,
/// releases its vsock CIDs (and the instance numbers an earlier release allocated), and
/// succeeds when the netns is already gone.
fn del(conf: &NetConf, netns_path: Option<&str>, attachment: &Attachment) -> Result<()> {
    let in_netns = remove_from_netns(netns_path, &AttachmentTag::of(attachment));
    if let Some(dhcp) = &conf.dhcp {
        dhcp::unregister(conf, dhcp, attachment);
    }
    let released = instances::release(conf, attachment);
    in_netns.and(released)
}

fn remove_from_netns(netns_path: Option<&str>, tag: &AttachmentTag) -> Result<()> {
    let Some(path) = netns_path else {
        log::info!("DEL without a netns: our links and rules live in the pod netns, nothing to do there");
        return Ok(());
    };
    let netns = match Netns::open(path) {
        Ok(netns) => netns,
        Err(OpenError::Gone(e)) => {
            log::info!("DEL: {e}; the pod netns is gone and our objects with it");
            return Ok(());
        }
        Err(OpenError::Invalid(e)) => return Err(e),
    };
    if netns.is_own()? {
        log::warn!("DEL with CNI_NETNS {path}, the plugin's own namespace: nothing of ours can be there");
        return Ok(());
    }
    netns.run(|| {
        let mut kernel = open_kernel(path)?;
        teardown::remove(&mut kernel, tag)
    })
}

/// GC: our links and rules live in pod netns and die with them. The node-side state is the
/// vsock CIDs of `vsockCid: "auto"` (and the instance numbers an earlier release's
/// `baseInstance: "auto"` allocated) and, with `dhcp`, the agent's registrations: all are
/// dropped here for attachments that are no longer valid.
fn gc(conf: &NetConf) -> Result<()> {
    conf.version.require(Version::V1_1_0, "GC")?;
    if let (Some(dhcp), Some(valid)) = (&conf.dhcp, &conf.valid_attachments) {
        dhcp::gc(conf, dhcp, valid);
    }
    instances::gc(conf)
}

/// STATUS: ADD needs `/dev/net/tun`.
fn status(conf: &NetConf) -> Result<()> {
    conf.version.require(Version::V1_1_0, "STATUS")?;
    match std::fs::metadata("/dev/net/tun") {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::PluginNotAvailable(format!("/dev/net/tun: {e}"))),
    }
}
