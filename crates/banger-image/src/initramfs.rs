//! The initramfs that gets Debian's cloud kernel to banger's root filesystem.
//!
//! Debian's cloud kernel builds virtio (mmio, pci, blk, net, console) and vsock as modules,
//! has no `CONFIG_IP_PNP` and no `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`, so it cannot mount a
//! virtio root disk on its own. This initramfs is the smallest thing that can: a static busybox,
//! the needed `.ko` files in dependency order ([`crate::modules`]) and [`INIT_SCRIPT`]. It is an
//! uncompressed newc archive (~3 MB): the kernel unpacks it in milliseconds and no compressor
//! is needed to build it. Network setup is *not* done here; the real init reads the
//! `banger.*` parameters itself.
//!
//! Layout: `/init`, `/bin/busybox`, `/dev/console`, `/etc/banger-modules` (one file name per
//! line, in load order), `/lib/modules/<name>.ko`.

use std::path::Path;

use crate::cpio::{CpioError, CpioWriter};
use crate::modules::{self, ModuleDeps, ModulesError, Resolution};

/// `/init` of the initramfs.
///
/// Kernel command line it understands (everything else is passed on to the real init):
/// - `root=/dev/vda` (default `/dev/vda`; a block device path), `rootfstype=` (default ext4),
///   `rootflags=`, `ro`/`rw` (default `rw`);
/// - `init=` the real init (default `/sbin/init`, so systemd images work unchanged);
/// - `rootwait=N` seconds to wait for the root device (default 10).
///
/// On any failure it prints `banger-initramfs: …` on the console and reboots, so a VMM run with
/// `-no-reboot` (QEMU) or Firecracker exits instead of hanging.
pub const INIT_SCRIPT: &str = r#"#!/bin/busybox sh
# banger initramfs /init: load virtio modules, mount the root device, switch_root.
/bin/busybox mkdir -p /proc /sys /dev /newroot /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
  echo "banger-initramfs: $*" > /dev/console
  sleep 1
  reboot -f
}

while read -r m; do
  [ -z "$m" ] && continue
  insmod "/lib/modules/$m" || echo "banger-initramfs: insmod $m failed" > /dev/console
done < /etc/banger-modules

root=/dev/vda; init=/sbin/init; mode=rw; fstype=ext4; flags=; wait=10
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) root="${arg#root=}" ;;
    init=*) init="${arg#init=}" ;;
    rootfstype=*) fstype="${arg#rootfstype=}" ;;
    rootflags=*) flags="${arg#rootflags=}" ;;
    rootwait=*) wait="${arg#rootwait=}" ;;
    ro) mode=ro ;;
    rw) mode=rw ;;
  esac
done

i=0
while [ ! -b "$root" ] && [ "$i" -lt "$((wait * 10))" ]; do sleep 0.1; i=$((i + 1)); done
[ -b "$root" ] || fail "root device $root did not appear"
mount -t "$fstype" -o "$mode${flags:+,$flags}" "$root" /newroot || fail "cannot mount $root"

mount --move /dev /newroot/dev 2>/dev/null || umount /dev
umount /sys
umount /proc
exec switch_root /newroot "$init" "$@"
"#;

/// The initramfs could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// Module resolution failed.
    #[error("cannot resolve the initramfs modules")]
    Modules(#[source] ModulesError),
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// Path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The archive could not be written.
    #[error("cannot write the initramfs archive")]
    Cpio(#[source] CpioError),
}

/// A module to include: its file name in the initramfs and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFile {
    /// File name (`virtio_blk.ko`).
    pub file_name: String,
    /// ELF object.
    pub data: Vec<u8>,
}

/// Assembles the archive from a static busybox and modules already in load order.
pub fn assemble(busybox: &[u8], modules: &[ModuleFile]) -> Result<Vec<u8>, InitramfsError> {
    let c = InitramfsError::Cpio;
    let mut w = CpioWriter::new(Vec::new());
    for dir in [
        "bin",
        "dev",
        "etc",
        "lib",
        "lib/modules",
        "newroot",
        "proc",
        "sys",
    ] {
        w.dir(dir, 0o755).map_err(c)?;
    }
    w.char_device("dev/console", 0o600, 5, 1).map_err(c)?;
    w.file("bin/busybox", 0o755, busybox).map_err(c)?;
    w.symlink("bin/sh", "busybox").map_err(c)?;
    let mut list = String::new();
    for m in modules {
        w.file(&format!("lib/modules/{}", m.file_name), 0o644, &m.data)
            .map_err(c)?;
        list.push_str(&m.file_name);
        list.push('\n');
    }
    w.file("etc/banger-modules", 0o644, list.as_bytes())
        .map_err(c)?;
    w.file("init", 0o755, INIT_SCRIPT.as_bytes()).map_err(c)?;
    w.finish().map_err(c)
}

