//! Keeps each of the agent's services (DHCP, device plugin, metrics) running on its own: a
//! service that fails or panics is logged and started again, and never takes the others down.

use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

const RESTART_AFTER: Duration = Duration::from_secs(2);

/// Runs `service` on the current thread, again and again; never returns.
pub fn forever<E: Display>(name: &str, mut service: impl FnMut() -> Result<(), E>) -> ! {
    loop {
        run_once(name, &mut service);
        std::thread::sleep(RESTART_AFTER);
    }
}

/// Runs `service` once; its failure or panic is logged, never passed on.
fn run_once<E: Display>(name: &str, service: &mut impl FnMut() -> Result<(), E>) {
    match catch_unwind(AssertUnwindSafe(service)) {
        Ok(Ok(())) => log::warn!("{name}: stopped; starting it again"),
        Ok(Err(e)) => log::error!("{name}: {e}; starting it again"),
        Err(_) => log::error!("{name}: panicked; starting it again"),
    }
}

/// Runs `service` on a thread of its own, as `forever` does.
pub fn spawn<E: Display>(name: &'static str, service: impl FnMut() -> Result<(), E> + Send + 'static) {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || forever(name, service))
        .expect("spawning a thread at start-up");
}

#[derive(Debug, thiserror::Error)]
#[error("starting a tokio runtime: {0}")]
pub struct RuntimeError(#[source] std::io::Error);

/// A single-threaded tokio runtime for one service.
pub fn runtime() -> Result<tokio::runtime::Runtime, RuntimeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RuntimeError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_or_panicking_service_is_contained() {
        let mut calls = 0;
        let mut service = || {
            calls += 1;
            match calls {
                1 => Err("refused"),
                2 => panic!("a bug"),
                _ => Ok(()),
            }
        };
        for _ in 0..3 {
            run_once("test", &mut service);
        }
        assert_eq!(calls, 3);
    }
}
