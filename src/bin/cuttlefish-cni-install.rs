//! The `cuttlefish-cni-install` executable: installs the plugin on the node it runs on, once or,
//! with `--watch`, until SIGTERM. See `cuttlefish-cni-install --help`.

use cuttlefish_cni::install::{self, Options};
use cuttlefish_cni::{cli, logger};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    logger::init(env!("CARGO_BIN_NAME"));
    let parsed = install::parse(std::env::args().skip(1), |name| std::env::var(name).ok());
    cli::main(env!("CARGO_BIN_NAME"), install::USAGE, parsed, run)
}

fn run(options: Options) -> ExitCode {
    if !options.watch {
        return match install::run_once(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = stop_on_termination() {
        log::error!("installing the SIGTERM and SIGINT handlers: {e}");
        return ExitCode::FAILURE;
    }
    install::watch(&options, &STOP);
    ExitCode::SUCCESS
}

extern "C" fn request_stop(_: nix::libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// As PID 1 of its container the installer gets no default action for SIGTERM: without a
/// handler the kubelet would wait out the grace period and SIGKILL it.
fn stop_on_termination() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(request_stop),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { signal::sigaction(signal, &action) }?;
    }
    Ok(())
}
