//! A real systemd for the systemd tier: a Debian 12 root booted with `systemd-nspawn -b` in its
//! own network namespace.
//!
//! - The root is built once per machine with debootstrap from the host's Debian mirror (the
//!   one the image build uses, `banger_image::mirror`), cached under
//!   `/var/tmp/banger-systemd-root/<key>` where the key is a hash of the recipe below. It is
//!   built in a temp dir and renamed into place under a lock, so concurrent tests never see a
//!   half-built root.
//! - Each boot runs on a fresh copy of that root (the test installs units, users and state
//!   into it), removed when the container is dropped.
//! - `--private-network` gives the container only its own loopback: the bridge, TAPs and
//!   guests it makes live in that namespace (the network rule).
//! - Commands run inside with `nsenter -t <its systemd> -a`; every one has a timeout.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{run, wait_until};

/// The suite of the container root.
const SUITE: &str = "bookworm";

/// Packages on top of minbase: systemd as PID 1 and its bus, systemd-resolved (the host
/// resolver banger routes `*.vm` through), and banger's runtime packages (install.sh's list,
/// minus what only image builds need: this test imports a built image).
const PACKAGES: &[&str] = &[
    "systemd-sysv",
    "dbus",
    "systemd-resolved",
    "qemu-system-x86",
    "openssh-client",
    "e2fsprogs",
    "iproute2",
    "nftables",
    "procps",
    "ca-certificates",
];

/// Where built roots are cached, outside any clone.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BANGER_SYSTEMD_ROOT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/banger-systemd-root"))
}

fn mirror() -> String {
    let sources = banger_image::mirror::read_host_sources(Path::new("/etc/apt"))
        .expect("read the host's apt sources");
    banger_image::mirror::select(&sources, SUITE)
        .expect("the host's apt sources name a Debian mirror")
        .archive
}

fn sha256_hex(text: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("recipe");
    std::fs::write(&file, text).expect("write recipe");
    let out = Command::new("sha256sum")
        .arg(&file)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)[..16].to_owned()
}

/// The cached root for the recipe, built now when missing (minutes, once per machine).
pub fn root() -> PathBuf {
    let mirror = mirror();
    let recipe = format!(
        "debootstrap --variant=minbase --include={} {SUITE} {mirror}\nv1",
        PACKAGES.join(",")
    );
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).expect("root cache dir");
    let ready = cache.join(sha256_hex(&recipe));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache.join("build.lock"))
        .expect("lock file");
    lock.lock().expect("root build lock");
    if ready.join("usr/lib/systemd/systemd").exists() {
        return ready;
    }
    let building = cache.join(format!("building.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    eprintln!("building the systemd container root (once per machine): {recipe}");
    let mut cmd = Command::new("debootstrap");
    cmd.args([
        "--variant=minbase",
        &format!("--include={}", PACKAGES.join(",")),
        SUITE,
    ])
    .arg(&building)
    .arg(&mirror);
    let out = run(cmd, Duration::from_secs(1500));
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&building);
        panic!(
            "debootstrap of the container root failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // No getty on a console nobody reads, and no network manager: the test owns the links.
    let _ = std::fs::remove_file(
        building.join("etc/systemd/system/getty.target.wants/getty@tty1.service"),
    );
    std::fs::write(building.join("etc/hostname"), "banger-systemd\n").expect("hostname");
    std::fs::rename(&building, &ready).expect("move the built root into place");
    ready
}

/// A booted container; powered off and its copy removed on drop.
pub struct Container {
    nspawn: Option<Child>,
    leader: u32,
    dir: PathBuf,
}

/// A file or directory of the host made visible inside, read-only.
pub struct Bind {
    /// Path on the host.
    pub host: PathBuf,
    /// Path inside the container.
    pub inside: String,
}

impl Container {
    /// Boots a fresh copy of `root` with `binds`, and waits until systemd says `running`.
    pub fn boot(root: &Path, binds: &[Bind]) -> Self {
        let dir = cache_dir().join(format!("run.{}", std::process::id()));
        let _ = Command::new("rm").arg("-rf").arg(&dir).status();
        std::fs::create_dir_all(&dir).expect("run dir");
        let copy = dir.join("root");
        let status = Command::new("cp")
            .arg("-a")
            .arg("--reflink=auto")
            .arg(root)
            .arg(&copy)
            .status()
            .expect("cp");
        assert!(status.success(), "copy of the container root failed");
        let log = std::fs::File::create(dir.join("nspawn.log")).expect("nspawn log");
        let mut cmd = Command::new("systemd-nspawn");
        cmd.args([
            "-b",
            "--private-network",
            "--capability=all",
            "--bind=/dev/net/tun",
            "--register=no",
            "--keep-unit",
            "--quiet",
            "--console=passive",
        ]);
        for bind in binds {
            cmd.arg(format!("--bind-ro={}:{}", bind.host.display(), bind.inside));
        }
        cmd.arg("-D").arg(&copy);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .env_remove("NOTIFY_SOCKET");
        let nspawn = cmd.spawn().expect("systemd-nspawn starts");
        let nspawn_pid = nspawn.id();
        let mut container = Self {
            nspawn: Some(nspawn),
            leader: 0,
            dir,
        };
        let mut leader = None;
        assert!(
            wait_until(Duration::from_secs(30), || {
                leader = child_of(nspawn_pid);
                leader.is_some()
            }),
            "systemd-nspawn started no container: {}",
            container.nspawn_log()
        );
        container.leader = leader.expect("leader");
        let mut state = String::new();
        let running = wait_until(Duration::from_secs(120), || {
            let out = container.exec(&["systemctl", "is-system-running"], Duration::from_secs(10));
            state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            state == "running" || state == "degraded"
        });
        if state == "degraded" {
            let out = container.exec(
                &["systemctl", "--failed", "--no-legend"],
                Duration::from_secs(10),
            );
            eprintln!(
                "container is degraded: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        assert!(
            running,
            "container systemd is `{state}` after 120 s: {}",
            container.nspawn_log()
        );
        // A Debian host's udev makes /dev/net/tun 0666 (50-udev-default.rules), so an
        // unprivileged VMM can open the TAP the helper gave it; the bind-mount carries this
        // machine's node, which may be 0600. A node of the container's own replaces it (the
        // bind keeps the device allowed), leaving the host's node untouched.
        container.ok(&["umount", "/dev/net/tun"]);
        container.ok(&["rm", "-f", "/dev/net/tun"]);
        container.ok(&["mknod", "-m", "0666", "/dev/net/tun", "c", "10", "200"]);
        container
    }

    fn nspawn_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nspawn.log")).unwrap_or_default()
    }

    /// The pid of the container's systemd on the host (for `nsenter -t PID -n`: a host
    /// program on the container's own loopback).
    pub fn leader(&self) -> u32 {
        self.leader
    }

    /// The container's root directory on the host.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Runs `args` inside as root, with a plain environment.
    pub fn exec(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.leader.to_string())
            .arg("-a")
            .arg("--")
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        run(cmd, timeout)
    }

    /// Runs `args` inside as `user` (through `runuser`, no sudo), with that user's `HOME`.
    pub fn exec_as(&self, user: &str, args: &[&str], timeout: Duration) -> Output {
        let home = format!("HOME=/home/{user}");
        let mut full = vec![
            "runuser", "-u", user, "--", "env", &home, "USER=", "LOGNAME=",
        ];
        full.extend_from_slice(args);
        self.exec(&full, timeout)
    }

    /// Like [`Self::exec`], asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.exec(args, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "in container {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Like [`Self::exec_as`], asserting success; returns stdout.
    pub fn ok_as(&self, user: &str, args: &[&str], timeout: Duration) -> String {
        let out = self.exec_as(user, args, timeout);
        assert!(
            out.status.success(),
            "in container as {user} {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut nspawn) = self.nspawn.take() {
            // A clean power-off first; then the nspawn process, bounded either way.
            let _ = self.exec(&["systemctl", "poweroff"], Duration::from_secs(10));
            let pid = nspawn.id();
            let gone = wait_until(Duration::from_secs(30), || {
                matches!(nspawn.try_wait(), Ok(Some(_)))
            });
            if !gone {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                let _ = Command::new("kill")
                    .args(["-9", &self.leader.to_string()])
                    .status();
                let _ = nspawn.wait();
            }
        }
        let _ = Command::new("rm").arg("-rf").arg(&self.dir).status();
    }
}

