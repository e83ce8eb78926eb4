//! The privilege tier: the root helper as root and the owner's daemon as an unprivileged user
//! the test creates, both inside a test-made network namespace.
//!
//! The user's daemon has no capabilities, so the bridge, its TAP and NAT go through the helper;
//! create, ssh, stop, start and delete must work, and QEMU must run as the user. Then the
//! helper is sent what it must refuse — a client of another uid, a TAP name outside banger's
//! pattern, `lo`, the namespace's veth, a request naming an nftables table or a path — and each
//! refusal must leave `ip link`, `nft list ruleset` and the files exactly as before.
//!
//! Needs root (useradd, netns), QEMU and the host-side pulls of the shared e2e cache. One guest.
//!
//! The jailer test: the same unprivileged daemon with `vmm = "firecracker"`, the fake
//! Firecracker and the fake jailer of `banger-testkit` (root-owned, pinned in the helper's
//! flags). The helper stages the chroot and spawns the jailer; the fake VMM runs as the user in
//! the chroot; delete removes it. The fakes boot nothing, so the daemon's own checks are met
//! for them in the daemon's private mount namespace (a `/dev/kvm` it can open, no `kvm_pvm`),
//! and the test answers the SSH readiness probe for the fake guest: every address of banger's
//! subnet is local in the namespace, with a listener on port 22 that sends an SSH banner.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{Guestbed, binary, run, tagged_pids, wait_until};
use serde_json::Value;

const USER: &str = "banger-e2e-priv";
const LONG: Duration = Duration::from_secs(900);

/// The test user, removed when the test ends.
struct TestUser {
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create() -> Self {
        let _ = Command::new("userdel").arg(USER).status();
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .status()
            .expect("useradd");
        assert!(status.success(), "useradd {USER}");
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, USER]).output().expect("id");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("numeric id")
        };
        Self {
            uid: id("-u"),
            gid: id("-g"),
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(USER).status();
    }
}

/// `/dev/net/tun` opened to everyone for the test, as Debian's udev rules leave it (mode 0666:
/// opening it grants nothing, attaching to a TAP is checked against the TAP's owner); the
/// machines here start with 0600. The earlier mode is restored when the test ends.
struct TunMode(Option<u32>);

impl TunMode {
    fn open_to_all() -> Self {
        let path = Path::new("/dev/net/tun");
        let before = std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).expect("chmod tun");
        Self(before)
    }
}

impl Drop for TunMode {
    fn drop(&mut self) {
        if let Some(mode) = self.0 {
            let _ = std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(mode));
        }
    }
}

/// The root helper running in the namespace.
struct HelperProcess(Child);

impl Drop for HelperProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The user's side: a layout in a temp dir the user owns, the helper's socket, the namespace.
struct UserBed<'a> {
    bed: &'a Guestbed,
    user: &'a TestUser,
    root: PathBuf,
    socket: PathBuf,
}

