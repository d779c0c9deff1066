//! `cuttlefish-cni-install` against a temporary host root holding real conflists: Cilium's
//! default as Cilium writes it, a Calico one, one that already chains us, a malformed one.

use cuttlefish_cni::install::chain::version_note_path;
use cuttlefish_cni::install::{self, Command, Mode, Options};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Cilium's `05-cilium.conflist` with its defaults, byte for byte (including the seven-space
/// indentation of the plugin's keys).
const CILIUM: &str = r#"{
  "cniVersion": "0.3.1",
  "name": "cilium",
  "plugins": [
    {
       "type": "cilium-cni",
       "enable-debug": false,
       "log-file": "/var/run/cilium/cilium-cni.log"
    }
  ]
}
"#;

const CALICO: &str = r#"{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": "/var/log/calico/cni/cni.log",
      "datastore_type": "kubernetes",
      "nodename": "node-1",
      "mtu": 0,
      "ipam": {
          "type": "calico-ipam"
      },
      "policy": {
          "type": "k8s"
      },
      "kubernetes": {
          "kubeconfig": "/etc/cni/net.d/calico-kubeconfig"
      }
    },
    {
      "type": "bandwidth",
      "capabilities": {"bandwidth": true}
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {"portMappings": true}
    }
  ]
}
"#;

const ALREADY_CHAINED: &str = r#"{
  "cniVersion": "1.1.0",
  "name": "cilium",
  "plugins": [
    {
      "type": "cilium-cni",
      "enable-debug": false,
      "log-file": "/var/run/cilium/cilium-cni.log"
    },
    {
      "type": "cuttlefish-cni",
      "select": "annotated",
      "capabilities": { "io.kubernetes.cri.pod-annotations": true }
    }
  ]
}
"#;

const MALFORMED: &str = r#"{
  "cniVersion": "0.3.1",
  "name": "cilium",
  "plugins": [
    {"type": "cilium-cni",}
  ]
"#;

const PLUGIN_BINARY: &[u8] = b"\x7fELF pretend plugin, version 1";

/// A host root under the system temporary directory, removed on drop.
struct HostRoot {
    root: PathBuf,
}

impl HostRoot {
    fn new(conflists: &[(&str, &str)]) -> HostRoot {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "cuttlefish-cni-install-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&root);
        let host = HostRoot { root };
        fs::create_dir_all(host.bin_dir()).unwrap();
        fs::create_dir_all(host.conf_dir()).unwrap();
        fs::create_dir_all(host.image_dir()).unwrap();
        fs::create_dir_all(host.seccomp_root()).unwrap();
        fs::write(host.plugin_binary(), PLUGIN_BINARY).unwrap();
        for (name, text) in conflists {
            fs::write(host.conf_dir().join(name), text).unwrap();
        }
        host
    }

    fn bin_dir(&self) -> PathBuf {
        self.root.join("opt/cni/bin")
    }

    fn conf_dir(&self) -> PathBuf {
        self.root.join("etc/cni/net.d")
    }

    fn image_dir(&self) -> PathBuf {
        self.root.join("image")
    }

    /// The kubelet's seccomp dir.
    fn seccomp_root(&self) -> PathBuf {
        self.root.join("var/lib/kubelet/seccomp")
    }

    fn seccomp_profile(&self) -> PathBuf {
        self.seccomp_root().join("cuttlefish/cvd.json")
    }

    fn plugin_binary(&self) -> PathBuf {
        self.image_dir().join("cuttlefish-cni")
    }

    fn installed_binary(&self) -> PathBuf {
        self.bin_dir().join("cuttlefish-cni")
    }

    /// A stand-in for a primary CNI plugin in the host bin dir, answering VERSION only.
    fn fake_plugin(&self, plugin_type: &str, supported: &[&str]) {
        self.fake_plugin_doing(plugin_type, supported, "");
    }

