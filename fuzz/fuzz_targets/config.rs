//! Fuzzes everything the plugin parses from its caller: `CNI_ARGS` and the network
//! configuration on stdin (with prevResult, runtimeConfig, args), then checks the invariants the
//! kernel layer relies on for every configuration that is accepted.
#![no_main]

use cuttlefish_cni::cni::{parse_cni_args, Attachment, Command, Invocation};
use cuttlefish_cni::config::{peek_version, NetConf, MAX_INSTANCE};
use cuttlefish_cni::plan::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The bytes before the first NUL are CNI_ARGS, the rest is stdin.
    let (args, stdin) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let cni_args = parse_cni_args(&String::from_utf8_lossy(args)).unwrap_or_default();
    let invocation = Invocation {
        command: Command::Add {
            attachment: Attachment { container_id: "fuzz".into(), ifname: "eth0".into() },
            netns: "/run/netns/fuzz".into(),
        },
        cni_args,
    };
    let _ = peek_version(stdin);
    if let Ok(conf) = NetConf::parse(stdin, &invocation) {
        let s = conf.settings;
        assert!(s.instances >= 1 && s.base_instance >= 1);
        assert!(s.base_instance + s.instances - 1 <= MAX_INSTANCE);
        assert!(s.tap_owner != Some(u32::MAX) && s.tap_group != Some(u32::MAX));
        let plan = Plan::new(&s);
        assert_eq!(plan.taps.len(), 4 * s.instances as usize);
        assert!(plan.link_names().all(|n| n.len() <= 15));
    }
});
