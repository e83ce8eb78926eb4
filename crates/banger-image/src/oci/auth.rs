//! Registry credentials from a Docker `config.json`, as `docker login` writes it.
//!
//! The `docker_credential` crate reads `auths` (base64 `auth`, or username and password),
//! `identitytoken`, and runs `credHelpers` / `credsStore` helpers (`docker-credential-NAME
//! get`). No file, or no entry for the registry, means anonymous access; a broken file or a
//! failing helper is an error that names the file, so a typo never silently turns into an
//! anonymous pull that then fails with a confusing 401.

use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;

/// Credentials could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read registry credentials for {registry} from {}: {reason}", path.display())]
pub struct AuthError {
    /// Registry host.
    pub registry: String,
    /// The config file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// The key Docker uses for a registry in `config.json`: Docker Hub has its legacy URL.
fn server_key(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        other => other,
    }
}

/// The auth for `registry` from `config` (a `config.json` path), anonymous when none applies.
pub fn registry_auth(config: Option<&Path>, registry: &str) -> Result<RegistryAuth, AuthError> {
    let Some(path) = config else {
        return Ok(RegistryAuth::Anonymous);
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => {
            return Err(AuthError {
                registry: registry.to_owned(),
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let fail = |reason: String| AuthError {
        registry: registry.to_owned(),
        path: path.to_path_buf(),
        reason,
    };
    match docker_credential::get_credential_from_reader(
        std::io::BufReader::new(file),
        server_key(registry),
    ) {
        Ok(DockerCredential::UsernamePassword(user, pass)) => Ok(RegistryAuth::Basic(user, pass)),
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(RegistryAuth::Anonymous),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Where Docker keeps `config.json`: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`.
pub fn default_config_path(docker_config: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    docker_config
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("config.json"))
        .or_else(|| home.map(|h| Path::new(h).join(".docker/config.json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_basic_auth_and_falls_back_to_anonymous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        // "user:secret"
        std::fs::write(
            &path,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpzZWNyZXQ="}}}"#,
        )
        .expect("write");
        match registry_auth(Some(&path), "127.0.0.1:5000").expect("auth") {
            RegistryAuth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), ("user", "secret")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            registry_auth(Some(&path), "ghcr.io").expect("auth"),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(
            registry_auth(Some(&dir.path().join("none.json")), "ghcr.io").expect("auth"),
            RegistryAuth::Anonymous
        ));
        std::fs::write(&path, "{not json").expect("write");
        let err = registry_auth(Some(&path), "ghcr.io").expect_err("broken file");
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn docker_config_env_wins_over_home() {
        assert_eq!(
            default_config_path(Some("/d"), Some("/h")),
            Some(PathBuf::from("/d/config.json"))
        );
        assert_eq!(
            default_config_path(None, Some("/h")),
            Some(PathBuf::from("/h/.docker/config.json"))
        );
        assert_eq!(default_config_path(None, None), None);
    }
}