    /// [`Self::fake_plugin`] that also runs the shell command `action` on every VERSION call.
    /// The installer asks for VERSION between reading the conflist and writing it back, so an
    /// action writing the conflist is a concurrent writer at the worst moment, every time.
    fn fake_plugin_doing(&self, plugin_type: &str, supported: &[&str], action: &str) {
        let path = self.bin_dir().join(plugin_type);
        let list = supported
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        let script = format!(
            "#!/bin/sh\n[ \"$CNI_COMMAND\" = VERSION ] || exit 1\n{action}\nprintf '%s' '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[{list}]}}'\n"
        );
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        // Another test thread forking right now can hold the script open for writing a moment
        // longer (ETXTBSY); wait until it runs.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = std::process::Command::new(&path)
            .env("CNI_COMMAND", "VERSION")
            .output()
        {
            assert!(e.raw_os_error() == Some(26) && Instant::now() < deadline, "{e}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn conflist(&self, name: &str) -> String {
        fs::read_to_string(self.conf_dir().join(name)).unwrap()
    }

    fn options(&self, extra_args: &[&str]) -> Options {
        let mut args = vec![
            format!("--host-bin-dir={}", self.bin_dir().display()),
            format!("--host-conf-dir={}", self.conf_dir().display()),
            format!("--plugin-binary={}", self.plugin_binary().display()),
            format!("--host-seccomp-profile={}", self.seccomp_profile().display()),
        ];
        args.extend(extra_args.iter().map(|a| a.to_string()));
        match install::parse(args, |_| None).unwrap() {
            Command::Run(options) => options,
            Command::Help => unreachable!(),
        }
    }

    fn install(&self) {
        install::run_once(&self.options(&[])).unwrap();
    }

    fn uninstall(&self) {
        install::run_once(&self.options(&["--uninstall"])).unwrap();
    }

    /// The names in the conf dir: nothing may be left behind there.
    fn conf_dir_listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.conf_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for HostRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn plugins(conflist: &str) -> Vec<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(conflist).unwrap();
    value["plugins"].as_array().unwrap().clone()
}

fn version(conflist: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(conflist).unwrap();
    value["cniVersion"].as_str().unwrap().to_string()
}

#[test]
fn cilium_default_is_chained_upgraded_and_restored_byte_for_byte() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    host.fake_plugin("cilium-cni", &["0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
    host.install();
    let installed = host.conflist("05-cilium.conflist");
    assert_eq!(version(&installed), "1.1.0");
    let plugins = plugins(&installed);
    assert_eq!(plugins.len(), 2);
    assert_eq!(plugins[0]["log-file"], "/var/run/cilium/cilium-cni.log");
    assert_eq!(
        plugins[1],
        serde_json::json!({"type": "cuttlefish-cni", "capabilities": {"io.kubernetes.cri.pod-annotations": true}})
    );
    assert_eq!(
        installed,
        CILIUM.replace("0.3.1", "1.1.0").replace(
            "\n    }\n  ]",
            "\n    },\n    {\n       \"type\": \"cuttlefish-cni\",\n       \"capabilities\": {\"io.kubernetes.cri.pod-annotations\":true}\n    }\n  ]"
        ),
        "the entry is laid out like Cilium's own"
    );
    assert_eq!(fs::read(host.installed_binary()).unwrap(), PLUGIN_BINARY);

    host.install();
    assert_eq!(
        host.conflist("05-cilium.conflist"),
        installed,
        "install is idempotent"
    );

    host.uninstall();
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
    assert!(!host.installed_binary().exists());
    assert_eq!(host.conf_dir_listing(), ["05-cilium.conflist"]);
}

#[test]
fn the_version_is_kept_when_a_plugin_does_not_accept_1_1_0() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    // cilium-cni before its STATUS support stops at 1.0.0.
    host.fake_plugin("cilium-cni", &["0.3.1", "0.4.0", "1.0.0"]);
    host.install();
    let installed = host.conflist("05-cilium.conflist");
    assert_eq!(version(&installed), "0.3.1");
    assert_eq!(plugins(&installed).len(), 2);
    assert!(!version_note_path(&host.conf_dir().join("05-cilium.conflist")).exists());
    host.uninstall();
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
}

#[test]
fn calico_keeps_every_key_and_gets_its_bytes_back() {
    let host = HostRoot::new(&[("10-calico.conflist", CALICO)]);
    host.install();
    let installed = host.conflist("10-calico.conflist");
    let before = plugins(CALICO);
    let after = plugins(&installed);
    assert_eq!(
        after[..3],
        before[..],
        "calico, bandwidth and portmap stay as they were"
    );
    assert_eq!(after[3]["type"], "cuttlefish-cni");
    assert_eq!(
        version(&installed),
        "0.3.1",
        "no calico binary here says it accepts 1.1.0"
    );
    let name = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap()["name"].clone();
    assert_eq!(name(&installed), name(CALICO));
    host.install();
    assert_eq!(host.conflist("10-calico.conflist"), installed);
    host.uninstall();
    assert_eq!(host.conflist("10-calico.conflist"), CALICO);
}

#[test]
fn the_first_conflist_in_lexical_order_is_the_primary() {
    let host = HostRoot::new(&[("10-calico.conflist", CALICO), ("05-cilium.conflist", CILIUM)]);
    host.install();
    assert_ne!(host.conflist("05-cilium.conflist"), CILIUM);
    assert_eq!(host.conflist("10-calico.conflist"), CALICO);
    let named = host.options(&["--conflist=10-calico.conflist"]);
    install::run_once(&named).unwrap();
    assert_eq!(plugins(&host.conflist("10-calico.conflist")).len(), 4);
}

/// A single-plugin network config, the older format runtimes still load (and upconvert).
const BRIDGE_CONF: &str = r#"{
  "cniVersion": "0.4.0",
  "name": "bridge",
  "type": "bridge",
  "bridge": "cni0",
  "ipam": {"type": "host-local", "subnet": "10.22.0.0/16"}
}
"#;

#[test]
fn a_conf_or_json_the_runtime_loads_first_is_refused_and_no_other_file_is_edited() {
    for name in ["01-bridge.conf", "01-bridge.json"] {
        let host = HostRoot::new(&[("05-cilium.conflist", CILIUM), (name, BRIDGE_CONF)]);
        let error = install::run_once(&host.options(&[])).unwrap_err().to_string();
        let path = host.conf_dir().join(name);
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("single-plugin"), "{error}");
        assert_eq!(
            host.conflist("05-cilium.conflist"),
            CILIUM,
            "the runtime does not use 05-cilium.conflist while {name} sorts first"
        );
        assert_eq!(host.conflist(name), BRIDGE_CONF);
        host.uninstall();
        assert_eq!(host.conf_dir_listing(), [name, "05-cilium.conflist"]);
    }
}

