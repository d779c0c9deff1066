//! Fuzzes everything the plugin parses from its caller: `CNI_ARGS` and the network
//! configuration on stdin (with prevResult, runtimeConfig, args), then checks the invariants the
//! kernel layer relies on for every configuration that is accepted.
#![no_main]

use cuttlefish_cni::cni::{parse_cni_args, Attachment, Command, Invocation};
use cuttlefish_cni::config::{answer_version, NetConf, MAX_CID, MAX_INSTANCE, MIN_CID};
use cuttlefish_cni::mark::AttachmentTag;
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
    let _ = answer_version(stdin);
    if let Ok(conf) = NetConf::parse(stdin, &invocation) {
        let request = conf.request;
        let (low, high) = conf.allocation.cid_range;
        assert!(MIN_CID <= low && low <= high && high <= MAX_CID);
        assert!(request.instances >= 1);
        assert!(request.tap_owner != Some(u32::MAX) && request.tap_group != Some(u32::MAX));
        let base = request.base;
        assert!(base >= 1 && base + request.instances - 1 <= MAX_INSTANCE);
        // Allocation picks a block inside the range; the highest possible first CID must fit.
        let cid = conf.allocation.vsock_cid.then(|| {
            assert!(request.instances - 1 <= high - low);
            high - (request.instances - 1)
        });
        let settings = request.settings(base, cid);
        let plan = Plan::new(&settings);
        let alias = AttachmentTag::of(&Attachment { container_id: "fuzz".into(), ifname: "eth0".into() }).link_alias(&settings);
        assert!(alias.len() < 256, "IFALIASZ");
        assert_eq!(plan.taps.len(), 4 * request.instances as usize);
        assert!(plan.link_names().all(|n| n.len() <= 15));
    }
});
