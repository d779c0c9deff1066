//! Which network config in the conf dir the runtime uses, by the runtime's own rules: libcni's
//! `ConfFiles(dir, [".conf", ".conflist", ".json"])`, sorted byte by byte, and the first that
//! loads is the default network (CRI-O's ocicni skips files that do not load; containerd's
//! go-cni loads the first one too but stops with an error on a file that does not load, which
//! leaves it with no network at all, so skipping such a file changes nothing there).
//!
//! "Loads" follows libcni: a `.conflist` is a JSON object with a string `name` and a non-empty
//! `plugins` array whose every element has a non-empty `type`; a `.conf` or `.json` is one
//! plugin's config with a non-empty `type`. The standard keys must have their Go types, as Go's
//! `encoding/json` fails on a mismatch. Not followed: libcni 1.3's plugins directory
//! `<dir>/<name>/*.conf` (such a conflist is refused when it is the choice), and CRI-O's
//! extra check that every plugin binary exists.

use super::error::InstallError;
use serde_json::{Map, Value};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const EXTENSIONS: [&[u8]; 3] = [b".conf", b".conflist", b".json"];

/// The conflist the runtime uses. An error when that is a single-plugin config, which no
/// plugin can be chained into, or when no file loads (naming the files skipped and why).
pub fn runtime_choice(conf_dir: &Path) -> Result<PathBuf, InstallError> {
    let mut skipped = Vec::new();
    for path in candidates(conf_dir)? {
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) => {
                skipped.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let loaded = if is_conflist(&path) {
            conflist_loads(&text, conf_dir)
        } else {
            single_config_loads(&text)
        };
        match loaded {
            Ok(Loaded::List) => return Ok(path),
            Ok(Loaded::Single { plugin_type }) => {
                return Err(InstallError::NotChainable {
                    path,
                    reason: format!(
                        "it is a single-plugin config (type {plugin_type:?}), not a list: nothing can be chained after its plugin"
                    ),
                })
            }
            Ok(Loaded::PluginsDirectory(dir)) => {
                return Err(InstallError::NotChainable {
                    path,
                    reason: format!(
                        "its plugins are (also) read from the plugin directory {}",
                        dir.display()
                    ),
                })
            }
            Err(reason) => skipped.push(format!("{}: {reason}", path.display())),
        }
    }
    Err(InstallError::NoNetworkConfig {
        dir: conf_dir.to_path_buf(),
        skipped,
    })
}

/// libcni's `ConfFiles`: every entry but directories (a symlink counts, whatever it points
/// to) whose extension, from the last `.` of the name on, is one of [`EXTENSIONS`]; hidden
/// names too. Sorted by bytes, as Go's `sort.Strings`.
fn candidates(conf_dir: &Path) -> Result<Vec<PathBuf>, InstallError> {
    let listing_error = InstallError::io("listing", conf_dir);
    let mut names = Vec::new();
    for entry in fs::read_dir(conf_dir).map_err(listing_error)? {
        let entry = entry.map_err(InstallError::io("listing", conf_dir))?;
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if !is_dir && has_extension(&entry.file_name(), &EXTENSIONS) {
            names.push(entry.file_name());
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names.into_iter().map(|name| conf_dir.join(name)).collect())
}

fn has_extension(name: &OsStr, extensions: &[&[u8]]) -> bool {
    let name = name.as_bytes();
    name.iter()
        .rposition(|&byte| byte == b'.')
        .is_some_and(|dot| extensions.contains(&&name[dot..]))
}

fn is_conflist(path: &Path) -> bool {
    has_extension(path.file_name().unwrap_or_default(), &[b".conflist"])
}

#[derive(Debug, PartialEq)]
enum Loaded {
    List,
    Single { plugin_type: String },
    PluginsDirectory(PathBuf),
}

/// libcni's `NetworkConfFromFile`.
fn conflist_loads(text: &[u8], conf_dir: &Path) -> Result<Loaded, String> {
    let value: Value = serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(list) = value else {
        return Err("the top level is not a JSON object".into());
    };
    let name = match list.get("name") {
        Some(Value::String(name)) => name,
        _ => return Err("\"name\" is missing or not a string".into()),
    };
    if list.get("cniVersion").is_some_and(|v| !v.is_string()) {
        return Err("\"cniVersion\" is not a string".into());
    }
    if let Some(versions) = list.get("cniVersions") {
        if !versions
            .as_array()
            .is_some_and(|v| v.iter().all(Value::is_string))
        {
            return Err("\"cniVersions\" is not a list of strings".into());
        }
    }
    let mut inlined_only = false;
    for key in ["disableCheck", "disableGC", "loadOnlyInlinedPlugins"] {
        let flag = match list.get(key) {
            None => false,
            Some(Value::Bool(flag)) => *flag,
            Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => true,
            Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => false,
            Some(_) => return Err(format!("{key:?} is not true or false")),
        };
        inlined_only |= key == "loadOnlyInlinedPlugins" && flag;
    }
    match list.get("plugins") {
        Some(Value::Array(plugins)) if !plugins.is_empty() => {
            for (index, plugin) in plugins.iter().enumerate() {
                plugin_type(plugin).map_err(|reason| format!("plugin {index}: {reason}"))?;
            }
        }
        Some(Value::Array(_)) => return Err("\"plugins\" is empty".into()),
        Some(_) => return Err("\"plugins\" is not an array".into()),
        None if inlined_only => return Err("no \"plugins\"".into()),
        None => {}
    }
    let plugins_dir = conf_dir.join(name);
    if !inlined_only && has_plugin_files(&plugins_dir) {
        return Ok(Loaded::PluginsDirectory(plugins_dir));
    }
    if list.contains_key("plugins") {
        Ok(Loaded::List)
    } else {
        Err("no \"plugins\"".into())
    }
}

/// libcni's `ConfFromFile`, then `ConfListFromConf`, which cannot fail after it.
fn single_config_loads(text: &[u8]) -> Result<Loaded, String> {
    let value: Value = serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
    Ok(Loaded::Single {
        plugin_type: plugin_type(&value)?,
    })
}

/// libcni 1.3 appends the plugins in `<dir>/<name>/*.conf` to the list's own.
fn has_plugin_files(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            entry.file_type().is_ok_and(|kind| !kind.is_dir())
                && has_extension(&entry.file_name(), &[b".conf"])
        })
    })
}

