//! One pass towards the wanted state (installed or uninstalled), and `--watch`: a pass every
//! interval. Polling rather than inotify: the primary CNI replaces its conflist by rename, and a
//! poll also notices a conflist that appears late, with no watch descriptors to re-arm.

use super::binary::{self, Copied};
use super::chain::{self, Chained, Unchained, VersionChange};
use super::conflist::UPGRADED_VERSION;
use super::error::InstallError;
use super::options::{Mode, Options};
use super::seccomp::{self, Written};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Installing copies the binary before adding the entry, and uninstalling removes the entry
/// before the binary: a conflist never names a missing plugin, which would fail every pod ADD.
/// The seccomp profile is a step of its own, taken whatever becomes of the other two (a
/// DaemonSet from before the profile has no seccomp mount); the first error is returned.
pub fn run_once(options: &Options) -> Result<(), InstallError> {
    let (plugin, profile) = if options.uninstall {
        (uninstall_plugin(options), remove_seccomp_profile(options))
    } else {
        (install_plugin(options), install_seccomp_profile(options))
    };
    plugin.and(profile)
}

fn install_plugin(options: &Options) -> Result<(), InstallError> {
    install_binary(options)?;
    if options.mode == Mode::Chain {
        chain(options)?;
    }
    Ok(())
}

fn uninstall_plugin(options: &Options) -> Result<(), InstallError> {
    if options.mode == Mode::Chain {
        unchain(options)?;
    }
    remove_binary(options)
}

/// Passes until `stop` is set. A failed pass is logged when its error differs from the last
/// one, so a broken conflist does not flood the log, and is retried at the next interval.
pub fn watch(options: &Options, stop: &AtomicBool) {
    log::info!(
        "watching every {:.1}s: {}",
        options.interval.as_secs_f64(),
        if options.uninstall {
            "keeping cuttlefish-cni uninstalled"
        } else {
            "keeping cuttlefish-cni installed"
        }
    );
    let mut last_error = None;
    while !stop.load(Ordering::SeqCst) {
        match run_once(options) {
            Ok(()) => last_error = None,
            Err(e) => {
                let message = e.to_string();
                if last_error.as_ref() != Some(&message) {
                    log::error!("{message}; retrying every {:.1}s", options.interval.as_secs_f64());
                    last_error = Some(message);
                }
            }
        }
        sleep_unless_stopped(options.interval, stop);
    }
    log::info!("stopping; the installation is left as it is");
}

fn sleep_unless_stopped(interval: Duration, stop: &AtomicBool) {
    let deadline = Instant::now() + interval;
    while !stop.load(Ordering::SeqCst) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

fn install_binary(options: &Options) -> Result<(), InstallError> {
    let target = binary::installed_path(&options.host_bin_dir);
    match binary::install(&options.plugin_binary, &options.host_bin_dir)? {
        Copied::Yes => log::info!(
            "copied {} to {}",
            options.plugin_binary.display(),
            target.display()
        ),
        Copied::AlreadyIdentical => log::debug!("{} is up to date", target.display()),
    }
    Ok(())
}

fn remove_binary(options: &Options) -> Result<(), InstallError> {
    let target = binary::installed_path(&options.host_bin_dir);
    if binary::remove(&options.host_bin_dir)? {
        log::info!("removed {}", target.display());
    }
    Ok(())
}

fn install_seccomp_profile(options: &Options) -> Result<(), InstallError> {
    let target = &options.host_seccomp_profile;
    match seccomp::install(target)? {
        Written::Yes => log::info!("wrote the CVD seccomp profile {}", target.display()),
        Written::AlreadyCurrent => log::debug!("{} is up to date", target.display()),
    }
    Ok(())
}

fn remove_seccomp_profile(options: &Options) -> Result<(), InstallError> {
    if seccomp::remove(&options.host_seccomp_profile)? {
        log::info!("removed {}", options.host_seccomp_profile.display());
    }
    Ok(())
}

fn chain(options: &Options) -> Result<(), InstallError> {
    let conflist = chain::primary_conflist(&options.host_conf_dir, options.conflist.as_deref())?;
    match chain::add(&conflist, &options.entry, &options.host_bin_dir)? {
        Chained::Added(change) => {
            log::info!("appended the cuttlefish-cni entry to {}", conflist.display());
            match change {
                VersionChange::Upgraded { from } => log::info!(
                    "upgraded cniVersion of {} from {from} to {UPGRADED_VERSION} so that CHECK, GC and STATUS reach the plugins; uninstall puts {from} back",
                    conflist.display()
                ),
                VersionChange::Kept { version, reason } => log::warn!(
                    "kept cniVersion {version} of {}: {reason}; without {UPGRADED_VERSION} the runtime sends no GC or STATUS to the plugins",
                    conflist.display()
                ),
                VersionChange::None => {}
            }
        }
        Chained::AlreadyPresent => log::debug!("{} already has a cuttlefish-cni entry", conflist.display()),
    }
    Ok(())
}

fn unchain(options: &Options) -> Result<(), InstallError> {
    // The installer adds its entry to no file it refuses, and a missing conflist holds none.
    // A file that does not load may hold one, though: that is an error.
    let conflist = match chain::primary_conflist(&options.host_conf_dir, options.conflist.as_deref()) {
        Err(InstallError::NotChainable { .. }) => return Ok(()),
        Err(InstallError::NoNetworkConfig { skipped, .. }) if skipped.is_empty() => return Ok(()),
        found => found?,
    };
    if !conflist.exists() {
        return Ok(());
    }
    match chain::remove(&conflist)? {
        Unchained::Removed { restored_version } => {
            log::info!("removed the cuttlefish-cni entry from {}", conflist.display());
            if let Some(version) = restored_version {
                log::info!("restored cniVersion {version} in {}", conflist.display());
            }
        }
        Unchained::NotPresent => log::debug!("{} has no cuttlefish-cni entry", conflist.display()),
    }
    Ok(())
}
