//! The helper's jail requests on a real socket, with the fake jailer and the fake Firecracker
//! of `banger-testkit` as the configured binaries: a vetted launch stages the chroot (hard
//! links), starts the jailer and answers its pid; a release removes the chroot; every request
//! outside the policy is refused and changes nothing on disk.
//!
//! The owner is the test's own user, so this runs unprivileged (the fake jailer then skips the
//! device nodes and the uid drop); the uid drop as root is the privilege tier's
//! (`tests/e2e/tests/privilege.rs`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banger_helper::{HelperJail, JailCallError, JailPolicy, Policy, server, socket};
use banger_model::jail::{JailLaunch, JailRef};
use banger_net::{NetError, NetPlan};
use banger_testkit::fakes::FakeNet;

const VM: &str = "0123456789abcdef";

struct Bed {
    dir: tempfile::TempDir,
    uid: u32,
    gid: u32,
    firecracker: PathBuf,
    jailer: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Bed {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// A helper serving this bed's owner; with the jail policy unless `jail` is false.
    fn start(jail: bool) -> Self {
        let (firecracker, jailer) = banger_testkit::fake_firecracker_bins();
        let dir = tempfile::Builder::new()
            .prefix("bhj")
            .tempdir_in("/tmp")
            .expect("tempdir");
        for d in ["state/kernels", "state/vms/x", "run", "outside"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("dirs");
        }
        for f in [
            "state/kernels/vmlinux",
            "state/vms/x/rootfs.ext4",
            "outside/secret",
        ] {
            std::fs::write(dir.path().join(f), f).expect("file");
        }
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let mut bed = Self {
            dir,
            uid,
            gid,
            firecracker: firecracker.to_path_buf(),
            jailer: jailer.to_path_buf(),
            stop: None,
            task: None,
        };
        let policy = JailPolicy::new(
            bed.jailer.clone(),
            bed.firecracker.clone(),
            gid,
            &bed.state(),
            &bed.path("run"),
        );
        let policy = Policy::new(NetPlan::default(), uid).with_jail(jail.then_some(policy));
        let listener = socket::bind(&bed.path("helper/helper.sock"), uid).expect("bind");
        let (tx, rx) = tokio::sync::oneshot::channel();
        bed.task = Some(tokio::spawn(server::serve(
            listener,
            Arc::new(policy),
            Arc::new(FakeNet::new()),
            async move {
                let _ = rx.await;
            },
        )));
        bed.stop = Some(tx);
        bed
    }

    fn client(&self) -> HelperJail {
        HelperJail::new(self.path("helper/helper.sock"))
    }

    fn jail(&self) -> JailRef {
        JailRef {
            vm_id: VM.to_owned(),
            exec_file: self.firecracker.clone(),
            chroot_base: self.state().join("jailer"),
        }
    }

    fn launch(&self) -> JailLaunch {
        JailLaunch {
            jail: self.jail(),
            jailer_bin: self.jailer.clone(),
            uid: self.uid,
            gid: self.gid,
            kernel: self.state().join("kernels/vmlinux"),
            initrd: None,
            disks: vec![self.state().join("vms/x/rootfs.ext4")],
        }
    }

    fn jail_dir(&self) -> PathBuf {
        let name = self.firecracker.file_name().expect("name");
        self.state()
            .join("jailer")
            .join(name)
            .join(format!("banger-{VM}"))
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

/// Every path under `root` with its inode, size and mode: what a refusal must not change.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            if path.ends_with("helper") {
                continue;
            }
            out.push(format!(
                "{} {} {} {:o}",
                path.display(),
                meta.ino(),
                meta.len(),
                meta.mode()
            ));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn console(bed: &Bed) -> std::fs::File {
    std::fs::File::create(bed.path("console.log")).expect("console")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vetted_launch_stages_and_spawns_and_a_release_removes_the_jail() {
    let bed = Bed::start(true);
    let (client, launch, console) = (bed.client(), bed.launch(), console(&bed));
    let pid = tokio::task::spawn_blocking(move || client.launch(&launch, &console))
        .await
        .expect("task")
        .expect("launched");
    let root = bed.jail_dir().join("root");
    let kernel = std::fs::metadata(bed.state().join("kernels/vmlinux")).expect("kernel");
    let linked = std::fs::metadata(root.join("vmlinux")).expect("staged kernel");
    assert_eq!(kernel.ino(), linked.ino(), "the kernel is hard-linked");
    let disk = std::fs::metadata(bed.state().join("vms/x/rootfs.ext4")).expect("disk");
    assert_eq!(
        disk.ino(),
        std::fs::metadata(root.join("disk0")).expect("disk0").ino()
    );
    assert!(
        root.join("firecracker-vmm.log").is_file(),
        "the VMM log exists"
    );
    let name = bed
        .firecracker
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid_file = root.join(format!("{name}.pid"));
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let recorded: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(recorded, pid, "the helper answered the jailer's pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !banger_vmm_tag_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the jailed VMM never ran with its tag"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    );
    let (client, jail) = (bed.client(), bed.jail());
    tokio::task::spawn_blocking(move || client.release(&jail))
        .await
        .expect("task")
        .expect("released");
    assert!(!bed.jail_dir().exists(), "the jail is gone");
    assert!(
        bed.state().join("vms/x/rootfs.ext4").exists(),
        "the disk stays"
    );
    bed.stop().await;
}

fn banger_vmm_tag_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&format!("banger-{VM}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_outside_the_policy_are_refused_and_change_nothing() {
    let bed = Bed::start(true);
    std::os::unix::fs::symlink(bed.path("outside"), bed.state().join("link")).expect("symlink");
    std::os::unix::fs::symlink(bed.path("outside/secret"), bed.state().join("secret-link"))
        .expect("symlink");
    let good = bed.launch();
    let mut bad: Vec<(&str, JailLaunch)> = Vec::new();
    let mut with = |what: &'static str, f: &dyn Fn(&mut JailLaunch)| {
        let mut l = good.clone();
        f(&mut l);
        bad.push((what, l));
    };
    with("another jailer", &|l| l.jailer_bin = "/bin/sh".into());
    with("another exec file", &|l| {
        l.jail.exec_file = "/bin/sh".into()
    });
    with("another uid", &|l| l.uid = l.uid.wrapping_add(1));
    with("another gid", &|l| l.gid = l.gid.wrapping_add(1));
    with("a bad vm id", &|l| l.jail.vm_id = "../../etc".into());
    with("a too long vm id", &|l| l.jail.vm_id = "a".repeat(60));
    let outside = bed.path("outside");
    with("a base outside", &|l| l.jail.chroot_base = outside.clone());
    let dotted = bed.state().join("../outside");
    with("a base with ..", &|l| l.jail.chroot_base = dotted.clone());
    let linked = bed.state().join("link/jailer");
    with("a base through a symlink", &|l| {
        l.jail.chroot_base = linked.clone()
    });
    let secret = bed.path("outside/secret");
    with("a kernel outside", &|l| l.kernel = secret.clone());
    with("/etc/passwd as a disk", &|l| {
        l.disks = vec!["/etc/passwd".into()]
    });
    let secret_link = bed.state().join("secret-link");
    with("a disk linking outside", &|l| {
        l.disks = vec![secret_link.clone()]
    });
    let dir = bed.state().join("vms/x");
    with("a directory as a disk", &|l| l.disks = vec![dir.clone()]);
    let missing = bed.state().join("vms/x/missing");
    with("a missing initrd", &|l| l.initrd = Some(missing.clone()));

    drop(console(&bed));
    let before = (tree(bed.dir.path()), tree(&bed.path("outside")));
    for (what, launch) in bad {
        let (client, console) = (bed.client(), console(&bed));
        let got = tokio::task::spawn_blocking(move || client.launch(&launch, &console))
            .await
            .expect("task");
        assert!(
            matches!(got, Err(JailCallError::Helper(NetError::Refused(_)))),
            "{what}: {got:?}"
        );
    }
    for (what, jail) in [
        (
            "release outside",
            JailRef {
                chroot_base: bed.path("outside"),
                ..bed.jail()
            },
        ),
        (
            "release through a symlink",
            JailRef {
                chroot_base: bed.state().join("link"),
                ..bed.jail()
            },
        ),
        (
            "release of another exec file",
            JailRef {
                exec_file: "/bin/sh".into(),
                ..bed.jail()
            },
        ),
    ] {
        let client = bed.client();
        let got = tokio::task::spawn_blocking(move || client.release(&jail))
            .await
            .expect("task");
        assert!(
            matches!(got, Err(JailCallError::Helper(NetError::Refused(_)))),
            "{what}: {got:?}"
        );
    }
    // No console descriptor: refused too (sent as a plain line by the network client).
    let answer = banger_helper::HelperNet::new(bed.path("helper/helper.sock"))
        .send(&banger_helper::Request::LaunchJail { launch: good })
        .await
        .expect("answer");
    assert!(
        matches!(&answer, banger_helper::Response::Refused { reason } if reason.contains("descriptor")),
        "{answer:?}"
    );
    let after = (tree(bed.dir.path()), tree(&bed.path("outside")));
    assert_eq!(before.0, after.0, "the files changed");
    assert_eq!(before.1, after.1, "the outside changed");
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_without_a_jailer_refuses_jails_naming_the_fix() {
    let bed = Bed::start(false);
    let (client, launch, console) = (bed.client(), bed.launch(), console(&bed));
    let got = tokio::task::spawn_blocking(move || client.launch(&launch, &console))
        .await
        .expect("task");
    let Err(JailCallError::Helper(NetError::Refused(reason))) = got else {
        panic!("not refused: {got:?}");
    };
    assert!(reason.contains("--jailer"), "{reason}");
    assert!(!bed.jail_dir().exists());
    // No helper at all: the error names the install.
    let none = HelperJail::new(bed.path("nowhere.sock"));
    let err = none.release(&bed.jail()).expect_err("no helper");
    assert!(err.to_string().contains("system install"), "{err}");
    bed.stop().await;
}
