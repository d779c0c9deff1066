//! The `cuttlefish-cni-install` executable: installs the plugin on the node it runs on, once or,
//! with `--watch`, until SIGTERM. See `cuttlefish-cni-install --help`.

use cuttlefish_cni::install::{self, Command};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    log::set_logger(&StderrLogger).expect("the only logger");
    log::set_max_level(log::LevelFilter::Info);
    let options = match install::parse(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{}", install::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
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

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let line = format!(
                "{:<5} cuttlefish-cni-install: {}\n",
                record.level(),
                record.args()
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}
