use super::conflist::ConflistError;
use crate::atomic_file;
use std::path::PathBuf;

/// Every error names the step and the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{step} {}: {source}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a conflist the installer can edit; left alone: {source}", path.display())]
    Conflist { path: PathBuf, source: ConflistError },
    #[error("{}", no_network_config(dir, skipped))]
    NoNetworkConfig { dir: PathBuf, skipped: Vec<String> },
    #[error("{} is the network config the runtime uses, but the installer cannot chain into it: {reason}; left alone. Make the primary CNI write a .conflist, or use --mode=manual", path.display())]
    NotChainable { path: PathBuf, reason: String },
    #[error("{} kept changing while the installer edited it ({attempts} attempts): another program is rewriting it; left as that program wrote it", path.display())]
    KeptChanging { path: PathBuf, attempts: usize },
}

impl From<atomic_file::Error> for InstallError {
    fn from(e: atomic_file::Error) -> Self {
        InstallError::Io {
            step: e.step,
            path: e.path,
            source: e.source,
        }
    }
}

impl InstallError {
    pub fn io(step: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| InstallError::Io { step, path, source }
    }
}

fn no_network_config(dir: &std::path::Path, skipped: &[String]) -> String {
    let mut message = format!(
        "no network config the runtime can load in {}: is the primary CNI installed?",
        dir.display()
    );
    if !skipped.is_empty() {
        message.push_str(&format!(
            " Skipped, as the runtime skips them: {}",
            skipped.join("; ")
        ));
    }
    message
}
