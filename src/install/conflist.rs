//! Textual edits of a conflist: append our entry to `plugins`, remove it again, upgrade and
//! restore `cniVersion`. Edits are splices of exact byte ranges, never a re-serialization, so
//! removing what was inserted gives back the original bytes and every key of the primary CNI
//! stays as it was written.

use super::json_span;
use crate::config::overrides::ANNOTATIONS_CAPABILITY;
use crate::config::DNS_CAPABILITY;
use serde_json::{Map, Value};
use std::ops::Range;

/// The `type` of our entry, and the name of the plugin binary.
pub const PLUGIN_TYPE: &str = "cuttlefish-cni";
/// The version a primary conflist is upgraded to: the first with CHECK, GC and STATUS all in.
pub const UPGRADED_VERSION: &str = "1.1.0";

#[derive(Debug, thiserror::Error)]
pub enum ConflistError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the top level is not a JSON object")]
    NotObject,
    #[error("\"plugins\" is missing or not an array")]
    NoPlugins,
}

/// Our conflist entry, keys in the order they are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry(Vec<(String, Value)>);

impl Entry {
    /// `type` and the capabilities first, then `extra` plugin keys (README, "Configuration"),
    /// which may not redefine those two. The capabilities are the pod annotations, and `dns`
    /// when `dnsRedirect: true` asks for the runtime's DNS servers.
    pub fn new(extra: Map<String, Value>) -> Result<Entry, String> {
        if let Some(key) = ["type", "capabilities"]
            .into_iter()
            .find(|k| extra.contains_key(*k))
        {
            return Err(format!("plugin keys may not set {key:?}: the installer sets it"));
        }
        let mut capabilities = serde_json::json!({ ANNOTATIONS_CAPABILITY: true });
        if extra.get("dnsRedirect") == Some(&Value::Bool(true)) {
            capabilities[DNS_CAPABILITY] = Value::Bool(true);
        }
        let mut keys = vec![
            ("type".to_string(), Value::from(PLUGIN_TYPE)),
            ("capabilities".to_string(), capabilities),
        ];
        keys.extend(extra);
        Ok(Entry(keys))
    }

    /// On one line, or one key per line at `key_indent` with `}` at `closing_indent`.
    fn render(&self, layout: &Layout) -> String {
        let members = self
            .0
            .iter()
            .map(|(key, value)| format!("{}: {value}", Value::from(key.as_str())));
        match layout {
            Layout::OneLine => format!("{{{}}}", members.collect::<Vec<_>>().join(", ")),
            Layout::Indented {
                key_indent,
                closing_indent,
            } => {
                let lines: Vec<String> = members.map(|m| format!("{key_indent}{m}")).collect();
                format!("{{\n{}\n{closing_indent}}}", lines.join(",\n"))
            }
        }
    }
}

enum Layout<'a> {
    OneLine,
    Indented {
        key_indent: &'a str,
        closing_indent: &'a str,
    },
}

/// Appends `entry` after the last plugin, laid out like that plugin. `None` when a
/// `cuttlefish-cni` entry is already there: the text is then left as it is.
pub fn add_entry(text: &str, entry: &Entry) -> Result<Option<String>, ConflistError> {
    let conflist = Parsed::new(text)?;
    if conflist.our_entry().is_some() {
        return Ok(None);
    }
    Ok(Some(match conflist.plugins.last() {
        Some((last, _)) => {
            let before = &text[..last.start];
            let separator = &before[before.trim_end().len()..];
            let element = &text[last.clone()];
            let layout = match (element.find('\n'), element.rfind('\n')) {
                (Some(first), Some(final_newline)) => Layout::Indented {
                    key_indent: leading_whitespace(&element[first + 1..]),
                    closing_indent: leading_whitespace(&element[final_newline + 1..]),
                },
                _ => Layout::OneLine,
            };
            splice(
                text,
                last.end..last.end,
                &format!(",{separator}{}", entry.render(&layout)),
            )
        }
        None => {
            let inside = conflist.plugins_range.start + 1;
            splice(text, inside..inside, &entry.render(&Layout::OneLine))
        }
    }))
}

/// A `cniVersion` older than [`UPGRADED_VERSION`], and the text with it upgraded.
#[derive(Debug, PartialEq)]
pub struct Upgrade {
    pub from: String,
    pub text: String,
}

/// `None` when the declared version is not older than [`UPGRADED_VERSION`], or not a version.
pub fn upgrade_version(text: &str) -> Result<Option<Upgrade>, ConflistError> {
    Ok(match Parsed::new(text)?.version() {
        Some((range, from)) if is_older_than_upgrade(&from) => Some(Upgrade {
            text: splice(text, range, &Value::from(UPGRADED_VERSION).to_string()),
            from,
        }),
        _ => None,
    })
}

