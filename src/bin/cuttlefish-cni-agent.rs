//! `cuttlefish-cni-agent`: the node daemon that serves DHCP on the bridges of the pods whose
//! conflist entry sets `"dhcp": true`, the kubelet device plugin for vsock CIDs and the CVD
//! device nodes, and Prometheus metrics. See README.md, "DHCP on the bridges: the node agent"
//! and "Device plugin and metrics".
//!
//! Every flag, with its default: `cuttlefish-cni-agent --help`. Requests are taken from uid 0
//! only, and from each uid given with --allow-uid.

use cuttlefish_cni::agent::client::{self, CallError};
use cuttlefish_cni::agent::daemon::Agent;
use cuttlefish_cni::agent::device_plugin::{self, resources};
use cuttlefish_cni::agent::metrics::{self, Metrics};
use cuttlefish_cni::agent::protocol::Request;
use cuttlefish_cni::agent::supervise;
use cuttlefish_cni::cli::{self, Command};
use cuttlefish_cni::config::DEFAULT_AGENT_SOCKET;
use cuttlefish_cni::logger;
use std::io;
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

/// Why one of the services stopped; the supervisor starts it again.
#[derive(Debug, thiserror::Error)]
enum ServiceError {
    #[error("{0}")]
    Runtime(#[from] supervise::RuntimeError),
    #[error("{0}")]
    DevicePlugin(#[from] device_plugin::Stopped),
    #[error("serving http://{address}/metrics: {source}")]
    Metrics { address: SocketAddr, source: io::Error },
    #[error("loading {}: {source}", dir.display())]
    Load { dir: PathBuf, source: io::Error },
    #[error("listening on {}: {source}", socket.display())]
    Listen { socket: PathBuf, source: io::Error },
}

/// Why `status` printed no counters.
#[derive(Debug, thiserror::Error)]
enum StatusError {
    #[error("{0}")]
    Call(#[from] CallError),
    #[error("the agent refused: {0}")]
    Refused(String),
}

fn usage() -> String {
    format!(
        "\
Usage: cuttlefish-cni-agent [FLAGS]
       cuttlefish-cni-agent status [--socket PATH]

The node agent of cuttlefish-cni: serves DHCP on the bridges of the pods whose conflist entry
sets \"dhcp\": true, the kubelet device plugin for vsock CIDs and the CVD device nodes, and
Prometheus metrics. With `status`, prints the running agent's counters as JSON. Logs to stderr.

Flags (default in parentheses):
  --socket PATH           where the plugin registers pods ({socket})
  --state-dir DIR         where registrations are kept across restarts ({state_dir})
  --log-level LEVEL       off, error, warn, info, debug or trace (info)
  --allow-uid UID         also take requests from this uid; repeatable (none: uid 0 only)
  --device-plugin-dir DIR the kubelet's device-plugins directory ({device_plugin_dir})
  --dev-root DIR          where the host's device nodes are looked up ({dev_root})
  --cid-range FIRST-LAST  the vsock CIDs to hand out ({cid_range})
  --shared-capacity N     how many pods may hold each shared device at once, 1 to {max_shared}
                          ({shared})
  --metrics-address ADDR:PORT
                          where GET /metrics is served; port 0 takes a free one ({metrics})
  -h, --help              this text
",
        socket = DEFAULT_AGENT_SOCKET,
        state_dir = DEFAULT_STATE_DIR,
        device_plugin_dir = device_plugin::DEFAULT_DIR,
        dev_root = device_plugin::DEFAULT_DEV_ROOT,
        cid_range = device_plugin::DEFAULT_CID_RANGE,
        max_shared = resources::MAX_SHARED_CAPACITY,
        shared = device_plugin::DEFAULT_SHARED_CAPACITY,
        metrics = DEFAULT_METRICS_ADDRESS,
    )
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Command<Args>, String> {
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
    let mut args = cli::Args::new(args);
    while let Some(arg) = args.next() {
        match arg.name.as_str() {
            "--help" => {
                arg.no_value()?;
                return Ok(Command::Help);
            }
            "status" => parsed.status = true,
            "--socket" => parsed.socket = args.value(arg)?.into(),
            "--state-dir" => parsed.state_dir = args.value(arg)?.into(),
            "--log-level" => {
                parsed.level = args
                    .value(arg)?
                    .parse()
                    .map_err(|e| format!("--log-level: {e}"))?
            }
            "--allow-uid" => {
                let uid = args.value(arg)?;
                parsed
                    .allowed_uids
                    .push(uid.parse().map_err(|e| format!("--allow-uid {uid:?}: {e}"))?)
            }
            "--device-plugin-dir" => parsed.device_plugin.dir = args.value(arg)?.into(),
            "--dev-root" => parsed.device_plugin.dev_root = args.value(arg)?.into(),
            "--cid-range" => {
                parsed.device_plugin.cids = args
                    .value(arg)?
                    .parse()
                    .map_err(|e| format!("--cid-range: {e}"))?
            }
            "--shared-capacity" => {
                let text = args.value(arg)?;
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
                let text = args.value(arg)?;
                parsed.metrics_address = text
                    .parse()
                    .map_err(|e| format!("--metrics-address: {text:?}: {e}"))?
            }
            _ => return Err(cli::unknown(&arg)),
        }
    }
    Ok(Command::Run(parsed))
}

fn main() -> ExitCode {
    logger::init(env!("CARGO_BIN_NAME"));
    let parsed = parse(std::env::args().skip(1));
    cli::main(env!("CARGO_BIN_NAME"), &usage(), parsed, run)
}

fn run(args: Args) -> ExitCode {
    logger::set_level(args.level);
    if !args.status {
        serve(args);
    }
    match status(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the running agent's counters.
fn status(args: &Args) -> Result<(), StatusError> {
    let response = client::call(&args.socket, &Request::Status, None)?;
    match response.status {
        Some(status) if response.ok => {
            println!("{}", serde_json::to_string_pretty(&status).expect("serialisable"));
            Ok(())
        }
        _ => Err(StatusError::Refused(response.error.unwrap_or_default())),
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
    supervise::spawn("device plugin", move || -> Result<(), ServiceError> {
        Ok(supervise::runtime()?.block_on(device_plugin::run(config.clone(), &resources))?)
    });
    supervise::spawn("metrics", move || -> Result<(), ServiceError> {
        supervise::runtime()?
            .block_on(metrics::http::serve(args.metrics_address, metrics.clone()))
            .map_err(|source| ServiceError::Metrics {
                address: args.metrics_address,
                source,
            })
    });
    supervise::forever("DHCP", || {
        // The agent starts once: it holds the running servers. Only the socket is retried.
        let agent = match dhcp.get() {
            Some(agent) => agent.clone(),
            None => {
                let agent = Agent::start(&args.state_dir, &args.allowed_uids).map_err(|source| {
                    ServiceError::Load {
                        dir: args.state_dir.clone(),
                        source,
                    }
                })?;
                dhcp.get_or_init(|| agent).clone()
            }
        };
        agent.listen(&args.socket).map_err(|source| ServiceError::Listen {
            socket: args.socket.clone(),
            source,
        })
    })
}
