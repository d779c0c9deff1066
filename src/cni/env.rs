//! The CNI environment variables, read into a typed command. Each command carries exactly the
//! parameters the spec gives it: DEL's netns is optional, GC, STATUS and VERSION have none.

use crate::error::Error;
use std::ffi::OsString;

/// One container attachment, the unit every ADD, CHECK and DEL acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Add {
        attachment: Attachment,
        netns: String,
    },
    Check {
        attachment: Attachment,
        netns: String,
    },
    /// Runtimes send DEL with an empty or stale netns (ctr, CRI's RemovePodSandbox).
    Del {
        attachment: Attachment,
        netns: Option<String>,
    },
    Gc,
    Status,
    Version,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Add { .. } => "ADD",
            Command::Check { .. } => "CHECK",
            Command::Del { .. } => "DEL",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }

    pub fn attachment(&self) -> Option<&Attachment> {
        match self {
            Command::Add { attachment, .. }
            | Command::Check { attachment, .. }
            | Command::Del { attachment, .. } => Some(attachment),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    /// `CNI_ARGS` as key/value pairs (deprecated by the spec, still what podman and cnitool send).
    pub cni_args: Vec<(String, String)>,
}

impl Invocation {
    /// Reads the invocation from the process environment.
    pub fn from_env() -> Result<Invocation, Error> {
        Invocation::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads the invocation through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Invocation, Error> {
        let get = |var: &'static str| -> Result<Option<String>, Error> {
            match lookup(var) {
                None => Ok(None),
                Some(value) => value
                    .into_string()
                    .map(Some)
                    .map_err(|raw| Error::BadEnvironment {
                        var,
                        reason: format!("is not valid UTF-8: {raw:?}"),
                    }),
            }
        };
        let required = |var: &'static str| -> Result<String, Error> {
            match get(var)? {
                Some(value) if !value.is_empty() => Ok(value),
                _ => Err(Error::BadEnvironment {
                    var,
                    reason: "is required for this command and is missing or empty".into(),
                }),
            }
        };
        let attachment = || -> Result<Attachment, Error> {
            let container_id = required("CNI_CONTAINERID")?;
            validate_container_id(&container_id)?;
            let ifname = required("CNI_IFNAME")?;
            validate_ifname(&ifname)?;
            Ok(Attachment { container_id, ifname })
        };
        let command_name = required("CNI_COMMAND")?;
        let command = match command_name.as_str() {
            "ADD" => Command::Add {
                attachment: attachment()?,
                netns: required("CNI_NETNS")?,
            },
            "CHECK" => Command::Check {
                attachment: attachment()?,
                netns: required("CNI_NETNS")?,
            },
            "DEL" => Command::Del {
                attachment: attachment()?,
                netns: get("CNI_NETNS")?.filter(|n| !n.is_empty()),
            },
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            "VERSION" => Command::Version,
            other => {
                return Err(Error::BadEnvironment {
                    var: "CNI_COMMAND",
                    reason: format!("unknown command {other:?}"),
                })
            }
        };
        let cni_args = match get("CNI_ARGS")? {
            Some(raw) => parse_cni_args(&raw)?,
            None => Vec::new(),
        };
        Ok(Invocation { command, cni_args })
    }
}

/// Splits `CNI_ARGS` (`K1=V1;K2=V2`). An entry without `=` is an error, as in libcni.
pub fn parse_cni_args(raw: &str) -> Result<Vec<(String, String)>, Error> {
    raw.split(';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => Err(Error::BadEnvironment {
                var: "CNI_ARGS",
                reason: format!("entry {pair:?} is not KEY=VALUE"),
            }),
        })
        .collect()
}

/// The spec's rule for container ids and network names. The plugin and the agent both check
/// with it; the agent also names its state files after these values.
pub const NAME_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$";

/// True when `name` matches [`NAME_PATTERN`].
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Why `name` is not an interface name by the kernel's rule (IFNAMSIZ 16 with the NUL), as
/// libcni checks it; None when it is one.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.len() > 15 {
        Some("is longer than 15 bytes")
    } else if name.is_empty() || name == "." || name == ".." {
        Some("is not a valid interface name")
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        Some("contains '/', ':' or whitespace")
    } else {
        None
    }
}

fn validate_container_id(id: &str) -> Result<(), Error> {
    if is_valid_name(id) {
        return Ok(());
    }
    Err(Error::BadEnvironment {
        var: "CNI_CONTAINERID",
        reason: format!("{id:?} does not match {NAME_PATTERN}"),
    })
}

fn validate_ifname(name: &str) -> Result<(), Error> {
    match ifname_problem(name) {
        None => Ok(()),
        Some(reason) => Err(Error::BadEnvironment {
            var: "CNI_IFNAME",
            reason: format!("{name:?} {reason}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn invoke(vars: &[(&str, &str)]) -> Result<Invocation, Error> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Invocation::from_lookup(|k| map.get(k).cloned())
    }

    const ADD: [(&str, &str); 4] = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "Abc_1.2-3"),
        ("CNI_NETNS", "/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
    ];

    #[test]
    fn add_carries_attachment_and_netns() {
        let inv = invoke(&ADD).unwrap();
        assert_eq!(
            inv.command,
            Command::Add {
                attachment: Attachment {
                    container_id: "Abc_1.2-3".into(),
                    ifname: "eth0".into()
                },
                netns: "/run/netns/x".into()
            }
        );
    }

    #[test]
    fn del_without_netns_is_valid() {
        let inv = invoke(&[ADD[1], ADD[3], ("CNI_COMMAND", "DEL"), ("CNI_NETNS", "")]).unwrap();
        assert!(matches!(inv.command, Command::Del { netns: None, .. }));
    }

    #[test]
    fn missing_variables_name_the_variable() {
        for missing in ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
            let vars: Vec<_> = ADD.iter().copied().filter(|(k, _)| *k != missing).collect();
            let err = invoke(&vars).unwrap_err();
            assert_eq!(err.code(), 4);
            assert!(err.to_string().contains(missing), "{err}");
        }
    }

    #[test]
    fn bad_values_are_rejected_with_code_4() {
        let cases = [
            ("CNI_COMMAND", "FROB"),
            ("CNI_CONTAINERID", "-starts-with-dash"),
            ("CNI_CONTAINERID", "has space"),
            ("CNI_IFNAME", "sixteen-bytes-xx"),
            ("CNI_IFNAME", "a/b"),
            ("CNI_IFNAME", ".."),
            ("CNI_ARGS", "K8S_POD_NAME"),
        ];
        for (var, value) in cases {
            let mut vars: Vec<_> = ADD.iter().copied().filter(|(k, _)| *k != var).collect();
            vars.push((var, value));
            assert_eq!(invoke(&vars).unwrap_err().code(), 4, "{var}={value}");
        }
    }

    #[test]
    fn non_utf8_environment_is_rejected() {
        use std::os::unix::ffi::OsStringExt;
        let err = Invocation::from_lookup(|k| match k {
            "CNI_COMMAND" => Some(OsString::from_vec(vec![0xff, 0xfe])),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(err.code(), 4);
    }

    #[test]
    fn cni_args_split_into_pairs() {
        let args = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=p;;CUTTLEFISH_INSTANCES=2").unwrap();
        assert_eq!(args.len(), 3);
        assert_eq!(args[2], ("CUTTLEFISH_INSTANCES".into(), "2".into()));
    }

    #[test]
    fn gc_status_version_need_no_attachment() {
        for cmd in ["GC", "STATUS", "VERSION"] {
            assert!(invoke(&[("CNI_COMMAND", cmd)]).is_ok(), "{cmd}");
        }
    }
}
