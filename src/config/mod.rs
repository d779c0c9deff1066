//! The network configuration: stdin JSON into a validated [`NetConf`]. Everything the plugin
//! accepts is checked here, so nothing below this layer fails on input. Errors name the field
//! and the value.

pub mod overrides;
mod prev_result;

use crate::cni::{Attachment, Command, Invocation, Version};
use crate::error::Error;
use overrides::{OverrideKey, PodChannels, PodValue, ANNOTATIONS_CAPABILITY};
use serde_json::{Map, Value};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Largest number of instances Cuttlefish's host-resources script provisions (mtap/wifiap bands).
pub const MAX_INSTANCE: u32 = 128;
/// The vsock CIDs `vsockCid: "auto"` hands out unless `cidRange` says otherwise: 1024 of them,
/// from the first CID a guest may have (0-2 are reserved).
pub const DEFAULT_CID_RANGE: (u32, u32) = (3, 1026);
/// `/dev/vhost-vsock` refuses CIDs 0-2 and u32::MAX (VMADDR_CID_ANY).
pub const MIN_CID: u32 = 3;
pub const MAX_CID: u32 = u32::MAX - 1;
/// How many instances one pod may take unless `maxInstancesPerPod` says otherwise.
pub const DEFAULT_MAX_INSTANCES_PER_POD: u32 = 16;
/// stdin larger than this is refused before parsing. A chained config with Cilium's prevResult
/// is a few KiB.
pub const MAX_STDIN_BYTES: usize = 1 << 20;

/// Why stdin is not a network configuration at all (before any key is looked at).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("stdin has {0} bytes, more than the {MAX_STDIN_BYTES} accepted")]
    TooLarge(usize),
    #[error("stdin is not valid UTF-8: {0}")]
    NotUtf8(#[source] std::str::Utf8Error),
    #[error("invalid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the configuration is not a JSON object")]
    NotAnObject,
}

/// Which pods the plugin acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Only pods that ask through an annotation, `args.cni` or `CNI_ARGS` key.
    Annotated,
    /// Every pod.
    All,
}

/// What a pod asks for, after per-pod overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodRequest {
    pub instances: u32,
    /// The first instance number: 1 unless the plugin key or the pod names one.
    pub base: u32,
    pub tap_owner: Option<u32>,
    pub tap_group: Option<u32>,
    pub clamp_mss: bool,
    pub dns_redirect: Option<Ipv4Addr>,
}

impl PodRequest {
    /// The settings to build once the instance numbers and the vsock CIDs are known.
    pub fn settings(&self, base_instance: u32, vsock_cid: Option<u32>) -> Settings {
        Settings {
            instances: self.instances,
            base_instance,
            vsock_cid,
            tap_owner: self.tap_owner,
            tap_group: self.tap_group,
            clamp_mss: self.clamp_mss,
            dns_redirect: self.dns_redirect,
        }
    }
}

/// Node-unique vsock CIDs for runtimes without a kubelet, and where the node's allocations live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationConfig {
    /// `vsockCid: "auto"`: ADD allocates the pod's CIDs (see `alloc`).
    pub vsock_cid: bool,
    /// `cidRange`, inclusive: the CIDs handed out on this node.
    pub cid_range: (u32, u32),
    /// Whether `cidRange` was set rather than defaulted.
    pub cid_range_declared: bool,
    pub data_dir: PathBuf,
}

impl AllocationConfig {
    /// `cidRange` as the CIDs another allocator hands out on this node: set explicitly in a
    /// network that allocates none itself (with `vsockCid: "auto"` every pod's CIDs are
    /// allocated, so a pod's own instance numbers cannot collide).
    fn declared_range(&self) -> Option<(u32, u32)> {
        (self.cid_range_declared && !self.vsock_cid).then_some(self.cid_range)
    }
}

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/cuttlefish-cni";
pub const DEFAULT_AGENT_SOCKET: &str = "/run/cuttlefish-cni/agent.sock";
/// What Cuttlefish's dnsmasq hands out (`dns_servers` in cuttlefish-host-resources).
pub const DEFAULT_DHCP_DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];

