//! `banger update` under a real systemd (the systemd tier's container), on a running VM: the
//! issue's acceptance scenarios in one boot of one guest.
//!
//! The test makes two release keys with openssl and cuts releases with `scripts/make-release
//! --binaries`: a good `v9.9.9` from binaries really stamped `v9.9.9`
//! (`BANGER_E2E_UPDATE_BINARIES`, built by `.ci/run` before the tests, because `cargo test`
//! holds the target dir's lock), one whose `bangerd` passes `--check-migrations` but exits 1
//! as a daemon, one whose `bangerd --check-migrations` exits 2, and copies of the good one
//! with a tampered tarball, a tampered `SHA256SUMS`, a signature by the other key and a
//! malformed signature. Each lives in its own directory with its own manifest (all claiming
//! `v9.9.9`), served by the host's `python3 -m http.server` inside the container's network
//! namespace (its loopback only). The install under test is the first version.
//!
//! Needs root, `systemd-container`, debootstrap, the Debian mirror, QEMU and openssl.

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Guestbed;
use common::container::{self, Bind, Container};
use serde_json::Value;

const OWNER: &str = "tester";
const NEW: &str = "v9.9.9";
const PORT: u16 = 8931;
const SRC_BIN: &str = "/opt/banger-under-test/bin";
const SRC_AGENT: &str = "/opt/banger-under-test/libexec/banger/banger-agent";
const LONG: Duration = Duration::from_secs(600);
/// Where the release keys' public halves appear inside the container.
const GOOD_PUB: &str = "/root/release.pub.pem";

/// The directory of binaries stamped `v9.9.9`, which `.ci/run` builds before the tests.
fn stamped() -> PathBuf {
    let Some(dir) = std::env::var_os("BANGER_E2E_UPDATE_BINARIES") else {
        panic!(
            "BANGER_E2E_UPDATE_BINARIES is not set: it must name a directory with banger, \
             bangerd and banger-agent built with BANGER_VERSION={NEW}. Make one with \
             `BANGER_VERSION={NEW} cargo build -p banger-cli -p bangerd -p banger-agent && \
             mkdir -p /tmp/v9 && cp target/debug/{{banger,bangerd,banger-agent}} /tmp/v9 && \
             cargo build -p banger-cli -p bangerd -p banger-agent` (the last build restores \
             the normal stamp), then run with BANGER_E2E_UPDATE_BINARIES=/tmp/v9 (.ci/run \
             does this)"
        )
    };
    let dir = PathBuf::from(dir);
    let out = Command::new(dir.join("banger"))
        .arg("--version")
        .output()
        .expect("run the stamped banger");
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with(&format!("banger {NEW} ")),
        "{} is not stamped {NEW}: {line}",
        dir.display()
    );
    dir
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    run_ok(Command::new("openssl").args(args).current_dir(dir))
}

fn make_release(binaries: &Path, out: &Path, key: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-release");
    let mut cmd = Command::new(script);
    cmd.arg(NEW)
        .arg(out)
        .arg("--key")
        .arg(key)
        .arg("--binaries")
        .arg(binaries);
    run_ok(&mut cmd);
}

/// A binary set: the stamped banger and agent, with `bangerd` replaced by `script`.
fn with_bangerd(stamped: &Path, dir: &Path, script: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    for bin in ["banger", "banger-agent"] {
        std::fs::copy(stamped.join(bin), dir.join(bin)).expect("copy");
    }
    std::fs::write(dir.join("bangerd"), script).expect("script");
    run_ok(Command::new("chmod").arg("755").arg(dir.join("bangerd")));
    dir.to_owned()
}

/// Every release the test serves, under `root`; returns the good key's public PEM.
fn releases(root: &Path, stamped: &Path) -> String {
    for name in ["good", "other"] {
        openssl(
            root,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
    let key = root.join("good.pem");
    make_release(stamped, &root.join("good"), &key);
    let broken = with_bangerd(
        stamped,
        &root.join("bin-broken"),
        "#!/bin/sh\n# Passes the pre-swap check, then fails as a daemon.\n\
         if [ \"$1\" = --check-migrations ]; then echo 'compatible: schema up to date'; exit 0; fi\n\
         echo 'this bangerd is broken on purpose' >&2\nexit 1\n",
    );
    make_release(&broken, &root.join("broken"), &key);
    let incompatible = with_bangerd(
        stamped,
        &root.join("bin-incompatible"),
        "#!/bin/sh\nif [ \"$1\" = --check-migrations ]; then\n\
         echo 'incompatible: the database has migrations this binary does not know'; exit 2\nfi\n\
         exit 1\n",
    );
    make_release(&incompatible, &root.join("incompatible"), &key);
    let copy = |name: &str| {
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(root.join("good"))
                .arg(root.join(name)),
        );
        root.join(name).join(NEW)
    };
    let tarball = copy("tampered-tarball").join(format!("banger-{NEW}-x86_64-linux.tar.gz"));
    let mut bytes = std::fs::read(&tarball).expect("tarball");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&tarball, bytes).expect("tamper tarball");
    let sums = copy("tampered-sums").join("SHA256SUMS");
    let text = std::fs::read_to_string(&sums).expect("sums");
    let flipped = if text.starts_with('0') { "1" } else { "0" };
    std::fs::write(&sums, format!("{flipped}{}", &text[1..])).expect("tamper sums");
    let other = copy("other-key");
    run_ok(
        Command::new("sh")
            .current_dir(&other)
            .arg("-c")
            .arg(format!(
                "openssl dgst -sha256 -sign {} SHA256SUMS | openssl base64 -A > SHA256SUMS.sig",
                root.join("other.pem").display()
            )),
    );
    std::fs::write(
        copy("malformed-signature").join("SHA256SUMS.sig"),
        "this is not a signature\n",
    )
    .expect("malformed sig");
    openssl(root, &["pkey", "-in", "good.pem", "-pubout"])
}

