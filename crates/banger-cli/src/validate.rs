//! Argument checks that clap's parsers cannot express, with messages in banger's voice.
//!
//! Each returns [`CliError::Usage`] (exit 2). Commands run them before any file is written or
//! the daemon is contacted.

use std::path::{Path, PathBuf};

use banger_model::VmName;

use crate::error::CliError;

/// A VM name for a new VM, checked against the one name rule.
pub fn vm_name(raw: &str) -> Result<VmName, CliError> {
    VmName::parse(raw).map_err(|e| CliError::Usage(e.to_string()))
}

/// A reference to an existing VM, image or kernel: an id, a name, or a unique prefix.
pub fn reference(what: &str, raw: &str) -> Result<(), CliError> {
    if raw.is_empty() {
        return Err(CliError::Usage(format!("{what} reference is empty")));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '/')
    {
        return Err(CliError::Usage(format!(
            "{what} reference {raw:?} contains {c:?}; use an id, a name or a unique prefix"
        )));
    }
    Ok(())
}

/// Free-form reference text such as an OCI reference (`docker.io/library/alpine:3.20`).
pub fn reference_text(what: &str, raw: &str) -> Result<(), CliError> {
    if raw.is_empty() {
        return Err(CliError::Usage(format!("{what} is empty")));
    }
    if let Some(c) = raw.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(CliError::Usage(format!("{what} {raw:?} contains {c:?}")));
    }
    Ok(())
}

/// A local path that must exist; returned absolute.
pub fn existing_path(what: &str, path: &Path) -> Result<PathBuf, CliError> {
    let absolute = std::path::absolute(path)
        .map_err(|e| CliError::Usage(format!("{what} {}: {e}", path.display())))?;
    if !absolute.exists() {
        return Err(CliError::Usage(format!(
            "{what} {} does not exist",
            path.display()
        )));
    }
    Ok(absolute)
}

/// A release version: `1.2.3`, `v1.2.3` or `1.2.3-rc.1`.
pub fn release_version(raw: &str) -> Result<crate::update::version::Version, CliError> {
    crate::update::version::Version::parse(raw).ok_or_else(|| {
        CliError::Usage(format!(
            "version {raw:?} is not a release version like 0.2.0 or v0.2.0-rc.1"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_use_the_model_rule() {
        assert!(vm_name("web").is_ok());
        let err = vm_name("Bad Name").unwrap_err().to_string();
        assert!(
            err.starts_with("vm name \"Bad Name\" contains 'B'; use 1-63"),
            "{err}"
        );
    }

    #[test]
    fn references_reject_only_impossible_text() {
        assert!(reference("vm", "web").is_ok());
        assert!(reference("vm", "0123ab").is_ok());
        assert!(reference("vm", "").is_err());
        assert!(reference("vm", "a b").is_err());
        assert!(reference("image", "../x").is_err());
        assert!(reference_text("image reference", "docker.io/library/alpine:3.20").is_ok());
        assert!(reference_text("image reference", "a b").is_err());
    }

    #[test]
    fn paths_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(existing_path("path", dir.path()).unwrap(), dir.path());
        let err = existing_path("path", &dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn release_versions() {
        for ok in ["0.2.0", "v1.10.3", "1.0.0-rc.1"] {
            assert!(release_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1.2", "v1.2.x", "1.2.3-", "latest", "1.2.3-rc 1"] {
            assert!(release_version(bad).is_err(), "{bad}");
        }
    }
}
