//! Command-line flags, each with an environment variable for DaemonSet manifests. A flag beats
//! its variable; an empty variable counts as unset.

use super::conflist::Entry;
use crate::cli;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: cuttlefish-cni-install [FLAGS]

Installs the cuttlefish-cni plugin on this node: copies the binary into the host's CNI bin dir
and, in chain mode, appends its entry to the node's primary conflist. Logs to stderr.

Flags (environment variable in brackets, default in parentheses):
  --host-bin-dir DIR    host CNI bin dir, as mounted [CUTTLEFISH_CNI_HOST_BIN_DIR] (/opt/cni/bin)
  --host-conf-dir DIR   host CNI conf dir, as mounted [CUTTLEFISH_CNI_HOST_CONF_DIR] (/etc/cni/net.d)
  --mode chain|manual   chain: edit the primary conflist; manual: touch no conflist
                        [CUTTLEFISH_CNI_MODE] (chain)
  --conflist NAME       the conflist to edit [CUTTLEFISH_CNI_CONFLIST] (the one the runtime
                        uses: of *.conf, *.conflist, *.json in lexical order, the first that
                        loads; refused when that is a single-plugin .conf or .json)
  --plugin-binary PATH  the binary to install [CUTTLEFISH_CNI_PLUGIN_BINARY] (/cuttlefish-cni)
  --host-seccomp-profile PATH
                        where the CVD pods' seccomp profile goes, as mounted: the kubelet's
                        seccomp dir plus cuttlefish/cvd.json, in every mode; its directory must
                        exist [CUTTLEFISH_CNI_HOST_SECCOMP_PROFILE]
                        (/var/lib/kubelet/seccomp/cuttlefish/cvd.json)
  --plugin-keys JSON    extra keys of our conflist entry, e.g. '{\"logFile\": \"/var/log/cf.log\"}'
                        [CUTTLEFISH_CNI_PLUGIN_KEYS] ({})
  --uninstall           remove our entry, restoring the conflist's bytes, the binary and the
                        seccomp profile
                        [CUTTLEFISH_CNI_UNINSTALL=true]
  --watch               keep going: repeat every interval until SIGTERM, so the entry comes back
                        after the primary CNI rewrites its conflist [CUTTLEFISH_CNI_WATCH=true]
  --interval SECONDS    how often --watch looks [CUTTLEFISH_CNI_WATCH_INTERVAL] (10)
  -h, --help            this text
";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Chain,
    Manual,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub host_bin_dir: PathBuf,
    pub host_conf_dir: PathBuf,
    pub mode: Mode,
    pub conflist: Option<String>,
    pub plugin_binary: PathBuf,
    pub host_seccomp_profile: PathBuf,
    pub entry: Entry,
    pub uninstall: bool,
    pub watch: bool,
    pub interval: Duration,
}

pub type Command = cli::Command<Options>;

/// `args` without the program name; `env` looks up a variable. Errors are usage errors.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, String> {
    let mut given: Vec<(&'static str, String)> = Vec::new();
    let mut args = cli::Args::new(args);
    while let Some(arg) = args.next() {
        let spec = FLAGS
            .iter()
            .find(|spec| spec.flag == arg.name)
            .ok_or_else(|| cli::unknown(&arg))?;
        let value = if spec.takes_value {
            args.value(arg)?
        } else {
            arg.no_value().map(|()| "true".to_string())?
        };
        given.push((spec.flag, value));
    }
    let value = |flag: &str| -> Option<String> {
        let spec = FLAGS.iter().find(|spec| spec.flag == flag)?;
        given
            .iter()
            .rev()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                let variable = Some(spec.variable).filter(|v| !v.is_empty());
                variable.and_then(&env).filter(|v| !v.is_empty())
            })
    };
    if value("--help").is_some() {
        return Ok(Command::Help);
    }
    let path = |flag, default: &str| PathBuf::from(value(flag).unwrap_or_else(|| default.into()));
    Ok(Command::Run(Options {
        host_bin_dir: path("--host-bin-dir", "/opt/cni/bin"),
        host_conf_dir: path("--host-conf-dir", "/etc/cni/net.d"),
        mode: match value("--mode").as_deref() {
            None | Some("chain") => Mode::Chain,
            Some("manual") => Mode::Manual,
            Some(other) => return Err(format!("--mode must be chain or manual, not {other:?}")),
        },
        conflist: value("--conflist"),
        plugin_binary: path("--plugin-binary", "/cuttlefish-cni"),
        host_seccomp_profile: seccomp_profile(path(
            "--host-seccomp-profile",
            "/var/lib/kubelet/seccomp/cuttlefish/cvd.json",
        ))?,
        entry: entry(value("--plugin-keys"))?,
        uninstall: switch("--uninstall", value("--uninstall"))?,
        watch: switch("--watch", value("--watch"))?,
        interval: interval(value("--interval"))?,
    }))
}

struct Flag {
    flag: &'static str,
    variable: &'static str,
    takes_value: bool,
}

