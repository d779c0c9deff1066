//! The layers point one way: the model depends on nothing else of the crate, the plan on no
//! encoder, and the logic above the kernel (setup, teardown, CHECK, the ADD result) on no wire
//! type. These tests read the sources' code lines (comments aside) for the paths they use.

use std::path::{Path, PathBuf};

/// The wire: our netlink and nf_tables encoders, and the crates they are built on.
const WIRE: [&str; 5] = [
    "crate::netlink",
    "crate::nft",
    "netlink_packet_core",
    "netlink_packet_route",
    "netlink_sys",
];

fn sources(relative: &str) -> Vec<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(relative);
    if path.is_file() {
        return vec![path];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let entry = entry.expect("directory entry").path();
        let name = entry.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        files.extend(sources(&name.expect("under src").to_string_lossy()));
    }
    files
}

/// Every code line of the files under `relative` that mentions one of `paths`.
fn offending_lines(relative: &str, paths: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in sources(relative) {
        let text = std::fs::read_to_string(&file).expect("source is readable");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if paths.iter().any(|path| code.contains(path)) {
                found.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_model_depends_on_nothing_else_of_the_crate() {
    let lines: Vec<String> = offending_lines("model", &["crate::"])
        .into_iter()
        .filter(|line| !line.contains("crate::model"))
        .chain(offending_lines("model", &WIRE))
        .collect();
    assert!(lines.is_empty(), "{}", lines.join("\n"));
}

#[test]
fn the_plan_uses_no_encoder() {
    let lines = offending_lines("plan.rs", &WIRE);
    assert!(lines.is_empty(), "{}", lines.join("\n"));
}

#[test]
fn setup_teardown_check_and_result_use_no_wire_type() {
    for module in ["setup.rs", "teardown.rs", "check", "result.rs"] {
        let lines = offending_lines(module, &WIRE);
        assert!(lines.is_empty(), "{}", lines.join("\n"));
    }
}
