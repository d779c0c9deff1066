# jq program: containerd's RuntimeDefault, as captured from a task bundle, -> the CVD profile.
# Run by hack/seccomp-profile.sh; README "Seccomp profile" explains the derivation.
#
# Input: the OCI `.linux.seccomp` object that containerd wrote into the bundle's config.json for
# `ctr run --seccomp` with every capability dropped, on amd64 (hack/seccomp-profile.sh --capture).
# $vsock: true -> the shipped profile; false -> the derived current RuntimeDefault alone (tests).
#
# Step 1 brings a capture from an older containerd up to the current upstream default: containerd
# v2.2.7 / v2.3.4 / main 301026e (2026-08-22) all have the same contrib/seccomp/seccomp_default.go.
# Each step is idempotent, so a capture from a containerd that has them already passes unchanged.
# Only the changes that reach amd64 without capabilities are listed.

# allowed unconditionally since containerd 1.6.20 (upstream commit, date, first release with it)
def added_since_1_6_20: [
  "process_vm_readv", "process_vm_writev",  # e224f77eb + afa19a0a7, 2022-11/12, v1.7.0 (with ptrace, kernel >= 4.8)
  "name_to_handle_at",                      # 9a202e342, 2023-06-27, v2.0.0 (backports: v1.6.22, v1.7.3)
  "cachestat", "fchmodat2", "map_shadow_stack",
  "futex_requeue", "futex_wait", "futex_wake", # a6e52c74f, 2024-01-24 (kernel 6.5-6.7), v2.0.0 (backports: v1.6.28, v1.7.13)
  "listmount", "statmount", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr",
  "mseal", "uretprobe",                     # 6180d6243, 2025-05-12 (kernel 6.8-6.12), v2.2.0
  "getxattrat", "listxattrat", "removexattrat", "setxattrat" # 1a4c32105, 2025-05-12 (kernel 6.13), v2.2.0
];

# no longer allowed since containerd 1.6.20
def removed_since_1_6_20: [
  "io_uring_enter", "io_uring_register", "io_uring_setup" # a48ddf4a2, 2023-11-02, v2.0.0
];

def allow_socket_if(op; value): {names: ["socket"], action: "SCMP_ACT_ALLOW", args: [{index: 0, value: value, op: op}]};

# socket(2) by address family (arg 0). 17a932403 (2022-10-11, v1.7.0) refused AF_VSOCK (40).
# 0c23e946a (2026-04-30; v2.4.0-beta.0, backported to v1.7.32, v2.0.9, v2.2.4, v2.3.1) refused
# AF_ALG (38) too, with three single-condition rules. Its comment says why: runc splits several
# conditions on one argument into OR-ed rules, so "!= 38 and != 40" cannot be one rule. A refused
# family matches no rule and gets the default action (EPERM).
def upstream_socket_rules: [
  allow_socket_if("SCMP_CMP_LT"; 38),
  allow_socket_if("SCMP_CMP_EQ"; 39),
  allow_socket_if("SCMP_CMP_GT"; 40)
];

# ours, the only allowance beyond the default: socket(AF_VSOCK) for adb, the tombstone receiver
# and the modem simulator (they talk to the guest over vsock)
def cuttlefish_rules: [allow_socket_if("SCMP_CMP_EQ"; 40)];

def unconditional_allow: .action == "SCMP_ACT_ALLOW" and ((.args // []) | length) == 0;

# socket's rules are rewritten whole, whatever the capture had for it
[.syscalls[] | .names -= removed_since_1_6_20 + ["socket"] | select(.names | length > 0)] as $rules
| . + {
    syscalls: (
      [{names: ([$rules[] | select(unconditional_allow) | .names[]] + added_since_1_6_20 | unique),
        action: "SCMP_ACT_ALLOW"}]
      + [$rules[] | select(unconditional_allow | not)]
      + upstream_socket_rules
      + (if $vsock then cuttlefish_rules else [] end)
    )
  }
