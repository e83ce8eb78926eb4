//! Auto-pull on the first create: the default image comes from a catalog bundle served on the
//! namespace's loopback, is verified against its pinned digest, shown as a stage, and reused
//! (the stage is skipped) by the next create.
//!
//! Needs root, QEMU and (for the host-side pulls that produce the bundle's files) the Debian
//! mirror.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use common::{Guestbed, wait_until};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(900);
const PORT: u16 = 18931;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the test's config when the test ends, so other tests see the defaults.
struct ConfigGuard(std::path::PathBuf);

impl Drop for ConfigGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

fn copy(src: &str, dst: &Path) {
    let status = Command::new("cp")
        .args(["--sparse=always", src])
        .arg(dst)
        .status()
        .expect("cp");
    assert!(status.success());
}

#[test]
#[ignore = "needs root, QEMU and a real guest"]
fn first_create_auto_pulls_the_default_image_from_a_loopback_bundle() {
    let bed = Guestbed::new();
    bed.pull_defaults();

    // The bundle: the default image's files, a manifest with their digests.
    let image: Value =
        serde_json::from_str(&bed.ok(&["image", "show", "debian-bookworm", "--json"]))
            .expect("json");
    let kernel: Value =
        serde_json::from_str(&bed.ok(&["kernel", "show", "debian-cloud", "--json"])).expect("json");
    let dir = common::e2e_root().join("bundle");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bundle dir");
    copy(
        kernel["vmlinux_path"].as_str().expect("vmlinux"),
        &dir.join("vmlinux"),
    );
    copy(
        kernel["initrd_path"].as_str().expect("initrd"),
        &dir.join("initrd.img"),
    );
    copy(
        image["rootfs_path"].as_str().expect("rootfs"),
        &dir.join("rootfs.ext4"),
    );
    copy(
        image["work_seed_path"].as_str().expect("seed"),
        &dir.join("work-seed.ext4"),
    );
    let file = |name: &str| serde_json::json!({"path": name, "sha256": sha256(&dir.join(name))});
    let manifest = serde_json::json!({
        "kernel": file("vmlinux"),
        "initrd": file("initrd.img"),
        "rootfs": file("rootfs.ext4"),
        "work_seed": file("work-seed.ext4"),
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("manifest");
    let digest = sha256(&dir.join("manifest.json"));

    // Served on the namespace's loopback only.
    let server = Server(
        bed.ns()
            .command("python3")
            .args([
                "-m",
                "http.server",
                &PORT.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("http server"),
    );
    assert!(wait_until(Duration::from_secs(10), || {
        bed.ns()
            .command("python3")
            .args([
                "-c",
                &format!("import urllib.request;urllib.request.urlopen('http://127.0.0.1:{PORT}/manifest.json')"),
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }));

    // A fresh start: no bundle image yet, the config names it as the default.
    bed.ok(&["daemon", "stop"]);
    let _ = bed.banger(&["image", "rm", "e2e-bundle"], Duration::from_secs(60));
    let _ = bed.banger(&["kernel", "rm", "e2e-bundle"], Duration::from_secs(60));
    bed.ok(&["daemon", "stop"]);
    let config = bed.layout().config_file;
    std::fs::create_dir_all(config.parent().expect("config dir")).expect("config dir");
    let _config_guard = ConfigGuard(config.clone());
    std::fs::write(
        &config,
        format!(
            "default_image_name = \"e2e-bundle\"\n\n[[catalog]]\nname = \"e2e-bundle\"\nsource = \"http://127.0.0.1:{PORT}/manifest.json\"\ndigest = \"sha256:{digest}\"\n"
        ),
    )
    .expect("config");

    let out = bed.banger(
        &[
            "vm", "create", "--name", "e2e-c", "--vcpu", "1", "--memory", "512M",
        ],
        LONG,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "first create: {stderr}");
    assert!(
        stderr.contains("auto-pull") && !stderr.contains("auto-pull (skipped"),
        "{stderr}"
    );
    let shown: Value =
        serde_json::from_str(&bed.ok(&["image", "show", "e2e-bundle", "--json"])).expect("json");
    assert_eq!(shown["name"], "e2e-bundle");
    let host = bed.banger(
        &["vm", "ssh", "e2e-c", "--", "hostname"],
        Duration::from_secs(120),
    );
    assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), "e2e-c");

    // The second create reuses what the first one pulled.
    let out = bed.banger(
        &[
            "vm", "create", "--name", "e2e-d", "--vcpu", "1", "--memory", "512M",
        ],
        LONG,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "second create: {stderr}");
    assert!(stderr.contains("auto-pull (skipped"), "{stderr}");

    bed.ok(&["vm", "delete", "e2e-c", "e2e-d"]);
    drop(server);
}