#[test]
fn a_conflist_with_a_plugin_directory_is_refused() {
    // libcni 1.3 appends the plugins in <conf dir>/<network name>/*.conf to the list's own.
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM), ("10-calico.conflist", CALICO)]);
    fs::create_dir(host.conf_dir().join("cilium")).unwrap();
    fs::write(host.conf_dir().join("cilium/10-extra.conf"), r#"{"type": "ptp"}"#).unwrap();
    let error = install::run_once(&host.options(&[])).unwrap_err().to_string();
    assert!(error.contains("05-cilium.conflist"), "{error}");
    assert!(error.contains("plugin directory"), "{error}");
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
    assert_eq!(host.conflist("10-calico.conflist"), CALICO);
}

#[test]
fn files_the_runtime_cannot_load_are_skipped_as_the_runtime_skips_them() {
    let conflist_in_a_json = CILIUM.replace("cilium", "other");
    let host = HostRoot::new(&[
        ("01-broken.conflist", MALFORMED),
        (
            "02-nameless.conflist",
            r#"{"cniVersion": "1.0.0", "plugins": [{"type": "ptp"}]}"#,
        ),
        ("03-empty.conflist", r#"{"name": "empty", "plugins": []}"#),
        (
            "04-typeless.conflist",
            r#"{"name": "t", "plugins": [{"name": "x"}]}"#,
        ),
        // A .json file is read as a single-plugin config: a conflist in it has no "type".
        ("04-list.json", &conflist_in_a_json),
        ("05-cilium.conflist", CILIUM),
        ("10-calico.conflist", CALICO),
    ]);
    fs::create_dir(host.conf_dir().join("00-directory.conflist")).unwrap();
    host.install();
    assert_eq!(plugins(&host.conflist("05-cilium.conflist")).len(), 2);
    assert_eq!(host.conflist("01-broken.conflist"), MALFORMED);
    assert_eq!(host.conflist("04-list.json"), conflist_in_a_json);
    assert_eq!(host.conflist("10-calico.conflist"), CALICO);
    host.uninstall();
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
}

#[test]
fn names_are_matched_and_sorted_as_libcni_does() {
    // libcni has no rule for hidden files, and compares names byte by byte: "." sorts before
    // digits, "1" before "5" whatever follows, upper case before lower case.
    let host = HostRoot::new(&[
        ("05-cilium.conflist", CILIUM),
        ("10-calico.conflist", CALICO),
        (".04-hidden.conflist", CALICO),
        ("03-saved.conflist.cilium_bak", CALICO),
        ("02-noextension", CALICO),
    ]);
    host.install();
    assert_eq!(plugins(&host.conflist(".04-hidden.conflist")).len(), 4);
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
    assert_eq!(host.conflist("03-saved.conflist.cilium_bak"), CALICO);
    host.uninstall();

    let host = HostRoot::new(&[("5-cilium.conflist", CILIUM), ("10-calico.conflist", CALICO)]);
    host.install();
    assert_eq!(plugins(&host.conflist("10-calico.conflist")).len(), 4);
    assert_eq!(host.conflist("5-cilium.conflist"), CILIUM);
}

/// CILIUM as Cilium rewrites it with debugging turned on.
fn cilium_debug() -> String {
    CILIUM.replace("\"enable-debug\": false", "\"enable-debug\": true")
}

#[test]
fn a_rewrite_by_the_primary_during_the_edit_is_kept() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    let conflist = host.conf_dir().join("05-cilium.conflist");
    let staged = host.image_dir().join("cilium-rewrite");
    // Cilium replaces its conflist by rename; this one does it once, in the installer's window.
    let action = format!(
        "[ -e '{staged}' ] && mv -f '{staged}' '{conflist}'",
        staged = staged.display(),
        conflist = conflist.display()
    );
    host.fake_plugin_doing("cilium-cni", &["1.0.0", "1.1.0"], &action);
    fs::write(&staged, cilium_debug()).unwrap();
    host.install();
    assert!(!staged.exists(), "the rewrite happened during the install");
    let installed = host.conflist("05-cilium.conflist");
    let plugins = plugins(&installed);
    assert_eq!(
        plugins[0]["enable-debug"], true,
        "Cilium's change is kept: {installed}"
    );
    assert_eq!(plugins.len(), 2, "and the entry added to it: {installed}");
    assert_eq!(version(&installed), "1.1.0");
    host.uninstall();
    assert_eq!(host.conflist("05-cilium.conflist"), cilium_debug());
    assert_eq!(host.conf_dir_listing(), ["05-cilium.conflist"]);
}