/// The container's systemd: the child of `systemd-nspawn` named `systemd`.
fn child_of(pid: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for task in tasks.filter_map(Result::ok) {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace() {
            // The outer child of nspawn comes and goes; PID 1 of the container is `systemd`.
            let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            if comm.trim() == "systemd" {
                return child.parse().ok();
            }
        }
    }
    None
}

/// Where the systemd-tier tests bind the default guest's kernel and image in the container.
pub const GUEST: &str = "/srv/banger-guest";

/// Pulls the default image and kernel on `bed`'s host side (then stops that daemon) and
/// returns the binds that put their files at [`GUEST`].
pub fn guest_binds(bed: &super::Guestbed) -> Vec<Bind> {
    bed.pull_defaults();
    let show = |what: &str, name: &str| -> serde_json::Value {
        serde_json::from_str(&bed.ok(&[what, "show", name, "--json"])).expect("show json")
    };
    let image = show("image", "debian-bookworm");
    let kernel = show("kernel", "debian-cloud");
    bed.ok(&["daemon", "stop"]);
    let field = |v: &serde_json::Value, key: &str| {
        PathBuf::from(v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")))
    };
    [
        (field(&kernel, "vmlinux_path"), "vmlinux"),
        (field(&kernel, "initrd_path"), "initrd.img"),
        (field(&image, "rootfs_path"), "rootfs.ext4"),
        (field(&image, "work_seed_path"), "work-seed.ext4"),
    ]
    .into_iter()
    .map(|(host, name)| Bind {
        host,
        inside: format!("{GUEST}/{name}"),
    })
    .collect()
}

impl Container {
    /// Registers the guest bound by [`guest_binds`] as `owner`: kernel `debian-cloud`, image
    /// `debian-bookworm`.
    pub fn register_guest(&self, owner: &str, timeout: Duration) {
        let vmlinux = format!("{GUEST}/vmlinux");
        let initrd = format!("{GUEST}/initrd.img");
        let rootfs = format!("{GUEST}/rootfs.ext4");
        let seed = format!("{GUEST}/work-seed.ext4");
        let kernel = [
            "banger",
            "kernel",
            "register",
            "debian-cloud",
            "--vmlinux",
            &vmlinux,
            "--initrd",
            &initrd,
        ];
        let image = [
            "banger",
            "image",
            "register",
            "--name",
            "debian-bookworm",
            "--rootfs",
            &rootfs,
            "--work-seed",
            &seed,
            "--kernel",
            "debian-cloud",
        ];
        self.ok_as(owner, &kernel, timeout);
        self.ok_as(owner, &image, timeout);
    }
}
