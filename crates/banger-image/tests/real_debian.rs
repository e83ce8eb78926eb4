//! Root/network tests: build the real `debian-cloud` kernel and `debian-bookworm` image from
//! the host's Debian mirror, then boot them under QEMU (TCG, no network devices, so no
//! namespace is needed) and watch the serial console.
//!
//! Run with `cargo test -p banger-image -- --include-ignored` as root on a Debian host with
//! `debootstrap`, `cpio` and `qemu-system-x86` installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use banger_image::catalog::Catalog;
use banger_image::{Progress, build_image, build_kernel, elf, guest_init, mirror};

fn scratch() -> tempfile::TempDir {
    // Images are large and sparse: keep them off a tmpfs /tmp.
    tempfile::Builder::new()
        .prefix("banger-image-test-")
        .tempdir_in("/var/tmp")
        .expect("scratch dir")
}

fn host_mirror(suite: &str) -> banger_image::Mirror {
    mirror::resolve(None, Path::new("/etc/apt"), suite).expect("host has a Debian mirror")
}

#[test]
#[ignore = "needs root and the Debian mirror"]
fn builds_the_debian_cloud_kernel() {
    let catalog = Catalog::builtin().expect("catalog");
    let recipe = catalog.kernel("debian-cloud").expect("recipe");
    let dir = scratch();
    let dest = dir.path().join("kernels/debian-cloud");
    let mut seen = Vec::new();
    let started = Instant::now();
    let k = build_kernel(recipe, &host_mirror(&recipe.suite), &dest, &mut |p| {
        if let Progress::Stage(s) = p {
            seen.push(format!("{:.1}s {s}", started.elapsed().as_secs_f64()));
        }
    })
    .expect("kernel builds");
    eprintln!(
        "kernel {} built in {:?}: {:?}",
        k.version,
        started.elapsed(),
        seen
    );

    let vmlinux = std::fs::read(&k.vmlinux).expect("vmlinux");
    let info = elf::check_vmlinux(&vmlinux).expect("vmlinux is an x86-64 ELF");
    assert!(
        info.pvh_entry.is_some(),
        "cloud kernel has a PVH entry note"
    );
    assert_eq!(k.manifest.pvh_entry, info.pvh_entry);
    assert!(k.bzimage.is_file());
    assert!(k.modules_dir.join("modules.dep").is_file());
    assert!(k.dir.join("config").is_file());
    for m in [
        "virtio_mmio",
        "virtio_blk",
        "virtio_net",
        "virtio_console",
        "vmw_vsock_virtio_transport",
    ] {
        assert!(
            k.manifest.initrd_modules.iter().any(|x| x == m),
            "{m} in initrd: {:?}",
            k.manifest.initrd_modules
        );
    }
    let pos = |m: &str| {
        k.manifest
            .initrd_modules
            .iter()
            .position(|x| x == m)
            .expect("module")
    };
    assert!(pos("virtio_ring") < pos("virtio") && pos("virtio") < pos("virtio_blk"));
    assert!(k.manifest.builtin_modules.iter().any(|x| x == "ext4"));

    // The initramfs lists cleanly with the system cpio.
    let listing = Command::new("cpio")
        .args(["-t", "--quiet", "-F"])
        .arg(&k.initrd)
        .output()
        .expect("cpio runs");
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    for entry in [
        "init",
        "bin/busybox",
        "dev/console",
        "lib/modules/virtio_blk.ko",
    ] {
        assert!(listing.lines().any(|l| l == entry), "{entry} in initrd");
    }

    // Second call: cached, no work.
    let mut again = Vec::new();
    let k2 = build_kernel(recipe, &host_mirror(&recipe.suite), &dest, &mut |p| {
        if let Progress::Stage(s) = p {
            again.push(s.to_owned());
        }
    })
    .expect("cached");
    assert_eq!(again, ["kernel up to date"]);
    assert_eq!(k2, k);
}

/// Kills QEMU when dropped, so a failed assertion cannot leak a VM.
struct Vm(Child);

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn host_tsc_khz() -> u64 {
    let info = std::fs::read_to_string("/proc/cpuinfo").expect("cpuinfo");
    let mhz: f64 = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("cpu MHz")?
                .split(':')
                .nth(1)?
                .trim()
                .parse()
                .ok()
        })
        .expect("cpu MHz");
    (mhz * 1000.0) as u64
}