impl UserBed<'_> {
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        self.command_after(None, program, args)
    }

    /// [`Self::command`], first running `prelude` (a shell script, as root, in a private mount
    /// namespace the command then runs in).
    fn command_after(&self, prelude: Option<&str>, program: &Path, args: &[&str]) -> Command {
        let mut cmd = match prelude {
            None => self.bed.ns().command("setpriv"),
            Some(script) => {
                let mut c = self.bed.ns().command("unshare");
                c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                    .arg(format!("{script}\nexec setpriv \"$@\""))
                    .arg("sh");
                c
            }
        };
        cmd.args([
            "--reuid",
            &self.user.uid.to_string(),
            "--regid",
            &self.user.gid.to_string(),
            "--clear-groups",
            "--",
        ])
        .arg(program)
        .args(args)
        .env_clear()
        .env("HOME", self.root.join("home"))
        .env("XDG_CONFIG_HOME", self.root.join("config"))
        .env("XDG_STATE_HOME", self.root.join("state"))
        .env("XDG_CACHE_HOME", self.root.join("cache"))
        .env("XDG_RUNTIME_DIR", self.root.join("run"))
        .env("BANGER_ROOT_HELPER_SOCKET", &self.socket)
        .env("NO_COLOR", "1")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null());
        cmd
    }

    fn banger(&self, args: &[&str], timeout: Duration) -> Output {
        run(self.command(&binary("banger"), args), timeout)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.banger(args, LONG);
        assert!(
            out.status.success(),
            "banger {args:?} as {USER} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for UserBed<'_> {
    fn drop(&mut self) {
        let out = self.banger(&["vm", "list", "--json"], Duration::from_secs(30));
        if let Ok(Value::Array(vms)) = serde_json::from_slice(&out.stdout) {
            for vm in vms {
                if let Some(name) = vm["name"].as_str() {
                    let _ = self.banger(&["vm", "delete", name], Duration::from_secs(60));
                }
            }
        }
        let _ = self.banger(&["daemon", "stop"], Duration::from_secs(30));
    }
}

fn copy_for(user: &TestUser, src: &str, dst: &Path) {
    let status = Command::new("cp")
        .args(["--sparse=always", src])
        .arg(dst)
        .status()
        .expect("cp");
    assert!(status.success(), "cp {src}");
    std::os::unix::fs::chown(dst, Some(user.uid), Some(user.gid)).expect("chown");
}

/// One raw line to the helper as `uid`, from a separate process (Python's socket module);
/// the answer, or `CONNECT-ERROR errno`.
fn helper_exchange(uid: u32, socket: &Path, line: &str) -> String {
    let script = "import socket,sys\n\
s=socket.socket(socket.AF_UNIX)\n\
try:\n    s.connect(sys.argv[1])\n\
except OSError as e:\n    print('CONNECT-ERROR', e.errno); sys.exit(0)\n\
try:\n    s.sendall(sys.argv[2].encode() + b'\\n')\n\
except OSError:\n    pass\n\
data=b''\n\
while True:\n    chunk=s.recv(65536)\n    if not chunk: break\n    data+=chunk\n\
print(data.decode())\n";
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(socket)
        .arg(line)
        .uid(uid)
        .gid(65534)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What must not change when the helper refuses: links, the ruleset, the user's files.
fn snapshot(bed: &Guestbed, files_root: &Path) -> (String, String, Vec<String>) {
    let links = bed.ns().ip(&["link", "show"]).expect("ip link");
    let nft = run(
        {
            let mut c = bed.ns().command("nft");
            c.args(["list", "ruleset"]);
            c
        },
        Duration::from_secs(30),
    );
    assert!(nft.status.success(), "nft list ruleset");
    let mut files = Vec::new();
    walk(files_root, &mut files);
    files.sort();
    (
        links,
        String::from_utf8_lossy(&nft.stdout).into_owned(),
        files,
    )
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        // Logs grow on their own (the daemon's, the VM console); their presence is what counts.
        let log = path.extension().is_some_and(|e| e == "log");
        out.push(format!(
            "{} {:o} {}",
            path.display(),
            meta.permissions().mode(),
            if log || meta.is_dir() { 0 } else { meta.len() }
        ));
        if meta.is_dir() {
            walk(&path, out);
        }
    }
}

/// The user's layout under `root` (owned by the user), with `files/` holding copies of the
/// shared cache's guest files (root's store is private to root).
fn user_layout(bed: &Guestbed, user: &TestUser, root: &Path, extra_dirs: &[&str]) -> PathBuf {
    for dir in ["", "home", "config", "state", "cache", "run", "files"]
        .iter()
        .chain(extra_dirs)
    {
        std::fs::create_dir_all(root.join(dir)).expect("dirs");
        std::os::unix::fs::chown(root.join(dir), Some(user.uid), Some(user.gid)).expect("chown");
    }
    let image: Value =
        serde_json::from_str(&bed.ok(&["image", "show", "debian-bookworm", "--json"]))
            .expect("json");
    let kernel: Value =
        serde_json::from_str(&bed.ok(&["kernel", "show", "debian-cloud", "--json"])).expect("json");
    let files = root.join("files");
    for (field, value, name) in [
        ("vmlinux_path", &kernel, "vmlinux"),
        ("initrd_path", &kernel, "initrd.img"),
        ("rootfs_path", &image, "rootfs.ext4"),
        ("work_seed_path", &image, "work-seed.ext4"),
    ] {
        copy_for(user, value[field].as_str().expect(field), &files.join(name));
    }
    files
}

/// The helper, as root, in the namespace, serving `USER` on `socket` (with `extra` flags),
/// logging to `log`; returns once it listens.
fn start_helper(
    bed: &Guestbed,
    socket: &Path,
    log: &Path,
    extra: &[&std::ffi::OsStr],
) -> HelperProcess {
    let file = std::fs::File::create(log).expect("helper log");
    let helper = HelperProcess(
        bed.ns()
            .command(binary("bangerd"))
            .args(["root-helper", "--owner", USER, "--socket"])
            .arg(socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("helper starts"),
    );
    assert!(
        wait_until(Duration::from_secs(10), || socket.exists()),
        "helper socket: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    helper
}

/// The owner's daemon runs as the test user.
fn assert_daemon_runs_as_user() {
    let users = run(
        {
            let mut c = Command::new("ps");
            c.args(["-o", "user=", "-C", "bangerd"]);
            c
        },
        Duration::from_secs(10),
    );
    assert!(
        String::from_utf8_lossy(&users.stdout).contains(USER),
        "the daemon runs as {USER}"
    );
}

/// The user name `pid` runs as.
fn process_user(pid: u32) -> String {
    let out = run(
        {
            let mut c = Command::new("ps");
            c.args(["-o", "user=", "-p", &pid.to_string()]);
            c
        },
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Registers the copied guest files as kernel `NAME-kernel` and image `NAME-image`, as the
/// user.
fn register_guest(ub: &UserBed<'_>, files: &Path, name: &str) {
    let file = |n: &str| files.join(n).display().to_string();
    let kernel = format!("{name}-kernel");
    ub.ok(&[
        "kernel",
        "register",
        &kernel,
        "--vmlinux",
        &file("vmlinux"),
        "--initrd",
        &file("initrd.img"),
    ]);
    ub.ok(&[
        "image",
        "register",
        "--name",
        &format!("{name}-image"),
        "--rootfs",
        &file("rootfs.ext4"),
        "--work-seed",
        &file("work-seed.ext4"),
        "--kernel",
        &kernel,
    ]);
}

#[test]
#[ignore = "needs root (useradd, netns), QEMU and a real guest"]
fn an_unprivileged_daemon_works_through_the_root_helper_and_nothing_else_passes() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let user = TestUser::create();
    let _tun = TunMode::open_to_all();

    // The user's layout, in a temp dir the user owns.
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let root = tmp.path().join("user");
    let files = user_layout(&bed, &user, &root, &[]);
    let socket = tmp.path().join("helper/helper.sock");
    let _helper = start_helper(&bed, &socket, &tmp.path().join("helper.log"), &[]);
    let meta = std::fs::metadata(&socket).expect("socket");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), user.uid);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let ub = UserBed {
        bed: &bed,
        user: &user,
        root: root.clone(),
        socket: socket.clone(),
    };
    register_guest(&ub, &files, "priv");
    let doctor = run(
        ub.command(&binary("bangerd"), &["doctor", "--json"]),
        Duration::from_secs(60),
    );
    let report: Value = serde_json::from_slice(&doctor.stdout).expect("doctor json");
    let row = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "privileges")
        .expect("privileges row")
        .clone();
    assert!(
        row["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("root helper at {}", socket.display()))),
        "{row}"
    );

    // The lifecycle, as the user.
    ub.ok(&[
        "vm",
        "create",
        "--name",
        "priv-a",
        "--image",
        "priv-image",
        "--vcpu",
        "1",
        "--memory",
        "512M",
    ]);
    assert_daemon_runs_as_user();
    let vm: Value =
        serde_json::from_str(&ub.ok(&["vm", "show", "priv-a", "--json"])).expect("json");
    let id = vm["id"].as_str().expect("id").to_owned();
    let pids = tagged_pids(&format!("banger-{id}"));
    assert_eq!(pids.len(), 1, "one VMM: {pids:?}");
    assert_eq!(process_user(pids[0]), USER, "QEMU runs as the user");
    let uname = ub.ok(&["vm", "ssh", "priv-a", "--", "uname", "-a"]);
    assert!(uname.contains("Linux"), "{uname}");
    // Port 53 on the gateway: the helper bound it and handed the sockets over, so the
    // unprivileged daemon answers the guest's resolver itself.
    let status = ub.ok(&["daemon", "status"]);
    assert!(
        status.contains("serving guests on 172.30.0.1:53"),
        "the owner's daemon serves guests' DNS: {status}"
    );
    let ip = vm["guest_ip"].as_str().expect("ip").to_owned();
    let hosts = ub.ok(&["vm", "ssh", "priv-a", "--", "getent", "hosts", "priv-a.vm"]);
    assert!(
        hosts.contains(&ip),
        "the guest resolves its name through banger: {hosts}"
    );
    let tap = format!("bgr-{}", &id[..11.min(id.len())]);
    assert_eq!(
        bed.links(&tap),
        std::slice::from_ref(&tap),
        "the VM's TAP made by the helper"
    );

    // Refusals. Let the TAP pool settle first so nothing of banger's changes meanwhile.
    assert!(
        wait_until(Duration::from_secs(30), || bed.links("tap-pool-").len()
            == 2),
        "pool refilled: {:?}",
        bed.links("tap-pool-")
    );
    let veth = "vethpriv0";
    let out = bed.ns().ip(&[
        "link",
        "add",
        veth,
        "type",
        "veth",
        "peer",
        "name",
        "vethpriv1",
    ]);
    assert!(out.is_ok(), "veth: {out:?}");
    let other_table = run(
        {
            let mut c = bed.ns().command("nft");
            c.args(["add", "table", "inet", "someone_else"]);
            c
        },
        Duration::from_secs(30),
    );
    assert!(other_table.status.success(), "nft add table");
    let before = snapshot(&bed, &root);
    let gw = "172.30.0.1";
    let refused_as_root = [
        format!(
            r#"{{"op":"ensure_tap","name":"evil0","bridge":"banger0","owner_uid":{}}}"#,
            user.uid
        ),
        r#"{"op":"ensure_tap","name":"bgr-x","bridge":"banger0","owner_uid":0}"#.to_owned(),
        r#"{"op":"delete_link","name":"lo"}"#.to_owned(),
        format!(r#"{{"op":"delete_link","name":"{veth}"}}"#),
        format!(r#"{{"op":"rename_link","from":"{veth}","to":"bgr-x"}}"#),
        format!(r#"{{"op":"rename_link","from":"{tap}","to":"eth0"}}"#),
        format!(r#"{{"op":"ensure_bridge","name":"{veth}","gateway":"{gw}","prefix":24}}"#),
        r#"{"op":"allow_nat","vm_id":"x\"; flush ruleset","tap":"bgr-x","bridge":"banger0"}"#
            .to_owned(),
        r#"{"op":"flush_table","family":"inet","table":"someone_else"}"#.to_owned(),
        r#"{"op":"revoke_nat","vm_id":"abc","table":"someone_else"}"#.to_owned(),
        format!(
            r#"{{"op":"delete_path","path":"{}"}}"#,
            root.join("files/rootfs.ext4").display()
        ),
        r#"{"op":"write_file","path":"/etc/passwd","data":""}"#.to_owned(),
    ];
    for line in &refused_as_root {
        // Root is a permitted peer, so only the policy stands between these and the host.
        let answer = helper_exchange(0, &socket, line);
        assert!(
            answer.contains(r#""result":"refused""#),
            "{line} → {answer}"
        );
    }
    // The owner's uid gets the same answers.
    let answer = helper_exchange(user.uid, &socket, r#"{"op":"delete_link","name":"lo"}"#);
    assert!(answer.contains(r#""result":"refused""#), "{answer}");
    // Another uid: the socket's mode keeps it out, and with the mode opened the peer
    // credentials still do.
    let bridge_req =
        format!(r#"{{"op":"ensure_bridge","name":"banger0","gateway":"{gw}","prefix":24}}"#);
    let stranger = helper_exchange(65534, &socket, &bridge_req);
    assert!(stranger.starts_with("CONNECT-ERROR 13"), "{stranger}");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let stranger = helper_exchange(65534, &socket, r#"{"op":"delete_link","name":"bgr-x"}"#);
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(
        stranger.contains(r#""result":"refused""#) && stranger.contains("uid 65534"),
        "{stranger}"
    );
    let after = snapshot(&bed, &root);
    assert_eq!(before.0, after.0, "ip link changed");
    assert_eq!(before.1, after.1, "nft ruleset changed");
    assert_eq!(before.2, after.2, "files changed");
    let helper_log = std::fs::read_to_string(tmp.path().join("helper.log")).expect("log");
    assert!(
        helper_log.contains("\"result\":\"refused\""),
        "{helper_log}"
    );
    assert!(helper_log.contains("\"op\":\"ensure_tap\""), "{helper_log}");

    // Stop, start, ssh again, delete.
    ub.ok(&["vm", "stop", "priv-a"]);
    assert!(bed.links(&tap).is_empty(), "TAP released at stop");
    ub.ok(&["vm", "start", "priv-a"]);
    let uname = ub.ok(&["vm", "ssh", "priv-a", "--", "uname", "-a"]);
    assert!(uname.contains("Linux"), "{uname}");
    ub.ok(&["vm", "delete", "priv-a"]);
    assert!(bed.links(&tap).is_empty(), "TAP gone after delete");
    assert!(tagged_pids(&format!("banger-{id}")).is_empty(), "VMM gone");
    let _ = bed.ns().ip(&["link", "delete", veth]);
}

/// The daemon's view for the fakes: `/dev/kvm` a file it may open read-write, `/sys/module`
/// without `kvm_pvm` — in its own mount namespace only.
fn fake_kvm_prelude(kvm_stand_in: &Path) -> String {
    format!(
        "set -e\nmount --bind {} /dev/kvm\nmount -t tmpfs none /sys/module",
        kvm_stand_in.display()
    )
}

/// Every address of banger's subnet local to the namespace, and a listener on port 22 that
/// greets like sshd: the daemon's readiness probe for a fake guest.
fn answer_ssh_probes(bed: &Guestbed) -> HelperProcess {
    let out = bed.ns().ip(&[
        "route",
        "add",
        "local",
        "172.30.0.0/24",
        "dev",
        "lo",
        "table",
        "local",
    ]);
    assert!(out.is_ok(), "local route: {out:?}");
    let script = "import socket\n\
s=socket.socket()\n\
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind(('0.0.0.0', 22))\n\
s.listen(16)\n\
while True:\n    c,_=s.accept()\n    c.sendall(b'SSH-2.0-OpenSSH_9.2 stand-in\\r\\n')\n    c.close()\n";
    let child = bed
        .ns()
        .command("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("listener");
    HelperProcess(child)
}

#[test]
#[ignore = "needs root (useradd, netns, the jailer's uid drop) and the host-side pulls of the shared e2e cache"]
fn an_unprivileged_daemon_runs_firecracker_under_the_jailer_through_the_root_helper() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let user = TestUser::create();
    let (firecracker, jailer) = banger_testkit::fake_firecracker_bins();

    // A short root: the jail's API socket path must fit in sun_path.
    let tmp = tempfile::Builder::new()
        .prefix("bj")
        .tempdir_in("/tmp")
        .expect("tempdir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let root = tmp.path().join("u");
    let files = user_layout(&bed, &user, &root, &["config/banger"]);
    std::fs::write(
        root.join("config/banger/config.toml"),
        format!(
            "vmm = \"firecracker\"\nfirecracker_bin = \"{}\"\njailer_bin = \"{}\"\n",
            firecracker.display(),
            jailer.display()
        ),
    )
    .expect("config");
    let kvm = tmp.path().join("kvm-stand-in");
    std::fs::write(&kvm, "").expect("kvm stand-in");
    std::fs::set_permissions(&kvm, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let socket = tmp.path().join("helper/helper.sock");
    let (state, runtime) = (root.join("state/banger"), root.join("run/banger"));
    let _helper = start_helper(
        &bed,
        &socket,
        &tmp.path().join("helper.log"),
        &[
            "--jailer".as_ref(),
            jailer.as_os_str(),
            "--firecracker".as_ref(),
            firecracker.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "--runtime-dir".as_ref(),
            runtime.as_os_str(),
        ],
    );
    let _ssh = answer_ssh_probes(&bed);

    let ub = UserBed {
        bed: &bed,
        user: &user,
        root: root.clone(),
        socket: socket.clone(),
    };
    // The daemon starts here, in its mount namespace.
    let started = run(
        ub.command_after(
            Some(&fake_kvm_prelude(&kvm)),
            &binary("banger"),
            &["daemon", "status"],
        ),
        LONG,
    );
    assert!(
        started.status.success(),
        "daemon start: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    register_guest(&ub, &files, "jail");
    ub.ok(&[
        "vm",
        "create",
        "--name",
        "jail-a",
        "--image",
        "jail-image",
        "--vcpu",
        "1",
        "--memory",
        "256M",
    ]);
    let vm: Value =
        serde_json::from_str(&ub.ok(&["vm", "show", "jail-a", "--json"])).expect("json");
    assert_eq!(vm["state"], "running", "{vm}");
    let id = vm["id"].as_str().expect("id").to_owned();

    // The chroot, staged by the helper, the fake VMM in it as the user.
    let exec_name = firecracker
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let jail = root
        .join("state/banger/jailer")
        .join(&exec_name)
        .join(format!("banger-{id}"));
    let jail_root = jail.join("root");
    assert!(
        jail_root.join(&exec_name).is_file(),
        "firecracker copied in"
    );
    let vm_disk = std::fs::metadata(root.join(format!("state/banger/vms/{id}/rootfs.ext4")))
        .expect("the vm's root disk");
    let staged = std::fs::metadata(jail_root.join("disk0")).expect("disk0 staged");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&vm_disk),
        std::os::unix::fs::MetadataExt::ino(&staged),
        "the root disk is hard-linked in"
    );
    let pids = tagged_pids(&format!("banger-{id}"));
    assert_eq!(pids.len(), 1, "one VMM: {pids:?}");
    let recorded = std::fs::read_to_string(jail_root.join(format!("{exec_name}.pid")))
        .expect("the jailer's pid file");
    assert_eq!(
        recorded.trim(),
        pids[0].to_string(),
        "the pid file names the VMM"
    );
    assert_eq!(
        process_user(pids[0]),
        USER,
        "the jailed VMM runs as the user"
    );
    assert_daemon_runs_as_user();

    // Delete: the VMM gone, the chroot removed by the helper.
    ub.ok(&["vm", "delete", "jail-a"]);
    assert!(tagged_pids(&format!("banger-{id}")).is_empty(), "VMM gone");
    assert!(!jail.exists(), "the chroot is removed");
    let helper_log = std::fs::read_to_string(tmp.path().join("helper.log")).expect("log");
    for op in ["launch_jail", "release_jail"] {
        assert!(
            helper_log.contains(&format!("\"op\":\"{op}\"")),
            "{op} in {helper_log}"
        );
    }
}
