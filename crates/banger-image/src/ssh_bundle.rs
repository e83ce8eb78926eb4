//! A self-contained OpenSSH server for images that have none.
//!
//! Most application images (`python:3.12-slim`, `node:22`, Alpine) ship neither `sshd` nor
//! `ssh-keygen`, yet banger reaches every guest over SSH. Instead of
//! a second SSH implementation inside the agent, banger brings the host's own OpenSSH server:
//! the binaries, every shared library `ldd` names and the host's ELF loader, copied into one
//! private directory. The guest runs them as `ld.so --library-path lib bin/sshd …`, so they
//! never touch the image's libc (or lack of one: a musl or busybox-static image works the
//! same), while the user's shell, started by sshd with `execve`, runs with the image's own
//! loader and libraries.
//!
//! The bundle is built once per set of host binaries and cached under
//! `<cache>/<hash>/`, the hash covering the recipe version and the contents of the three
//! binaries, so an OpenSSH security update on the host yields a new bundle for images pulled
//! afterwards. A build writes into a temporary sibling and renames it into place, so a crash
//! leaves no half bundle behind.
//!
//! Layout (relative to the bundle root; the guest sees it at
//! `banger_guest::paths::SSH_BUNDLE_DIR`):
//! `ld.so`, `lib/<soname>…`, `bin/sshd`, `bin/ssh-keygen`, `sshd_config`. (The agent sets up
//! the network itself, so no `ip` is needed.)

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Bumped whenever the layout or `sshd_config` changes, so old cached bundles are not reused.
const RECIPE: &str = "banger-ssh-bundle-2";

/// The loader, relative to the bundle root.
pub const LOADER: &str = "ld.so";
/// The library directory, relative to the bundle root.
pub const LIB_DIR: &str = "lib";
/// The programs' directory, relative to the bundle root.
pub const BIN_DIR: &str = "bin";
/// sshd's configuration, relative to the bundle root.
pub const CONFIG: &str = "sshd_config";

/// banger's `sshd_config` for bundled servers: root with banger's key only, no PAM (the image
/// may have no PAM stack), no GSSAPI, the agent-made ed25519 host key.
pub const SSHD_CONFIG: &str = "\
# Written by banger for images without their own sshd.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
GSSAPIAuthentication no
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
";

/// The host programs a bundle is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The OpenSSH server (`openssh-server`).
    pub sshd: PathBuf,
    /// Makes the guest's host key (`openssh-client`).
    pub ssh_keygen: PathBuf,
}

impl Default for Sources {
    fn default() -> Self {
        Self {
            sshd: "/usr/sbin/sshd".into(),
            ssh_keygen: "/usr/bin/ssh-keygen".into(),
        }
    }
}

impl Sources {
    /// `(name in bin/, host path)` of each program.
    pub fn programs(&self) -> [(&'static str, &Path); 2] {
        [("sshd", &self.sshd), ("ssh-keygen", &self.ssh_keygen)]
    }
}

/// Why a bundle cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A program is not installed.
    #[error("{path} is missing; {fix}")]
    Missing {
        /// The program.
        path: PathBuf,
        /// What installs it.
        fix: &'static str,
    },
    /// `ldd` failed or named a library it could not find.
    #[error("cannot list the libraries of {program}: {detail}")]
    Ldd {
        /// The program.
        program: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The program is not dynamically linked against an ELF loader (nothing to bundle it with).
    #[error("{0} names no ELF loader in `ldd`; banger bundles dynamically linked programs only")]
    NoLoader(PathBuf),
    /// The host's OpenSSH runs sessions in a separate helper (9.8 and later).
    #[error(
        "the host's OpenSSH has {0} (OpenSSH 9.8 or later), which banger cannot bundle yet; \
         use images with their own sshd, or a host with OpenSSH 9.7 or older (Debian 12)"
    )]
    Unsupported(PathBuf),
    /// A file operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BundleError + 'a {
    move |source| BundleError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// What `ldd` says a program needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deps {
    /// The ELF loader (`/lib64/ld-linux-x86-64.so.2`).
    pub loader: Option<PathBuf>,
    /// Shared libraries, as resolved paths.
    pub libs: Vec<PathBuf>,
}

