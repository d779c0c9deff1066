//! Whether the primary's plugins accept a conflist at [`UPGRADED_VERSION`], asked of their
//! binaries with the CNI VERSION command. A plugin that does not list the version fails every
//! ADD with "incompatible CNI versions": cilium-cni lists 1.1.0 only since its STATUS support,
//! and some releases of other CNIs stop at 1.0.0.

use super::conflist::UPGRADED_VERSION;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// `Err` names the first plugin that does not accept the version, or cannot be asked, and why.
pub fn all_accept_upgrade(bin_dir: &Path, plugin_types: &[String], current: &str) -> Result<(), String> {
    for plugin_type in plugin_types {
        let supported = supported_versions(bin_dir, plugin_type, current)?;
        if !supported.iter().any(|v| v == UPGRADED_VERSION) {
            return Err(format!("{plugin_type} supports only {}", supported.join(", ")));
        }
    }
    Ok(())
}

fn supported_versions(bin_dir: &Path, plugin_type: &str, current: &str) -> Result<Vec<String>, String> {
    if plugin_type.is_empty() || plugin_type.contains('/') {
        return Err(format!("plugin type {plugin_type:?} is not a binary name"));
    }
    let binary = bin_dir.join(plugin_type);
    let mut child = Command::new(&binary)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {} VERSION: {e}", binary.display()))?;
    let config = serde_json::json!({ "cniVersion": current }).to_string();
    if let Some(mut stdin) = child.stdin.take() {
        // A plugin may answer without reading its stdin; a broken pipe is then no error.
        let _ = stdin.write_all(config.as_bytes());
    }
    let output = wait_with_timeout(child, VERSION_TIMEOUT)
        .map_err(|e| format!("{} VERSION: {e}", binary.display()))?;
    let answer: Value = serde_json::from_slice(&output)
        .map_err(|e| format!("{} VERSION answered no JSON: {e}", binary.display()))?;
    let versions = answer["supportedVersions"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| format!("{} VERSION listed no supportedVersions", binary.display()))?;
    Ok(versions)
}

/// The child's stdout once it exits successfully within `timeout`; killed otherwise. Read after
/// the exit: a VERSION answer is far smaller than a pipe buffer.
fn wait_with_timeout(mut child: Child, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => break,
            Some(status) => return Err(format!("exited with {status}")),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {timeout:?}"));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let mut output = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_end(&mut output).map_err(|e| e.to_string())?;
    }
    Ok(output)
}
