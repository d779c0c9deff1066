//! The `cuttlefish-cni` executable: a CNI plugin. Reads the CNI environment and the network
//! configuration on stdin, prints a result or an error JSON on stdout, and nothing else there.

use cuttlefish_cni::cni::{self, Invocation};
use cuttlefish_cni::config::{self, MAX_STDIN_BYTES};
use cuttlefish_cni::error::Error;
use cuttlefish_cni::{logger, plugin};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    if about_asked(
        std::env::args().skip(1),
        std::env::var_os("CNI_COMMAND").is_some(),
    ) {
        print!("{}", about());
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    logger::init(env!("CARGO_BIN_NAME"));
    let stdin = read_stdin();
    let invocation = Invocation::from_env();
    // Errors are answered in the configuration's version when it is one we speak.
    let version = config::answer_version(stdin.as_deref().unwrap_or_default());
    let summary = invocation.as_ref().ok().map(Summary::of);
    let outcome = match (invocation, stdin) {
        (Ok(invocation), Ok(stdin)) => plugin::run(&invocation, &stdin),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    log::info!(
        "{} duration_ms={:.2} outcome={}",
        summary.unwrap_or_default().0,
        started.elapsed().as_secs_f64() * 1e3,
        outcome_text(&outcome)
    );
    let mut stdout = std::io::stdout().lock();
    let (answer, code) = match outcome {
        Ok(answer) => (answer, ExitCode::SUCCESS),
        Err(e) => (Some(cni::error_json(&version, &e)), ExitCode::FAILURE),
    };
    if let Some(answer) = answer {
        let _ = writeln!(stdout, "{answer}");
    }
    code
}

/// `--help`, `-h` or `--version` alone, from a person: a runtime always sets `CNI_COMMAND`, and
/// then the plugin speaks CNI only.
fn about_asked(mut args: impl Iterator<Item = String>, cni_command: bool) -> bool {
    let asked = args
        .next()
        .is_some_and(|arg| matches!(arg.as_str(), "--help" | "-h" | "--version"));
    asked && args.next().is_none() && !cni_command
}

fn about() -> String {
    format!(
        "\
cuttlefish-cni {version}: a chained CNI plugin that builds Android Cuttlefish's host network
(TAPs, the bridges cvd-ebr and cvd-wbr, NAT) inside a pod's network namespace.

A container runtime (containerd, CRI-O, podman) runs it from its CNI bin dir after the pod's
primary network plugin: the command in CNI_COMMAND with the other CNI_* variables, the network
configuration on stdin, the result on stdout. CNI versions: {cni_versions}.

Usage: cuttlefish-cni --help | --version    this text
",
        version = env!("CARGO_PKG_VERSION"),
        cni_versions = cni::SUPPORTED_VERSIONS.join(", "),
    )
}

fn read_stdin() -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    // Read one byte past the limit so an oversized config is detected, not silently truncated.
    std::io::stdin()
        .take(MAX_STDIN_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(Error::io("reading stdin"))?;
    Ok(buf)
}

/// The start of the one log line per invocation: command, pod, container.
#[derive(Default)]
struct Summary(String);

impl Summary {
    fn of(invocation: &Invocation) -> Summary {
        let arg = |key: &str| {
            invocation
                .cni_args
                .iter()
                .find(|(k, _)| k == key)
                .map_or("-", |(_, v)| v.as_str())
        };
        let container = invocation
            .command
            .attachment()
            .map_or("-".to_string(), |a| format!("{}/{}", a.container_id, a.ifname));
        Summary(format!(
            "command={} pod={}/{} container={container}",
            invocation.command.name(),
            arg("K8S_POD_NAMESPACE"),
            arg("K8S_POD_NAME"),
        ))
    }
}

fn outcome_text(outcome: &Result<Option<Value>, Error>) -> String {
    match outcome {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("error code={} msg=\"{e}\"", e.code()),
    }
}