/// DHCP on the bridges through the node agent (`dhcp: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    pub agent_socket: PathBuf,
    /// The DNS servers option the agent hands out (`dnsServers`).
    pub dns: Vec<Ipv4Addr>,
}

/// What to build for one pod: instance numbers known, overrides applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub instances: u32,
    pub base_instance: u32,
    /// The first of the CIDs `vsockCid: "auto"` allocated; instance i of the pod has this + i.
    pub vsock_cid: Option<u32>,
    pub tap_owner: Option<u32>,
    pub tap_group: Option<u32>,
    /// Clamp the TCP MSS of forwarded SYNs to the path MTU (`clampMss`).
    pub clamp_mss: bool,
    /// Redirect guest DNS to this server (`dnsRedirect`).
    pub dns_redirect: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    pub file: Option<PathBuf>,
    pub level: log::LevelFilter,
}

/// A validated network configuration.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub version: Version,
    /// The version string exactly as given, echoed in results.
    pub version_text: String,
    pub name: String,
    pub select: Select,
    /// Whether this pod gets Cuttlefish networking (select=all, or it asked).
    pub selected: bool,
    pub request: PodRequest,
    pub allocation: AllocationConfig,
    pub dhcp: Option<DhcpConfig>,
    pub log: LogSettings,
    pub prev_result: Option<Map<String, Value>>,
    /// Attachments a GC call says are still valid (`cni.dev/valid-attachments`).
    pub valid_attachments: Option<Vec<Attachment>>,
    /// Keys we do not know; logged as a warning, never an error (runtimes and Multus add keys).
    pub unknown_keys: Vec<String>,
    /// Removed keys and values, accepted with a warning by every command but ADD so that pods
    /// built before an upgrade can still be checked and removed.
    pub obsolete: Vec<String>,
}

/// Keys defined by the CNI spec or runtimes that we accept without a warning.
const SPEC_KEYS: [&str; 13] = [
    "cniVersion",
    "cniVersions",
    "name",
    "type",
    "capabilities",
    "runtimeConfig",
    "args",
    "prevResult",
    "ipMasq",
    "ipam",
    "dns",
    "disableCheck",
    "disableGC",
];
const PLUGIN_KEYS: [&str; 17] = [
    "instances",
    "maxInstancesPerPod",
    "baseInstance",
    "tapOwner",
    "tapGroup",
    "select",
    "logFile",
    "logLevel",
    "instanceRange",
    "vsockCid",
    "cidRange",
    "dataDir",
    "clampMss",
    "dnsRedirect",
    "dhcp",
    "agentSocket",
    "dnsServers",
];

/// The version VERSION and an error before the configuration is parsed are answered in: the
/// configuration's `cniVersion` when we speak it, the latest otherwise.
pub fn answer_version(stdin: &[u8]) -> String {
    peek_version(stdin)
        .filter(|v| Version::parse_supported(v).is_ok())
        .unwrap_or_else(|| Version::LATEST.to_string())
}

/// Reads only `cniVersion`.
fn peek_version(stdin: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(stdin).ok()?;
    Some(value.get("cniVersion")?.as_str()?.to_string())
}

