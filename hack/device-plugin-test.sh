#!/usr/bin/env bash
# The agent's kubelet device plugin against a kubelet stand-in that speaks the real Device Plugin
# API v1beta1 (hack/device-plugin/kubelet_stand_in.py). The stand-in's gRPC stubs are generated
# here, at test time, by Debian's protoc and grpc_python_plugin from the api.proto that the
# crates.io package k8s-deviceplugin ships (proto/v1beta1.proto), fetched with cargo; nothing of
# it is kept in this repository. Run as root: `sudo hack/device-plugin-test.sh`.
# CUTTLEFISH_CNI_AGENT=path tests that agent binary (default: the static release build).
# Prints ok/FAIL per check and "N passed, M failed"; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hack/device-plugin-test.sh needs root (mknod)" >&2; exit 1; }

packages=(python3 python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The packaged api.proto: a throw-away manifest depending on the crate, resolved by cargo.
crate=k8s-deviceplugin version=0.2.0
mkdir -p "$work/fetch/src" "$work/proto" "$work/py"
touch "$work/fetch/src/lib.rs"
printf '[package]\nname = "fetch-proto"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' \
  "$crate" "$version" >"$work/fetch/Cargo.toml"
manifest=$(cargo metadata --quiet --format-version 1 --manifest-path "$work/fetch/Cargo.toml" |
  /usr/bin/python3 -c "import json, sys; print(next(p['manifest_path'] for p in json.load(sys.stdin)['packages'] if p['name'] == '$crate'))")
cp "$(dirname "$manifest")/proto/v1beta1.proto" "$work/proto/v1beta1.proto"
echo "== stubs from $crate $version proto/v1beta1.proto (protoc $(protoc --version | cut -d' ' -f2))" >&2
protoc -I "$work/proto" --python_out="$work/py" --grpc_python_out="$work/py" \
  --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin "$work/proto/v1beta1.proto"

agent=${CUTTLEFISH_CNI_AGENT:-$(hack/build-release.sh)/cuttlefish-cni-agent}
echo "== kubelet stand-in against $agent" >&2
PYTHONPATH="$work/py" /usr/bin/python3 hack/device-plugin/kubelet_stand_in.py test "$agent" "$work"
