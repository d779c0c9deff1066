//! Per-pod requests. A pod asks for Cuttlefish networking, and may override four plugin keys,
//! through any of three channels:
//! - pod annotations in `runtimeConfig["io.kubernetes.cri.pod-annotations"]` (containerd, CRI-O);
//! - Multus `cni-args`, which arrive as `args.cni.<key>`;
//! - `CNI_ARGS` (podman, nerdctl, cnitool).
//!
//! Precedence: a per-pod value beats the plugin configuration. Channels do not outrank each
//! other: when two give the same key different values the request is ambiguous and is rejected
//! (CNI error 7, naming both), because silently picking one hides a mistake in the pod spec.

use crate::error::Error;
use serde_json::Value;

pub const ANNOTATIONS_CAPABILITY: &str = "io.kubernetes.cri.pod-annotations";

/// A key a pod may override, with its spelling in each channel.
pub struct OverrideKey {
    pub plugin_key: &'static str,
    pub annotation: &'static str,
    pub cni_arg: &'static str,
}

pub const INSTANCES: OverrideKey = OverrideKey {
    plugin_key: "instances",
    annotation: "cuttlefish.dev/instances",
    cni_arg: "CUTTLEFISH_INSTANCES",
};
pub const BASE_INSTANCE: OverrideKey = OverrideKey {
    plugin_key: "baseInstance",
    annotation: "cuttlefish.dev/base-instance",
    cni_arg: "CUTTLEFISH_BASE_INSTANCE",
};
pub const TAP_OWNER: OverrideKey = OverrideKey {
    plugin_key: "tapOwner",
    annotation: "cuttlefish.dev/tap-owner",
    cni_arg: "CUTTLEFISH_TAP_OWNER",
};
pub const TAP_GROUP: OverrideKey = OverrideKey {
    plugin_key: "tapGroup",
    annotation: "cuttlefish.dev/tap-group",
    cni_arg: "CUTTLEFISH_TAP_GROUP",
};
pub const ALL_KEYS: [&OverrideKey; 4] = [&INSTANCES, &BASE_INSTANCE, &TAP_OWNER, &TAP_GROUP];

/// One value a pod gave, with the place it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodValue {
    pub source: String,
    pub text: String,
}

/// The per-pod channels of one invocation.
pub struct PodChannels<'a> {
    pub annotations: Option<&'a serde_json::Map<String, Value>>,
    pub cni_args_json: Option<&'a serde_json::Map<String, Value>>,
    pub cni_args_env: &'a [(String, String)],
}

impl PodChannels<'_> {
    /// True when any channel carries any of our keys: the pod asks for Cuttlefish networking.
    pub fn pod_asks(&self) -> bool {
        ALL_KEYS.iter().any(|key| !self.values(key).is_empty())
    }

    /// Every value the pod gave for `key`, one per channel that has it.
    pub fn values(&self, key: &OverrideKey) -> Vec<PodValue> {
        let mut found = Vec::new();
        if let Some(v) = self.annotations.and_then(|a| a.get(key.annotation)) {
            found.push(PodValue {
                source: format!(
                    "runtimeConfig[\"{ANNOTATIONS_CAPABILITY}\"][\"{}\"]",
                    key.annotation
                ),
                text: json_scalar_text(v),
            });
        }
        if let Some(v) = self.cni_args_json.and_then(|a| a.get(key.plugin_key)) {
            found.push(PodValue {
                source: format!("args.cni.{}", key.plugin_key),
                text: json_scalar_text(v),
            });
        }
        for (k, v) in self.cni_args_env {
            if k == key.cni_arg {
                found.push(PodValue {
                    source: format!("CNI_ARGS {}", key.cni_arg),
                    text: v.clone(),
                });
            }
        }
        found
    }

    /// The single value the pod asks for `key`, or None. Disagreeing channels are an error.
    pub fn value(&self, key: &OverrideKey) -> Result<Option<PodValue>, Error> {
        let values = self.values(key);
        let Some(first) = values.first() else {
            return Ok(None);
        };
        if let Some(other) = values.iter().find(|v| v.text != first.text) {
            return Err(Error::invalid(
                key.plugin_key,
                format!("{} / {}", first.text, other.text),
                format!(
                    "conflicting per-pod overrides: {} says {}, {} says {}",
                    first.source, first.text, other.source, other.text
                ),
            ));
        }
        Ok(Some(first.clone()))
    }
}

/// Annotations are strings, Multus `cni-args` may be numbers or strings: compare them as text.
fn json_scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_channel_counts_as_asking() {
        let ann = obj(json!({"cuttlefish.dev/instances": "2"}));
        let args = obj(json!({"tapOwner": 1000}));
        let env = vec![("CUTTLEFISH_BASE_INSTANCE".to_string(), "3".to_string())];
        let none = PodChannels {
            annotations: None,
            cni_args_json: None,
            cni_args_env: &[],
        };
        assert!(!none.pod_asks());
        assert!(PodChannels {
            annotations: Some(&ann),
            cni_args_json: None,
            cni_args_env: &[]
        }
        .pod_asks());
        assert!(PodChannels {
            annotations: None,
            cni_args_json: Some(&args),
            cni_args_env: &[]
        }
        .pod_asks());
        assert!(PodChannels {
            annotations: None,
            cni_args_json: None,
            cni_args_env: &env
        }
        .pod_asks());
    }

    #[test]
    fn agreeing_channels_are_fine_and_disagreeing_ones_are_named() {
        let ann = obj(json!({"cuttlefish.dev/instances": "2"}));
        let agree = obj(json!({"instances": 2}));
        let disagree = obj(json!({"instances": 3}));
        let ok = PodChannels {
            annotations: Some(&ann),
            cni_args_json: Some(&agree),
            cni_args_env: &[],
        };
        assert_eq!(ok.value(&INSTANCES).unwrap().unwrap().text, "2");
        let bad = PodChannels {
            annotations: Some(&ann),
            cni_args_json: Some(&disagree),
            cni_args_env: &[],
        };
        let err = bad.value(&INSTANCES).unwrap_err().to_string();
        assert!(
            err.contains("cuttlefish.dev/instances") && err.contains("args.cni.instances"),
            "{err}"
        );
    }

    #[test]
    fn unrelated_keys_do_not_ask() {
        let ann = obj(json!({"io.kubernetes.pod.name": "x"}));
        let env = vec![("K8S_POD_NAME".to_string(), "p".to_string())];
        let ch = PodChannels {
            annotations: Some(&ann),
            cni_args_json: None,
            cni_args_env: &env,
        };
        assert!(!ch.pod_asks());
    }
}
