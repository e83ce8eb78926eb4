//! A real OCI registry for the pull tests: Debian's `docker-registry` (distribution 2.8) on a
//! free loopback port with a temp config, optionally behind htpasswd basic auth, and images
//! built here from files (tar layers, configs, manifests in an OCI layout dir) pushed with
//! `skopeo`, the real client. No internet.
//!
//! Every tool runs through a command wrapper, so a real-guest test can run the registry and
//! the pushes inside its network namespace (`NetNs::command`), where its daemon pulls from.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Builds the `Command` for a program (`Command::new`, or one inside a namespace).
pub type Wrap = Box<dyn Fn(&str) -> Command + Send + Sync>;

/// A running registry, stopped on drop.
pub struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    wrap: Wrap,
    /// Its loopback port.
    pub port: u16,
    /// `user:password` when behind basic auth.
    pub creds: Option<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Registry {
    /// Starts a registry on the host's loopback; with `auth`, behind htpasswd (bcrypt) basic
    /// auth for that user.
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        Self::start_with(auth, Box::new(|program: &str| Command::new(program)))
    }

    /// [`Registry::start`], running every tool through `wrap`.
    pub fn start_with(auth: Option<(&str, &str)>, wrap: Wrap) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-B", "-b", "-c"])
                .arg(&htpasswd)
                .args([user, pass])
                .output()
                .expect("htpasswd runs (apache2-utils)");
            assert!(out.status.success(), "{out:?}");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: banger-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).expect("config");
        let child = wrap("docker-registry")
            .arg("serve")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry runs (Debian package docker-registry)");
        let registry = Self {
            child,
            _dir: dir,
            wrap,
            port,
            creds: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let probe = format!("import socket; socket.create_connection(('127.0.0.1', {port}), 1)");
        while !(registry.wrap)("python3")
            .args(["-c", &probe])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "the registry never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes the OCI layout at `layout` (tag `tag`) as `repo:tag`; `all` keeps an index.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str, all: bool) {
        let mut cmd = (self.wrap)("skopeo");
        cmd.args(["--insecure-policy", "copy", "-q", "--dest-tls-verify=false"]);
        if all {
            cmd.arg("--all");
        }
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.host()));
        let out = cmd.output().expect("skopeo runs (Debian package skopeo)");
        assert!(
            out.status.success(),
            "skopeo push failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tar entry (`Owned`: a file with that uid and gid) with a raw (unchecked) name, as any image — hostile ones too — can write it.
pub enum E<'a> {
    /// A directory.
    Dir(&'a str),
    /// A file with contents.
    File(&'a str, &'a [u8]),
    /// A file with contents, uid and gid.
    Owned(&'a str, &'a [u8], u64, u64),
    /// A symlink and its target.
    Sym(&'a str, &'a str),
    /// A hard link and its target.
    Hard(&'a str, &'a str),
}

fn raw_header(name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().expect("gnu");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h
}

/// An uncompressed tar layer.
pub fn tar_layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (h, data): (tar::Header, &[u8]) = match e {
            E::Dir(n) => (raw_header(n, tar::EntryType::Directory, 0, None), &[]),
            E::File(n, d) => (
                raw_header(n, tar::EntryType::Regular, d.len() as u64, None),
                d,
            ),
            E::Owned(n, d, uid, gid) => {
                let mut h = raw_header(n, tar::EntryType::Regular, d.len() as u64, None);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_cksum();
                (h, d)
            }
            E::Sym(n, t) => (raw_header(n, tar::EntryType::Symlink, 0, Some(t)), &[]),
            E::Hard(n, t) => (raw_header(n, tar::EntryType::Link, 0, Some(t)), &[]),
        };
        b.append(&h, data).expect("append");
    }
    b.into_inner().expect("finish")
}

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// zstd of `data`.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd")
}

/// How a layer blob is compressed.
#[derive(Clone, Copy)]
pub enum Z {
    /// Plain tar.
    None,
    /// `+gzip`.
    Gzip,
    /// `+zstd`.
    Zstd,
}

/// An OCI image layout directory being written.
pub struct Layout {
    /// Where it is.
    pub dir: PathBuf,
    refs: Vec<serde_json::Value>,
}

fn sha(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

impl Layout {
    /// A new layout at `dir`.
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("layout");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        Self {
            dir: dir.to_path_buf(),
            refs: Vec::new(),
        }
    }

    fn blob(&self, data: &[u8]) -> serde_json::Value {
        let digest = sha(data);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(self.dir.join("blobs/sha256").join(hex), data).expect("blob");
        serde_json::json!({"digest": digest, "size": data.len()})
    }

    /// Writes a blob that is already a compressed layer (`media` its media type) and returns
    /// its descriptor, for [`Layout::manifest_of`].
    pub fn layer_blob(&self, data: &[u8], media: &str) -> serde_json::Value {
        let mut d = self.blob(data);
        d["mediaType"] = media.into();
        d
    }

    /// Writes an image manifest for `layers` (tar bytes, compressed as given) and `arch`;
    /// returns its descriptor.
    pub fn manifest(&self, layers: &[(Vec<u8>, Z)], arch: &str, env: &[&str]) -> serde_json::Value {
        let mut diff_ids = Vec::new();
        let mut descs = Vec::new();
        for (tar, z) in layers {
            diff_ids.push(sha(tar));
            let (data, media) = match z {
                Z::None => (tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
                Z::Gzip => (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
                Z::Zstd => (zstd(tar), "application/vnd.oci.image.layer.v1.tar+zstd"),
            };
            let mut d = self.blob(&data);
            d["mediaType"] = media.into();
            descs.push(d);
        }
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {
                "Env": env,
                "WorkingDir": "/srv",
                "User": "0:0",
                "Entrypoint": ["/bin/sh", "-c"],
                "Cmd": ["cat /etc/marker"],
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let mut c = self.blob(&serde_json::to_vec(&config).expect("json"));
        c["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": c,
            "layers": descs,
        });
        let mut m = self.blob(&serde_json::to_vec(&manifest).expect("json"));
        m["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
        m["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        m
    }

    /// Writes an index over `manifests`; returns its descriptor.
    pub fn index(&self, manifests: &[serde_json::Value]) -> serde_json::Value {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let mut d = self.blob(&serde_json::to_vec(&index).expect("json"));
        d["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
        d
    }

    /// Tags `desc` as `tag` in `index.json`.
    pub fn tag(&mut self, desc: &serde_json::Value, tag: &str) {
        let mut d = desc.clone();
        if let Some(o) = d.as_object_mut() {
            o.remove("platform");
        }
        d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        self.refs.push(d);
        let index = serde_json::json!({"schemaVersion": 2, "manifests": self.refs});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("index.json");
    }
}

/// The host's architecture in OCI's words.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Another architecture than the host's.
pub fn other_arch() -> &'static str {
    if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    }
}