impl NetConf {
    pub fn parse(stdin: &[u8], invocation: &Invocation) -> Result<NetConf, Error> {
        if stdin.len() > MAX_STDIN_BYTES {
            return Err(DecodeError::TooLarge(stdin.len()).into());
        }
        let text = std::str::from_utf8(stdin).map_err(DecodeError::NotUtf8)?;
        let root: Value = serde_json::from_str(text).map_err(DecodeError::NotJson)?;
        let Value::Object(root) = root else {
            return Err(DecodeError::NotAnObject.into());
        };

        let version_text = required_str(&root, "cniVersion")?.to_string();
        let version = Version::parse_supported(&version_text)?;
        let name = required_str(&root, "name")?.to_string();
        validate_network_name(&name)?;
        if let Some(t) = root.get("type") {
            if !t.is_string() {
                return Err(Error::invalid("type", t, "must be a string"));
            }
        }

        let runtime_config = optional_object(&root, "runtimeConfig")?;
        let annotations = match runtime_config.and_then(|rc| rc.get(ANNOTATIONS_CAPABILITY)) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                return Err(Error::invalid(
                    format!("runtimeConfig[\"{ANNOTATIONS_CAPABILITY}\"]"),
                    other,
                    "must be an object of annotation strings",
                ))
            }
        };
        let args = optional_object(&root, "args")?;
        let cni_args_json = match args.and_then(|a| a.get("cni")) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => return Err(Error::invalid("args.cni", other, "must be an object")),
        };
        let channels = PodChannels {
            annotations,
            cni_args_json,
            cni_args_env: &invocation.cni_args,
        };

        let select = match root.get("select") {
            None => Select::Annotated,
            Some(Value::String(s)) if s == "annotated" => Select::Annotated,
            Some(Value::String(s)) if s == "all" => Select::All,
            Some(other) => {
                return Err(Error::invalid(
                    "select",
                    other,
                    "must be \"annotated\" or \"all\"",
                ))
            }
        };
        let selected = select == Select::All || channels.pod_asks();
        let admitting = matches!(invocation.command, Command::Add { .. });
        let mut obsolete = Obsolete {
            admitting,
            accepted: Vec::new(),
        };
        let allocation = allocation_config(&root, &mut obsolete)?;
        let dhcp = dhcp_config(&root)?;
        let mut request = pod_request(&root, &channels, &allocation, &mut obsolete)?;
        // Only the pods the plugin builds for need a DNS server, and only ADD and CHECK use it.
        let needs_server =
            selected && matches!(invocation.command, Command::Add { .. } | Command::Check { .. });
        request.dns_redirect = match dns_redirect(&root)? {
            DnsRedirect::Off => None,
            DnsRedirect::To(server) => Some(server),
            DnsRedirect::FromRuntime if needs_server => Some(runtime_dns_server(runtime_config)?),
            DnsRedirect::FromRuntime => None,
        };
        let log = log_settings(&root)?;
        let prev_result = prev_result::parse(root.get("prevResult"))?;
        let valid_attachments = valid_attachments(&root)?;

        let unknown_keys = root
            .keys()
            .filter(|k| {
                !SPEC_KEYS.contains(&k.as_str())
                    && !PLUGIN_KEYS.contains(&k.as_str())
                    && !k.starts_with("cni.dev/")
            })
            .cloned()
            .collect();

        Ok(NetConf {
            version,
            version_text,
            name,
            select,
            selected,
            request,
            allocation,
            dhcp,
            log,
            prev_result,
            valid_attachments,
            unknown_keys,
            obsolete: obsolete.accepted,
        })
    }
}

fn required_str<'a>(root: &'a Map<String, Value>, key: &str) -> Result<&'a str, Error> {
    match root.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Error::invalid(key, other, "must be a string")),
        None => Err(Error::invalid(key, "(missing)", "is required")),
    }
}

fn optional_object<'a>(
    root: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, Error> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(Error::invalid(key, other, "must be an object")),
    }
}

/// The spec's network name rule, the same as for container ids.
fn validate_network_name(name: &str) -> Result<(), Error> {
    if crate::cni::is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!("{name:?}"),
            format!("must match {}", crate::cni::NAME_PATTERN),
        ))
    }
}

/// What replaced `baseInstance: "auto"`, removed in 0.2.0.
const AUTO_REPLACED_BY: &str = "was removed in 0.2.0: every pod runs instances 1..n, and node-unique vsock CIDs come from the device plugin of cuttlefish-cni-agent (resource cuttlefish.dev/vsock-cid) or, for runtimes without a kubelet, from the plugin key vsockCid: \"auto\"";

/// Removed keys and values. ADD refuses them with code 7, naming what replaced them. Every
/// other command accepts them with a warning: a conflist or pod spec of the previous release
/// must not keep its pods from being checked, deleted and collected after an upgrade.
struct Obsolete {
    admitting: bool,
    accepted: Vec<String>,
}

