//! Spec versions we accept and what each one allows.

use crate::error::Error;

/// Every version we accept and answer in. 0.3.1 matters: it is Cilium's default conflist version.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u8, u8, u8);

impl Version {
    pub const V0_4_0: Version = Version(0, 4, 0);
    pub const V1_1_0: Version = Version(1, 1, 0);
    pub const LATEST: Version = Version(1, 1, 0);

    /// Parses a `cniVersion` we support; anything else is CNI error 1.
    pub fn parse_supported(text: &str) -> Result<Version, Error> {
        if !SUPPORTED_VERSIONS.contains(&text) {
            return Err(Error::IncompatibleVersion(format!(
                "cniVersion {text:?} is not supported; supported: {}",
                SUPPORTED_VERSIONS.join(", ")
            )));
        }
        let mut parts = text.split('.').map(|p| p.parse::<u8>().unwrap_or(0));
        Ok(Version(
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        ))
    }

    /// Fails with CNI error 1 when `command` needs a newer spec than this config declares.
    pub fn require(self, minimum: Version, command: &str) -> Result<(), Error> {
        if self < minimum {
            return Err(Error::IncompatibleVersion(format!(
                "{command} needs cniVersion {minimum} or later, the configuration declares {self}"
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_supported_version_and_orders_them() {
        let parsed: Vec<Version> = SUPPORTED_VERSIONS
            .iter()
            .map(|v| Version::parse_supported(v).unwrap())
            .collect();
        assert!(parsed.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(parsed[1].to_string(), "0.3.1");
    }

    #[test]
    fn rejects_unknown_versions_with_code_1() {
        for bad in ["0.2.0", "1.2.0", "", "1.0", "v1.0.0"] {
            assert_eq!(Version::parse_supported(bad).unwrap_err().code(), 1, "{bad}");
        }
    }

    #[test]
    fn check_needs_0_4_and_gc_needs_1_1() {
        let v031 = Version::parse_supported("0.3.1").unwrap();
        assert_eq!(v031.require(Version::V0_4_0, "CHECK").unwrap_err().code(), 1);
        let v100 = Version::parse_supported("1.0.0").unwrap();
        assert!(v100.require(Version::V0_4_0, "CHECK").is_ok());
        assert!(v100.require(Version::V1_1_0, "GC").is_err());
    }
}