/// Parses `ldd` output. Lines look like `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)`,
/// `/lib64/ld-linux-x86-64.so.2 (0x…)` (the loader) or `linux-vdso.so.1 (0x…)` (in the
/// kernel, skipped); `=> not found` is an error naming the library.
pub fn parse_ldd(text: &str) -> Result<Deps, String> {
    let mut deps = Deps::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("not a dynamic executable") || line.contains("statically linked") {
            continue;
        }
        let without_addr = match line.rfind(" (0x") {
            Some(i) => &line[..i],
            None => line,
        };
        match without_addr.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target == "not found" {
                    return Err(format!("library {} not found", name.trim()));
                }
                if target.starts_with('/') {
                    deps.libs.push(PathBuf::from(target));
                } else if !target.is_empty() {
                    return Err(format!("unexpected ldd line {line:?}"));
                }
            }
            None if without_addr.starts_with('/') => {
                deps.loader = Some(PathBuf::from(without_addr.trim()));
            }
            // linux-vdso.so.1, linux-gate.so.1: provided by the kernel.
            None => {}
        }
    }
    Ok(deps)
}

/// One file of a bundle: where it comes from, where it goes (relative to the bundle root),
/// its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The host file (symlinks are followed when copying).
    pub from: PathBuf,
    /// Path relative to the bundle root.
    pub to: String,
    /// Permission bits.
    pub mode: u32,
}

/// The files of a bundle for the given programs and their `ldd` results: each program in
/// `bin/`, the loader as `ld.so`, each library once (by file name) in `lib/`. Every program
/// must use the same loader.
pub fn plan(programs: &[(&str, &Path, Deps)]) -> Result<Vec<Entry>, BundleError> {
    let mut entries = Vec::new();
    let mut loader: Option<&Path> = None;
    let mut libs: Vec<(String, &Path)> = Vec::new();
    for (name, path, deps) in programs {
        let this = deps
            .loader
            .as_deref()
            .ok_or_else(|| BundleError::NoLoader(path.to_path_buf()))?;
        match loader {
            None => loader = Some(this),
            Some(l) if l == this => {}
            Some(l) => {
                return Err(BundleError::Ldd {
                    program: path.to_path_buf(),
                    detail: format!(
                        "uses the loader {} while the others use {}",
                        this.display(),
                        l.display()
                    ),
                });
            }
        }
        entries.push(Entry {
            from: path.to_path_buf(),
            to: format!("{BIN_DIR}/{name}"),
            mode: 0o755,
        });
        for lib in &deps.libs {
            let Some(file) = lib.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            if !libs.iter().any(|(f, _)| f == file) {
                libs.push((file.to_owned(), lib));
            }
        }
    }
    if let Some(l) = loader {
        entries.push(Entry {
            from: l.to_path_buf(),
            to: LOADER.into(),
            mode: 0o755,
        });
    }
    libs.sort();
    for (file, from) in libs {
        entries.push(Entry {
            from: from.to_path_buf(),
            to: format!("{LIB_DIR}/{file}"),
            mode: 0o644,
        });
    }
    Ok(entries)
}

/// Runs `ldd PROGRAM` (the host's, from libc-bin: `/usr/bin/ldd`, else from `PATH`).
pub fn system_ldd(program: &Path) -> Result<String, String> {
    let ldd = Path::new("/usr/bin/ldd");
    let ldd = if ldd.is_file() { ldd } else { Path::new("ldd") };
    let out = std::process::Command::new(ldd)
        .arg(program)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ldd exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The fix for a missing source program.
fn fix_for(name: &str) -> &'static str {
    match name {
        "sshd" => {
            "install openssh-server on the host (`sudo apt-get install openssh-server`; banger only copies its binary, `sudo systemctl disable --now ssh` if you want no host sshd)"
        }
        _ => "install openssh-client on the host",
    }
}