impl Obsolete {
    fn removed(&mut self, field: &str, value: impl ToString, replaced_by: &str) -> Result<(), Error> {
        let error = Error::invalid(field, value, replaced_by);
        if self.admitting {
            return Err(error);
        }
        self.accepted
            .push(format!("{error}; accepted for pods built before the upgrade"));
        Ok(())
    }
}

/// The plugin keys behind a [`PodRequest`], checked on every call, whether or not the pod
/// overrides them: a broken key must not wait for the first pod without an override.
struct PluginRequest {
    instances: u32,
    base: u32,
    tap_owner: Option<u32>,
    tap_group: Option<u32>,
    max_per_pod: u32,
}

fn plugin_request(
    root: &Map<String, Value>,
    allocation: &AllocationConfig,
    obsolete: &mut Obsolete,
) -> Result<PluginRequest, Error> {
    let max_per_pod =
        plugin_number(root, "maxInstancesPerPod", 1, MAX_INSTANCE)?.unwrap_or(DEFAULT_MAX_INSTANCES_PER_POD);
    let instances = plugin_number(root, overrides::INSTANCES.plugin_key, 1, MAX_INSTANCE)?.unwrap_or(1);
    if instances > max_per_pod {
        return Err(Error::invalid(
            "instances",
            instances,
            format!("more than maxInstancesPerPod ({max_per_pod})"),
        ));
    }
    let base = match root.get(overrides::BASE_INSTANCE.plugin_key) {
        None | Some(Value::Null) => 1,
        Some(auto @ Value::String(s)) if s == "auto" => {
            obsolete.removed("baseInstance", auto, AUTO_REPLACED_BY)?;
            1
        }
        Some(Value::Number(n)) => parse_bounded("baseInstance", &n.to_string(), 1, MAX_INSTANCE)?,
        Some(other) => return Err(Error::invalid("baseInstance", other, "must be a number")),
    };
    check_fits(base, instances, allocation)?;
    // u32::MAX is the kernel's "no owner" value, so it cannot be asked for.
    Ok(PluginRequest {
        instances,
        base,
        tap_owner: plugin_number(root, overrides::TAP_OWNER.plugin_key, 0, u32::MAX - 1)?,
        tap_group: plugin_number(root, overrides::TAP_GROUP.plugin_key, 0, u32::MAX - 1)?,
        max_per_pod,
    })
}

/// Plugin keys, then per-pod overrides, each checked against the same bounds. ADD adds what a
/// pod may ask for on this node. DEL and CHECK skip those limits, so a pod admitted under an
/// earlier configuration can still be checked and removed.
fn pod_request(
    root: &Map<String, Value>,
    pod: &PodChannels,
    allocation: &AllocationConfig,
    obsolete: &mut Obsolete,
) -> Result<PodRequest, Error> {
    let plugin = plugin_request(root, allocation, obsolete)?;
    let pod_instances = pod_number(pod, &overrides::INSTANCES, 1, MAX_INSTANCE)?;
    let pod_base = pod_base_instance(pod, obsolete)?;
    let instances = pod_instances.as_ref().map_or(plugin.instances, |(_, n)| *n);
    let base = pod_base.as_ref().map_or(plugin.base, |(_, b)| *b);
    check_fits(base, instances, allocation)?;
    if obsolete.admitting {
        if let Some((source, asked)) = &pod_instances {
            if *asked > plugin.max_per_pod {
                return Err(Error::invalid(
                    source,
                    asked,
                    format!(
                        "more than maxInstancesPerPod ({}), the most one pod may take on this node",
                        plugin.max_per_pod
                    ),
                ));
            }
        }
        if let (Some((source, first)), Some(range)) = (&pod_base, allocation.declared_range()) {
            check_default_cids_outside(source, *first, instances, range)?;
        }
    }
    let tap_owner = pod_number(pod, &overrides::TAP_OWNER, 0, u32::MAX - 1)?;
    let tap_group = pod_number(pod, &overrides::TAP_GROUP, 0, u32::MAX - 1)?;
    let clamp_mss = match root.get("clampMss") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(Error::invalid("clampMss", other, "must be true or false")),
    };
    Ok(PodRequest {
        instances,
        base,
        tap_owner: tap_owner.map(|(_, uid)| uid).or(plugin.tap_owner),
        tap_group: tap_group.map(|(_, gid)| gid).or(plugin.tap_group),
        clamp_mss,
        dns_redirect: None,
    })
}

