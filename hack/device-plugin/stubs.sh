#!/usr/bin/env bash
# Generates the Python gRPC stubs of the kubelet Device Plugin API v1beta1 into DIR (v1beta1_pb2.py,
# v1beta1_pb2_grpc.py) with Debian's protoc and grpc_python_plugin, from the api.proto that the
# crates.io package k8s-deviceplugin ships (proto/v1beta1.proto), fetched with cargo. Nothing of
# it is kept in this repository. Installs the Debian packages it needs when missing. Needs root.
#   hack/device-plugin/stubs.sh DIR
set -euo pipefail
out=$1
source "$(dirname "$0")/../lib/host.sh"
need_pkgs python3 python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc

crate=k8s-deviceplugin version=0.2.0
fetch=$(mktemp -d)
trap 'rm -rf "$fetch"' EXIT
# A throw-away manifest depending on the crate: cargo downloads and unpacks it.
mkdir -p "$fetch/src" "$fetch/proto" "$out"
touch "$fetch/src/lib.rs"
printf '[package]\nname = "fetch-proto"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' \
  "$crate" "$version" >"$fetch/Cargo.toml"
manifest=$(cargo metadata --quiet --format-version 1 --manifest-path "$fetch/Cargo.toml" |
  /usr/bin/python3 -c "import json, sys; print(next(p['manifest_path'] for p in json.load(sys.stdin)['packages'] if p['name'] == '$crate'))")
cp "$(dirname "$manifest")/proto/v1beta1.proto" "$fetch/proto/v1beta1.proto"
echo "stubs from $crate $version proto/v1beta1.proto (protoc $(protoc --version | cut -d' ' -f2))" >&2
protoc -I "$fetch/proto" --python_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin "$fetch/proto/v1beta1.proto"
