//! The log file and log lines: `logFile` is never followed through a symlink, must be a regular
//! file, and gets missing directories only under /var/log; every logged value has its control
//! characters escaped, so a pod cannot forge log lines.

use crate::support::{unique_id, Outcome, Pod, PLUGIN};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

/// A directory of this test under /var/log, removed on drop.
struct VarLogDir(PathBuf);

impl VarLogDir {
    fn new() -> VarLogDir {
        let dir = PathBuf::from(format!("/var/log/cfct-{}", unique_id()));
        fs::create_dir(&dir).unwrap();
        VarLogDir(dir)
    }
}

impl Drop for VarLogDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn with_log_file(pod: &Pod, path: &Path) -> Value {
    pod.conf(json!({"logFile": path}))
}

fn assert_refused(out: &Outcome, path: &Path) {
    assert_eq!(out.error_code(), 7, "{out:?}");
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    assert!(msg.starts_with(&format!("logFile = {}", path.display())), "{msg}");
}

#[test]
fn a_symlinked_log_file_is_refused_and_not_written_through() {
    let pod = Pod::new("1.0.0");
    let before = pod.snapshot();
    let target = pod.dir.join("target");
    fs::write(&target, "").unwrap();
    let link = pod.dir.join("cuttlefish-cni.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let conf = with_log_file(&pod, &link);
    for command in ["ADD", "DEL"] {
        assert_refused(&pod.plugin(command, &conf), &link);
    }
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "",
        "written through the symlink"
    );
    assert_eq!(pod.snapshot(), before);
}

#[test]
fn a_log_file_that_is_not_a_regular_file_is_refused() {
    let pod = Pod::new("1.0.0");
    let before = pod.snapshot();
    for path in [pod.dir.clone(), PathBuf::from("/dev/null")] {
        assert_refused(&pod.plugin("ADD", &with_log_file(&pod, &path)), &path);
    }
    assert_eq!(pod.snapshot(), before);
}

#[test]
fn log_directories_are_created_only_under_var_log() {
    let pod = Pod::new("1.0.0");
    let before = pod.snapshot();
    let missing = pod.dir.join("missing");
    let outside = missing.join("cuttlefish-cni.log");
    assert_refused(&pod.plugin("ADD", &with_log_file(&pod, &outside)), &outside);
    assert!(!missing.exists(), "created {}", missing.display());

    let var_log = VarLogDir::new();
    let elsewhere = pod.dir.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, var_log.0.join("link")).unwrap();
    let through_link = var_log.0.join("link/new/cuttlefish-cni.log");
    assert_refused(
        &pod.plugin("ADD", &with_log_file(&pod, &through_link)),
        &through_link,
    );
    assert!(
        !elsewhere.join("new").exists(),
        "created a directory outside /var/log"
    );
    assert_eq!(pod.snapshot(), before);

    let inside = var_log.0.join("a/b/cuttlefish-cni.log");
    let conf = with_log_file(&pod, &inside);
    pod.plugin("ADD", &conf).assert_ok();
    pod.plugin("DEL", &conf).assert_ok();
    let text = fs::read_to_string(&inside).unwrap();
    assert!(
        text.contains("command=ADD") && text.contains("command=DEL"),
        "{text}"
    );
}

#[test]
fn control_characters_in_logged_values_are_escaped() {
    let pod = Pod::new("1.0.0");
    let log = pod.dir.join("cuttlefish-cni.log");
    let forged = "2026-01-01T00:00:00.000Z INFO  cuttlefish-cni[1]: forged";
    let mut conf = with_log_file(&pod, &log);
    // select annotated and a pod that does not ask: three lines (the unknown key, the
    // pass-through, the summary), nothing built.
    conf.as_object_mut().unwrap().remove("select");
    conf[format!("evil\n{forged}")] = json!(1);
    conf["back\\slash"] = json!(1);
    let args = format!("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=name\n{forged}\r");
    let result = pod
        .exec(PLUGIN, "ADD", &conf, &[("CNI_ARGS", args.as_str())])
        .assert_ok()
        .json();
    assert_eq!(result, pod.prev_result);
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.iter().all(|l| !l.starts_with(forged)), "{text}");
    assert!(lines.iter().all(|l| l.contains(" cuttlefish-cni[")), "{text}");
    assert!(
        lines[0].contains(&format!("evil\\n{forged}")) && lines[0].contains("back\\\\slash"),
        "{text}"
    );
    assert!(
        lines[2].contains(&format!("pod=ns/name\\n{forged}\\r container=")),
        "{text}"
    );
}
