//! The plugin's dealings with the DHCP node agent for a pod whose conflist entry sets
//! `dhcp: true`: ADD registers the pod's bridges, passing the pod netns it has open and
//! checked, DEL and GC unregister, CHECK asks.

use crate::agent::client;
use crate::agent::protocol::{AttachmentRef, BridgeSpec, Registration, Request};
use crate::cni::Attachment;
use crate::config::{DhcpConfig, NetConf};
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::plan::Plan;
use std::os::fd::AsFd;

/// ADD: asks the agent to serve the pod's bridges. An unreachable agent is code 11: the node
/// agent may be starting, and the runtime will try again. An agent that refuses is code 103.
pub fn register(
    conf: &NetConf,
    dhcp: &DhcpConfig,
    attachment: &Attachment,
    netns: &Netns,
    plan: &Plan,
) -> Result<()> {
    let registration = Registration {
        network: conf.name.clone(),
        container_id: attachment.container_id.clone(),
        ifname: attachment.ifname.clone(),
        netns: netns.path().to_string(),
        bridges: plan
            .bridges
            .iter()
            .map(|b| BridgeSpec {
                name: b.name.to_string(),
                gateway: b.gateway,
            })
            .collect(),
        dns: dhcp.dns.clone(),
    };
    let response = client::call(
        &dhcp.agent_socket,
        &Request::Register(registration),
        Some(netns.as_fd()),
    )?;
    match response.ok {
        true => Ok(()),
        false => Err(Error::AgentRefused {
            socket: dhcp.agent_socket.clone(),
            reason: response.error.unwrap_or_default(),
        }),
    }
}

/// DEL: best effort; a DEL never fails because the agent is away (its sweep drops pods whose
/// netns is gone, and GC drops the rest).
pub fn unregister(conf: &NetConf, dhcp: &DhcpConfig, attachment: &Attachment) {
    let request = Request::Unregister {
        network: conf.name.clone(),
        attachment: reference(attachment),
    };
    if let Err(e) = client::call(&dhcp.agent_socket, &request, None) {
        log::warn!("DEL could not tell the DHCP agent: {e}");
    }
}

/// GC: the agent drops this network's registrations of attachments that are not valid.
pub fn gc(conf: &NetConf, dhcp: &DhcpConfig, valid: &[Attachment]) {
    let request = Request::Gc {
        network: conf.name.clone(),
        valid: valid.iter().map(reference).collect(),
    };
    if let Err(e) = client::call(&dhcp.agent_socket, &request, None) {
        log::warn!("GC could not tell the DHCP agent: {e}");
    }
}

/// CHECK: the difference, if the agent does not serve this attachment.
pub fn check(conf: &NetConf, dhcp: &DhcpConfig, attachment: &Attachment) -> Option<String> {
    let status = match client::call(&dhcp.agent_socket, &Request::Status, None) {
        Ok(response) => response.status.unwrap_or_default(),
        Err(e) => return Some(e.to_string()),
    };
    let served = status.pods.iter().any(|p| {
        p.network == conf.name && p.container_id == attachment.container_id && p.ifname == attachment.ifname
    });
    (!served).then(|| {
        format!(
            "the DHCP agent at {} does not serve this pod",
            dhcp.agent_socket.display()
        )
    })
}

fn reference(attachment: &Attachment) -> AttachmentRef {
    AttachmentRef {
        container_id: attachment.container_id.clone(),
        ifname: attachment.ifname.clone(),
    }
}
