//! Requests are checked with the plugin's own rules before the agent acts on them: the agent
//! names its state files after the network and the attachment, and serves what a registration
//! says, so a value the plugin would never send is refused. Errors name the field and the value
//! (escaped: they are logged).

use super::protocol::{BridgeSpec, Registration};
use crate::cni::{ifname_problem, is_valid_name, NAME_PATTERN};
use crate::plan;
use std::net::Ipv4Addr;

/// Longest netns path accepted (PATH_MAX less the NUL).
const MAX_PATH: usize = 4095;

/// A value the plugin would never send, named with its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("network {0:?} does not match {NAME_PATTERN}")]
    Network(String),
    #[error("container_id {0:?} does not match {NAME_PATTERN}")]
    ContainerId(String),
    #[error("ifname {ifname:?} {problem}")]
    Ifname { ifname: String, problem: &'static str },
    #[error("netns {0:?} must be an absolute path of at most {MAX_PATH} bytes")]
    NetnsPath(String),
    #[error("bridges is empty")]
    NoBridges,
    #[error("bridges[{index}].name {name:?} is not one of the plugin's bridges {known:?}")]
    UnknownBridge {
        index: usize,
        name: String,
        known: Vec<&'static str>,
    },
    #[error("bridges[{index}].gateway {gateway} is not {bridge}'s gateway {expected}")]
    WrongGateway {
        index: usize,
        gateway: Ipv4Addr,
        bridge: &'static str,
        expected: Ipv4Addr,
    },
    #[error("bridges[{index}]: {name} is listed twice")]
    BridgeTwice { index: usize, name: String },
}

pub fn registration(registration: &Registration) -> Result<(), Invalid> {
    network(&registration.network)?;
    attachment(&registration.container_id, &registration.ifname)?;
    netns_path(&registration.netns)?;
    bridges(&registration.bridges)
}

/// The conflist's `name`.
pub fn network(network: &str) -> Result<(), Invalid> {
    match is_valid_name(network) {
        true => Ok(()),
        false => Err(Invalid::Network(network.into())),
    }
}

/// `CNI_CONTAINERID` and `CNI_IFNAME`.
pub fn attachment(container_id: &str, ifname: &str) -> Result<(), Invalid> {
    if !is_valid_name(container_id) {
        return Err(Invalid::ContainerId(container_id.into()));
    }
    match ifname_problem(ifname) {
        None => Ok(()),
        Some(problem) => Err(Invalid::Ifname {
            ifname: ifname.into(),
            problem,
        }),
    }
}

fn netns_path(path: &str) -> Result<(), Invalid> {
    if path.starts_with('/') && path.len() <= MAX_PATH && !path.contains('\0') {
        Ok(())
    } else {
        Err(Invalid::NetnsPath(path.into()))
    }
}

/// Only the bridges the plugin builds, each with the gateway the plugin gives it, each once.
fn bridges(bridges: &[BridgeSpec]) -> Result<(), Invalid> {
    let known = plan::bridges();
    if bridges.is_empty() {
        return Err(Invalid::NoBridges);
    }
    for (index, bridge) in bridges.iter().enumerate() {
        let Some(planned) = known.iter().find(|b| b.name == bridge.name) else {
            return Err(Invalid::UnknownBridge {
                index,
                name: bridge.name.clone(),
                known: known.iter().map(|b| b.name).collect(),
            });
        };
        if bridge.gateway != planned.gateway {
            return Err(Invalid::WrongGateway {
                index,
                gateway: bridge.gateway,
                bridge: planned.name,
                expected: planned.gateway,
            });
        }
        if bridges[..index].iter().any(|b| b.name == bridge.name) {
            return Err(Invalid::BridgeTwice {
                index,
                name: bridge.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Registration {
        Registration {
            network: "cfnet".into(),
            container_id: "abc-1".into(),
            ifname: "eth0".into(),
            netns: "/run/netns/x".into(),
            bridges: plan::bridges()
                .iter()
                .map(|b| BridgeSpec {
                    name: b.name.into(),
                    gateway: b.gateway,
                })
                .collect(),
            dns: vec![Ipv4Addr::new(8, 8, 8, 8)],
        }
    }

    #[test]
    fn what_the_plugin_sends_is_accepted() {
        assert_eq!(registration(&valid()), Ok(()));
    }

    #[test]
    fn each_bad_field_is_named() {
        type Spoil = fn(&mut Registration);
        let cases: [(Spoil, &str); 9] = [
            (|r| r.network = "../x".into(), "network \"../x\""),
            (|r| r.network = "/x".into(), "network \"/x\""),
            (|r| r.container_id = "a/b".into(), "container_id \"a/b\""),
            (|r| r.ifname = String::new(), "ifname \"\""),
            (|r| r.ifname = "..".into(), "ifname \"..\""),
            (|r| r.netns = "x\n".into(), "netns \"x\\n\""),
            (|r| r.bridges[0].name = "eth0".into(), "bridges[0].name \"eth0\""),
            (
                |r| r.bridges[1].gateway = Ipv4Addr::new(192, 168, 98, 1),
                "bridges[1].gateway 192.168.98.1",
            ),
            (
                |r| r.bridges[1] = r.bridges[0].clone(),
                "bridges[1]: cvd-ebr is listed twice",
            ),
        ];
        for (spoil, naming) in cases {
            let mut bad = valid();
            spoil(&mut bad);
            let error = registration(&bad).unwrap_err().to_string();
            assert!(error.starts_with(naming), "{error}");
        }
    }
}