#[test]
fn a_writer_that_never_stops_makes_the_edit_give_up_leaving_its_content() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    let conflist = host.conf_dir().join("05-cilium.conflist");
    let counter = host.image_dir().join("revision");
    let template = host.image_dir().join("template");
    fs::write(
        &template,
        CILIUM.replace("cilium-cni.log", "cilium-cni.REVISION.log"),
    )
    .unwrap();
    // A new revision, by rename, on every VERSION call.
    let action = format!(
        "n=$(($(cat '{counter}' 2>/dev/null || echo 0) + 1)); echo $n >'{counter}'; \
         sed \"s/REVISION/$n/\" '{template}' >'{conflist}.next' && mv -f '{conflist}.next' '{conflist}'",
        counter = counter.display(),
        template = template.display(),
        conflist = conflist.display()
    );
    host.fake_plugin_doing("cilium-cni", &["1.0.0", "1.1.0"], &action);
    let error = install::run_once(&host.options(&[])).unwrap_err().to_string();
    assert!(error.contains(&conflist.display().to_string()), "{error}");
    assert!(error.contains("kept changing"), "{error}");
    let last = fs::read_to_string(&counter).unwrap();
    assert_eq!(
        host.conflist("05-cilium.conflist"),
        CILIUM.replace("cilium-cni.log", &format!("cilium-cni.{}.log", last.trim())),
        "the writer's last revision is in place"
    );
    assert_eq!(host.conf_dir_listing(), ["05-cilium.conflist"]);
}

