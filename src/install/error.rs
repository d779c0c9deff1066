use super::conflist::ConflistError;
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
    #[error("no *.conflist in {}: is the primary CNI installed?", dir.display())]
    NoPrimaryConflist { dir: PathBuf },
    #[error("{0}")]
    Usage(String),
}

impl InstallError {
    pub fn io(step: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| InstallError::Io { step, path, source }
    }
}
