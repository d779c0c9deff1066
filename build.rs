//! Generates the gRPC plumbing of the kubelet Device Plugin API v1beta1 for the agent. The
//! messages are written by hand in `src/agent/device_plugin/api.rs`; the services are declared
//! here, so no protobuf compiler is needed to build the crate. Routes are
//! `/v1beta1.<Service>/<Method>`, as the kubelet calls them.

use tonic_build::manual::{Builder, Method, Service};

const API: &str = "crate::agent::device_plugin::api";
const CODEC: &str = "tonic_prost::ProstCodec";

fn method(name: &str, route: &str, input: &str, output: &str) -> tonic_build::manual::MethodBuilder {
    Method::builder()
        .name(name)
        .route_name(route)
        .input_type(format!("{API}::{input}"))
        .output_type(format!("{API}::{output}"))
        .codec_path(CODEC)
}

fn main() {
    // The agent only calls Registration (on the kubelet) and only serves DevicePlugin.
    let registration = Service::builder()
        .name("Registration")
        .package("v1beta1")
        .method(method("register", "Register", "RegisterRequest", "Empty").build())
        .build();
    Builder::new().build_server(false).compile(&[registration]);

    let device_plugin = Service::builder()
        .name("DevicePlugin")
        .package("v1beta1")
        .method(
            method(
                "get_device_plugin_options",
                "GetDevicePluginOptions",
                "Empty",
                "DevicePluginOptions",
            )
            .build(),
        )
        .method(
            method("list_and_watch", "ListAndWatch", "Empty", "ListAndWatchResponse")
                .server_streaming()
                .build(),
        )
        .method(
            method(
                "get_preferred_allocation",
                "GetPreferredAllocation",
                "PreferredAllocationRequest",
                "PreferredAllocationResponse",
            )
            .build(),
        )
        .method(method("allocate", "Allocate", "AllocateRequest", "AllocateResponse").build())
        .method(
            method(
                "pre_start_container",
                "PreStartContainer",
                "PreStartContainerRequest",
                "PreStartContainerResponse",
            )
            .build(),
        )
        .build();
    Builder::new().build_client(false).compile(&[device_plugin]);
    println!("cargo:rerun-if-changed=build.rs");
}
