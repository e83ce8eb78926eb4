//! Whether downloaded release files are trusted.
//!
//! 1. `SHA256SUMS.sig` must be a base64 DER ECDSA P-256 signature over SHA-256 of
//!    `SHA256SUMS` (what `cosign sign-blob --key` and `scripts/make-release` write) by the
//!    release key embedded at build time (`release-key.pub.pem`), or by the key of
//!    `--pubkey-file`. While the embedded key is the placeholder, every update is refused.
//! 2. Only then is `SHA256SUMS` read, and every file must match its line there.

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use sha2::{Digest as _, Sha256};

/// The release key this build trusts (PEM), or the placeholder.
pub const EMBEDDED_KEY: &str = include_str!("../../release-key.pub.pem");

/// Why a release is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// This build embeds no real release key.
    #[error(
        "this build of banger has no release signing key (the embedded key is a placeholder), \
         so it cannot verify any update; install the new release by hand (install.sh), or, for \
         a private mirror, pass --pubkey-file PEM as root"
    )]
    PlaceholderKey,
    /// The key is not a P-256 public key in PEM.
    #[error("the release public key is not an EC P-256 public key in PEM: {0}")]
    BadKey(String),
    /// The signature file is not base64 DER.
    #[error("SHA256SUMS.sig is malformed ({0}): not a base64 DER ECDSA signature")]
    MalformedSignature(String),
    /// The signature does not match `SHA256SUMS` and the key.
    #[error("SHA256SUMS is not signed by the release key: the signature does not verify")]
    BadSignature,
    /// A `SHA256SUMS` line is not `HEX  NAME`.
    #[error("SHA256SUMS line {line} is malformed")]
    MalformedSums {
        /// 1-based line number.
        line: usize,
    },
    /// A file the release needs is not listed.
    #[error("SHA256SUMS does not list {0}")]
    NotListed(String),
    /// A file's content differs from its listed digest.
    #[error("{name} has sha256 {actual}, but SHA256SUMS says {expected}")]
    Digest {
        /// The file.
        name: String,
        /// Listed digest.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
}

/// A public key that release signatures are checked against.
#[derive(Debug, Clone)]
pub struct ReleaseKey(VerifyingKey);

impl ReleaseKey {
    /// Parses a PEM public key; the placeholder text is refused as such.
    pub fn from_pem(pem: &str) -> Result<Self, VerifyError> {
        if !pem.contains("-----BEGIN PUBLIC KEY-----") {
            return Err(VerifyError::PlaceholderKey);
        }
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(Self)
            .map_err(|e| VerifyError::BadKey(e.to_string()))
    }

    /// The key embedded in this build.
    pub fn embedded() -> Result<Self, VerifyError> {
        Self::from_pem(EMBEDDED_KEY)
    }

    /// Checks `signature` (the text of `SHA256SUMS.sig`) over `body` (`SHA256SUMS`).
    pub fn verify(&self, body: &[u8], signature: &str) -> Result<(), VerifyError> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|e| VerifyError::MalformedSignature(e.to_string()))?;
        let sig = Signature::from_der(&der)
            .map_err(|e| VerifyError::MalformedSignature(e.to_string()))?;
        self.0
            .verify(body, &sig)
            .map_err(|_| VerifyError::BadSignature)
    }
}

/// A verified `SHA256SUMS`: file name → hex digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sums(Vec<(String, String)>);

