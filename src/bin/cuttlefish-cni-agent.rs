//! `cuttlefish-cni-agent`: the node daemon that serves DHCP on the bridges of the pods whose
//! conflist entry sets `"dhcp": true`. See README.md, "DHCP on the bridges: the node agent".
//!
//!   cuttlefish-cni-agent [--socket PATH] [--state-dir DIR] [--log-level LEVEL] [--allow-uid UID]...
//!   cuttlefish-cni-agent status [--socket PATH]     prints the counters as JSON
//!
//! Requests are taken from uid 0 only, and from each uid given with --allow-uid.

use cuttlefish_cni::agent::client;
use cuttlefish_cni::agent::daemon::Agent;
use cuttlefish_cni::agent::protocol::Request;
use cuttlefish_cni::config::DEFAULT_AGENT_SOCKET;
use cuttlefish_cni::logger;
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_STATE_DIR: &str = "/var/lib/cuttlefish-cni";

struct Args {
    status: bool,
    socket: PathBuf,
    state_dir: PathBuf,
    level: log::LevelFilter,
    allowed_uids: Vec<u32>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        status: false,
        socket: PathBuf::from(DEFAULT_AGENT_SOCKET),
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        level: log::LevelFilter::Info,
        allowed_uids: Vec::new(),
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
    logger::init();
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("cuttlefish-cni-agent: {e}");
            return ExitCode::from(2);
        }
    };
    logger::set_level(args.level);
    let outcome = if args.status {
        client::call(&args.socket, &Request::Status, None).and_then(|response| match response.status {
            Some(status) if response.ok => {
                println!("{}", serde_json::to_string_pretty(&status).expect("serialisable"));
                Ok(())
            }
            _ => Err(format!(
                "the agent refused: {}",
                response.error.unwrap_or_default()
            )),
        })
    } else {
        Agent::start(&args.state_dir, &args.allowed_uids)
            .and_then(|agent| agent.listen(&args.socket))
            .map_err(|e| e.to_string())
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
