//! The agent: registrations in, DHCP servers out. Every registration is kept as a file in the
//! state directory, so a restarted agent serves every live pod again; a pod whose netns has
//! disappeared is dropped by a periodic sweep.

use super::protocol::{AttachmentRef, PodStatus, Registration, Request, Response, Status};
use super::server::{self, Counters, Running};
use crate::cni::Attachment;
use crate::mark::Owner;
use crate::netns::{Netns, OpenError};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// A request larger than this is refused: registrations are a few hundred bytes.
const MAX_REQUEST: u64 = 64 * 1024;

struct Pod {
    registration: Registration,
    servers: Vec<Running>,
}

pub struct Agent {
    state_dir: PathBuf,
    pods: Mutex<HashMap<String, Pod>>,
    counters: Arc<Counters>,
}

fn key(network: &str, container_id: &str, ifname: &str) -> String {
    let owner = Owner::of(&Attachment {
        container_id: container_id.into(),
        ifname: ifname.into(),
    });
    format!("{network}-{}", owner.tag())
}

impl Agent {
    /// Loads the registrations kept in `state_dir` and serves the pods that are still alive.
    pub fn start(state_dir: &Path) -> std::io::Result<Arc<Agent>> {
        std::fs::create_dir_all(state_dir)?;
        let agent = Arc::new(Agent {
            state_dir: state_dir.to_path_buf(),
            pods: Mutex::new(HashMap::new()),
            counters: Arc::new(Counters::default()),
        });
        for entry in std::fs::read_dir(state_dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let parsed = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| serde_json::from_str::<Registration>(&text).ok());
            match parsed {
                Some(registration) => {
                    if let Err(e) = agent.register(registration) {
                        log::warn!("dropping the registration in {}: {e}", path.display());
                        let _ = std::fs::remove_file(&path);
                    }
                }
                None => log::warn!("ignoring unreadable registration {}", path.display()),
            }
        }
        let sweeper = Arc::downgrade(&agent);
        std::thread::spawn(move || loop {
            std::thread::sleep(SWEEP_EVERY);
            match sweeper.upgrade() {
                Some(agent) => agent.sweep(),
                None => return,
            }
        });
        Ok(agent)
    }

    /// Serves `socket` until the process ends, one thread per connection.
    pub fn listen(self: &Arc<Agent>, socket: &Path) -> std::io::Result<()> {
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A socket file left by a previous agent is stale; anything else is not ours.
        match std::fs::symlink_metadata(socket) {
            Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
                std::fs::remove_file(socket)?
            }
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} exists and is not a socket",
                    socket.display()
                )))
            }
            Err(_) => {}
        }
        let listener = UnixListener::bind(socket)?;
        // Only root (the runtime and its plugins) may talk to the agent.
        std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        log::info!("listening on {}", socket.display());
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let agent = self.clone();
            std::thread::spawn(move || agent.converse(stream));
        }
        Ok(())
    }

    fn converse(&self, stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        let read = BufReader::new(std::io::Read::take(&stream, MAX_REQUEST)).read_line(&mut line);
        let response = match read
            .map_err(|e| e.to_string())
            .and_then(|_| serde_json::from_str::<Request>(&line).map_err(|e| format!("bad request: {e}")))
        {
            Ok(request) => self.handle(request),
            Err(e) => Response {
                ok: false,
                error: Some(e),
                status: None,
            },
        };
        let mut stream = stream;
        let _ = writeln!(
            stream,
            "{}",
            serde_json::to_string(&response).expect("serialisable")
        );
    }

    pub fn handle(&self, request: Request) -> Response {
        let result = match request {
            Request::Register(registration) => self.register(registration).map(|()| None),
            Request::Unregister { network, attachment } => {
                self.unregister(&key(&network, &attachment.container_id, &attachment.ifname));
                Ok(None)
            }
            Request::Gc { network, valid } => {
                self.collect(&network, &valid);
                Ok(None)
            }
            Request::Status => Ok(Some(self.status())),
        };
        match result {
            Ok(status) => Response {
                ok: true,
                error: None,
                status,
            },
            Err(e) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                Response {
                    ok: false,
                    error: Some(e),
                    status: None,
                }
            }
        }
    }

    fn register(&self, registration: Registration) -> Result<(), String> {
        let netns = Netns::open(&registration.netns).map_err(|e| OpenError::into_error(e).to_string())?;
        if netns.is_own().map_err(|e| e.to_string())? {
            return Err(format!(
                "{} is the agent's own network namespace",
                registration.netns
            ));
        }
        let id = key(
            &registration.network,
            &registration.container_id,
            &registration.ifname,
        );
        // A re-registration (an ADD retried) replaces the old servers.
        self.unregister_quietly(&id);
        let mut servers = Vec::new();
        for bridge in &registration.bridges {
            match server::start(
                &registration.netns,
                bridge,
                &registration.dns,
                self.counters.clone(),
            ) {
                Ok(running) => servers.push(running),
                Err(e) => {
                    servers.into_iter().for_each(Running::stop);
                    return Err(format!(
                        "serving DHCP on {} in {}: {e}",
                        bridge.name, registration.netns
                    ));
                }
            }
        }
        self.persist(&id, &registration)
            .map_err(|e| format!("recording the registration: {e}"))?;
        log::info!(
            "serving {} on {:?}",
            registration.netns,
            registration.bridges.iter().map(|b| &b.name).collect::<Vec<_>>()
        );
        self.pods.lock().unwrap().insert(
            id,
            Pod {
                registration,
                servers,
            },
        );
        Ok(())
    }

    fn unregister(&self, id: &str) {
        if self.unregister_quietly(id) {
            log::info!("no longer serving {id}");
        }
        let _ = std::fs::remove_file(self.state_dir.join(format!("{id}.json")));
    }

    fn unregister_quietly(&self, id: &str) -> bool {
        let pod = self.pods.lock().unwrap().remove(id);
        let found = pod.is_some();
        if let Some(pod) = pod {
            pod.servers.into_iter().for_each(Running::stop);
        }
        found
    }

    fn collect(&self, network: &str, valid: &[AttachmentRef]) {
        let stale: Vec<String> = self
            .pods
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p)| {
                let r = &p.registration;
                r.network == network
                    && !valid
                        .iter()
                        .any(|v| v.container_id == r.container_id && v.ifname == r.ifname)
            })
            .map(|(id, _)| id.clone())
            .collect();
        stale.iter().for_each(|id| self.unregister(id));
    }

    /// Drops the pods whose network namespace is gone.
    fn sweep(&self) {
        let gone: Vec<String> = self
            .pods
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p)| matches!(Netns::open(&p.registration.netns), Err(OpenError::Gone(_))))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            log::info!("the netns of {id} is gone");
            self.unregister(&id);
        }
    }

    fn status(&self) -> Status {
        let pods = self.pods.lock().unwrap();
        let pods: Vec<PodStatus> = pods
            .values()
            .map(|p| PodStatus {
                network: p.registration.network.clone(),
                container_id: p.registration.container_id.clone(),
                ifname: p.registration.ifname.clone(),
                netns: p.registration.netns.clone(),
                leases_active: p
                    .servers
                    .iter()
                    .map(|s| s.leases_active.load(Ordering::Relaxed))
                    .sum(),
                rate_limited: p
                    .servers
                    .iter()
                    .map(|s| s.rate_limited.load(Ordering::Relaxed))
                    .sum(),
            })
            .collect();
        Status {
            pods_served: pods.len(),
            leases_active: pods.iter().map(|p| p.leases_active).sum(),
            leases_given: self.counters.leases_given.load(Ordering::Relaxed),
            errors: self.counters.errors.load(Ordering::Relaxed),
            rate_limited: self.counters.rate_limited.load(Ordering::Relaxed),
            pods,
        }
    }

    /// Temporary file, fsync, rename: a crash leaves the old registration or the new one.
    fn persist(&self, id: &str, registration: &Registration) -> std::io::Result<()> {
        let tmp = self.state_dir.join(format!(".{id}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(
            serde_json::to_string(registration)
                .expect("serialisable")
                .as_bytes(),
        )?;
        file.sync_all()?;
        std::fs::rename(&tmp, self.state_dir.join(format!("{id}.json")))
    }
}