impl Sums {
    /// Parses `sha256sum` output (`HEX  NAME` or `HEX *NAME`). Call only on a body whose
    /// signature [`ReleaseKey::verify`] accepted.
    pub fn parse(text: &str) -> Result<Self, VerifyError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = || VerifyError::MalformedSums { line: i + 1 };
            let (hex, name) = line.split_once(' ').ok_or_else(bad)?;
            let name = name
                .strip_prefix(' ')
                .or_else(|| name.strip_prefix('*'))
                .ok_or_else(bad)?;
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) || name.is_empty() {
                return Err(bad());
            }
            entries.push((name.to_owned(), hex.to_ascii_lowercase()));
        }
        Ok(Self(entries))
    }

    /// The listed digest of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.as_str())
    }

    /// Checks that `name` is listed with the digest `actual` (lowercase hex).
    pub fn check(&self, name: &str, actual: &str) -> Result<(), VerifyError> {
        let expected = self
            .get(name)
            .ok_or_else(|| VerifyError::NotListed(name.to_owned()))?;
        if expected != actual {
            return Err(VerifyError::Digest {
                name: name.to_owned(),
                expected: expected.to_owned(),
                actual: actual.to_owned(),
            });
        }
        Ok(())
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    //! Keys and signatures come from openssl, as `scripts/make-release` makes them.

    use std::path::Path;
    use std::process::Command;

    use super::*;

    fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (Debian package openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A fresh key pair in `dir`: returns the public PEM.
    fn keypair(dir: &Path, name: &str) -> String {
        let key = format!("{name}.pem");
        let public = format!("{name}.pub.pem");
        openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &key,
            ],
        );
        openssl(dir, &["pkey", "-in", &key, "-pubout", "-out", &public]);
        std::fs::read_to_string(dir.join(public)).expect("public key")
    }

    /// `SHA256SUMS.sig` for `body` by key `name`, as make-release writes it.
    fn sign(dir: &Path, name: &str, body: &[u8]) -> String {
        std::fs::write(dir.join("SHA256SUMS"), body).expect("write sums");
        let der = openssl(
            dir,
            &[
                "dgst",
                "-sha256",
                "-sign",
                &format!("{name}.pem"),
                "SHA256SUMS",
            ],
        );
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    const SUMS: &str = "\
b753b2738db983d6dc7af9552ac88498d3053303c3e4e36f434beb0cfe9c7a00  banger-v9.9.9-x86_64-linux.tar.gz
df1d05481826cce3d7052b1e1c8eeead590ff58185980b36e905f475d391aead  banger-v9.9.9-x86_64-linux/bin/banger
";

    #[test]
    fn an_openssl_signature_verifies_and_tampering_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let public = keypair(dir.path(), "release");
        let _ = keypair(dir.path(), "other");
        let key = ReleaseKey::from_pem(&public).unwrap();
        let sig = sign(dir.path(), "release", SUMS.as_bytes());
        key.verify(SUMS.as_bytes(), &sig).unwrap();
        key.verify(SUMS.as_bytes(), &format!("{sig}\n")).unwrap();

        let tampered = SUMS.replacen('b', "c", 1);
        assert_eq!(
            key.verify(tampered.as_bytes(), &sig),
            Err(VerifyError::BadSignature)
        );
        let by_other = sign(dir.path(), "other", SUMS.as_bytes());
        assert_eq!(
            key.verify(SUMS.as_bytes(), &by_other),
            Err(VerifyError::BadSignature)
        );
        let garbage_der = base64::engine::general_purpose::STANDARD.encode(b"not der at all");
        for malformed in ["", "%%% not base64", garbage_der.as_str()] {
            assert!(
                matches!(
                    key.verify(SUMS.as_bytes(), malformed),
                    Err(VerifyError::MalformedSignature(_))
                ),
                "{malformed:?}"
            );
        }
    }

    #[test]
    fn the_placeholder_and_bad_keys_refuse_everything() {
        assert_eq!(
            ReleaseKey::from_pem("PLACEHOLDER").unwrap_err(),
            VerifyError::PlaceholderKey
        );
        let err =
            ReleaseKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .unwrap_err();
        assert!(matches!(err, VerifyError::BadKey(_)), "{err}");
        // This build ships the placeholder until a maintainer embeds the real key.
        if !EMBEDDED_KEY.contains("BEGIN PUBLIC KEY") {
            assert_eq!(
                ReleaseKey::embedded().unwrap_err(),
                VerifyError::PlaceholderKey
            );
            assert!(
                VerifyError::PlaceholderKey
                    .to_string()
                    .contains("placeholder")
            );
        }
    }

    #[test]
    fn sums_list_each_file_and_catch_changed_ones() {
        let sums = Sums::parse(SUMS).unwrap();
        let name = "banger-v9.9.9-x86_64-linux/bin/banger";
        sums.check(
            name,
            "df1d05481826cce3d7052b1e1c8eeead590ff58185980b36e905f475d391aead",
        )
        .unwrap();
        assert!(matches!(
            sums.check(name, &sha256_hex(b"other")),
            Err(VerifyError::Digest { .. })
        ));
        assert_eq!(
            sums.check("bin/bangerd", &sha256_hex(b"")),
            Err(VerifyError::NotListed("bin/bangerd".to_owned()))
        );
        for bad in ["abc  x", "zz  x\n", &format!("{}x", "a".repeat(64))] {
            assert!(Sums::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
