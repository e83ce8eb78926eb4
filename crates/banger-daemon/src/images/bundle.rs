//! Catalog bundles: a prebuilt image and kernel published over HTTP, pinned by one digest.
//!
//! A `[[catalog]]` entry in config names a `manifest.json` URL and its SHA-256. The manifest
//! lists the files (kernel, optional initrd, rootfs, optional work seed) by path relative to
//! itself, each with its SHA-256. Every download is hashed as it streams to disk (in the cache
//! dir) and checked before anything is registered; a mismatch, a failed download or a failed
//! registration leaves nothing behind. Only plain `http://` is fetched here (a local or
//! internal mirror); the files' digests, not the transport, carry the trust.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use banger_model::{CatalogBundle, ImageRecord};
use banger_proto::{RegisterImageRequest, RegisterKernelRequest};

use crate::context::DaemonContext;
use crate::images::ImageError;
use crate::operations::OperationHandle;

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFile {
    /// Path relative to the manifest's URL (no `..`, no leading `/`).
    pub path: String,
    /// Hex SHA-256.
    pub sha256: String,
}

/// `manifest.json` of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    /// Kernel image.
    pub kernel: BundleFile,
    /// Initramfs.
    pub initrd: Option<BundleFile>,
    /// Root filesystem (ext4).
    pub rootfs: BundleFile,
    /// Work seed (ext4).
    pub work_seed: Option<BundleFile>,
}

/// Why a bundle could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The URL is not one we fetch.
    #[error("bundle url {0:?} is not a plain http:// url")]
    Url(String),
    /// The transfer failed.
    #[error("cannot download {url}: {message}")]
    Download {
        /// What was fetched.
        url: String,
        /// Why it failed.
        message: String,
    },
    /// Content does not match its pinned digest.
    #[error("{url} has sha256 {actual}, but {expected} was pinned")]
    Digest {
        /// What was fetched.
        url: String,
        /// Pinned digest.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// The manifest is not valid.
    #[error("bundle manifest {url} is invalid: {message}")]
    Manifest {
        /// Its URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// Local file I/O failed.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

struct Url<'a> {
    host: &'a str,
    port: u16,
    path: &'a str,
}

fn parse_url(url: &str) -> Result<Url<'_>, BundleError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| BundleError::Url(url.to_owned()))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| BundleError::Url(url.to_owned()))?),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(BundleError::Url(url.to_owned()));
    }
    Ok(Url {
        host,
        port,
        path: if path.is_empty() { "/" } else { path },
    })
}

/// `base` with its last segment replaced by `relative`.
fn sibling(base: &str, relative: &str) -> Result<String, BundleError> {
    if relative.starts_with('/')
        || relative.split('/').any(|s| s == ".." || s.is_empty())
        || relative.contains(['?', '#', '\\'])
    {
        return Err(BundleError::Manifest {
            url: base.to_owned(),
            message: format!("file path {relative:?} must be relative, without '..'"),
        });
    }
    let dir = &base[..base.rfind('/').map_or(base.len(), |i| i + 1)];
    Ok(format!("{dir}{relative}"))
}

