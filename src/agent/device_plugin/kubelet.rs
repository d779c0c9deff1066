//! One resource's life with the kubelet: serve our socket in the device-plugins directory,
//! register it over `kubelet.sock`, and start over when the kubelet restarts. A restarting
//! kubelet removes the plugin sockets and creates `kubelet.sock` anew, so either of those,
//! seen by polling, means: register again.

use super::api::device_plugin_server::DevicePluginServer;
use super::api::registration_client::RegistrationClient;
use super::api::{RegisterRequest, KUBELET_SOCKET, VERSION};
use super::resources::Resource;
use super::service::Plugin;
use super::{Config, POLL};
use hyper_util::rt::TokioIo;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::{Endpoint, Server};

/// The kubelet answers Register at once; one that does not within this is not ready.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long open streams get to close when a registration ends.
const DRAIN: Duration = Duration::from_secs(2);

/// Why a registration did not come about; it is tried again.
#[derive(Debug, thiserror::Error)]
enum RegistrationError {
    #[error("serving {}: {source}", socket.display())]
    Serve { socket: PathBuf, source: std::io::Error },
    #[error("{} vanished", .0.display())]
    SocketVanished(PathBuf),
    #[error("registering with {}: connecting: {}", kubelet.display(), with_sources(source))]
    Connect {
        kubelet: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("registering with {}: refused: {}", kubelet.display(), source.message())]
    Refused {
        kubelet: PathBuf,
        source: Box<tonic::Status>,
    },
    #[error("registering with {}: no answer within {REGISTER_TIMEOUT:?}", kubelet.display())]
    NoAnswer { kubelet: PathBuf },
}

/// A file's identity. A file removed and created again may get the same inode number at once
/// (tmpfs does that), so its change time is part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    ctime: (i64, i64),
}

fn identity(path: &Path) -> Option<Identity> {
    std::fs::symlink_metadata(path).ok().map(|m| Identity {
        dev: m.dev(),
        ino: m.ino(),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// Registers `resource` with every kubelet that comes, for ever.
pub async fn serve(config: Arc<Config>, resource: Arc<Resource>, health: watch::Receiver<bool>) {
    let kubelet = config.dir.join(KUBELET_SOCKET);
    // Said once, not every second while it lasts.
    let mut last_said = String::new();
    let mut say = |what: String, warn: bool| {
        if what != last_said {
            if warn {
                log::warn!("{}: {what}", resource.name);
            } else {
                log::info!("{}: {what}", resource.name);
            }
            last_said = what;
        }
    };
    loop {
        let Some(kubelet_id) = identity(&kubelet) else {
            say(format!("waiting for {}", kubelet.display()), false);
            tokio::time::sleep(POLL).await;
            continue;
        };
        match Registration::start(&config, &resource, health.clone()).await {
            Ok(mut registration) => {
                let why = registration.until_kubelet_restarts(&kubelet, kubelet_id).await;
                say(format!("{why}; registering again"), false);
                registration.stop().await;
            }
            Err(e) => {
                say(format!("{e}; trying again every {POLL:?}"), true);
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Our socket, served, and registered with the kubelet.
struct Registration {
    socket: PathBuf,
    socket_id: Identity,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Registration {
    async fn start(
        config: &Config,
        resource: &Arc<Resource>,
        health: watch::Receiver<bool>,
    ) -> Result<Registration, RegistrationError> {
        let socket = config.dir.join(resource.socket);
        let listener = bind(&socket).map_err(|source| RegistrationError::Serve {
            socket: socket.clone(),
            source,
        })?;
        let socket_id = identity(&socket).ok_or_else(|| RegistrationError::SocketVanished(socket.clone()))?;
        let (stop, stopped) = watch::channel(false);
        let plugin = Plugin {
            resource: resource.clone(),
            dev_root: config.dev_root.clone(),
            health,
            stop: stopped.clone(),
        };
        let mut shutdown = stopped;
        let server = tokio::spawn(Server::builder().serve_with_incoming_shutdown(
            DevicePluginServer::new(plugin),
            UnixListenerStream::new(listener),
            async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            },
        ));
        let mut registration = Registration {
            socket,
            socket_id,
            stop,
            server,
        };
        if let Err(e) = register(&config.dir, resource).await {
            registration.stop().await;
            return Err(e);
        }
        resource.metrics.registrations.fetch_add(1, Ordering::Relaxed);
        log::info!(
            "{}: registered with the kubelet, serving {}",
            resource.name,
            registration.socket.display()
        );
        Ok(registration)
    }

    /// Returns why the registration is over: a new `kubelet.sock`, our socket removed, or our
    /// server gone.
    async fn until_kubelet_restarts(&mut self, kubelet: &Path, kubelet_id: Identity) -> String {
        loop {
            tokio::time::sleep(POLL).await;
            if identity(kubelet) != Some(kubelet_id) {
                return format!("{} was removed or recreated", kubelet.display());
            }
            if identity(&self.socket) != Some(self.socket_id) {
                return format!("{} was removed", self.socket.display());
            }
            if self.server.is_finished() {
                return match (&mut self.server).await {
                    Ok(Err(e)) => format!("the server of {} failed: {e}", self.socket.display()),
                    _ => format!("the server of {} ended", self.socket.display()),
                };
            }
        }
    }

    async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(DRAIN, &mut self.server).await.is_err() {
            self.server.abort();
        }
        // Remove our socket, not one a later agent may have put there.
        if identity(&self.socket) == Some(self.socket_id) {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

/// Binds `socket`, replacing a socket file left by an earlier agent; any other file is not ours.
fn bind(socket: &Path) -> std::io::Result<UnixListener> {
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(socket)?,
        Ok(_) => return Err(std::io::Error::other("exists and is not a socket")),
        Err(_) => {}
    }
    let listener = UnixListener::bind(socket)?;
    // Only root (the kubelet) may talk to the plugin.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn register(dir: &Path, resource: &Resource) -> Result<(), RegistrationError> {
    let kubelet = dir.join(KUBELET_SOCKET);
    let request = RegisterRequest {
        version: VERSION.into(),
        endpoint: resource.socket.into(),
        resource_name: resource.name.into(),
        options: Some(resource.options()),
    };
    let call = async {
        // The URI is required by the API but unused: the connector dials the Unix socket.
        let dialled = kubelet.clone();
        let channel = Endpoint::from_static("http://kubelet")
            .connect_with_connector(tower::service_fn(move |_| {
                let kubelet = dialled.clone();
                async move { UnixStream::connect(kubelet).await.map(TokioIo::new) }
            }))
            .await
            .map_err(|source| RegistrationError::Connect {
                kubelet: kubelet.clone(),
                source,
            })?;
        RegistrationClient::new(channel)
            .register(request)
            .await
            .map_err(|source| RegistrationError::Refused {
                kubelet: kubelet.clone(),
                source: Box::new(source),
            })
    };
    match tokio::time::timeout(REGISTER_TIMEOUT, call).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(RegistrationError::NoAnswer { kubelet }),
    }
}

/// An error and its causes: tonic's transport errors say little on their own.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}