const fn flag(flag: &'static str, variable: &'static str, takes_value: bool) -> Flag {
    Flag {
        flag,
        variable,
        takes_value,
    }
}

const FLAGS: [Flag; 11] = [
    flag("--host-bin-dir", "CUTTLEFISH_CNI_HOST_BIN_DIR", true),
    flag("--host-conf-dir", "CUTTLEFISH_CNI_HOST_CONF_DIR", true),
    flag("--mode", "CUTTLEFISH_CNI_MODE", true),
    flag("--conflist", "CUTTLEFISH_CNI_CONFLIST", true),
    flag("--plugin-binary", "CUTTLEFISH_CNI_PLUGIN_BINARY", true),
    flag(
        "--host-seccomp-profile",
        "CUTTLEFISH_CNI_HOST_SECCOMP_PROFILE",
        true,
    ),
    flag("--plugin-keys", "CUTTLEFISH_CNI_PLUGIN_KEYS", true),
    flag("--uninstall", "CUTTLEFISH_CNI_UNINSTALL", false),
    flag("--watch", "CUTTLEFISH_CNI_WATCH", false),
    flag("--interval", "CUTTLEFISH_CNI_WATCH_INTERVAL", true),
    flag("--help", "", false),
];

fn switch(flag: &str, value: Option<String>) -> Result<bool, String> {
    match value.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("{flag} must be true or false, not {other:?}")),
    }
}

fn seccomp_profile(path: PathBuf) -> Result<PathBuf, String> {
    if path.is_absolute() && path.file_name().is_some() {
        return Ok(path);
    }
    Err(format!(
        "--host-seccomp-profile must be an absolute file path, not {:?}",
        path.display().to_string()
    ))
}

fn entry(keys: Option<String>) -> Result<Entry, String> {
    let extra = match keys {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(format!("--plugin-keys must be a JSON object, not {text:?}")),
        },
    };
    Entry::new(extra)
}

fn interval(seconds: Option<String>) -> Result<Duration, String> {
    let Some(text) = seconds else {
        return Ok(Duration::from_secs(10));
    };
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--interval must be a positive number of seconds, not {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Options, String> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match parse(args.iter().map(|a| a.to_string()), lookup)? {
            Command::Run(options) => Ok(options),
            Command::Help => panic!("unexpected --help"),
        }
    }

    #[test]
    fn defaults_are_the_standard_host_paths_and_chain_mode() {
        let options = run(&[], &[]).unwrap();
        assert_eq!(options.host_bin_dir, PathBuf::from("/opt/cni/bin"));
        assert_eq!(options.host_conf_dir, PathBuf::from("/etc/cni/net.d"));
        assert_eq!(options.mode, Mode::Chain);
        assert_eq!(options.plugin_binary, PathBuf::from("/cuttlefish-cni"));
        assert_eq!(
            options.host_seccomp_profile,
            PathBuf::from("/var/lib/kubelet/seccomp/cuttlefish/cvd.json")
        );
        assert_eq!((options.uninstall, options.watch), (false, false));
        assert_eq!(options.interval, Duration::from_secs(10));
    }

    #[test]
    fn flags_beat_environment_variables() {
        let env = [
            ("CUTTLEFISH_CNI_MODE", "manual"),
            ("CUTTLEFISH_CNI_HOST_BIN_DIR", "/env/bin"),
            ("CUTTLEFISH_CNI_WATCH", "true"),
        ];
        let options = run(&["--mode=chain", "--interval", "0.5"], &env).unwrap();
        assert_eq!(options.mode, Mode::Chain);
        assert_eq!(options.host_bin_dir, PathBuf::from("/env/bin"));
        assert!(options.watch);
        assert_eq!(options.interval, Duration::from_millis(500));
    }

    #[test]
    fn empty_environment_variables_count_as_unset() {
        let env = [("CUTTLEFISH_CNI_CONFLIST", ""), ("CUTTLEFISH_CNI_MODE", "")];
        let options = run(&[], &env).unwrap();
        assert_eq!((options.conflist, options.mode), (None, Mode::Chain));
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        for args in [
            &["--mode", "exclusive"][..],
            &["--interval", "0"],
            &["--interval=soon"],
            &["--plugin-keys", "[1]"],
            &["--plugin-keys", r#"{"type":"x"}"#],
            &["--host-seccomp-profile", "cvd.json"],
            &["--host-seccomp-profile=/"],
            &["--uninstall=yes"],
            &["--host-bin-dir"],
            &["--bogus"],
        ] {
            let error = run(args, &[]).unwrap_err().to_string();
            let flag = args[0].split('=').next().unwrap();
            assert!(
                error.contains(flag) || error.contains("type"),
                "{args:?}: {error}"
            );
        }
    }

    #[test]
    fn help_wins_over_everything_else() {
        let args = ["--mode=bogus", "--help"].map(String::from);
        let parsed = parse(args, |_| None).unwrap();
        assert_eq!(parsed, Command::Help);
    }
}