/// Resolves `wanted` against `deps`, reads the modules under `modules_dir` and the busybox
/// binary, and assembles the archive. Returns the archive and the resolution.
pub fn build<S: AsRef<str>>(
    busybox: &Path,
    modules_dir: &Path,
    deps: &ModuleDeps,
    wanted: &[S],
) -> Result<(Vec<u8>, Resolution), InitramfsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| InitramfsError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let resolution = deps.resolve(wanted).map_err(InitramfsError::Modules)?;
    let mut files = Vec::new();
    for rel in &resolution.load_order {
        if modules::is_compressed(rel) {
            return Err(InitramfsError::Modules(ModulesError::Compressed(
                rel.clone(),
            )));
        }
        files.push(ModuleFile {
            file_name: format!("{}.ko", modules::module_name(rel)),
            data: read(&modules_dir.join(rel))?,
        });
    }
    let archive = assemble(&read(busybox)?, &files)?;
    Ok((archive, resolution))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::tests::parse;

    #[test]
    fn layout_and_module_list() {
        let mods = [
            ModuleFile {
                file_name: "virtio_ring.ko".into(),
                data: b"ring".to_vec(),
            },
            ModuleFile {
                file_name: "virtio.ko".into(),
                data: b"virtio".to_vec(),
            },
        ];
        let archive = assemble(b"BUSYBOX", &mods).expect("assemble");
        let entries = parse(&archive);
        let get = |name: &str| {
            entries
                .iter()
                .find(|e| e.0 == name)
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        assert_eq!(get("init").1, 0o100_755);
        assert_eq!(get("init").3, INIT_SCRIPT.as_bytes());
        assert_eq!(get("bin/busybox").3, b"BUSYBOX");
        assert_eq!(get("dev/console").2, (5, 1));
        assert_eq!(get("etc/banger-modules").3, b"virtio_ring.ko\nvirtio.ko\n");
        assert_eq!(get("lib/modules/virtio.ko").3, b"virtio");
    }

    #[test]
    fn init_script_is_posix_sh_syntax() {
        // `sh -n` parses without running; busybox ash and dash accept the same syntax here.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("init");
        std::fs::write(&path, INIT_SCRIPT).expect("write");
        let status = std::process::Command::new("sh")
            .arg("-n")
            .arg(&path)
            .status()
            .expect("sh runs");
        assert!(status.success());
        assert!(INIT_SCRIPT.starts_with("#!/bin/busybox sh\n"));
    }

    #[test]
    fn build_reads_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deps = ModuleDeps::parse(
            "kernel/a/virtio_ring.ko:\nkernel/a/virtio.ko: kernel/a/virtio_ring.ko\n",
            "kernel/fs/ext4/ext4.ko\n",
        )
        .expect("parse");
        std::fs::create_dir_all(dir.path().join("kernel/a")).expect("mkdir");
        std::fs::write(dir.path().join("kernel/a/virtio_ring.ko"), b"R").expect("write");
        std::fs::write(dir.path().join("kernel/a/virtio.ko"), b"V").expect("write");
        let bb = dir.path().join("busybox");
        std::fs::write(&bb, b"BB").expect("write");
        let (archive, res) = build(&bb, dir.path(), &deps, &["virtio", "ext4"]).expect("build");
        assert_eq!(res.builtin, ["ext4"]);
        let entries = parse(&archive);
        let list = entries
            .iter()
            .find(|e| e.0 == "etc/banger-modules")
            .expect("list");
        assert_eq!(list.3, b"virtio_ring.ko\nvirtio.ko\n");
        assert!(matches!(
            build(&bb, dir.path(), &deps, &["nope"]),
            Err(InitramfsError::Modules(ModulesError::Unknown(_)))
        ));
    }
}
