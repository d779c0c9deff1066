//! The three binaries' command lines: `--help` and `-h` print the usage on stdout and exit 0; an
//! unknown argument is one line on stderr pointing at `--help`, exit 2. The plugin answers
//! `--help` and `--version` only without `CNI_COMMAND`, and without reading stdin.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PLUGIN: &str = env!("CARGO_BIN_EXE_cuttlefish-cni");
const AGENT: &str = env!("CARGO_BIN_EXE_cuttlefish-cni-agent");
const INSTALL: &str = env!("CARGO_BIN_EXE_cuttlefish-cni-install");

/// Runs `binary` with a clean environment and a stdin that stays open and empty: a binary that
/// reads it hangs, and is killed after 10 s.
fn run(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_with_stdin(binary, args, env, None)
}

/// `stdin`, when given, is written and closed.
fn run_with_stdin(binary: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(binary)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut open = child.stdin.take();
    if let Some(bytes) = stdin {
        open.take().unwrap().write_all(bytes).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{binary} {args:?} did not exit within 10 s: it waits for stdin");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut output = Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut output.stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut output.stderr)
        .unwrap();
    output
}

fn help(binary: &str, arg: &str) -> String {
    let out = run(binary, &[arg], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{binary} {arg}: {stderr}");
    assert!(out.stderr.is_empty(), "{binary} {arg} wrote to stderr: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// `flag` is on a line of `usage` with `default`.
fn documents(usage: &str, flag: &str, default: &str) -> bool {
    let mut lines = usage.lines().skip_while(|l| !l.trim_start().starts_with(flag));
    let Some(first) = lines.next() else {
        return false;
    };
    // A flag's text may go on over the indented lines below it.
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with("      ")))
        .any(|l| l.contains(&format!("({default})")))
}

#[test]
fn the_agent_lists_every_flag_with_its_default() {
    for arg in ["--help", "-h"] {
        let usage = help(AGENT, arg);
        assert!(usage.starts_with("Usage: cuttlefish-cni-agent "), "{usage}");
        for (flag, default) in [
            ("--socket", "/run/cuttlefish-cni/agent.sock"),
            ("--state-dir", "/var/lib/cuttlefish-cni"),
            ("--log-level", "info"),
            ("--allow-uid", "none: uid 0 only"),
            ("--device-plugin-dir", "/var/lib/kubelet/device-plugins"),
            ("--dev-root", "/dev"),
            ("--cid-range", "3-1026"),
            ("--shared-capacity", "110"),
            ("--metrics-address", "127.0.0.1:9477"),
        ] {
            assert!(
                documents(&usage, flag, default),
                "{flag} ({default}) in:\n{usage}"
            );
        }
    }
}

#[test]
fn the_installer_lists_every_flag_with_its_default() {
    for arg in ["--help", "-h"] {
        let usage = help(INSTALL, arg);
        assert!(usage.starts_with("Usage: cuttlefish-cni-install "), "{usage}");
        for (flag, default) in [
            ("--host-bin-dir", "/opt/cni/bin"),
            ("--host-conf-dir", "/etc/cni/net.d"),
            ("--mode", "chain"),
            ("--plugin-binary", "/cuttlefish-cni"),
            (
                "--host-seccomp-profile",
                "/var/lib/kubelet/seccomp/cuttlefish/cvd.json",
            ),
            ("--plugin-keys", "{}"),
            ("--interval", "10"),
        ] {
            assert!(
                documents(&usage, flag, default),
                "{flag} ({default}) in:\n{usage}"
            );
        }
    }
}

#[test]
fn an_unknown_argument_exits_2_pointing_at_help() {
    for binary in [AGENT, INSTALL] {
        for args in [&["--bogus"][..], &["--socket=/x", "extra"], &["-x"]] {
            let out = run(binary, args, &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{binary} {args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{binary} {args:?}");
            assert_eq!(stderr.lines().count(), 1, "{binary} {args:?}: {stderr}");
            assert!(stderr.ends_with("see --help\n"), "{binary} {args:?}: {stderr}");
        }
    }
}

#[test]
fn a_flag_without_its_value_exits_2() {
    for (binary, flag) in [(AGENT, "--state-dir"), (INSTALL, "--host-bin-dir")] {
        let out = run(binary, &[flag], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("{flag} needs a value")), "{stderr}");
    }
}

#[test]
fn the_plugin_says_what_it_is_without_cni_command() {
    for arg in ["--help", "-h", "--version"] {
        let usage = help(PLUGIN, arg);
        assert!(
            usage.contains(concat!("cuttlefish-cni ", env!("CARGO_PKG_VERSION"))),
            "{usage}"
        );
        assert!(usage.contains("container runtime"), "{usage}");
        assert!(usage.contains("CNI_COMMAND"), "{usage}");
    }
}

#[test]
fn with_cni_command_the_plugin_speaks_only_cni() {
    let conf = br#"{"cniVersion":"1.0.0"}"#;
    let out = run_with_stdin(PLUGIN, &["--help"], &[("CNI_COMMAND", "VERSION")], Some(conf));
    assert_eq!(out.status.code(), Some(0));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["cniVersion"], "1.0.0", "{answer}");
    assert!(answer["supportedVersions"].is_array(), "{answer}");
}
