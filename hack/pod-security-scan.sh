#!/usr/bin/env bash
# A second opinion on the example pods' Pod Security: checkov (PyPI), limited to its checks that
# are Pod Security Standards controls, run in an empty network namespace (`unshare -n`), so its
# attempts to fetch guidelines go nowhere. hack/pod_security.py is the reference: checkov has no
# check for volume types, runAsUser 0, procMount, sysctls, SELinux or AppArmor, and its seccomp
# check (CKV_K8S_31) accepts only RuntimeDefault, where restricted also allows Localhost.
#   hack/pod-security-scan.sh FILE...
set -euo pipefail
venv=${CHECKOV_VENV:-/var/cache/cuttlefish-cni-tests/checkov}
version=3.3.30
if ! "$venv/bin/checkov" --version 2>/dev/null | grep -qx "$version"; then
    echo "pod-security-scan: installing checkov $version from PyPI into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "checkov==$version" >&2
fi
# CKV_K8S_16 privileged; 17, 18, 19 host PID, IPC, network; 20 allowPrivilegeEscalation; 23 root
# containers (runAsNonRoot); 25 added capabilities; 26 hostPort; 28 NET_RAW; 37 capabilities not
# dropped (ALL); 39 SYS_ADMIN
checks=CKV_K8S_16,CKV_K8S_17,CKV_K8S_18,CKV_K8S_19,CKV_K8S_20,CKV_K8S_23,CKV_K8S_25,CKV_K8S_26,CKV_K8S_28,CKV_K8S_37,CKV_K8S_39
failed=0
for f in "$@"; do
    report=$(unshare -n "$venv/bin/checkov" --quiet --compact --skip-download --framework kubernetes \
        --check "$checks" -o json -f "$f" 2>/dev/null || true)
    summary=$(jq -r 'if type == "array" then .[] else . end | .summary | "\(.passed) \(.failed) \(.parsing_errors)"' <<<"$report")
    read -r passed nfailed errors <<<"$summary"
    if [ "${passed:-0}" -gt 0 ] && [ "$nfailed" = 0 ] && [ "$errors" = 0 ]; then
        echo "ok   $f: checkov $version, $passed Pod Security checks passed"
    else
        echo "FAIL $f: checkov $version: passed=${passed:-?} failed=${nfailed:-?} parsing errors=${errors:-?}"
        jq -r 'if type == "array" then .[] else . end | .results.failed_checks[]? | "     \(.check_id) \(.check_name): \(.resource)"' <<<"$report"
        failed=1
    fi
done
exit $failed
