//! Giving images that have no OpenSSH server banger's bundle ([`banger_image::ssh_bundle`]).
//!
//! Runs at pull and register time, next to the agent injection: an image with its own
//! `/usr/sbin/sshd` is left alone (its sshd and its configuration are what the user chose);
//! one without gets the cached bundle written to [`SSH_BUNDLE_DIR`], where the agent finds it
//! at boot. An image without `/bin/sh` is refused here, with the reason, because SSH sessions,
//! `vm run` and workspaces all run through a POSIX shell.

use std::path::{Path, PathBuf};

use banger_guest::paths::{IMAGE_SSHD, SSH_BUNDLE_DIR};
use banger_image::ext4;
use banger_image::ssh_bundle::{self, Sources};
use banger_proto::ErrorCode;

use super::ImageError;
use crate::api::error::chain;
use crate::context::DaemonContext;

/// The shell every image needs.
pub const SHELL: &str = "/bin/sh";

/// Where bundles are cached.
pub fn cache_dir(ctx: &DaemonContext) -> PathBuf {
    ctx.layout().cache_dir.join("ssh-bundle")
}

/// How many files the bundle of the host's programs would have, or why it cannot be made
/// (for `doctor`: plans with `ldd`, builds and writes nothing).
pub fn plan_host_bundle() -> Result<usize, String> {
    ssh_bundle::entries(&Sources::default(), &ssh_bundle::system_ldd)
        .map(|e| e.len() + 1)
        .map_err(|e| chain(&e))
}

/// What [`ensure_ssh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshSource {
    /// The image brings its own sshd.
    Image,
    /// banger's bundle was written into the image.
    Bundle,
}

/// Makes sure `rootfs` can run an SSH server: its own, or the bundle built from the host's
/// programs (cached under `cache`).
pub fn ensure_ssh(rootfs: &Path, cache: &Path, agent: &Path) -> Result<SshSource, ImageError> {
    ensure_ssh_with(
        rootfs,
        cache,
        agent,
        &Sources::default(),
        &ssh_bundle::system_ldd,
    )
}

