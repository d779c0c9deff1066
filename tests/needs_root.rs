//! The namespace tests (`tests/netns/`) need root, so they build only with the `netns-tests`
//! feature. This target stands in for them in a plain `cargo test`: its one test is ignored with
//! the instructions as the reason, so `cargo test` prints them, and as root
//! `cargo test -- --ignored` runs it, which runs the namespace tests and fails when they fail.
//! With the feature the `netns` target is built itself, so this one is empty (and cannot recurse).
#![cfg(not(feature = "netns-tests"))]

use std::process::Command;

#[test]
#[ignore = "needs root: as root, `cargo test -- --ignored` runs the namespace tests (tests/netns/); hack/test.sh runs everything"]
fn namespace_tests() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the namespace tests need root: run `cargo test -- --ignored` as root"
    );
    // The cargo that built this test, after it released the build directory's lock.
    let status = Command::new(env!("CARGO"))
        .args(["test", "--features", "netns-tests", "--test", "netns"])
        .args([
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ])
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "cargo test --features netns-tests --test netns: {status}"
    );
}