/// The `type` of every plugin but ours, in order.
pub fn other_plugin_types(text: &str) -> Result<Vec<String>, ConflistError> {
    Ok(Parsed::new(text)?
        .plugins
        .iter()
        .filter_map(|(_, plugin)| plugin.get("type")?.as_str().map(str::to_string))
        .filter(|plugin_type| plugin_type != PLUGIN_TYPE)
        .collect())
}

/// Removes every `cuttlefish-cni` entry together with the separator before it: the exact
/// inverse of [`add_entry`]'s insertion. `None` when there is none.
pub fn remove_entries(text: &str) -> Result<Option<String>, ConflistError> {
    let mut current = text.to_string();
    let mut removed = false;
    loop {
        let conflist = Parsed::new(&current)?;
        let Some(index) = conflist.our_entry() else {
            return Ok(removed.then_some(current));
        };
        let ranges: Vec<&Range<usize>> = conflist.plugins.iter().map(|(r, _)| r).collect();
        let cut = match (index.checked_sub(1), ranges.get(index + 1)) {
            (Some(previous), _) => ranges[previous].end..ranges[index].end,
            (None, Some(next)) => ranges[index].start..next.start,
            (None, None) => ranges[index].clone(),
        };
        current = splice(&current, cut, "");
        removed = true;
    }
}

/// Puts `original` back as `cniVersion` when the text still declares [`UPGRADED_VERSION`].
/// `None` when it declares something else: then someone else has set it since.
pub fn restore_version(text: &str, original: &str) -> Result<Option<String>, ConflistError> {
    Ok(match Parsed::new(text)?.version() {
        Some((range, version)) if version == UPGRADED_VERSION => {
            Some(splice(text, range, &Value::from(original).to_string()))
        }
        _ => None,
    })
}

struct Parsed<'a> {
    text: &'a str,
    value: Map<String, Value>,
    plugins_range: Range<usize>,
    plugins: Vec<(Range<usize>, Value)>,
}