#[test]
fn a_conflist_that_already_chains_us_is_left_as_it_is() {
    let host = HostRoot::new(&[("05-cilium.conflist", ALREADY_CHAINED)]);
    host.install();
    assert_eq!(host.conflist("05-cilium.conflist"), ALREADY_CHAINED);
    host.uninstall();
    let removed = host.conflist("05-cilium.conflist");
    assert_eq!(
        plugins(&removed).len(),
        1,
        "uninstall leaves no entry naming a removed binary"
    );
    assert_eq!(
        version(&removed),
        "1.1.0",
        "a version the installer did not upgrade is kept"
    );
}

#[test]
fn a_malformed_conflist_is_left_alone_with_an_error_naming_it() {
    let host = HostRoot::new(&[("05-cilium.conflist", MALFORMED)]);
    let path = host.conf_dir().join("05-cilium.conflist");
    for options in [host.options(&[]), host.options(&["--uninstall"])] {
        let error = install::run_once(&options).unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("not valid JSON"), "{error}");
        assert_eq!(host.conflist("05-cilium.conflist"), MALFORMED);
    }
    assert_eq!(host.conf_dir_listing(), ["05-cilium.conflist"]);
}

#[test]
fn chain_mode_without_a_conflist_fails_naming_the_directory() {
    let host = HostRoot::new(&[]);
    let error = install::run_once(&host.options(&[])).unwrap_err().to_string();
    assert!(error.contains(&host.conf_dir().display().to_string()), "{error}");
}

#[test]
fn manual_mode_touches_no_conflist() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    let manual = host.options(&["--mode=manual"]);
    assert_eq!(manual.mode, Mode::Manual);
    install::run_once(&manual).unwrap();
    assert_eq!(fs::read(host.installed_binary()).unwrap(), PLUGIN_BINARY);
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
    install::run_once(&host.options(&["--mode=manual", "--uninstall"])).unwrap();
    assert!(!host.installed_binary().exists());
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
}

#[test]
fn the_binary_is_copied_only_when_it_differs() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    host.install();
    let target = host.installed_binary();
    let inode = |path: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap());
    let first = inode(&target);
    assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o755);

    host.install();
    assert_eq!(inode(&target), first, "identical contents are not rewritten");

    fs::write(host.plugin_binary(), b"\x7fELF pretend plugin, version 2").unwrap();
    host.install();
    assert_ne!(inode(&target), first, "new contents arrive by rename");
    assert_eq!(fs::read(&target).unwrap(), b"\x7fELF pretend plugin, version 2");
    let leftovers: Vec<_> = fs::read_dir(host.bin_dir()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left in the bin dir");
}

#[test]
fn a_rewrite_by_the_primary_after_install_is_handled_by_uninstall() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    host.fake_plugin("cilium-cni", &["1.0.0", "1.1.0"]);
    host.install();
    assert!(version_note_path(&host.conf_dir().join("05-cilium.conflist")).exists());
    fs::write(host.conf_dir().join("05-cilium.conflist"), CILIUM).unwrap();
    host.uninstall();
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
    assert_eq!(host.conf_dir_listing(), ["05-cilium.conflist"]);
}

#[test]
fn the_conflist_keeps_its_permissions() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    let path = host.conf_dir().join("05-cilium.conflist");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    host.install();
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}