/// The bundle's files for `sources`, using `ldd` to list libraries.
pub fn entries(
    sources: &Sources,
    ldd: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Vec<Entry>, BundleError> {
    check_present(sources)?;
    let mut programs = Vec::new();
    for (name, path) in sources.programs() {
        let deps = ldd(path)
            .and_then(|t| parse_ldd(&t))
            .map_err(|detail| BundleError::Ldd {
                program: path.to_path_buf(),
                detail,
            })?;
        programs.push((name, path, deps));
    }
    plan(&programs)
}

/// OpenSSH 9.8 split the server: `sshd` execs `sshd-session` from a compiled-in path, which a
/// bundle run through its own loader cannot serve (and `-r` is gone).
fn split_server(sshd: &Path) -> Option<PathBuf> {
    let dir = sshd.parent()?.parent()?.join("lib/openssh");
    [dir.join("sshd-session"), dir.join("sshd-auth")]
        .into_iter()
        .find(|p| p.exists())
}

/// Fails with the package to install when a program is missing, or when the host's OpenSSH
/// is too new to bundle.
pub fn check_present(sources: &Sources) -> Result<(), BundleError> {
    if let Some(helper) = split_server(&sources.sshd) {
        return Err(BundleError::Unsupported(helper));
    }
    for (name, path) in sources.programs() {
        if !path.is_file() {
            return Err(BundleError::Missing {
                path: path.to_path_buf(),
                fix: fix_for(name),
            });
        }
    }
    Ok(())
}

/// The cache key: the recipe and every program's contents.
pub fn key(sources: &Sources) -> Result<String, BundleError> {
    check_present(sources)?;
    let mut h = Sha256::new();
    h.update(RECIPE.as_bytes());
    for (name, path) in sources.programs() {
        let bytes = std::fs::read(path).map_err(io_err("cannot read", path))?;
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(banger_util::hex::encode(&h.finalize()[..12]))
}

/// A built bundle: its directory and files (`to` relative to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The bundle root.
    pub dir: PathBuf,
    /// Every file, relative to `dir`, with its mode (including `sshd_config`).
    pub files: Vec<(String, u32)>,
}

/// The marker written last into a finished bundle; it lists the files.
const MANIFEST: &str = ".files";

/// Returns the cached bundle for `sources` under `cache`, building it first if needed.
pub fn ensure(
    cache: &Path,
    sources: &Sources,
    ldd: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Bundle, BundleError> {
    let dir = cache.join(key(sources)?);
    if let Some(b) = read_manifest(&dir) {
        return Ok(b);
    }
    let entries = entries(sources, ldd)?;
    std::fs::create_dir_all(cache).map_err(io_err("cannot create", cache))?;
    let tmp = tempfile::Builder::new()
        .prefix(".building-")
        .tempdir_in(cache)
        .map_err(io_err("cannot create a directory in", cache))?;
    let mut files = Vec::new();
    for sub in [LIB_DIR, BIN_DIR] {
        let d = tmp.path().join(sub);
        std::fs::create_dir(&d).map_err(io_err("cannot create", &d))?;
    }
    for e in &entries {
        let to = tmp.path().join(&e.to);
        std::fs::copy(&e.from, &to).map_err(io_err("cannot copy", &e.from))?;
        set_mode(&to, e.mode)?;
        files.push((e.to.clone(), e.mode));
    }
    let config = tmp.path().join(CONFIG);
    std::fs::write(&config, SSHD_CONFIG).map_err(io_err("cannot write", &config))?;
    set_mode(&config, 0o644)?;
    files.push((CONFIG.into(), 0o644));
    let manifest = tmp.path().join(MANIFEST);
    let text: String = files.iter().map(|(f, m)| format!("{m:o} {f}\n")).collect();
    std::fs::write(&manifest, text).map_err(io_err("cannot write", &manifest))?;
    let built = tmp.keep();
    if let Err(e) = std::fs::rename(&built, &dir) {
        let _ = std::fs::remove_dir_all(&built);
        // Another build finished first: use it.
        return read_manifest(&dir).ok_or_else(|| BundleError::Io {
            what: "cannot move the bundle to",
            path: dir.clone(),
            source: e,
        });
    }
    Ok(Bundle { dir, files })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("cannot chmod", path))
}

fn read_manifest(dir: &Path) -> Option<Bundle> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let mut files = Vec::new();
    for line in text.lines() {
        let (mode, file) = line.split_once(' ')?;
        let mode = u32::from_str_radix(mode, 8).ok()?;
        if file.contains("..") || file.starts_with('/') || !dir.join(file).is_file() {
            return None;
        }
        files.push((file.to_owned(), mode));
    }
    Some(Bundle {
        dir: dir.to_path_buf(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LDD_SSHD: &str = "\tlinux-vdso.so.1 (0x00007ffd6b7f0000)
\tlibcrypt.so.1 => /lib/x86_64-linux-gnu/libcrypt.so.1 (0x00007f1c2d9a0000)
\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f1c2d980000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1c2d600000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f1c2dbc0000)
";

    #[test]
    fn ldd_output_gives_loader_and_libraries() {
        let d = parse_ldd(LDD_SSHD).unwrap();
        assert_eq!(
            d.loader.as_deref(),
            Some(Path::new("/lib64/ld-linux-x86-64.so.2"))
        );
        assert_eq!(
            d.libs,
            [
                "/lib/x86_64-linux-gnu/libcrypt.so.1",
                "/lib/x86_64-linux-gnu/libz.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6"
            ]
            .map(PathBuf::from)
        );
        let e = parse_ldd("\tlibwrap.so.0 => not found\n").unwrap_err();
        assert!(e.contains("libwrap.so.0"), "{e}");
        assert_eq!(
            parse_ldd("\tnot a dynamic executable\n").unwrap(),
            Deps::default()
        );
    }

    #[test]
    fn plan_dedups_libraries_and_requires_one_loader() {
        let sshd = parse_ldd(LDD_SSHD).unwrap();
        let keygen = parse_ldd(
            "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n\
             \tlibmnl.so.0 => /lib/x86_64-linux-gnu/libmnl.so.0 (0x2)\n\
             \t/lib64/ld-linux-x86-64.so.2 (0x3)\n",
        )
        .unwrap();
        let p = plan(&[
            ("sshd", Path::new("/usr/sbin/sshd"), sshd.clone()),
            ("ssh-keygen", Path::new("/usr/bin/ssh-keygen"), keygen),
        ])
        .unwrap();
        let to: Vec<&str> = p.iter().map(|e| e.to.as_str()).collect();
        assert_eq!(
            to,
            [
                "bin/sshd",
                "bin/ssh-keygen",
                "ld.so",
                "lib/libc.so.6",
                "lib/libcrypt.so.1",
                "lib/libmnl.so.0",
                "lib/libz.so.1"
            ]
        );
        assert_eq!(p[2].from, Path::new("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(p[2].mode, 0o755);

        let mut other = sshd.clone();
        other.loader = Some("/lib/ld-musl-x86_64.so.1".into());
        let e = plan(&[
            ("sshd", Path::new("/a"), sshd),
            ("ssh-keygen", Path::new("/b"), other),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("ld-musl"), "{e}");
        let e = plan(&[("sshd", Path::new("/s"), Deps::default())]).unwrap_err();
        assert!(matches!(e, BundleError::NoLoader(_)), "{e}");
    }

    /// A real build from host files: `ldd` is faked (it names host files that exist), the
    /// copy, manifest, cache hit and cache key are real.
    #[test]
    fn ensure_builds_once_and_keys_on_contents() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let lib = t.path().join("libfoo.so.1");
        let loader = t.path().join("ld-test.so");
        std::fs::write(&lib, b"lib").unwrap();
        std::fs::write(&loader, b"loader").unwrap();
        let sources = Sources {
            sshd: bin.join("sshd"),
            ssh_keygen: bin.join("ssh-keygen"),
        };
        let cache = t.path().join("cache");
        let ldd_text = format!(
            "\tlibfoo.so.1 => {} (0x1)\n\t{} (0x2)\n",
            lib.display(),
            loader.display()
        );
        let calls = std::cell::Cell::new(0);
        let ldd = |_: &Path| {
            calls.set(calls.get() + 1);
            Ok(ldd_text.clone())
        };
        let e = ensure(&cache, &sources, &ldd).unwrap_err();
        assert!(e.to_string().contains("openssh-server"), "{e}");
        // An OpenSSH with sshd-session next to it is refused by name.
        let session = t.path().join("lib/openssh/sshd-session");
        std::fs::create_dir_all(session.parent().unwrap()).unwrap();
        std::fs::write(&session, b"").unwrap();
        let e = ensure(&cache, &sources, &ldd).unwrap_err();
        assert!(matches!(e, BundleError::Unsupported(_)), "{e}");
        std::fs::remove_file(&session).unwrap();
        for (name, path) in sources.programs() {
            std::fs::write(path, name).unwrap();
        }
        let b = ensure(&cache, &sources, &ldd).unwrap();
        assert_eq!(calls.get(), 2);
        assert_eq!(
            std::fs::read(b.dir.join("bin/ssh-keygen")).unwrap(),
            b"ssh-keygen"
        );
        assert_eq!(std::fs::read(b.dir.join("ld.so")).unwrap(), b"loader");
        assert_eq!(
            std::fs::read(b.dir.join("lib/libfoo.so.1")).unwrap(),
            b"lib"
        );
        assert_eq!(
            std::fs::read_to_string(b.dir.join(CONFIG)).unwrap(),
            SSHD_CONFIG
        );
        assert!(b.files.contains(&("bin/sshd".into(), 0o755)));
        assert!(b.files.contains(&("sshd_config".into(), 0o644)));
        // Cached: no ldd, same result.
        assert_eq!(ensure(&cache, &sources, &ldd).unwrap(), b);
        assert_eq!(calls.get(), 2);
        // A changed sshd is a new bundle.
        std::fs::write(&sources.sshd, b"sshd 2").unwrap();
        let b2 = ensure(&cache, &sources, &ldd).unwrap();
        assert_ne!(b2.dir, b.dir);
        // No temporary directory left behind.
        let left: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".building"))
            .collect();
        assert!(left.is_empty());
    }

    /// The host's real programs give a bundle with one loader and libc.
    #[test]
    fn host_programs_plan() {
        let sources = Sources::default();
        for (_, p) in sources.programs() {
            assert!(
                p.is_file(),
                "{}: install openssh-server and openssh-client (.ci/run does)",
                p.display()
            );
        }
        let e = entries(&sources, &system_ldd).unwrap();
        assert!(e.iter().any(|e| e.to == LOADER));
        assert!(e.iter().any(|e| e.to == "lib/libc.so.6"));
        assert!(e.iter().any(|e| e.to == "lib/libcrypto.so.3"));
    }
}