/// Instance numbers end at 128; with `vsockCid: "auto"` the pod's CIDs must fit `cidRange`.
fn check_fits(base_instance: u32, instances: u32, allocation: &AllocationConfig) -> Result<(), Error> {
    let last = u64::from(base_instance) + u64::from(instances) - 1;
    if last > u64::from(MAX_INSTANCE) {
        return Err(Error::invalid(
            "instances",
            format!("{instances} from baseInstance {base_instance}"),
            format!("the last instance would be {last}; instance numbers end at {MAX_INSTANCE}"),
        ));
    }
    let (low, high) = allocation.cid_range;
    if allocation.vsock_cid && u64::from(instances) > u64::from(high - low) + 1 {
        return Err(Error::invalid(
            "instances",
            instances,
            format!("more vsock CIDs than cidRange [{low}, {high}] holds"),
        ));
    }
    Ok(())
}

/// A pod that names its own first instance N takes Cuttlefish's default vsock CIDs N+2.. unless
/// it passes `--vsock_guest_cid`. Where `cidRange` declares the CIDs another allocator (the
/// device plugin) hands out on this node, such a block could take CIDs another pod holds.
fn check_default_cids_outside(
    source: &str,
    first: u32,
    instances: u32,
    range: (u32, u32),
) -> Result<(), Error> {
    let (cid_first, cid_last) = (first + 2, first + instances + 1);
    let (low, high) = range;
    if cid_last < low || cid_first > high {
        return Ok(());
    }
    Err(Error::invalid(
        source,
        first,
        format!(
            "instances {first}..{} take the default vsock CIDs {cid_first}..{cid_last}, which overlap cidRange [{low}, {high}], the CIDs handed out on this node: they could collide with another pod's CIDs. Drop the per-pod baseInstance and take the CIDs from the device plugin, set vsockCid: \"auto\", or move cidRange away from them",
            first + instances - 1
        ),
    ))
}

/// The per-pod `baseInstance`, with where it came from. The removed value "auto" counts as no
/// per-pod value where it is accepted (see [`Obsolete`]).
fn pod_base_instance(pod: &PodChannels, obsolete: &mut Obsolete) -> Result<Option<(String, u32)>, Error> {
    let Some(PodValue { source, text }) = pod.value(&overrides::BASE_INSTANCE)? else {
        return Ok(None);
    };
    if text == "auto" {
        obsolete.removed(&source, "auto", AUTO_REPLACED_BY)?;
        return Ok(None);
    }
    Ok(Some((
        source.clone(),
        parse_bounded(&source, &text, 1, MAX_INSTANCE)?,
    )))
}

/// `dnsRedirect` as configured.
enum DnsRedirect {
    Off,
    /// `true`: the first IPv4 server of the runtime's `dns` capability, per pod.
    FromRuntime,
    /// The first IPv4 server of the configured list.
    To(Ipv4Addr),
}

/// `dnsRedirect`: false (the default), true (the servers of the runtime's `dns` capability,
/// `runtimeConfig.dns.servers`), or a list of servers. Guest DNS goes to the first IPv4 one: the
/// table is `ip` family.
fn dns_redirect(root: &Map<String, Value>) -> Result<DnsRedirect, Error> {
    match root.get("dnsRedirect") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(DnsRedirect::Off),
        Some(Value::Bool(true)) => Ok(DnsRedirect::FromRuntime),
        Some(list @ Value::Array(_)) => {
            let texts = address_texts("dnsRedirect", Some(list))?;
            first_ipv4(&texts).map(DnsRedirect::To).ok_or_else(|| {
                Error::invalid(
                    "dnsRedirect",
                    format!("{texts:?}"),
                    "lists no IPv4 address (the table is ip family)",
                )
            })
        }
        Some(other) => Err(Error::invalid(
            "dnsRedirect",
            other,
            "must be true, false or a list of IPv4 addresses",
        )),
    }
}

