//! `image pull` from a real OCI registry, then a VM from the pulled image: the registry
//! (Debian's docker-registry) runs on the test namespace's loopback, where the daemon runs,
//! and the image is the default image's own tree as a base layer with three layers on top
//! (a marker, a whiteout, an opaque directory; gzip, zstd and plain), pushed with skopeo.
//!
//! Needs root, QEMU, docker-registry and skopeo, and the default image (pulled on the host
//! side from the Debian mirror on first run).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use banger_testkit::oci::{E, Layout, Z, host_arch, tar_layer};
use common::Guestbed;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(900);

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tree of an ext4 image, dumped with debugfs (owners and modes kept: we are root).
fn dump(image: &str, into: &Path) {
    std::fs::create_dir_all(into).expect("dump dir");
    run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("rdump / {}", into.display()))
        .arg(image));
    let _ = std::fs::remove_dir_all(into.join("lost+found"));
}

#[test]
#[ignore = "needs root, QEMU, docker-registry, skopeo and a real guest"]
fn a_pulled_oci_image_boots_with_its_layers_applied() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let default: Value =
        serde_json::from_str(&bed.ok(&["image", "show", "debian-bookworm", "--json"]))
            .expect("json");

    // Base layer: the default image (it has the init, sshd and the agent contract) with its
    // /root back in place.
    let work = tempfile::tempdir_in(common::e2e_root()).expect("work dir");
    let tree = work.path().join("tree");
    dump(default["rootfs_path"].as_str().expect("rootfs"), &tree);
    dump(
        default["work_seed_path"].as_str().expect("seed"),
        &tree.join("root"),
    );
    let base_tar = work.path().join("base.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&tree)
        .arg("-cf")
        .arg(&base_tar)
        .arg("."));
    let base = std::fs::read(&base_tar).expect("base tar");
    let lower = tar_layer(&[
        E::Dir("etc/"),
        E::File("etc/marker", b"lower\n"),
        E::File("etc/oci-gone", b"whited out\n"),
        E::Dir("srv/"),
        E::Dir("srv/opq/"),
        E::File("srv/opq/lower-a", b"a\n"),
        E::File("srv/opq/lower-b", b"b\n"),
    ]);
    // The upper layer also deletes OpenSSH: a glibc image without sshd or ssh-keygen gets
    // banger's bundle and still serves the session below.
    let upper = tar_layer(&[
        E::File("usr/sbin/.wh.sshd", b""),
        E::File("usr/bin/.wh.ssh-keygen", b""),
        E::File("etc/.wh.oci-gone", b""),
        E::File("srv/opq/.wh..wh..opq", b""),
        E::File("srv/opq/upper", b"upper\n"),
    ]);
    let top = tar_layer(&[E::File("etc/marker", b"top-layer-marker\n")]);
    let mut layout = Layout::new(&work.path().join("layout"));
    let manifest = layout.manifest(
        &[
            (base, Z::None),
            (lower, Z::Gzip),
            (upper, Z::Zstd),
            (top, Z::None),
        ],
        host_arch(),
        &["APP=1"],
    );
    layout.tag(&manifest, "1");
    std::fs::remove_dir_all(&tree).expect("drop the dump");
    std::fs::remove_file(&base_tar).expect("drop the tar");

    // The registry lives where the daemon does: on the namespace's loopback.
    let registry = bed.registry();
    registry.push(&layout.dir, "1", "test/app", false);
    let reference = format!("localhost:{}/test/app:1", registry.port);

    let _ = bed.banger(&["image", "rm", "oci-app"], Duration::from_secs(60));
    let out = bed.banger(&["image", "pull", &reference, "--name", "oci-app"], LONG);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pull: {stderr}");
    assert!(stderr.contains("layer 4/4"), "per-layer progress: {stderr}");
    let shown = bed.ok(&["image", "show", "oci-app"]);
    assert!(shown.contains("APP=1"), "{shown}");

    // A throwaway repo for `vm run` (it copies one in).
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).expect("repo");
    std::fs::write(repo.join("README"), "x\n").expect("file");
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "x",
        ],
    ] {
        run(Command::new("git").arg("-C").arg(&repo).args(args));
    }
    let script = "cat /etc/marker; test -e /etc/oci-gone && echo GONE-EXISTS; ls /srv/opq; \
                  test -e /usr/sbin/sshd && echo SSHD-EXISTS; \
                  test -x /usr/local/lib/banger/ssh/bin/sshd && echo bundled-sshd";
    let out = bed.banger(
        &[
            "vm",
            "run",
            "--rm",
            "--image",
            "oci-app",
            "--vcpu",
            "1",
            "--memory",
            "512M",
            repo.to_str().expect("utf8"),
            "--",
            "sh",
            "-c",
            script,
        ],
        LONG,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "vm run: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["top-layer-marker", "upper", "bundled-sshd"],
        "the top layer's marker, no whited-out file, only the upper layer in the opaque dir, \
         the session served by banger's sshd bundle"
    );

    bed.ok(&["image", "rm", "oci-app"]);
    drop(registry);
}
