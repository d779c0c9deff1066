//! The agent: registrations in, DHCP servers out. Only allowed uids may talk to it. A
//! registration names the pod's netns by an open descriptor, which must be a pod's: not the
//! agent's own namespace, not the node's. Every registration is kept as a file in the state
//! directory, so a restarted agent serves every live pod again; a pod whose netns has
//! disappeared is dropped by a periodic sweep.

use super::protocol::{AttachmentRef, PodStatus, Registration, Request, Response, Status};
use super::server::{self, Counters, Running, StartError};
use super::socket::{self, SocketError};
use super::state::{Record, StateDir};
use super::validate::{self, Invalid};
use crate::cni::Attachment;
use crate::error::Error;
use crate::mark::AttachmentTag;
use crate::netns::{Netns, NetnsId, OpenError};
use nix::sys::stat::{umask, Mode};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SWEEP_EVERY: Duration = Duration::from_secs(2);

struct Pod {
    registration: Registration,
    netns_id: NetnsId,
    servers: Vec<Running>,
}

/// Why the agent refuses a request, or a registration an earlier agent kept. Values from the
/// caller are quoted with `{:?}`, so they are escaped.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Socket(#[from] SocketError),
    #[error("the agent takes requests from uids {allowed:?} only, and this caller is uid {uid} (pid {pid}); see --allow-uid")]
    UidNotAllowed { uid: u32, pid: i32, allowed: Vec<u32> },
    #[error("bad request: {0}")]
    BadRequest(#[source] serde_json::Error),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("the registration of {netns:?} came without the netns descriptor (SCM_RIGHTS); plugin and agent must be the same version")]
    NoDescriptor { netns: String },
    #[error("{0}")]
    Netns(#[source] Error),
    #[error("netns {netns:?} is not the network namespace whose descriptor came with the registration")]
    NotTheDescriptors { netns: String },
    #[error("netns {netns:?}: {source}")]
    NetnsPath { netns: String, source: std::io::Error },
    #[error("netns {netns:?} is {what}")]
    Forbidden { netns: String, what: &'static str },
    #[error("it cannot be read")]
    Unreadable,
    #[error("it belongs in {0}.json")]
    Misplaced(String),
    #[error("netns {netns:?} is no longer the network namespace that was registered")]
    NetnsReplaced { netns: String },
    #[error("serving DHCP on {bridge} in {netns:?}: {source}")]
    Serve {
        bridge: String,
        netns: String,
        source: StartError,
    },
    #[error("recording the registration: {0}")]
    Record(#[source] std::io::Error),
}

/// A namespace no registration may name, and what it is.
struct Forbidden {
    id: NetnsId,
    what: &'static str,
}

pub struct Agent {
    state: StateDir,
    /// Held for the whole of every change (start servers, write the record, replace the pod),
    /// so that two registrations of one attachment never both run their servers.
    pods: Mutex<HashMap<String, Pod>>,
    counters: Arc<Counters>,
    peers_refused: AtomicU64,
    allowed_uids: Vec<u32>,
    forbidden: Vec<Forbidden>,
}

/// The state file name of an attachment, from validated names only.
fn key(network: &str, container_id: &str, ifname: &str) -> String {
    let tag = AttachmentTag::of(&Attachment {
        container_id: container_id.into(),
        ifname: ifname.into(),
    });
    format!("{network}-{}", tag.as_str())
}

/// The namespaces the agent never serves: its own, and PID 1's (the node's root namespace on a
/// plain host). In the DaemonSet (hostNetwork) the agent's own namespace is the node's, and
/// PID 1 of its container is the agent itself.
fn forbidden_namespaces() -> std::io::Result<Vec<Forbidden>> {
    let mut forbidden = vec![Forbidden {
        id: NetnsId::of_path("/proc/self/ns/net")?,
        what: "the agent's own network namespace",
    }];
    match NetnsId::of_path("/proc/1/ns/net") {
        Ok(id) => forbidden.push(Forbidden {
            id,
            what: "the node's root network namespace (PID 1's)",
        }),
        Err(e) => log::warn!(
            "cannot tell PID 1's network namespace (/proc/1/ns/net: {e}); refusing the agent's own only"
        ),
    }
    Ok(forbidden)
}

impl Agent {
    /// Loads the registrations kept in `state_dir` and serves the pods that are still alive.
    /// Requests are taken from uid 0 and `allowed_uids`.
    pub fn start(state_dir: &Path, allowed_uids: &[u32]) -> std::io::Result<Arc<Agent>> {
        // Everything the agent creates (its socket, state directory and records) is its own:
        // no window between creating a file and restricting it.
        umask(Mode::from_bits_truncate(0o077));
        let agent = Arc::new(Agent {
            state: StateDir::open(state_dir)?,
            pods: Mutex::new(HashMap::new()),
            counters: Arc::new(Counters::default()),
            peers_refused: AtomicU64::new(0),
            allowed_uids: std::iter::once(0).chain(allowed_uids.iter().copied()).collect(),
            forbidden: forbidden_namespaces()?,
        });
        for (name, record) in agent.state.load()? {
            let restored = match record {
                Some(record) => agent.restore(&name, record),
                None => Err(Refusal::Unreadable),
            };
            if let Err(e) = restored {
                log::warn!("dropping the registration {name:?}: {e}");
                agent.state.remove(&name);
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
    pub fn listen(self: &Arc<Agent>, path: &Path) -> std::io::Result<()> {
        let listener = socket::bind(path)?;
        log::info!("listening on {}", path.display());
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let agent = self.clone();
            if let Err(e) = std::thread::Builder::new().spawn(move || agent.converse(stream)) {
                log::warn!("no thread for a connection: {e}");
            }
        }
        Ok(())
    }

    fn converse(&self, mut stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let response = match self.read_request(&stream) {
            Ok((request, netns)) => self.handle(request, netns),
            Err(e) => failure(e),
        };
        let _ = writeln!(
            stream,
            "{}",
            serde_json::to_string(&response).expect("serialisable")
        );
    }

    /// The request of an allowed caller, and the descriptor that came with it. The (bounded)
    /// request is read before the caller is refused: a refusal sent while the caller is still
    /// writing would meet a closed socket (EPIPE) instead of being read.
    fn read_request(&self, stream: &UnixStream) -> Result<(Request, Option<OwnedFd>), Refusal> {
        let (line, netns) = socket::receive(stream)?;
        self.admit(stream)?;
        let request = serde_json::from_str(&line).map_err(Refusal::BadRequest)?;
        Ok((request, netns))
    }

    /// SO_PEERCRED: the uid the caller connected with must be allowed.
    fn admit(&self, stream: &UnixStream) -> Result<(), Refusal> {
        let (uid, pid) = socket::peer(stream)?;
        if self.allowed_uids.contains(&uid) {
            return Ok(());
        }
        self.peers_refused.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "refused a connection from uid {uid} (pid {pid}): allowed are uids {:?}",
            self.allowed_uids
        );
        Err(Refusal::UidNotAllowed {
            uid,
            pid,
            allowed: self.allowed_uids.clone(),
        })
    }

    /// `netns` is the descriptor that came with the request, if any.
    pub fn handle(&self, request: Request, netns: Option<OwnedFd>) -> Response {
        let result = match request {
            Request::Register(registration) => self.register(registration, netns).map(|()| None),
            Request::Unregister { network, attachment } => validate::network(&network)
                .and_then(|()| validate::attachment(&attachment.container_id, &attachment.ifname))
                .map(|()| {
                    self.unregister(&key(&network, &attachment.container_id, &attachment.ifname));
                    None
                })
                .map_err(Refusal::from),
            Request::Gc { network, valid } => validate::network(&network)
                .map(|()| {
                    self.gc(&network, &valid);
                    None
                })
                .map_err(Refusal::from),
            Request::Status => Ok(Some(self.status())),
        };
        match result {
            Ok(status) => Response {
                ok: true,
                error: None,
                status,
            },
            Err(e) => {
                log::warn!("refused a request: {e}");
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                failure(e)
            }
        }
    }

    fn register(&self, registration: Registration, netns: Option<OwnedFd>) -> Result<(), Refusal> {
        validate::registration(&registration)?;
        let path = &registration.netns;
        let Some(fd) = netns else {
            return Err(Refusal::NoDescriptor { netns: path.clone() });
        };
        let netns = Netns::from_fd(fd, path).map_err(Refusal::Netns)?;
        let id = self.pod_netns_id(&netns)?;
        // The path is what the sweep watches and a restart reopens: it must name the same netns.
        match NetnsId::of_path(path) {
            Ok(named) if named == id => {}
            Ok(_) => return Err(Refusal::NotTheDescriptors { netns: path.clone() }),
            Err(source) => {
                return Err(Refusal::NetnsPath {
                    netns: path.clone(),
                    source,
                })
            }
        }
        self.serve(registration, id, &netns, true)
    }

    /// A registration kept by an earlier agent: served when its path is still the same netns.
    fn restore(&self, name: &str, record: Record) -> Result<(), Refusal> {
        let registration = record.registration;
        validate::registration(&registration)?;
        let id = key(
            &registration.network,
            &registration.container_id,
            &registration.ifname,
        );
        if id != name {
            return Err(Refusal::Misplaced(id));
        }
        let netns = Netns::open(&registration.netns).map_err(|e| Refusal::Netns(OpenError::into_error(e)))?;
        let netns_id = self.pod_netns_id(&netns)?;
        match record.netns_id {
            Some(recorded) if recorded != netns_id => Err(Refusal::NetnsReplaced {
                netns: registration.netns,
            }),
            // A record without the id (an agent before descriptors were passed) is adopted as
            // the path is now, and written again with it.
            recorded => self.serve(registration, netns_id, &netns, recorded.is_none()),
        }
    }

    /// The identity of a netns that may be served; refuses the agent's own and the node's.
    fn pod_netns_id(&self, netns: &Netns) -> Result<NetnsId, Refusal> {
        let id = netns.id().map_err(Refusal::Netns)?;
        match self.forbidden.iter().find(|f| f.id == id) {
            Some(forbidden) => Err(Refusal::Forbidden {
                netns: netns.path().into(),
                what: forbidden.what,
            }),
            None => Ok(id),
        }
    }

    fn serve(
        &self,
        registration: Registration,
        netns_id: NetnsId,
        netns: &Netns,
        write: bool,
    ) -> Result<(), Refusal> {
        let id = key(
            &registration.network,
            &registration.container_id,
            &registration.ifname,
        );
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        // A re-registration (an ADD retried) replaces the old servers: dropped, so stopped.
        pods.remove(&id);
        let servers = registration
            .bridges
            .iter()
            .map(|bridge| {
                server::start(netns, bridge, &registration.dns, self.counters.clone()).map_err(|source| {
                    Refusal::Serve {
                        bridge: bridge.name.clone(),
                        netns: registration.netns.clone(),
                        source,
                    }
                })
            })
            .collect::<Result<Vec<Running>, Refusal>>()?;
        if write {
            let record = Record {
                registration: registration.clone(),
                netns_id: Some(netns_id),
            };
            self.state.write(&id, &record).map_err(Refusal::Record)?;
        }
        log::info!(
            "serving {:?} on {:?}",
            registration.netns,
            registration.bridges.iter().map(|b| &b.name).collect::<Vec<_>>()
        );
        pods.insert(
            id,
            Pod {
                registration,
                netns_id,
                servers,
            },
        );
        Ok(())
    }

    fn unregister(&self, id: &str) {
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        // Dropped, so stopped, before any other change.
        if pods.remove(id).is_some() {
            log::info!("no longer serving {id}");
        }
        self.state.remove(id);
    }

    fn gc(&self, network: &str, valid: &[AttachmentRef]) {
        let stale: Vec<String> = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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

    /// Drops the pods whose netns path is gone or names another namespace now.
    fn sweep(&self) {
        let gone: Vec<String> = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, p)| match NetnsId::of_path(&p.registration.netns) {
                Ok(id) => id != p.netns_id,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            log::info!("the netns of {id} is gone");
            self.unregister(&id);
        }
    }

    fn status(&self) -> Status {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
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
            peers_refused: self.peers_refused.load(Ordering::Relaxed),
            rate_limited: self.counters.rate_limited.load(Ordering::Relaxed),
            pods,
        }
    }
}

fn failure(error: Refusal) -> Response {
    Response {
        ok: false,
        error: Some(error.to_string()),
        status: None,
    }
}
