//! SSH host keys made on the host for a guest.
//!
//! A guest restored from a warm snapshot needs a host key of its own before anyone connects.
//! Making it here costs a few milliseconds; making it in a freshly restored guest under
//! emulation costs hundreds. [`generate_host_key`] runs `ssh-keygen` into a scratch directory
//! the caller owns, reads both halves and removes the files, so the private key exists on the
//! host only in memory on its way to the guest.

use std::fs;
use std::path::Path;

use crate::keys::{KeyError, keygen};

/// The two halves of a new ed25519 key, as `ssh-keygen` writes them.
#[derive(Clone)]
pub struct NewHostKey {
    /// The OpenSSH private key file.
    pub private: String,
    /// The public key line, with its trailing newline.
    pub public: String,
}

impl std::fmt::Debug for NewHostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewHostKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Makes a new ed25519 host key with `comment`, using `scratch` (an existing directory only
/// the caller can read) for the moment the files exist.
pub fn generate_host_key(scratch: &Path, comment: &str) -> Result<NewHostKey, KeyError> {
    let private = scratch.join(".ssh_host_ed25519_key.new");
    let public = scratch.join(".ssh_host_ed25519_key.new.pub");
    let cleanup = || {
        let _ = fs::remove_file(&private);
        let _ = fs::remove_file(&public);
    };
    // A leftover would make ssh-keygen ask whether to overwrite it.
    cleanup();
    let result = (|| {
        keygen(&private, comment)?;
        let read = |path: &Path| {
            fs::read_to_string(path).map_err(|source| KeyError::ReadPublic {
                path: path.to_owned(),
                source,
            })
        };
        Ok(NewHostKey {
            private: read(&private)?,
            public: read(&public)?,
        })
    })();
    cleanup();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_fresh_pair_each_time_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = generate_host_key(dir.path(), "web").expect("key");
        let b = generate_host_key(dir.path(), "web").expect("key");
        assert!(a.private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(a.public.starts_with("ssh-ed25519 "));
        assert!(a.public.trim_end().ends_with(" web"));
        assert_ne!(a.public, b.public);
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_missing_scratch_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = generate_host_key(&dir.path().join("gone"), "web").expect_err("no dir");
        assert!(matches!(err, KeyError::Keygen { .. }), "{err:?}");
    }
}