/// The runtime capability that puts the pod's DNS settings in `runtimeConfig`.
pub const DNS_CAPABILITY: &str = "dns";

/// The server for `dnsRedirect: true`, from the runtime's `dns` capability.
fn runtime_dns_server(runtime_config: Option<&Map<String, Value>>) -> Result<Ipv4Addr, Error> {
    const FIELD: &str = "runtimeConfig.dns.servers";
    let servers = runtime_config
        .and_then(|rc| rc.get(DNS_CAPABILITY))
        .and_then(|dns| dns.get("servers"));
    let texts = address_texts(FIELD, servers)?;
    first_ipv4(&texts).ok_or_else(|| {
        Error::invalid(
            FIELD,
            format!("{texts:?}"),
            "dnsRedirect needs an IPv4 DNS server (declare the `dns` capability, or list servers)",
        )
    })
}

/// A list of IP address strings (absent: empty).
fn address_texts(field: &str, servers: Option<&Value>) -> Result<Vec<String>, Error> {
    let texts: Vec<String> = match servers {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::invalid(field, v, "must be a list of address strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(Error::invalid(field, other, "must be a list of address strings")),
    };
    match texts.iter().find(|t| t.parse::<std::net::IpAddr>().is_err()) {
        Some(bad) => Err(Error::invalid(field, bad, "is not an IP address")),
        None => Ok(texts),
    }
}

fn first_ipv4(texts: &[String]) -> Option<Ipv4Addr> {
    texts.iter().find_map(|t| t.parse().ok())
}

/// `agentSocket` and `dnsServers` are checked even with `dhcp` off.
fn dhcp_config(root: &Map<String, Value>) -> Result<Option<DhcpConfig>, Error> {
    let enabled = match root.get("dhcp") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(Error::invalid("dhcp", other, "must be true or false")),
    };
    let agent_socket = match root.get("agentSocket") {
        None | Some(Value::Null) => PathBuf::from(DEFAULT_AGENT_SOCKET),
        Some(Value::String(s)) if s.starts_with('/') && !s.contains('\0') => PathBuf::from(s),
        Some(other) => return Err(Error::invalid("agentSocket", other, "must be an absolute path")),
    };
    let dns = match root.get("dnsServers") {
        None | Some(Value::Null) => DEFAULT_DHCP_DNS.to_vec(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(|t| t.parse::<Ipv4Addr>().ok())
                    .ok_or_else(|| Error::invalid("dnsServers", v, "must be a list of IPv4 addresses"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(Error::invalid(
                "dnsServers",
                other,
                "must be a list of IPv4 addresses",
            ))
        }
    };
    Ok(enabled.then_some(DhcpConfig { agent_socket, dns }))
}

fn allocation_config(root: &Map<String, Value>, obsolete: &mut Obsolete) -> Result<AllocationConfig, Error> {
    if let Some(range) = root.get("instanceRange").filter(|v| !v.is_null()) {
        obsolete.removed(
            "instanceRange",
            range,
            "was removed in 0.2.0 with baseInstance \"auto\": instance numbers are no longer allocated. With vsockCid: \"auto\", cidRange says which vsock CIDs to allocate (instance N had CID N+2)",
        )?;
    }
    let vsock_cid = match root.get("vsockCid") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "auto" => true,
        Some(other) => {
            return Err(Error::invalid(
                "vsockCid",
                other,
                "must be \"auto\" (or absent, for CIDs from elsewhere)",
            ))
        }
    };
    let (cid_range, cid_range_declared) = match root.get("cidRange") {
        None | Some(Value::Null) => (DEFAULT_CID_RANGE, false),
        Some(value) => {
            let bounds: Option<Vec<u64>> = value
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect());
            match bounds.as_deref() {
                Some(&[low, high])
                    if value.as_array().map(Vec::len) == Some(2)
                        && u64::from(MIN_CID) <= low
                        && low <= high
                        && high <= u64::from(MAX_CID) =>
                {
                    ((low as u32, high as u32), true)
                }
                _ => {
                    return Err(Error::invalid(
                        "cidRange",
                        value,
                        format!("must be [first, last] with {MIN_CID} <= first <= last <= {MAX_CID}"),
                    ))
                }
            }
        }
    };
    let data_dir = match root.get("dataDir") {
        None | Some(Value::Null) => PathBuf::from(DEFAULT_DATA_DIR),
        Some(Value::String(s)) if s.starts_with('/') && !s.contains('\0') => PathBuf::from(s),
        Some(other) => return Err(Error::invalid("dataDir", other, "must be an absolute path")),
    };
    Ok(AllocationConfig {
        vsock_cid,
        cid_range,
        cid_range_declared,
        data_dir,
    })
}