/// Streams `url` into `dst`, returning the hex SHA-256 of what arrived.
async fn download(url: &str, dst: &Path) -> Result<String, BundleError> {
    let fail = |message: String| BundleError::Download {
        url: url.to_owned(),
        message,
    };
    let parsed = parse_url(url)?;
    let stream = tokio::net::TcpStream::connect((parsed.host, parsed.port))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(e.to_string()))?;
    tokio::spawn(conn);
    let request = hyper::Request::get(parsed.path)
        .header("host", format!("{}:{}", parsed.host, parsed.port))
        .body(Empty::<Bytes>::new())
        .map_err(|e| fail(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("http status {}", response.status())));
    }
    let io = |source| BundleError::Io {
        path: dst.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::create(dst).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| fail(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            hasher.update(&data);
            file.write_all(&data).await.map_err(io)?;
        }
    }
    file.sync_all().await.map_err(io)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn fetch_checked(url: &str, dst: &Path, expected: &str) -> Result<(), BundleError> {
    let actual = download(url, dst).await?;
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(BundleError::Digest {
            url: url.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

async fn fetch_all(
    entry: &CatalogBundle,
    dir: &Path,
    op: &OperationHandle,
) -> Result<(PathBuf, BundleManifest), BundleError> {
    let manifest_path = dir.join("manifest.json");
    let pinned = entry.digest.trim_start_matches("sha256:");
    op.detail("manifest");
    fetch_checked(&entry.source, &manifest_path, pinned).await?;
    let text = std::fs::read(&manifest_path).map_err(|source| BundleError::Io {
        path: manifest_path.clone(),
        source,
    })?;
    let manifest: BundleManifest =
        serde_json::from_slice(&text).map_err(|e| BundleError::Manifest {
            url: entry.source.clone(),
            message: e.to_string(),
        })?;
    let files = [
        Some(("kernel", &manifest.kernel)),
        manifest.initrd.as_ref().map(|f| ("initrd", f)),
        Some(("rootfs", &manifest.rootfs)),
        manifest.work_seed.as_ref().map(|f| ("work-seed", f)),
    ];
    for (label, file) in files.into_iter().flatten() {
        op.detail(&format!("downloading {label}"));
        let url = sibling(&entry.source, &file.path)?;
        fetch_checked(&url, &dir.join(label), &file.sha256).await?;
    }
    Ok((dir.to_path_buf(), manifest))
}

/// Downloads, verifies and registers bundle `entry` as image and kernel `entry.name`.
pub async fn fetch_bundle(
    ctx: &DaemonContext,
    entry: &CatalogBundle,
    op: &OperationHandle,
) -> Result<ImageRecord, ImageError> {
    let downloads = ctx.layout().cache_dir.join("downloads");
    std::fs::create_dir_all(&downloads).map_err(|e| ImageError::failed(&e))?;
    let dir = tempfile::Builder::new()
        .prefix("bundle-")
        .tempdir_in(&downloads)
        .map_err(|e| ImageError::failed(&e))?;
    let (dir_path, manifest) = fetch_all(entry, dir.path(), op)
        .await
        .map_err(|e| ImageError::failed(&e))?;
    if ctx.store().kernels().get_by_name(&entry.name)?.is_none() {
        super::register_kernel(
            ctx,
            RegisterKernelRequest {
                name: entry.name.clone(),
                vmlinux: dir_path.join("kernel"),
                initrd: manifest.initrd.as_ref().map(|_| dir_path.join("initrd")),
            },
            // The daemon downloaded these itself, pinned by digest.
            &super::validate::Requester::root(),
        )
        .await?;
    }
    super::register_image(
        ctx,
        RegisterImageRequest {
            name: entry.name.clone(),
            rootfs: dir_path.join("rootfs"),
            work_seed: manifest
                .work_seed
                .as_ref()
                .map(|_| dir_path.join("work-seed")),
            kernel: entry.name.clone(),
        },
        &super::validate::Requester::root(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_relative_paths() {
        let u = parse_url("http://127.0.0.1:8080/b/manifest.json").unwrap();
        assert_eq!(
            (u.host, u.port, u.path),
            ("127.0.0.1", 8080, "/b/manifest.json")
        );
        let u = parse_url("http://mirror.lan").unwrap();
        assert_eq!((u.port, u.path), (80, "/"));
        assert!(parse_url("https://x/y").is_err());
        assert!(parse_url("http://:80/").is_err());
        assert_eq!(
            sibling("http://h/b/manifest.json", "rootfs.ext4").unwrap(),
            "http://h/b/rootfs.ext4"
        );
        for bad in ["../etc/passwd", "/abs", "a//b", "a?b"] {
            assert!(sibling("http://h/b/m.json", bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn downloads_hash_what_arrives_and_refuse_mismatches() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                    .await
                    .unwrap();
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/f");
        let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        fetch_checked(&url, &dir.path().join("a"), hello)
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"hello");
        let err = fetch_checked(&url, &dir.path().join("b"), &"0".repeat(64))
            .await
            .unwrap_err();
        assert!(matches!(err, BundleError::Digest { .. }), "{err}");
    }
}