/// `python3 -m http.server` of the host, on the container's loopback; killed on drop.
struct Server(Child);

impl Server {
    fn start(ct: &Container, dir: &Path) -> Self {
        let child = Command::new("nsenter")
            .arg("-t")
            .arg(ct.leader().to_string())
            .arg("-n")
            .args(["--", "python3", "-m", "http.server", "--bind", "127.0.0.1"])
            .arg("--directory")
            .arg(dir)
            .arg(PORT.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("http.server starts");
        let server = Self(child);
        let probe = format!("import socket; socket.create_connection(('127.0.0.1', {PORT}), 1)");
        assert!(
            common::wait_until(Duration::from_secs(20), || {
                Command::new("nsenter")
                    .arg("-t")
                    .arg(ct.leader().to_string())
                    .args(["-n", "--", "python3", "-c", &probe])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            }),
            "the release server did not listen on the container's loopback"
        );
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What must not change when an update is refused: each installed file's identity (a swap
/// renames, so the inode changes), `install.toml`, the daemon's pid and what the bin dir holds.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    files: Vec<(String, u64, i64, i64, u64)>,
    install_toml: String,
    bin_dir: Vec<String>,
    daemon_pid: String,
}

fn snapshot(ct: &Container) -> Snapshot {
    let root = ct.root();
    let files = [
        "usr/local/bin/banger",
        "usr/local/bin/bangerd",
        "usr/local/libexec/banger/banger-agent",
    ]
    .iter()
    .map(|f| {
        let m = std::fs::metadata(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        ((*f).to_owned(), m.ino(), m.mtime(), m.mtime_nsec(), m.len())
    })
    .collect();
    let mut bin_dir: Vec<String> = std::fs::read_dir(root.join("usr/local/bin"))
        .expect("bin dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    bin_dir.sort();
    Snapshot {
        files,
        install_toml: std::fs::read_to_string(root.join("etc/banger/install.toml"))
            .expect("install.toml"),
        bin_dir,
        daemon_pid: ct.ok(&["systemctl", "show", "-p", "MainPID", "bangerd"]),
    }
}

fn url(release: &str) -> String {
    format!("http://127.0.0.1:{PORT}/{release}/manifest.json")
}

/// `banger update --manifest-url URL --pubkey-file GOOD_PUB ARGS` as root.
fn update(ct: &Container, release: &str, args: &[&str]) -> std::process::Output {
    let manifest = url(release);
    let mut full = vec![
        "banger",
        "update",
        "--manifest-url",
        &manifest,
        "--pubkey-file",
        GOOD_PUB,
    ];
    full.extend_from_slice(args);
    ct.exec(&full, LONG)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn boot_id(ct: &Container) -> String {
    let cmd = [
        "banger",
        "vm",
        "ssh",
        "up1",
        "--",
        "cat",
        "/proc/sys/kernel/random/boot_id",
    ];
    ct.ok_as(OWNER, &cmd, Duration::from_secs(120))
        .trim()
        .to_owned()
}

fn version(ct: &Container) -> String {
    ct.ok(&["banger", "--version"]).trim().to_owned()
}

#[test]
#[ignore = "needs root, systemd-nspawn, debootstrap, the Debian mirror, QEMU and openssl"]
fn update_verifies_stages_swaps_and_rolls_back_while_a_vm_keeps_running() {
    let stamped = stamped();
    let work = tempfile::tempdir().expect("work dir");
    let public = releases(work.path(), &stamped);

    let root = container::root();
    let bed = Guestbed::new();
    let guest = container::guest_binds(&bed);
    let mut binds: Vec<Bind> = [
        ("banger", format!("{SRC_BIN}/banger")),
        ("bangerd", format!("{SRC_BIN}/bangerd")),
        ("banger-agent", SRC_AGENT.to_owned()),
    ]
    .into_iter()
    .map(|(bin, inside)| Bind {
        host: common::binary(bin),
        inside,
    })
    .collect();
    binds.extend(guest);
    let ct = Container::boot(&root, &binds);
    ct.ok(&["useradd", "--create-home", "--shell", "/bin/bash", OWNER]);
    ct.ok(&[
        &format!("{SRC_BIN}/banger"),
        "system",
        "install",
        "--owner",
        OWNER,
    ]);
    std::fs::write(ct.root().join(GOOD_PUB.trim_start_matches('/')), &public).expect("pub key");
    let create = [
        "vm",
        "create",
        "--name",
        "up1",
        "--image",
        "debian-bookworm",
        "--vcpu",
        "1",
        "--memory",
        "512M",
    ];
    ct.register_guest(OWNER, LONG);
    let mut full = vec!["banger"];
    full.extend_from_slice(&create);
    ct.ok_as(OWNER, &full, LONG);
    let boot = boot_id(&ct);
    let old = version(&ct);
    assert!(
        !old.contains(NEW),
        "the first version must not be {NEW}: {old}"
    );
    let old_version = old.split_whitespace().nth(1).expect("version").to_owned();
    let _server = Server::start(&ct, work.path());
    let before = snapshot(&ct);

    // --check: one line, the newer version.
    let out = update(&ct, "good", &["--check"]);
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains(&format!("update available: {old_version} -> {NEW}")),
        "{line}"
    );

    // An unknown --to fails before any change (nothing downloaded either).
    let out = update(&ct, "good", &["--to", "v9.9.8"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("v9.9.8 is not published"),
        "{}",
        text(&out)
    );
    assert!(!ct.root().join("var/cache/banger/updates").exists());
    assert_eq!(snapshot(&ct), before);

    // A non-root user is refused, with or without the overrides, and nothing changes.
    let manifest = url("good");
    for args in [
        vec!["banger", "update"],
        vec!["banger", "update", "--manifest-url", &manifest],
        vec!["banger", "update", "--check", "--pubkey-file", GOOD_PUB],
    ] {
        let out = ct.exec_as(OWNER, &args, LONG);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("sudo banger update") || said.contains("only root"),
            "{args:?}: {said}"
        );
    }
    assert_eq!(snapshot(&ct), before);

    // --dry-run stages and verifies, swaps nothing.
    let out = update(&ct, "good", &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("signature verified"), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("dry run:"));
    assert!(
        ct.root()
            .join("var/cache/banger/updates/staged/bin/bangerd")
            .exists()
    );
    assert_eq!(snapshot(&ct), before);
    assert_eq!(version(&ct), old);

    // Untrusted releases and an incompatible daemon: refused, nothing swapped.
    for (release, needle) in [
        ("tampered-tarball", "but SHA256SUMS says"),
        ("tampered-sums", "not signed by the release key"),
        ("other-key", "not signed by the release key"),
        ("malformed-signature", "SHA256SUMS.sig is malformed"),
        ("incompatible", "refused before any change"),
    ] {
        let out = update(&ct, release, &[]);
        assert!(!out.status.success(), "{release}: {}", text(&out));
        assert!(text(&out).contains(needle), "{release}: {}", text(&out));
        assert_eq!(snapshot(&ct), before, "{release} changed the install");
    }

    // A bangerd that passes the check but cannot run: rolled back, the VM lives on.
    let out = update(&ct, "broken", &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("(rolled back to {old_version})")),
        "{said}"
    );
    assert_eq!(version(&ct), old);
    let installed =
        std::fs::read_to_string(ct.root().join("etc/banger/install.toml")).expect("install.toml");
    assert_eq!(
        installed, before.install_toml,
        "a rollback keeps install.toml"
    );
    let status: Value = serde_json::from_str(&ct.ok(&["banger", "system", "status", "--json"]))
        .expect("status json");
    assert_eq!(status["daemon"]["active"], "active", "{status}");
    assert!(
        status["sockets"]["daemon_answers"]["build"]["version"]
            .as_str()
            .is_some_and(|v| v == old_version),
        "{status}"
    );
    assert_eq!(boot_id(&ct), boot, "the guest rebooted across the rollback");

    // The real update: new version everywhere, the VM still the same boot.
    let out = update(&ct, "good", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("updated banger {old_version} -> {NEW}")),
        "{}",
        text(&out)
    );
    assert!(version(&ct).starts_with(&format!("banger {NEW} ")));
    let bangerd = ct.ok(&["bangerd", "--version"]);
    assert!(bangerd.contains(NEW), "{bangerd}");
    let installed =
        std::fs::read_to_string(ct.root().join("etc/banger/install.toml")).expect("install.toml");
    assert!(
        installed.contains(&format!("version = \"{NEW}\"")),
        "{installed}"
    );
    assert!(
        ct.root().join("usr/local/bin/bangerd.previous").exists(),
        "the old bangerd is kept"
    );
    let status: Value = serde_json::from_str(&ct.ok(&["banger", "system", "status", "--json"]))
        .expect("status json");
    assert_eq!(
        status["sockets"]["daemon_answers"]["build"]["version"], NEW,
        "{status}"
    );
    assert_eq!(boot_id(&ct), boot, "the guest rebooted across the update");
    // Already there: nothing to do.
    let out = update(&ct, "good", &[]);
    assert!(text(&out).contains("already installed"), "{}", text(&out));

    ct.ok_as(OWNER, &["banger", "vm", "delete", "up1"], LONG);
    drop(ct);
    drop(bed);
}
