//! Whether the primary's plugins accept a conflist at [`UPGRADED_VERSION`], asked of their
//! binaries with the CNI VERSION command. A plugin that does not list the version fails every
//! ADD with "incompatible CNI versions": cilium-cni lists 1.1.0 only since its STATUS support,
//! and some releases of other CNIs stop at 1.0.0.

use super::conflist::UPGRADED_VERSION;
use serde_json::Value;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the version is not taken: the first plugin that does not accept it, or cannot be asked.
#[derive(Debug, thiserror::Error)]
pub enum NotAccepted {
    #[error("{plugin} supports only {}", supported.join(", "))]
    OlderVersions { plugin: String, supported: Vec<String> },
    #[error("plugin type {0:?} is not a binary name")]
    NotABinaryName(String),
    #[error("cannot run {} VERSION: {source}", binary.display())]
    CannotRun { binary: PathBuf, source: io::Error },
    #[error("{} VERSION: exited with {status}", binary.display())]
    Failed { binary: PathBuf, status: ExitStatus },
    #[error("{} VERSION: no answer within {VERSION_TIMEOUT:?}", binary.display())]
    NoAnswer { binary: PathBuf },
    #[error("{} VERSION: {source}", binary.display())]
    Io { binary: PathBuf, source: io::Error },
    #[error("{} VERSION answered no JSON: {source}", binary.display())]
    NotJson {
        binary: PathBuf,
        source: serde_json::Error,
    },
    #[error("{} VERSION listed no supportedVersions", binary.display())]
    NoVersionList { binary: PathBuf },
}

pub fn all_accept_upgrade(bin_dir: &Path, plugin_types: &[String], current: &str) -> Result<(), NotAccepted> {
    for plugin_type in plugin_types {
        let supported = supported_versions(bin_dir, plugin_type, current)?;
        if !supported.iter().any(|v| v == UPGRADED_VERSION) {
            return Err(NotAccepted::OlderVersions {
                plugin: plugin_type.clone(),
                supported,
            });
        }
    }
    Ok(())
}

fn supported_versions(bin_dir: &Path, plugin_type: &str, current: &str) -> Result<Vec<String>, NotAccepted> {
    if plugin_type.is_empty() || plugin_type.contains('/') {
        return Err(NotAccepted::NotABinaryName(plugin_type.to_string()));
    }
    let binary = bin_dir.join(plugin_type);
    let mut child = Command::new(&binary)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| NotAccepted::CannotRun {
            binary: binary.clone(),
            source,
        })?;
    let config = serde_json::json!({ "cniVersion": current }).to_string();
    if let Some(mut stdin) = child.stdin.take() {
        // A plugin may answer without reading its stdin; a broken pipe is then no error.
        let _ = stdin.write_all(config.as_bytes());
    }
    let output = wait_with_timeout(child, &binary)?;
    let answer: Value = serde_json::from_slice(&output).map_err(|source| NotAccepted::NotJson {
        binary: binary.clone(),
        source,
    })?;
    answer["supportedVersions"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .ok_or(NotAccepted::NoVersionList { binary })
}

/// The child's stdout once it exits successfully within [`VERSION_TIMEOUT`]; killed otherwise.
/// Read after the exit: a VERSION answer is far smaller than a pipe buffer.
fn wait_with_timeout(mut child: Child, binary: &Path) -> Result<Vec<u8>, NotAccepted> {
    let io = |source| NotAccepted::Io {
        binary: binary.to_path_buf(),
        source,
    };
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait().map_err(io)? {
            Some(status) if status.success() => break,
            Some(status) => {
                return Err(NotAccepted::Failed {
                    binary: binary.to_path_buf(),
                    status,
                })
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NotAccepted::NoAnswer {
                    binary: binary.to_path_buf(),
                });
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let mut output = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_end(&mut output).map_err(io)?;
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bin dir holding one executable shell script `plugin` for each `(plugin, script)`. A
    /// child writes each: a file this process held open for writing could still be open in a
    /// child another test thread forks, and running it would fail with ETXTBSY.
    fn bin_dir(name: &str, plugins: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cfcni-versions-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (plugin, script) in plugins {
            let mut writer = Command::new("sh")
                .args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
                .arg(dir.join(plugin))
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = writer.stdin.take().unwrap();
            stdin
                .write_all(format!("#!/bin/sh\n{script}\n").as_bytes())
                .unwrap();
            drop(stdin);
            assert!(writer.wait().unwrap().success());
        }
        dir
    }

    fn answer(versions: &str) -> String {
        format!("printf '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[{versions}]}}'")
    }

    #[test]
    fn every_plugin_listing_the_version_accepts_it() {
        let dir = bin_dir(
            "ok",
            &[("a", &answer("\"1.0.0\",\"1.1.0\"")), ("b", &answer("\"1.1.0\""))],
        );
        let plugins = ["a".to_string(), "b".to_string()];
        all_accept_upgrade(&dir, &plugins, "1.0.0").unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_first_plugin_that_refuses_or_cannot_be_asked_is_named_with_why() {
        let dir = bin_dir(
            "refusals",
            &[
                ("old", &answer("\"0.4.0\",\"1.0.0\"")),
                ("fails", "exit 3"),
                ("prose", "echo hello"),
                ("no-list", "printf '{}'"),
            ],
        );
        let refusal = |plugins: &[&str]| {
            let plugins: Vec<String> = plugins.iter().map(|p| p.to_string()).collect();
            all_accept_upgrade(&dir, &plugins, "1.0.0").unwrap_err()
        };
        let shown = |plugin: &str| {
            refusal(&[plugin])
                .to_string()
                .replace(&dir.display().to_string(), "DIR")
        };
        assert_eq!(shown("old"), "old supports only 0.4.0, 1.0.0");
        assert!(matches!(
            refusal(&["old", "fails"]),
            NotAccepted::OlderVersions { .. }
        ));
        assert!(matches!(refusal(&["fails", "old"]), NotAccepted::Failed { .. }));
        assert_eq!(shown("fails"), "DIR/fails VERSION: exited with exit status: 3");
        assert!(shown("prose").starts_with("DIR/prose VERSION answered no JSON: "));
        assert_eq!(
            shown("no-list"),
            "DIR/no-list VERSION listed no supportedVersions"
        );
        assert!(shown("missing").starts_with("cannot run DIR/missing VERSION: "));
        assert_eq!(shown("../old"), "plugin type \"../old\" is not a binary name");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