/// Polls until `done` or the bound; the watcher's interval is 50 ms.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn watch_mode_reapplies_after_the_primary_rewrites_its_conflist() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    host.fake_plugin("cilium-cni", &["1.0.0", "1.1.0"]);
    let options = host.options(&["--watch", "--interval=0.05"]);
    let stop = AtomicBool::new(false);
    let chained = || plugins(&host.conflist("05-cilium.conflist")).len() == 2;
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| install::watch(&options, &stop));
        wait_for("the first install", chained);
        // Cilium rewrites its conflist by rename when it restarts.
        let path = host.conf_dir().join("05-cilium.conflist");
        let staged = host.conf_dir().join(".staged");
        fs::write(&staged, CILIUM).unwrap();
        fs::rename(&staged, &path).unwrap();
        wait_for("the entry to come back", chained);
        fs::remove_file(host.installed_binary()).unwrap();
        wait_for("the binary to come back", || host.installed_binary().exists());
        stop.store(true, Ordering::SeqCst);
        watcher.join().unwrap();
    });
    assert_eq!(version(&host.conflist("05-cilium.conflist")), "1.1.0");
    host.uninstall();
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
}

/// `<timestamp> <LEVEL> cuttlefish-cni-install[<pid>]: <message>`.
fn names_the_installer(line: &str) -> bool {
    line.split_once(" cuttlefish-cni-install[")
        .and_then(|(_, rest)| rest.split_once("]: "))
        .is_some_and(|(pid, _)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn the_executable_installs_and_uninstalls_from_environment_variables() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    host.fake_plugin("cilium-cni", &["1.0.0", "1.1.0"]);
    let run = |uninstall: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cuttlefish-cni-install"))
            .env("CUTTLEFISH_CNI_HOST_BIN_DIR", host.bin_dir())
            .env("CUTTLEFISH_CNI_HOST_CONF_DIR", host.conf_dir())
            .env("CUTTLEFISH_CNI_PLUGIN_BINARY", host.plugin_binary())
            .env("CUTTLEFISH_CNI_HOST_SECCOMP_PROFILE", host.seccomp_profile())
            .env("CUTTLEFISH_CNI_UNINSTALL", uninstall)
            .output()
            .unwrap()
    };
    let installed = run("false");
    assert!(installed.status.success());
    assert!(installed.stdout.is_empty(), "logs go to stderr only");
    let log = String::from_utf8_lossy(&installed.stderr);
    assert!(
        log.lines().all(names_the_installer),
        "lines must name cuttlefish-cni-install[pid]:\n{log}"
    );
    assert!(log.contains("appended the cuttlefish-cni entry"), "{log}");
    assert!(log.contains("from 0.3.1 to 1.1.0"), "{log}");
    assert_eq!(fs::read(host.seccomp_profile()).unwrap(), repository_profile());
    let removed = run("true");
    assert!(removed.status.success());
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
    assert!(!host.seccomp_profile().exists());

    fs::write(host.conf_dir().join("05-cilium.conflist"), MALFORMED).unwrap();
    let failed = run("false");
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("05-cilium.conflist"));
}

#[test]
fn dns_redirect_declares_the_dns_capability() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    host.fake_plugin("cilium-cni", &["0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
    install::run_once(&host.options(&[r#"--plugin-keys={"dnsRedirect": true}"#])).unwrap();
    assert_eq!(
        plugins(&host.conflist("05-cilium.conflist"))[1],
        serde_json::json!({"type": "cuttlefish-cni", "capabilities": {"io.kubernetes.cri.pod-annotations": true, "dns": true}, "dnsRedirect": true})
    );
    host.uninstall();
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);

    // A listed server needs nothing from the runtime.
    let listed = r#"--plugin-keys={"dnsRedirect": ["10.96.0.10"]}"#;
    install::run_once(&host.options(&[listed])).unwrap();
    assert_eq!(
        plugins(&host.conflist("05-cilium.conflist"))[1]["capabilities"],
        serde_json::json!({"io.kubernetes.cri.pod-annotations": true})
    );
}

/// The profile as the repository holds it: what the installer must put on the node.
fn repository_profile() -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("install/seccomp/cuttlefish-cvd.json")).unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap())
}