const PROBE_INIT: &str = r#"#!/bin/sh
# Test init: report what the guest sees, then hand over to the fast init.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mount -t ext4 /dev/vdb /root && echo "probe: work seed says $(cat /root/probe.txt)"
echo "probe: root mode $(stat -c %a /root)"
umount /root
for p in /sys/class/virtio-ports/*; do echo "probe: port $(basename "$p") $(cat "$p/name")"; done
echo "probe: modules $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
exec /sbin/banger-init
"#;

#[test]
#[ignore = "needs root, the Debian mirror and qemu-system-x86_64"]
fn builds_and_boots_the_debian_bookworm_image() {
    let catalog = Catalog::builtin().expect("catalog");
    let recipe = catalog.image("debian-bookworm").expect("recipe");
    let krecipe = catalog.kernel(&recipe.kernel).expect("kernel recipe");
    let m = host_mirror(&recipe.suite);
    let dir = scratch();
    let d = dir.path();

    let kernel =
        build_kernel(krecipe, &m, &d.join("kernels/debian-cloud"), &mut |_| {}).expect("kernel");

    let files = d.join("files");
    std::fs::create_dir(&files).expect("mkdir");
    let write = |name: &str, text: &str| -> PathBuf {
        let p = files.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let extra = vec![
        banger_image::ExtraFile {
            guest_path: "/sbin/banger-init".into(),
            host_path: write("banger-init", guest_init::FAST_INIT),
            mode: 0o755,
        },
        banger_image::ExtraFile {
            guest_path: "/sbin/probe-init".into(),
            host_path: write("probe-init", PROBE_INIT),
            mode: 0o755,
        },
        banger_image::ExtraFile {
            guest_path: "/root/probe.txt".into(),
            host_path: write("probe.txt", "hello-from-seed"),
            mode: 0o600,
        },
    ];
    let dest = d.join("images/debian-bookworm");
    let started = Instant::now();
    let mut lines = 0usize;
    let image = build_image(recipe, &m, &dest, &extra, &mut |p| match p {
        Progress::Stage(s) => eprintln!("[{:>5.1}s] {s}", started.elapsed().as_secs_f64()),
        Progress::Line(_) => lines += 1,
    })
    .expect("image builds");
    eprintln!(
        "image built in {:?} ({lines} tool lines)",
        started.elapsed()
    );
    assert!(
        image
            .manifest
            .packages
            .iter()
            .any(|(p, _)| p == "openssh-server")
    );
    assert!(
        !image
            .manifest
            .packages
            .iter()
            .any(|(p, _)| p == "systemd-sysv")
    );
    assert!(d.read_dir().expect("ls").all(|e| {
        !e.expect("entry")
            .file_name()
            .to_string_lossy()
            .starts_with(".banger-")
    }));
    let images_dir = d.join("images");
    assert_eq!(
        images_dir.read_dir().expect("ls").count(),
        1,
        "no staging dir left behind"
    );

    let mut again = Vec::new();
    build_image(recipe, &m, &dest, &extra, &mut |p| {
        if let Progress::Stage(s) = p {
            again.push(s.to_owned());
        }
    })
    .expect("cached");
    assert_eq!(again, ["image up to date"]);

    // Per-VM disks: a copy of the rootfs and a grown copy of the work seed.
    let vm = d.join("vm");
    std::fs::create_dir(&vm).expect("mkdir");
    std::fs::copy(&image.rootfs_ext4, vm.join("root.ext4")).expect("copy rootfs");
    std::fs::copy(&image.work_seed_ext4, vm.join("work.ext4")).expect("copy seed");
    banger_image::ext4::grow(&vm.join("work.ext4"), 1 << 30).expect("grow work disk");

    let console = vm.join("console.log");
    let append = format!(
        "console=ttyS0 root=/dev/vda rw init=/sbin/probe-init panic=-1 tsc_early_khz={} tsc=reliable",
        host_tsc_khz()
    );
    let drive =
        |id: &str, file: &Path| format!("id={id},file={},format=raw,if=none", file.display());
    let qemu = Command::new("qemu-system-x86_64")
        .args([
            "-M",
            "microvm,x-option-roms=off,isa-serial=on,rtc=on",
            "-accel",
            "tcg",
            "-cpu",
            "max",
        ])
        .args([
            "-smp",
            "1",
            "-m",
            "512M",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
        ])
        .args(["-monitor", "none", "-serial"])
        .arg(format!("file:{}", console.display()))
        .arg("-kernel")
        .arg(&kernel.vmlinux)
        .arg("-initrd")
        .arg(&kernel.initrd)
        .args(["-append", &append])
        .args([
            "-drive",
            &drive("root", &vm.join("root.ext4")),
            "-device",
            "virtio-blk-device,drive=root",
        ])
        .args([
            "-drive",
            &drive("work", &vm.join("work.ext4")),
            "-device",
            "virtio-blk-device,drive=work",
        ])
        .args(["-device", "virtio-serial-device", "-chardev"])
        .arg(format!(
            "socket,path={},server=on,wait=off,id=agent",
            vm.join("agent.sock").display()
        ))
        .args(["-device", "virtserialport,chardev=agent,name=banger.agent"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu starts");
    let mut vm_proc = Vm(qemu);
    let boot = Instant::now();
    let mut log = String::new();
    while boot.elapsed() < Duration::from_secs(180) {
        log = std::fs::read_to_string(&console).unwrap_or_default();
        if log.contains(guest_init::READY_MARKER) {
            break;
        }
        if let Ok(Some(status)) = vm_proc.0.try_wait() {
            panic!("qemu exited early ({status}); console:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(vm_proc);
    eprintln!("boot to ready marker: {:?}", boot.elapsed());
    assert!(
        log.contains(guest_init::READY_MARKER),
        "no ready marker; console:\n{log}"
    );
    assert!(
        log.contains("probe: work seed says hello-from-seed"),
        "{log}"
    );
    assert!(log.contains("probe: root mode 700"), "{log}");
    assert!(
        log.contains("banger.agent"),
        "virtio-serial port named: {log}"
    );
    assert!(
        log.contains("virtio_blk") && log.contains("virtio_net"),
        "{log}"
    );
    assert!(
        !log.contains("banger-initramfs:"),
        "initramfs complained: {log}"
    );
}