fn plugin_number(root: &Map<String, Value>, key: &str, min: u32, max: u32) -> Result<Option<u32>, Error> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => parse_bounded(key, &n.to_string(), min, max).map(Some),
        Some(other) => Err(Error::invalid(key, other, "must be a number")),
    }
}

/// A pod's value for `key`, with where it came from.
fn pod_number(
    pod: &PodChannels,
    key: &OverrideKey,
    min: u32,
    max: u32,
) -> Result<Option<(String, u32)>, Error> {
    let Some(PodValue { source, text }) = pod.value(key)? else {
        return Ok(None);
    };
    let value = parse_bounded(&source, &text, min, max)?;
    Ok(Some((source, value)))
}

fn parse_bounded(field: &str, text: &str, min: u32, max: u32) -> Result<u32, Error> {
    let reason = format!("must be a whole number from {min} to {max}");
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let value = digits_only.then(|| text.parse::<u64>().ok()).flatten();
    match value {
        Some(v) if (u64::from(min)..=u64::from(max)).contains(&v) => Ok(v as u32),
        _ => Err(Error::invalid(field, text, reason)),
    }
}

fn log_settings(root: &Map<String, Value>) -> Result<LogSettings, Error> {
    let file = match root.get("logFile") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_plain_file_path(s) => Some(PathBuf::from(s)),
        Some(other) => {
            return Err(Error::invalid(
                "logFile",
                other,
                "must be an absolute path to a file, without . or .. components",
            ))
        }
    };
    let level = match root.get("logLevel") {
        None | Some(Value::Null) => log::LevelFilter::Info,
        Some(Value::String(s)) => match s.as_str() {
            "error" => log::LevelFilter::Error,
            "warn" => log::LevelFilter::Warn,
            "info" => log::LevelFilter::Info,
            "debug" => log::LevelFilter::Debug,
            "trace" => log::LevelFilter::Trace,
            _ => {
                return Err(Error::invalid(
                    "logLevel",
                    format!("{s:?}"),
                    "must be one of error, warn, info, debug, trace",
                ))
            }
        },
        Some(other) => return Err(Error::invalid("logLevel", other, "must be a string")),
    };
    Ok(LogSettings { file, level })
}

/// Absolute, no NUL, no `.` or `..` (which would let a path under /var/log lead elsewhere), and
/// a file name at the end.
fn is_plain_file_path(path: &str) -> bool {
    path.strip_prefix('/').is_some_and(|rest| {
        !path.contains('\0') && rest.split('/').all(|part| !matches!(part, "" | "." | ".."))
    })
}

/// GC's list of live attachments. libcni sends both spellings (cni#1101); the newer one wins.
fn valid_attachments(root: &Map<String, Value>) -> Result<Option<Vec<Attachment>>, Error> {
    let (key, list) = match (
        root.get("cni.dev/valid-attachments"),
        root.get("cni.dev/attachments"),
    ) {
        (Some(list), _) => ("cni.dev/valid-attachments", list),
        (None, Some(list)) => ("cni.dev/attachments", list),
        (None, None) => return Ok(None),
    };
    let Value::Array(items) = list else {
        return Err(Error::invalid(key, list, "must be an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| -> Result<String, Error> {
                match item.get(name) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    other => Err(Error::invalid(
                        format!("{key}[{i}].{name}"),
                        other.map_or("(missing)".to_string(), Value::to_string),
                        "must be a string",
                    )),
                }
            };
            Ok(Attachment {
                container_id: field("containerID")?,
                ifname: field("ifname")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests;