impl<'a> Parsed<'a> {
    fn new(text: &'a str) -> Result<Parsed<'a>, ConflistError> {
        let Value::Object(value) = serde_json::from_str::<Value>(text)? else {
            return Err(ConflistError::NotObject);
        };
        let Some(Value::Array(plugin_values)) = value.get("plugins") else {
            return Err(ConflistError::NoPlugins);
        };
        let plugins_range = json_span::top_level_member(text, "plugins").ok_or(ConflistError::NoPlugins)?;
        let ranges = json_span::array_elements(text, plugins_range.start)
            .filter(|ranges| ranges.len() == plugin_values.len())
            .ok_or(ConflistError::NoPlugins)?;
        let plugins = ranges.into_iter().zip(plugin_values.iter().cloned()).collect();
        Ok(Parsed {
            text,
            value,
            plugins_range,
            plugins,
        })
    }

    fn our_entry(&self) -> Option<usize> {
        self.plugins
            .iter()
            .position(|(_, plugin)| plugin.get("type") == Some(&Value::from(PLUGIN_TYPE)))
    }

    fn version(&self) -> Option<(Range<usize>, String)> {
        let version = self.value.get("cniVersion")?.as_str()?.to_string();
        Some((json_span::top_level_member(self.text, "cniVersion")?, version))
    }
}

fn is_older_than_upgrade(version: &str) -> bool {
    let numbers = |v: &str| -> Option<Vec<u64>> { v.split('.').map(|n| n.parse().ok()).collect() };
    match (numbers(version), numbers(UPGRADED_VERSION)) {
        (Some(version), Some(upgrade)) => version < upgrade,
        _ => false,
    }
}

fn leading_whitespace(text: &str) -> &str {
    &text[..text.len() - text.trim_start_matches([' ', '\t']).len()]
}

fn splice(text: &str, range: Range<usize>, replacement: &str) -> String {
    format!("{}{replacement}{}", &text[..range.start], &text[range.end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry::new(Map::new()).unwrap()
    }

    #[test]
    fn a_one_line_conflist_gets_a_one_line_entry() {
        let text = r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp"}]}"#;
        let added = add_entry(text, &entry()).unwrap().unwrap();
        assert_eq!(
            added,
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp"},{"type": "cuttlefish-cni", "capabilities": {"io.kubernetes.cri.pod-annotations":true}}]}"#
        );
        assert_eq!(
            add_entry(&added, &entry()).unwrap(),
            None,
            "the entry is there already"
        );
    }

    #[test]
    fn an_indented_conflist_gets_an_entry_indented_like_its_last_plugin() {
        let text =
            "{\n \"cniVersion\": \"1.1.0\",\n \"plugins\": [\n\t{\n\t   \"type\": \"ptp\"\n\t}\n ]\n}\n";
        let extra = serde_json::json!({"select": "all"});
        let entry = Entry::new(extra.as_object().unwrap().clone()).unwrap();
        let added = add_entry(text, &entry).unwrap().unwrap();
        assert_eq!(
            added,
            "{\n \"cniVersion\": \"1.1.0\",\n \"plugins\": [\n\t{\n\t   \"type\": \"ptp\"\n\t},\n\t{\n\t   \"type\": \"cuttlefish-cni\",\n\t   \"capabilities\": {\"io.kubernetes.cri.pod-annotations\":true},\n\t   \"select\": \"all\"\n\t}\n ]\n}\n"
        );
        assert_eq!(remove_entries(&added).unwrap().as_deref(), Some(text));
    }

    #[test]
    fn an_empty_plugin_list_gets_our_entry_alone_and_loses_it_again() {
        let text = r#"{"cniVersion":"1.1.0","plugins":[ ]}"#;
        let added = add_entry(text, &entry()).unwrap().unwrap();
        assert_eq!(
            added,
            r#"{"cniVersion":"1.1.0","plugins":[{"type": "cuttlefish-cni", "capabilities": {"io.kubernetes.cri.pod-annotations":true}} ]}"#
        );
        assert_eq!(
            remove_entries(&added).unwrap(),
            Some(r#"{"cniVersion":"1.1.0","plugins":[ ]}"#.to_string())
        );
    }

    #[test]
    fn an_entry_first_in_the_list_is_removed_with_the_separator_after_it() {
        let text = r#"{"plugins":[{"type":"cuttlefish-cni"}, {"type":"ptp"}]}"#;
        assert_eq!(
            remove_entries(text).unwrap().as_deref(),
            Some(r#"{"plugins":[{"type":"ptp"}]}"#)
        );
    }

    #[test]
    fn every_one_of_several_entries_is_removed() {
        let text =
            r#"{"plugins":[{"type":"ptp"},{"type":"cuttlefish-cni"},{"type":"cuttlefish-cni","x":1}]}"#;
        assert_eq!(
            remove_entries(text).unwrap().as_deref(),
            Some(r#"{"plugins":[{"type":"ptp"}]}"#)
        );
        assert_eq!(remove_entries(r#"{"plugins":[]}"#).unwrap(), None);
    }

    #[test]
    fn only_versions_older_than_1_1_0_are_upgraded() {
        let text = r#"{"cniVersion": "0.3.1", "plugins": [{"type": "ptp"}, {"type": "cuttlefish-cni"}]}"#;
        assert_eq!(
            upgrade_version(text).unwrap(),
            Some(Upgrade {
                from: "0.3.1".into(),
                text: text.replace("0.3.1", "1.1.0")
            })
        );
        assert_eq!(upgrade_version(&text.replace("0.3.1", "1.1.0")).unwrap(), None);
        assert_eq!(upgrade_version(r#"{"plugins": []}"#).unwrap(), None);
        assert_eq!(other_plugin_types(text).unwrap(), ["ptp"]);
    }

    #[test]
    fn a_version_is_restored_only_over_the_upgraded_one() {
        let text = r#"{"cniVersion":"1.1.0","plugins":[]}"#;
        assert_eq!(
            restore_version(text, "0.3.1").unwrap().as_deref(),
            Some(r#"{"cniVersion":"0.3.1","plugins":[]}"#)
        );
        assert_eq!(
            restore_version(r#"{"cniVersion":"1.0.0","plugins":[]}"#, "0.3.1").unwrap(),
            None
        );
    }

    #[test]
    fn versions_compare_numerically_and_unknown_ones_are_kept() {
        assert!(is_older_than_upgrade("0.3.1"));
        assert!(is_older_than_upgrade("1.0.0"));
        assert!(!is_older_than_upgrade("1.1.0"));
        assert!(!is_older_than_upgrade("1.10.0"));
        assert!(!is_older_than_upgrade("next"));
    }

    #[test]
    fn what_is_not_a_conflist_is_refused() {
        assert!(matches!(add_entry("{", &entry()), Err(ConflistError::Json(_))));
        assert!(matches!(add_entry("[]", &entry()), Err(ConflistError::NotObject)));
        assert!(matches!(
            add_entry(r#"{"type":"ptp"}"#, &entry()),
            Err(ConflistError::NoPlugins)
        ));
        assert!(matches!(
            add_entry(r#"{"plugins":{}}"#, &entry()),
            Err(ConflistError::NoPlugins)
        ));
    }

    #[test]
    fn plugin_keys_may_not_redefine_the_type_or_the_capability() {
        for key in ["type", "capabilities"] {
            let extra = serde_json::json!({ key: "x" });
            assert!(Entry::new(extra.as_object().unwrap().clone()).is_err());
        }
    }
}
