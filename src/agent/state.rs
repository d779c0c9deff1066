//! The agent's registrations on disk: one JSON file per attachment in the state directory,
//! written atomically, so that a restarted agent serves every live pod again.

use super::protocol::Registration;
use crate::atomic_file;
use crate::netns::NetnsId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One registration as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub registration: Registration,
    /// The namespace the registration's descriptor was. After a restart the agent serves the
    /// recorded path only while it still names this namespace. Records of agents before the
    /// descriptor was passed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_id: Option<NetnsId>,
}

pub struct StateDir(PathBuf);

impl StateDir {
    pub fn open(path: &Path) -> std::io::Result<StateDir> {
        std::fs::create_dir_all(path)?;
        Ok(StateDir(path.to_path_buf()))
    }

    /// Every record, under the name it is kept as; None for a file that cannot be read as one.
    pub fn load(&self) -> std::io::Result<Vec<(String, Option<Record>)>> {
        let mut records = Vec::new();
        for entry in std::fs::read_dir(&self.0)? {
            let path = entry?.path();
            let Some(name) = path
                .extension()
                .filter(|e| *e == "json")
                .and(path.file_stem())
                .and_then(|s| s.to_str())
            else {
                continue;
            };
            let record = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok());
            records.push((name.to_string(), record));
        }
        Ok(records)
    }

    /// Written atomically (see `atomic_file`), readable by root only: a crash leaves the old
    /// record or the new one. `name` is made of validated names only (see `validate`), so it
    /// stays in this directory.
    pub fn write(&self, name: &str, record: &Record) -> std::io::Result<()> {
        let text = serde_json::to_string(record).expect("serialisable");
        Ok(atomic_file::write(&self.path_of(name), text.as_bytes(), 0o600)?)
    }

    pub fn remove(&self, name: &str) {
        let _ = atomic_file::remove(&self.path_of(name));
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_earlier_agents_have_no_netns_id() {
        let earlier = r#"{"network":"n","container_id":"c","ifname":"eth0","netns":"/run/netns/x",
                          "bridges":[{"name":"cvd-ebr","gateway":"192.168.98.1"}],"dns":[]}"#;
        let record: Record = serde_json::from_str(earlier).unwrap();
        assert_eq!(record.netns_id, None);
        assert_eq!(record.registration.netns, "/run/netns/x");
        let now = Record {
            netns_id: Some(NetnsId {
                dev: 4,
                ino: 4026532000,
            }),
            ..record
        };
        let text = serde_json::to_string(&now).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), now);
    }

    #[test]
    fn records_are_readable_by_root_only_and_load_back() {
        use std::os::unix::fs::MetadataExt;
        let path = std::env::temp_dir().join(format!("cfcni-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let dir = StateDir::open(&path).unwrap();
        let record: Record = serde_json::from_str(
            r#"{"network":"n","container_id":"c","ifname":"eth0","netns":"/run/netns/x","bridges":[],"dns":[]}"#,
        )
        .unwrap();
        dir.write("n-c-eth0", &record).unwrap();
        let mode = std::fs::metadata(path.join("n-c-eth0.json")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(dir.load().unwrap(), [("n-c-eth0".to_string(), Some(record))]);
        dir.remove("n-c-eth0");
        assert!(dir.load().unwrap().is_empty());
        std::fs::remove_dir_all(&path).unwrap();
    }
}