/// [`ensure_ssh`] with the bundle's programs and `ldd` given.
pub fn ensure_ssh_with(
    rootfs: &Path,
    cache: &Path,
    agent: &Path,
    sources: &Sources,
    ldd: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<SshSource, ImageError> {
    let failed = |e: &ext4::Ext4Error| {
        ImageError::new(
            ErrorCode::OperationFailed,
            format!("cannot inspect {}: {}", rootfs.display(), chain(e)),
        )
    };
    check_agent_runs(rootfs, agent)?;
    if ext4::stat(rootfs, IMAGE_SSHD)
        .map_err(|e| failed(&e))?
        .is_some()
    {
        return Ok(SshSource::Image);
    }
    if ext4::stat(rootfs, SHELL).map_err(|e| failed(&e))?.is_none() {
        return Err(ImageError::invalid(format!(
            "the image has no {SHELL}: banger runs SSH sessions, `vm run` commands and \
             workspaces through a POSIX shell; use an image that has one (any Debian, Ubuntu, \
             Alpine or busybox based image does)"
        )));
    }
    let bundle = ssh_bundle::ensure(cache, sources, ldd).map_err(|e| {
        ImageError::new(
            ErrorCode::HostProblem,
            format!(
                "the image has no {IMAGE_SSHD} and banger cannot build its SSH bundle: {}",
                chain(&e)
            ),
        )
    })?;
    ext4::apply(rootfs, &edits(&bundle)).map_err(|e| {
        ImageError::new(
            ErrorCode::OperationFailed,
            format!(
                "cannot write the SSH bundle into {}: {}",
                rootfs.display(),
                chain(&e)
            ),
        )
    })?;
    Ok(SshSource::Bundle)
}

/// Refuses an image the agent cannot start in: a dynamically linked agent needs its ELF
/// loader, which images without glibc (Alpine, busybox) lack. `install.sh` builds it static.
pub fn check_agent_runs(rootfs: &Path, agent: &Path) -> Result<(), ImageError> {
    let bytes = std::fs::read(agent).map_err(|e| {
        ImageError::new(
            ErrorCode::HostProblem,
            format!("cannot read the agent {}: {e}", agent.display()),
        )
    })?;
    let interp = match banger_image::elf::Elf::parse(&bytes)
        .and_then(|e| e.interpreter().map(|i| i.map(str::to_owned)))
    {
        Ok(i) => i,
        Err(e) => {
            // Not ours to judge here: whatever it is, the boot will tell.
            tracing::warn!(agent = %agent.display(), error = %e, "cannot read the agent's ELF headers");
            return Ok(());
        }
    };
    let Some(interp) = interp else {
        return Ok(());
    };
    let present = ext4::stat(rootfs, &interp).map_err(|e| {
        ImageError::new(
            ErrorCode::OperationFailed,
            format!("cannot inspect {}: {}", rootfs.display(), chain(&e)),
        )
    })?;
    if present.is_some() {
        return Ok(());
    }
    Err(ImageError::new(
        ErrorCode::HostProblem,
        format!(
            "the image has no {interp} and the agent {} is dynamically linked against it; \
             install a static agent (`sudo ./install.sh` builds one, or `cargo rustc --release \
             -p banger-agent --bin banger-agent -- -C target-feature=+crt-static`)",
            agent.display()
        ),
    ))
}

/// The ext4 edits that install `bundle` at [`SSH_BUNDLE_DIR`], root-owned.
fn edits(bundle: &ssh_bundle::Bundle) -> ext4::Edits {
    let mut edits = ext4::Edits::new();
    for sub in [ssh_bundle::LIB_DIR, ssh_bundle::BIN_DIR] {
        edits.mkdir_p(&format!("{SSH_BUNDLE_DIR}/{sub}"));
    }
    for (file, mode) in &bundle.files {
        let guest = format!("{SSH_BUNDLE_DIR}/{file}");
        edits
            .put(&bundle.dir.join(file), &guest)
            .mode(&guest, ext4::Kind::File, *mode)
            .owner(&guest, 0, 0);
    }
    edits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(dir: &Path, files: &[&str]) -> PathBuf {
        let tree = dir.join("tree");
        for f in files {
            let p = tree.join(f.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f.as_bytes()).unwrap();
        }
        std::fs::create_dir_all(&tree).unwrap();
        let out = dir.join("rootfs.ext4");
        ext4::mkfs(Some(&tree), &out, 32 << 20, "root").unwrap();
        std::fs::remove_dir_all(&tree).unwrap();
        out
    }

    /// A stand-in for a static agent: the host's `/bin/sh` with no program headers.
    fn static_agent(dir: &Path) -> PathBuf {
        let mut sh = std::fs::read("/bin/sh").unwrap();
        sh[56..58].copy_from_slice(&0u16.to_le_bytes());
        let p = dir.join("static-agent");
        std::fs::write(&p, sh).unwrap();
        p
    }

    /// Fake host programs (plain files) with a fake `ldd` naming a fake library and loader.
    fn sources(dir: &Path) -> (Sources, String) {
        let bin = dir.join("host");
        std::fs::create_dir_all(&bin).unwrap();
        let s = Sources {
            sshd: bin.join("sshd"),
            ssh_keygen: bin.join("ssh-keygen"),
        };
        for (name, p) in s.programs() {
            std::fs::write(p, name).unwrap();
        }
        std::fs::write(bin.join("libc.so.6"), b"libc").unwrap();
        std::fs::write(bin.join("ld-linux.so.2"), b"loader").unwrap();
        let ldd = format!(
            "\tlibc.so.6 => {0}/libc.so.6 (0x1)\n\t{0}/ld-linux.so.2 (0x2)\n",
            bin.display()
        );
        (s, ldd)
    }

    /// [`ensure_ssh_with`] on an image of `files`, with a static agent and the fake programs.
    fn ensure_on(
        t: &Path,
        files: &[&str],
        edit: impl FnOnce(&mut Sources),
    ) -> (PathBuf, Result<SshSource, ImageError>) {
        let rootfs = image(t, files);
        let (mut s, ldd) = sources(t);
        edit(&mut s);
        let got = ensure_ssh_with(&rootfs, &t.join("cache"), &static_agent(t), &s, &|_| {
            Ok(ldd.clone())
        });
        (rootfs, got)
    }

    #[test]
    fn an_image_with_sshd_is_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let (rootfs, got) = ensure_on(t.path(), &["/usr/sbin/sshd", "/bin/sh"], |_| {});
        assert_eq!(got.unwrap(), SshSource::Image);
        assert!(ext4::stat(&rootfs, SSH_BUNDLE_DIR).unwrap().is_none());
        assert!(!t.path().join("cache").exists(), "no bundle was built");
    }

    #[test]
    fn an_image_without_a_shell_is_refused_unchanged() {
        let t = tempfile::tempdir().unwrap();
        let (rootfs, got) = ensure_on(t.path(), &["/usr/bin/python3"], |_| {});
        let e = got.unwrap_err();
        assert!(e.to_string().contains("no /bin/sh"), "{e}");
        assert!(ext4::stat(&rootfs, SSH_BUNDLE_DIR).unwrap().is_none());
    }

    #[test]
    fn an_image_without_sshd_gets_the_bundle() {
        let t = tempfile::tempdir().unwrap();
        let (rootfs, got) = ensure_on(t.path(), &["/bin/sh"], |_| {});
        assert_eq!(got.unwrap(), SshSource::Bundle);
        let read = |f: &str| ext4::read_file(&rootfs, &format!("{SSH_BUNDLE_DIR}/{f}")).unwrap();
        assert_eq!(read("bin/sshd"), b"sshd");
        assert_eq!(read("bin/ssh-keygen"), b"ssh-keygen");
        assert_eq!(read("ld.so"), b"loader");
        assert_eq!(read("lib/libc.so.6"), b"libc");
        assert_eq!(read("sshd_config"), ssh_bundle::SSHD_CONFIG.as_bytes());
        let st = ext4::stat(&rootfs, &format!("{SSH_BUNDLE_DIR}/ld.so"))
            .unwrap()
            .unwrap();
        assert_eq!((st.mode, st.uid, st.gid), (0o755, 0, 0));
    }

    #[test]
    fn a_dynamic_agent_needs_its_loader_in_the_image() {
        let t = tempfile::tempdir().unwrap();
        let rootfs = image(t.path(), &["/bin/sh"]);
        let e = check_agent_runs(&rootfs, Path::new("/bin/sh")).unwrap_err();
        assert!(e.to_string().contains("crt-static"), "{e}");
        assert!(check_agent_runs(&rootfs, &static_agent(t.path())).is_ok());
        let interp = banger_image::elf::Elf::parse(&std::fs::read("/bin/sh").unwrap())
            .unwrap()
            .interpreter()
            .unwrap()
            .unwrap()
            .to_owned();
        let with_loader = image(&t.path().join("b"), &["/bin/sh", &interp]);
        assert!(check_agent_runs(&with_loader, Path::new("/bin/sh")).is_ok());
    }

    #[test]
    fn a_host_without_sshd_fails_with_the_fix() {
        let t = tempfile::tempdir().unwrap();
        let nowhere = t.path().join("nowhere/sshd");
        let (rootfs, got) = ensure_on(t.path(), &["/bin/sh"], |s| s.sshd = nowhere);
        let e = got.unwrap_err();
        assert!(
            e.to_string().contains("apt-get install openssh-server"),
            "{e}"
        );
        assert!(ext4::stat(&rootfs, SSH_BUNDLE_DIR).unwrap().is_none());
    }
}
