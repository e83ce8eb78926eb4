//! Talking to an OCI registry: the manifest for this host's platform, the image config, and
//! the layer blobs, each verified against its digest.
//!
//! The registry client is `oci-client` (OCI distribution spec: token and basic auth, manifest
//! media types, index → platform manifest with the host's OS and architecture). Blobs are kept
//! in a content-addressed cache, `<cache>/blobs/sha256/<hex>`, shared by every image. A blob
//! the cache lacks is downloaded into the pull's own scratch directory and hashed on the way;
//! the caller moves it into the cache only when the whole pull has succeeded, so a failed pull
//! writes nothing outside its scratch directory. Digests are checked to be `sha256:` + 64 hex
//! before they name a file.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use oci_client::Client;
pub use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::auth::{self, AuthError};
use super::config::ImageConfig;

/// Fetching from the registry failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The reference does not parse.
    #[error("{reference:?} is not an image reference ({reason})")]
    BadReference {
        /// As given.
        reference: String,
        /// The parser's message.
        reason: String,
    },
    /// Credentials could not be read.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The registry refused or failed.
    #[error("cannot pull {reference}: {message}")]
    Registry {
        /// Whole reference.
        reference: String,
        /// What the registry client said.
        message: String,
    },
    /// A digest is not a sha256 digest.
    #[error("{what} has an unsupported digest {digest:?} (only sha256 is accepted)")]
    BadDigest {
        /// Which blob.
        what: String,
        /// The digest.
        digest: String,
    },
    /// A blob did not match its digest.
    #[error("{what} does not match its digest {expected} (got sha256:{actual})")]
    DigestMismatch {
        /// Which blob.
        what: String,
        /// Expected digest.
        expected: String,
        /// Computed hex.
        actual: String,
    },
    /// A blob is larger than allowed or than its descriptor said.
    #[error("{what} is larger than {limit} bytes")]
    TooLarge {
        /// Which blob.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// The image config is not valid JSON of the expected shape.
    #[error("the image config of {reference} is invalid: {reason}")]
    BadConfig {
        /// Whole reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// Local I/O.
    #[error("cannot write {}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Where and how to fetch.
#[derive(Debug, Clone)]
pub struct FetchSpec {
    /// The reference as the user gave it.
    pub reference: String,
    /// Registries (`host:port`) that may be reached over plain HTTP; loopback always may.
    pub insecure_registries: Vec<String>,
    /// Docker `config.json` to read credentials from (`None`: anonymous).
    pub docker_config: Option<PathBuf>,
    /// The shared blob cache (`…/blobs/sha256` is under it).
    pub cache_dir: PathBuf,
    /// This pull's scratch directory for new blobs.
    pub scratch_dir: PathBuf,
    /// No single blob may be larger than this.
    pub max_blob: u64,
}

/// One layer, ready to unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Compressed size.
    pub size: u64,
    /// The file (in the cache or the scratch dir).
    pub path: PathBuf,
}

/// What a fetch produced.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The normalized reference (`docker.io/library/debian:bookworm`).
    pub reference: String,
    /// Digest of the platform manifest.
    pub manifest_digest: String,
    /// The image config.
    pub config: ImageConfig,
    /// Layers, bottom first.
    pub layers: Vec<LayerBlob>,
    /// Downloaded blobs: `(scratch path, cache path)` to move into the cache on success.
    pub new_blobs: Vec<(PathBuf, PathBuf)>,
}

/// Progress of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchProgress {
    /// Layer `index` (1-based) of `count` starts downloading (`cached`: it is already here).
    Layer {
        /// 1-based.
        index: usize,
        /// Layer count.
        count: usize,
        /// Digest.
        digest: String,
        /// Compressed size.
        size: u64,
        /// Found in the cache: no download.
        cached: bool,
    },
    /// Bytes of the current layer received so far.
    Bytes {
        /// 1-based layer number.
        index: usize,
        /// Received.
        done: u64,
        /// Expected.
        total: u64,
    },
}

/// Whether `registry` (`host[:port]`) is a loopback address.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses `reference` (Docker rules: `debian` is `docker.io/library/debian:latest`).
pub fn parse_reference(reference: &str) -> Result<Reference, FetchError> {
    reference
        .parse::<Reference>()
        .map_err(|e| FetchError::BadReference {
            reference: reference.to_owned(),
            reason: e.to_string(),
        })
}

/// The hex part of a `sha256:` digest, or `BadDigest`.
pub fn sha256_hex<'a>(what: &str, digest: &'a str) -> Result<&'a str, FetchError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| FetchError::BadDigest {
            what: what.to_owned(),
            digest: digest.to_owned(),
        })
}

/// `<cache>/blobs/sha256`.
pub fn blob_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("blobs/sha256")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn client(registry: &str, insecure: &[String]) -> Client {
    let mut plain: Vec<String> = insecure.to_vec();
    if is_loopback(registry) {
        plain.push(registry.to_owned());
    }
    Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(plain),
        connect_timeout: Some(std::time::Duration::from_secs(15)),
        read_timeout: Some(std::time::Duration::from_secs(60)),
        ..ClientConfig::default()
    })
}