#[test]
fn the_seccomp_profile_is_installed_kept_current_and_removed() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    let profile = host.seccomp_profile();
    let dir = profile.parent().unwrap().to_path_buf();
    host.install();
    assert_eq!(fs::read(&profile).unwrap(), repository_profile());
    serde_json::from_slice::<serde_json::Value>(&fs::read(&profile).unwrap()).unwrap();
    assert_eq!(
        fs::metadata(&profile).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let first = inode(&profile);

    host.install();
    assert_eq!(inode(&profile), first, "a current profile is not rewritten");

    fs::write(&profile, br#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
    host.install();
    assert_eq!(
        fs::read(&profile).unwrap(),
        repository_profile(),
        "an edit on the node is undone"
    );
    assert_ne!(inode(&profile), first, "the refresh arrives by rename");
    let mut in_dir = listing(&dir);
    in_dir.retain(|name| !name.starts_with(".created-by-"));
    assert_eq!(in_dir, ["cvd.json"], "no temporary file is left");

    host.uninstall();
    assert!(!profile.exists());
    assert!(!dir.exists(), "the directory the installer created goes too");
    assert!(host.seccomp_root().exists(), "the kubelet's own directory stays");
}

#[test]
fn a_profile_rewrite_is_never_seen_half_written() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    let profile = host.seccomp_profile();
    host.install();
    let stale = b"{\"defaultAction\": \"SCMP_ACT_LOG\"}".to_vec();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) {
                match fs::read(&profile) {
                    Ok(seen) => assert!(seen == stale || seen == repository_profile(), "{seen:?}"),
                    Err(e) => panic!("the profile was missing for a moment: {e}"),
                }
                reads += 1;
            }
            reads
        });
        for _ in 0..50 {
            let staged = profile.with_file_name("staged");
            fs::write(&staged, &stale).unwrap();
            fs::rename(&staged, &profile).unwrap();
            host.install();
        }
        done.store(true, Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
    });
}

#[test]
fn a_seccomp_directory_the_installer_did_not_create_stays() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    let dir = host.seccomp_profile().parent().unwrap().to_path_buf();
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("other.json"), "{}").unwrap();
    host.install();
    assert_eq!(listing(&dir), ["cvd.json", "other.json"]);
    host.uninstall();
    assert_eq!(listing(&dir), ["other.json"]);

    fs::remove_file(dir.join("other.json")).unwrap();
    host.install();
    host.uninstall();
    assert!(dir.exists(), "empty, but not the installer's");
}

#[test]
fn a_created_seccomp_directory_goes_only_once_it_holds_nothing_else() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    let dir = host.seccomp_profile().parent().unwrap().to_path_buf();
    host.install();
    fs::write(dir.join("other.json"), "{}").unwrap();
    host.uninstall();
    assert!(!host.seccomp_profile().exists());
    assert!(dir.join("other.json").exists());
    fs::remove_file(dir.join("other.json")).unwrap();
    host.uninstall();
    assert!(!dir.exists(), "the marker outlived the other file");
}

#[test]
fn a_missing_kubelet_seccomp_directory_is_an_error_naming_it_and_stops_nothing_else() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    fs::remove_dir(host.seccomp_root()).unwrap();
    let error = install::run_once(&host.options(&[])).unwrap_err().to_string();
    let dir = host.seccomp_profile().parent().unwrap().to_path_buf();
    assert!(error.contains(&dir.display().to_string()), "{error}");
    assert!(
        !host.seccomp_root().exists(),
        "nothing is created above the profile's directory"
    );
    assert_eq!(fs::read(host.installed_binary()).unwrap(), PLUGIN_BINARY);
    assert_eq!(
        plugins(&host.conflist("05-cilium.conflist")).len(),
        2,
        "a manifest without the seccomp mount still gets the plugin chained"
    );
    host.uninstall();
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
    assert!(!host.installed_binary().exists());
}

#[test]
fn manual_mode_installs_and_removes_the_seccomp_profile_too() {
    let host = HostRoot::new(&[("05-cilium.conflist", CILIUM)]);
    install::run_once(&host.options(&["--mode=manual"])).unwrap();
    assert_eq!(fs::read(host.seccomp_profile()).unwrap(), repository_profile());
    install::run_once(&host.options(&["--mode=manual", "--uninstall"])).unwrap();
    assert!(!host.seccomp_profile().exists());
    assert_eq!(host.conflist("05-cilium.conflist"), CILIUM);
}
