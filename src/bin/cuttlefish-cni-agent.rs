//! `cuttlefish-cni-agent`: the node daemon that serves DHCP on the bridges of the pods whose
//! conflist entry sets `"dhcp": true`, the kubelet device plugin for vsock CIDs and the CVD
//! device nodes, and Prometheus metrics. See README.md, "DHCP on the bridges: the node agent"
//! and "Device plugin and metrics".
//!
//!   cuttlefish-cni-agent [--socket PATH] [--state-dir DIR] [--log-level LEVEL] [--allow-uid UID]...
//!                        [--device-plugin-dir DIR] [--dev-root DIR] [--cid-range FIRST-LAST]
//!                        [--shared-capacity N] [--metrics-address ADDR:PORT]
//!   cuttlefish-cni-agent status [--socket PATH]     prints the counters as JSON
//!
//! Requests are taken from uid 0 only, and from each uid given with --allow-uid.

use cuttlefish_cni::agent::client;
use cuttlefish_cni::agent::daemon::Agent;
use cuttlefish_cni::agent::device_plugin::{self, resources};
use cuttlefish_cni::agent::metrics::{self, Metrics};
use cuttlefish_cni::agent::protocol::Request;
use cuttlefish_cni::agent::supervise;
use cuttlefish_cni::config::DEFAULT_AGENT_SOCKET;
use cuttlefish_cni::logger;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

const DEFAULT_STATE_DIR: &str = "/var/lib/cuttlefish-cni";
const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9477";

struct Args {
    status: bool,
    socket: PathBuf,
    state_dir: PathBuf,
    level: log::LevelFilter,
    allowed_uids: Vec<u32>,
    device_plugin: device_plugin::Config,
    metrics_address: SocketAddr,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        status: false,
        socket: PathBuf::from(DEFAULT_AGENT_SOCKET),
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        level: log::LevelFilter::Info,
        allowed_uids: Vec::new(),
        device_plugin: device_plugin::Config {
            dir: PathBuf::from(device_plugin::DEFAULT_DIR),
            dev_root: PathBuf::from(device_plugin::DEFAULT_DEV_ROOT),
            cids: device_plugin::DEFAULT_CID_RANGE.parse().expect("valid default"),
            shared_capacity: device_plugin::DEFAULT_SHARED_CAPACITY,
        },
        metrics_address: DEFAULT_METRICS_ADDRESS.parse().expect("valid default"),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--socket" => parsed.socket = value()?.into(),
            "--state-dir" => parsed.state_dir = value()?.into(),
            "--log-level" => parsed.level = value()?.parse().map_err(|e| format!("--log-level: {e}"))?,
            "--allow-uid" => {
                let uid = value()?;
                parsed
                    .allowed_uids
                    .push(uid.parse().map_err(|e| format!("--allow-uid {uid:?}: {e}"))?)
            }
            "--device-plugin-dir" => parsed.device_plugin.dir = value()?.into(),
            "--dev-root" => parsed.device_plugin.dev_root = value()?.into(),
            "--cid-range" => {
                parsed.device_plugin.cids = value()?.parse().map_err(|e| format!("--cid-range: {e}"))?
            }
            "--shared-capacity" => {
                let text = value()?;
                parsed.device_plugin.shared_capacity = text
                    .parse()
                    .ok()
                    .filter(|n| (1..=resources::MAX_SHARED_CAPACITY).contains(n))
                    .ok_or_else(|| {
                        format!(
                            "--shared-capacity: {text:?} is not a number from 1 to {}",
                            resources::MAX_SHARED_CAPACITY
                        )
                    })?
            }
            "--metrics-address" => {
                let text = value()?;
                parsed.metrics_address = text
                    .parse()
                    .map_err(|e| format!("--metrics-address: {text:?}: {e}"))?
            }
            "status" => parsed.status = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; see the top of src/bin/cuttlefish-cni-agent.rs"
                ))
            }
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    logger::init(env!("CARGO_BIN_NAME"));
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("cuttlefish-cni-agent: {e}");
            return ExitCode::from(2);
        }
    };
    logger::set_level(args.level);
    if !args.status {
        serve(args);
    }
    let outcome =
        client::call(&args.socket, &Request::Status, None).and_then(|response| match response.status {
            Some(status) if response.ok => {
                println!("{}", serde_json::to_string_pretty(&status).expect("serialisable"));
                Ok(())
            }
            _ => Err(format!(
                "the agent refused: {}",
                response.error.unwrap_or_default()
            )),
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The three services, each supervised on its own: none of them can stop another.
fn serve(args: Args) -> ! {
    let dhcp: Arc<OnceLock<Arc<Agent>>> = Arc::default();
    let resources = resources::all(args.device_plugin.cids, args.device_plugin.shared_capacity);
    let dhcp_status = dhcp.clone();
    let metrics = Arc::new(Metrics {
        resources: resources.iter().map(|r| r.metrics.clone()).collect(),
        dhcp: Box::new(move || {
            let agent = dhcp_status.get()?;
            agent.handle(Request::Status, None).status
        }),
    });
    let config = Arc::new(args.device_plugin);
    supervise::spawn("device plugin", move || {
        supervise::runtime()?.block_on(device_plugin::run(config.clone(), &resources))
    });
    supervise::spawn("metrics", move || {
        supervise::runtime()?
            .block_on(metrics::http::serve(args.metrics_address, metrics.clone()))
            .map_err(|e| format!("serving http://{}/metrics: {e}", args.metrics_address))
    });
    supervise::forever("DHCP", || {
        // The agent starts once: it holds the running servers. Only the socket is retried.
        let agent = match dhcp.get() {
            Some(agent) => agent.clone(),
            None => {
                let agent = Agent::start(&args.state_dir, &args.allowed_uids)
                    .map_err(|e| format!("loading {}: {e}", args.state_dir.display()))?;
                dhcp.get_or_init(|| agent).clone()
            }
        };
        agent
            .listen(&args.socket)
            .map_err(|e| format!("listening on {}: {e}", args.socket.display()))
    })
}