/// Fetches the manifest, config and every layer of `spec.reference`.
pub async fn fetch(
    spec: &FetchSpec,
    progress: &(dyn Fn(FetchProgress) + Send + Sync),
) -> Result<Fetched, FetchError> {
    let reference = parse_reference(&spec.reference)?;
    let whole = reference.whole();
    let registry = reference.resolve_registry().to_owned();
    let auth = auth::registry_auth(spec.docker_config.as_deref(), reference.registry())?;
    let client = client(&registry, &spec.insecure_registries);
    let registry_error = |e: oci_client::errors::OciDistributionError| FetchError::Registry {
        reference: whole.clone(),
        message: e.to_string(),
    };
    let (manifest, manifest_digest, config_json) = client
        .pull_manifest_and_config(&reference, &auth)
        .await
        .map_err(registry_error)?;
    let config_hex = sha256_hex("the image config", &manifest.config.digest)?;
    let actual = hex(&Sha256::digest(config_json.as_bytes()));
    if actual != config_hex {
        return Err(FetchError::DigestMismatch {
            what: "the image config".to_owned(),
            expected: manifest.config.digest.clone(),
            actual,
        });
    }
    let config = ImageConfig::parse(&config_json).map_err(|reason| FetchError::BadConfig {
        reference: whole.clone(),
        reason,
    })?;

    let cache = blob_dir(&spec.cache_dir);
    let count = manifest.layers.len();
    let mut layers = Vec::new();
    let mut new_blobs = Vec::new();
    for (i, layer) in manifest.layers.iter().enumerate() {
        let index = i + 1;
        let what = format!("layer {index} ({})", layer.digest);
        let hex_digest = sha256_hex(&what, &layer.digest)?.to_owned();
        let size = u64::try_from(layer.size).unwrap_or(0);
        if size > spec.max_blob {
            return Err(FetchError::TooLarge {
                what,
                limit: spec.max_blob,
            });
        }
        let cached = cache.join(&hex_digest);
        let in_cache = std::fs::metadata(&cached).is_ok_and(|m| m.is_file());
        progress(FetchProgress::Layer {
            index,
            count,
            digest: layer.digest.clone(),
            size,
            cached: in_cache,
        });
        let path = if in_cache {
            cached
        } else if let Some((scratch, _)) = new_blobs
            .iter()
            .find(|(_, c): &&(PathBuf, PathBuf)| *c == cached)
        {
            scratch.clone()
        } else {
            let scratch = spec.scratch_dir.join(&hex_digest);
            download(
                &client, &reference, layer, &scratch, index, &what, size, progress,
            )
            .await
            .map_err(|e| match e {
                DownloadError::Fetch(f) => f,
                DownloadError::Registry(r) => registry_error(r),
            })?;
            new_blobs.push((scratch.clone(), cached));
            scratch
        };
        layers.push(LayerBlob {
            digest: layer.digest.clone(),
            size,
            path,
        });
    }
    Ok(Fetched {
        reference: whole,
        manifest_digest,
        config,
        layers,
        new_blobs,
    })
}

enum DownloadError {
    Fetch(FetchError),
    Registry(oci_client::errors::OciDistributionError),
}

impl From<FetchError> for DownloadError {
    fn from(e: FetchError) -> Self {
        Self::Fetch(e)
    }
}

#[allow(clippy::too_many_arguments)]
async fn download(
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
    dest: &Path,
    index: usize,
    what: &str,
    size: u64,
    progress: &(dyn Fn(FetchProgress) + Send + Sync),
) -> Result<(), DownloadError> {
    let io = |source| FetchError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let mut stream = client
        .pull_blob_stream(reference, layer)
        .await
        .map_err(DownloadError::Registry)?;
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    let mut last_report = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FetchError::Registry {
            reference: reference.whole(),
            message: format!("{what}: {e}"),
        })?;
        done += chunk.len() as u64;
        if done > size {
            return Err(FetchError::TooLarge {
                what: what.to_owned(),
                limit: size,
            }
            .into());
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
        if done - last_report >= 4 << 20 || done == size {
            last_report = done;
            progress(FetchProgress::Bytes {
                index,
                done,
                total: size,
            });
        }
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    let actual = hex(&hasher.finalize());
    if format!("sha256:{actual}") != layer.digest {
        return Err(FetchError::DigestMismatch {
            what: what.to_owned(),
            expected: layer.digest.clone(),
            actual,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries() {
        for r in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "docker.io",
            "10.0.0.1:5000",
            "ghcr.io",
            "localhost.example.com:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn only_sha256_digests_name_files() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert!(sha256_hex("x", &good).is_ok());
        for bad in [
            "sha512:abc".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:../../{}", "a".repeat(58)),
            "sha256:".to_owned(),
        ] {
            assert!(sha256_hex("x", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_follow_docker_rules() {
        let r = parse_reference("debian:bookworm").expect("parse");
        assert_eq!(r.whole(), "docker.io/library/debian:bookworm");
        let r = parse_reference("localhost:5000/test/app:1").expect("parse");
        assert_eq!(r.registry(), "localhost:5000");
        assert!(parse_reference("no spaces/allowed:1").is_err());
    }
}
