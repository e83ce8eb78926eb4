//! An OCI image with no sshd, no ssh-keygen, no init, no iproute2, no git and no libc at all
//! (busybox-static as `/bin/sh`, `tar` and friends, and an empty `/etc`) boots and keeps the
//! SSH contract: banger injects its OpenSSH bundle at pull time, the agent runs it through the
//! bundle's own loader and makes a host key per VM.
//!
//! Two guests: one from `vm run` (exit code, workspace copied without git, `vm ssh`,
//! `vm exec`), one from `vm create` (its host key differs). Needs root, QEMU, docker-registry,
//! skopeo, busybox-static and openssh-server (the bundle's source), and the default kernel.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use banger_testkit::oci::{Layout, Z, host_arch};
use common::Guestbed;

const LONG: Duration = Duration::from_secs(900);

/// busybox applets the image links (as an Alpine or busybox image would).
const APPLETS: &[&str] = &["sh", "cat", "rm", "mkdir", "tar", "ls", "echo"];

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image's only layer: busybox-static and its applet links, the usual empty directories.
fn busybox_layer(work: &Path) -> Vec<u8> {
    let tree = work.join("tree");
    for dir in ["bin", "etc", "dev", "proc", "sys", "tmp", "run", "root"] {
        std::fs::create_dir_all(tree.join(dir)).expect("dir");
    }
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).expect("busybox-static installed");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet)).expect("link");
    }
    let tar = work.join("layer.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&tree)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    std::fs::read(&tar).expect("layer")
}

fn git(repo: &Path, args: &[&str]) {
    run(Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@e"])
        .args(args));
}

fn out_ok(what: &str, out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn host_key(bed: &Guestbed, vm: &str) -> String {
    let out = bed.banger(
        &[
            "vm",
            "ssh",
            vm,
            "--",
            "cat",
            "/etc/ssh/ssh_host_ed25519_key.pub",
        ],
        Duration::from_secs(120),
    );
    let key = out_ok("vm ssh cat host key", &out);
    assert!(key.starts_with("ssh-ed25519 "), "{key}");
    key
}

#[test]
#[ignore = "needs root, QEMU, docker-registry, skopeo, busybox-static, openssh-server and a real guest"]
fn an_image_without_sshd_init_or_libc_keeps_the_ssh_contract() {
    for tool in ["/bin/busybox", "/usr/sbin/sshd"] {
        assert!(Path::new(tool).exists(), "{tool} is needed on the host");
    }
    let bed = Guestbed::new();
    bed.pull_defaults();
    let work = tempfile::tempdir_in(common::e2e_root()).expect("work dir");
    let layer = busybox_layer(work.path());
    let mut layout = Layout::new(&work.path().join("layout"));
    let manifest = layout.manifest(&[(layer, Z::Gzip)], host_arch(), &[]);
    layout.tag(&manifest, "1");

    let registry = bed.registry();
    registry.push(&layout.dir, "1", "test/sshless", false);
    let reference = format!("localhost:{}/test/sshless:1", registry.port);
    for vm in ["sl-a", "sl-b"] {
        let _ = bed.banger(&["vm", "delete", vm], Duration::from_secs(60));
    }
    let _ = bed.banger(&["image", "rm", "sshless"], Duration::from_secs(60));
    let t = Instant::now();
    let out = bed.banger(&["image", "pull", &reference, "--name", "sshless"], LONG);
    out_ok("image pull", &out);
    eprintln!("pull with the ssh bundle: {:?}", t.elapsed());

    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).expect("repo");
    std::fs::write(repo.join("README"), "tracked-file\n").expect("file");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "x"]);

    // `vm run`: the workspace is copied without git, the command's exit code is banger's.
    let t = Instant::now();
    let out = bed.banger(
        &[
            "vm",
            "run",
            "--name",
            "sl-a",
            "--image",
            "sshless",
            "--vcpu",
            "1",
            "--memory",
            "512M",
            repo.to_str().expect("utf8"),
            "--",
            "sh",
            "-c",
            "cat README; exit 3",
        ],
        LONG,
    );
    eprintln!("vm run on the sshless image: {:?}", t.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "vm run: {}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tracked-file");
    assert!(
        stderr.contains("no git"),
        "the git-less copy is announced: {stderr}"
    );

    // `vm ssh` and `vm exec` on the same guest.
    let out = bed.banger(
        &["vm", "ssh", "sl-a", "--", "sh", "-c", "exit 4"],
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(4), "vm ssh exit code");
    let key_a = host_key(&bed, "sl-a");
    let out = bed.banger(
        &["vm", "exec", "sl-a", "--", "cat", "README"],
        Duration::from_secs(120),
    );
    assert_eq!(out_ok("vm exec", &out), "tracked-file");
    bed.ok(&["vm", "delete", "sl-a"]);

    // A second VM from the same image has its own host key.
    bed.ok(&[
        "vm", "create", "--name", "sl-b", "--image", "sshless", "--vcpu", "1", "--memory", "512M",
    ]);
    let key_b = host_key(&bed, "sl-b");
    assert_ne!(key_a, key_b, "every VM makes its own host key");
    bed.ok(&["vm", "delete", "sl-b"]);
    bed.ok(&["image", "rm", "sshless"]);
    drop(registry);
}