/// The `type` of a plugin config decoded as Go decodes it into libcni's `PluginConf`: field
/// names match case-insensitively, `null` leaves a field empty, any other mistyped value fails.
fn plugin_type(plugin: &Value) -> Result<String, String> {
    let plugin = match plugin {
        Value::Object(plugin) => plugin,
        Value::Null => return Err("no \"type\"".into()),
        _ => return Err("not a JSON object".into()),
    };
    for field in ["cniVersion", "name"] {
        expect(plugin, field, Value::is_string)?;
    }
    expect(plugin, "capabilities", |v| {
        v.as_object()
            .is_some_and(|c| c.values().all(|v| v.is_boolean() || v.is_null()))
    })?;
    expect(plugin, "ipam", |v| {
        v.as_object()
            .is_some_and(|ipam| expect(ipam, "type", Value::is_string).is_ok())
    })?;
    expect(plugin, "dns", |v| {
        let strings = |v: &Value| {
            v.as_array()
                .is_some_and(|list| list.iter().all(|s| s.is_string() || s.is_null()))
        };
        v.as_object().is_some_and(|dns| {
            ["nameservers", "search", "options"]
                .iter()
                .all(|field| expect(dns, field, strings).is_ok())
                && expect(dns, "domain", Value::is_string).is_ok()
        })
    })?;
    expect(plugin, "prevResult", Value::is_object)?;
    let mut plugin_type = String::new();
    for (_, value) in fields(plugin, "type") {
        if let Value::String(text) = value {
            plugin_type.clone_from(text);
        }
    }
    if plugin_type.is_empty() {
        return Err("no \"type\"".into());
    }
    Ok(plugin_type)
}

/// Every member whose key matches `field` as Go matches struct fields (ignoring case).
fn fields<'a>(
    object: &'a Map<String, Value>,
    field: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Value)> {
    object
        .iter()
        .filter(move |(key, _)| key.eq_ignore_ascii_case(field))
}

fn expect(object: &Map<String, Value>, field: &str, is_valid: impl Fn(&Value) -> bool) -> Result<(), String> {
    match fields(object, field).find(|(_, value)| !value.is_null() && !is_valid(value)) {
        Some((key, value)) => Err(format!("{key:?} has the wrong type: {value}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(text: &str) -> Result<Loaded, String> {
        conflist_loads(text.as_bytes(), Path::new("/nonexistent"))
    }

    #[test]
    fn extensions_are_what_follows_the_last_dot() {
        let matches = |name: &str| has_extension(OsStr::new(name), &EXTENSIONS);
        for name in [
            "05-cilium.conflist",
            "a.conf",
            "a.json",
            ".conflist",
            ".a.conf",
            "a.b.json",
        ] {
            assert!(matches(name), "{name}");
        }
        for name in [
            "a.conf.bak",
            "a.conflist.cilium_bak",
            "conf",
            "a.CONF",
            "a.conf~",
            "a",
        ] {
            assert!(!matches(name), "{name}");
        }
    }

    #[test]
    fn a_conflist_loads_as_libcni_loads_it() {
        assert_eq!(
            loads(r#"{"name": "n", "plugins": [{"type": "ptp"}]}"#),
            Ok(Loaded::List)
        );
        assert_eq!(
            loads(
                r#"{"name": "n", "disableGC": "TRUE", "cniVersions": ["1.0.0"], "plugins": [{"Type": "ptp", "dns": null}]}"#
            ),
            Ok(Loaded::List)
        );
        for bad in [
            "[]",
            r#"{"plugins": [{"type": "ptp"}]}"#,
            r#"{"name": 1, "plugins": [{"type": "ptp"}]}"#,
            r#"{"name": "n", "cniVersion": 1.0, "plugins": [{"type": "ptp"}]}"#,
            r#"{"name": "n", "disableCheck": "yes", "plugins": [{"type": "ptp"}]}"#,
            r#"{"name": "n"}"#,
            r#"{"name": "n", "plugins": {}}"#,
            r#"{"name": "n", "plugins": [{"type": "ptp"}, {"type": ""}]}"#,
            r#"{"name": "n", "plugins": [{"type": "ptp", "capabilities": {"portMappings": "yes"}}]}"#,
            r#"{"name": "n", "plugins": [{"type": "ptp", "ipam": {"type": 1}}]}"#,
            r#"{"name": "n", "plugins": [{"type": "ptp", "dns": {"nameservers": "1.1.1.1"}}]}"#,
            r#"{"name": "n", "plugins": [[]]}"#,
        ] {
            assert!(loads(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_single_config_needs_a_type() {
        assert_eq!(
            single_config_loads(br#"{"name": "n", "TYPE": "bridge"}"#),
            Ok(Loaded::Single {
                plugin_type: "bridge".into()
            })
        );
        assert!(single_config_loads(br#"{"name": "n", "plugins": [{"type": "ptp"}]}"#).is_err());
        assert!(single_config_loads(b"null").is_err());
    }
}
