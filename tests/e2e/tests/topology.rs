//! Guests on the network, in a topology the test makes: the bed's namespace (bridge, daemon,
//! guests) joined by a veth pair to an "uplink" namespace that plays the internet, with an
//! HTTP server and a DNS server (dnsmasq) on 198.51.100.1 that exist only there. The bed's
//! default route points into the uplink and its `/etc/netns/<bed>/resolv.conf` names the
//! uplink's DNS server, so the daemon (started under `ip netns exec`) forwards guests' queries
//! there. Nothing leaves these two namespaces.
//!
//! One test, two guests (booted once each), proving in order:
//! - `[[file_sync]]`: a 0640 file, a directory tree, a missing host path warned and skipped;
//! - outbound NAT: a `--nat` guest fetches the uplink's page *by a name only the uplink's DNS
//!   knows* (resolved through banger's guest resolver), and the uplink sees the bed's veth
//!   address, never the guest's; the same fetch from a guest without `--nat` fails, though its
//!   name resolves;
//! - guests find each other: `getent hosts OTHER.vm`;
//! - NAT rules gone after stop and delete;
//! - a bad `[[file_sync]]` entry fails the create naming `file_sync[1]`, leaving no VM record,
//!   VM directory or TAP;
//! - `banger doctor` in this fully set-up namespace: one line, exit 0; `--json` parses; no file
//!   under the layout changes; without `qemu-system-x86_64` on `PATH` it fails naming it.
//!
//! Needs root, QEMU, nft, dnsmasq (Debian `dnsmasq-base`) and, for the host-side pulls, the
//! Debian mirror.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use banger_testkit::NetNs;
use common::{Guestbed, tagged_pids, wait_until};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(900);
const UPLINK_IP: &str = "198.51.100.1";
const BED_IP: &str = "198.51.100.2";
const NAME: &str = "pkg.example.test";
const GATEWAY: &str = "172.30.0.1";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the test put outside its namespaces, removed however the test ends: the bed's
/// `/etc/netns/<bed>` dir, the config file, the synced host files, the uplink's servers.
struct Leftovers {
    netns_etc: PathBuf,
    config: PathBuf,
    old_config: Option<Vec<u8>>,
    sync_dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.netns_etc);
        let _ = std::fs::remove_dir_all(&self.sync_dir);
        match &self.old_config {
            Some(old) => {
                let _ = std::fs::write(&self.config, old);
            }
            None => {
                let _ = std::fs::remove_file(&self.config);
            }
        }
    }
}

/// The bed's rules, as `nft list ruleset` prints them inside its namespace.
fn ruleset(bed: &Guestbed) -> String {
    text(
        &bed.in_ns("nft", &["list", "ruleset"], Duration::from_secs(30))
            .stdout,
    )
}

/// `vm ssh VM -- CMD…`.
fn ssh(bed: &Guestbed, vm: &str, cmd: &[&str]) -> std::process::Output {
    let mut args = vec!["vm", "ssh", vm, "--"];
    args.extend_from_slice(cmd);
    bed.banger(&args, Duration::from_secs(120))
}

/// `GET /hello` from inside the guest with bash's /dev/tcp (the default image has no curl or
/// python), by name: glibc resolves it through the guest's /etc/resolv.conf.
fn fetch_by_name(bed: &Guestbed, vm: &str) -> std::process::Output {
    let script = format!(
        "exec 3<>/dev/tcp/{NAME}/8080 && printf 'GET /hello HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
    );
    ssh(bed, vm, &["timeout", "15", "bash", "-c", &script])
}

fn create(bed: &Guestbed, name: &str, nat: bool) -> std::process::Output {
    let mut args = vec![
        "vm", "create", "--name", name, "--vcpu", "1", "--memory", "512M",
    ];
    if nat {
        args.push("--nat");
    }
    bed.banger(&args, LONG)
}

/// Every path under `root` with its contents (files) — for "doctor changes nothing".
fn snapshot(root: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Option<Vec<u8>>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // A file the stopped daemon or an exiting VMM removes while we walk is not ours.
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                out.push((path.clone(), None));
                walk(&path, out);
            } else if !meta.is_file() {
                // Symlinks, sockets, fifos: their kind stands for them (a fifo blocks reads).
                out.push((
                    path.clone(),
                    Some(format!("{:?}", meta.file_type()).into_bytes()),
                ));
            } else if meta.len() < 1 << 20 {
                out.push((path.clone(), std::fs::read(&path).ok()));
            } else {
                // Images and disks: their size and mtime stand for their bytes.
                let stamp = format!("{} {:?}", meta.len(), meta.modified().ok());
                out.push((path.clone(), Some(stamp.into_bytes())));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

/// A `PATH` of everything in /usr/bin and /usr/sbin but `qemu-system-x86_64`.
fn path_without_qemu(dir: &Path) -> std::ffi::OsString {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    for entry in std::fs::read_dir("/usr/bin").expect("/usr/bin").flatten() {
        if entry.file_name() != "qemu-system-x86_64" {
            let _ = std::os::unix::fs::symlink(entry.path(), bin.join(entry.file_name()));
        }
    }
    std::env::join_paths([bin.as_path(), Path::new("/usr/sbin")]).expect("path")
}

fn start_uplink(uplink: &NetNs, bed: &Guestbed, site: &Path, leftovers: &mut Leftovers) {
    let (up, inner) = (uplink.name().to_owned(), bed.ns().name().to_owned());
    ip(&[
        "-n", &up, "link", "add", "veth-up", "type", "veth", "peer", "name", "veth-bed", "netns",
        &inner,
    ]);
    ip(&[
        "-n",
        &up,
        "addr",
        "add",
        &format!("{UPLINK_IP}/24"),
        "dev",
        "veth-up",
    ]);
    ip(&["-n", &up, "link", "set", "veth-up", "up"]);
    ip(&[
        "-n",
        &inner,
        "addr",
        "add",
        &format!("{BED_IP}/24"),
        "dev",
        "veth-bed",
    ]);
    ip(&["-n", &inner, "link", "set", "veth-bed", "up"]);
    ip(&[
        "-n", &inner, "route", "replace", "default", "via", UPLINK_IP,
    ]);

    std::fs::write(site.join("hello"), "hello from the uplink\n").expect("page");
    let http = Command::new("ip")
        .args(["netns", "exec", &up, "python3", "-m", "http.server", "8080"])
        .args(["--bind", UPLINK_IP, "--directory"])
        .arg(site)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(site.join("access.log")).expect("log"))
        .spawn()
        .expect("http server");
    leftovers.children.push(http);
    let dns = Command::new("ip")
        .args(["netns", "exec", &up, "dnsmasq", "--keep-in-foreground"])
        .args([
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
        ])
        .arg(format!("--listen-address={UPLINK_IP}"))
        .arg(format!("--address=/{NAME}/{UPLINK_IP}"))
        .args(["--user=root", "--pid-file", "--log-queries=extra"])
        .arg(format!("--log-facility={}", site.join("dns.log").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (Debian package dnsmasq-base)");
    leftovers.children.push(dns);
    let listening = wait_until(Duration::from_secs(20), || {
        Command::new("ip")
            .args(["netns", "exec", &up, "python3", "-c"])
            .arg(format!(
                "import socket; socket.create_connection(('{UPLINK_IP}', 8080), 1)"
            ))
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("ip")
                .args(["netns", "exec", &up, "dig", "+short", "+time=1", "+tries=1"])
                .arg(format!("@{UPLINK_IP}"))
                .arg(NAME)
                .output()
                .is_ok_and(|o| text(&o.stdout).trim() == UPLINK_IP)
    });
    assert!(listening, "the uplink's web or DNS server never answered");
}

const GOOD_SYNC: &str = r#"
[[file_sync]]
host = "~/sync/tool.conf"
guest = "~/.config/tool.conf"
mode = "0640"

[[file_sync]]
host = "~/sync/tree"
guest = "~/tree"

[[file_sync]]
host = "~/sync/not-here"
guest = "~/not-here"
"#;

const BAD_SYNC: &str = r#"
[[file_sync]]
host = "~/sync/tool.conf"
guest = "~/.config/tool.conf"

[[file_sync]]
host = "~/sync/pipe"
guest = "~/pipe"
"#;

#[test]
#[ignore = "needs root, QEMU, nft, dnsmasq and real guests"]
fn guests_reach_the_uplink_by_name_find_each_other_and_get_their_files() {
    let bed = Guestbed::new();
    let layout = bed.layout();
    let sync_dir = bed.home().join("sync");
    let mut leftovers = Leftovers {
        netns_etc: Path::new("/etc/netns").join(bed.ns().name()),
        old_config: std::fs::read(&layout.config_file).ok(),
        config: layout.config_file.clone(),
        sync_dir: sync_dir.clone(),
        children: Vec::new(),
    };
    bed.pull_defaults();

    // The bed's resolver is the uplink's dnsmasq; `ip netns exec` (which starts the daemon)
    // bind-mounts this over /etc/resolv.conf.
    std::fs::create_dir_all(&leftovers.netns_etc).expect("/etc/netns/<bed>");
    std::fs::write(
        leftovers.netns_etc.join("resolv.conf"),
        format!("nameserver {UPLINK_IP}\n"),
    )
    .expect("resolv.conf");
    let uplink = NetNs::new().expect("uplink namespace");
    let site = tempfile::tempdir().expect("site");
    start_uplink(&uplink, &bed, site.path(), &mut leftovers);

    // file_sync: a 0640 file, a tree, a missing path.
    std::fs::create_dir_all(sync_dir.join("tree/sub")).expect("tree");
    std::fs::write(sync_dir.join("tool.conf"), "level = 3\n").expect("file");
    std::fs::write(sync_dir.join("tree/top.txt"), "top\n").expect("file");
    std::fs::write(sync_dir.join("tree/sub/deep.txt"), "deep\n").expect("file");
    std::fs::create_dir_all(layout.config_file.parent().expect("parent")).expect("config dir");
    std::fs::write(&layout.config_file, GOOD_SYNC).expect("config");
    // A daemon left by an earlier test must not keep its config.
    let _ = bed.banger(&["daemon", "stop"], Duration::from_secs(30));

    let out = create(&bed, "net-a", true);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "create: {said}");
    assert!(
        said.contains("file_sync[2]") && said.contains("not-here"),
        "the missing host path is warned about: {said}"
    );
    let out = ssh(
        &bed,
        "net-a",
        &[
            "bash",
            "-c",
            "stat -c '%a %u %g' /root/.config/tool.conf && cat /root/.config/tool.conf \
             /root/tree/top.txt /root/tree/sub/deep.txt && ! test -e /root/not-here \
             && cat /etc/resolv.conf",
        ],
    );
    let got = text(&out.stdout);
    assert!(out.status.success(), "{got}{}", text(&out.stderr));
    assert!(
        got.starts_with("640 0 0\nlevel = 3\ntop\ndeep\n"),
        "file_sync in the guest: {got}"
    );
    assert!(
        got.contains(&format!("nameserver {GATEWAY}")),
        "the guest's resolver is banger's: {got}"
    );

    // By name, through banger's resolver, masqueraded.
    let vm: Value =
        serde_json::from_str(&bed.ok(&["vm", "show", "net-a", "--json"])).expect("json");
    let id = vm["id"].as_str().expect("id").to_owned();
    let a_ip = vm["guest_ip"].as_str().expect("ip").to_owned();
    let got = fetch_by_name(&bed, "net-a");
    assert!(
        text(&got.stdout).contains("hello from the uplink"),
        "{}{}",
        text(&got.stdout),
        text(&got.stderr)
    );
    let seen = std::fs::read_to_string(site.path().join("access.log")).expect("access log");
    assert!(seen.contains(BED_IP), "the uplink's web server saw: {seen}");
    assert!(!seen.contains(&a_ip), "the guest's address leaked: {seen}");
    let queries = std::fs::read_to_string(site.path().join("dns.log")).expect("dns log");
    assert!(
        queries.contains(NAME) && queries.contains(BED_IP),
        "the uplink's DNS server got the query from the bed (banger forwarded it): {queries}"
    );
    assert!(!queries.contains(&a_ip), "{queries}");
    assert!(ruleset(&bed).contains(&format!("banger-vm:{id}")));
    let status = bed.ok(&["daemon", "status"]);
    assert!(
        status.contains(&format!("serving guests on {GATEWAY}:53")),
        "{status}"
    );

    // A guest without NAT resolves the name but cannot reach it; the two find each other.
    let out = create(&bed, "net-b", false);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let vm: Value =
        serde_json::from_str(&bed.ok(&["vm", "show", "net-b", "--json"])).expect("json");
    let b_ip = vm["guest_ip"].as_str().expect("ip").to_owned();
    let got = fetch_by_name(&bed, "net-b");
    assert!(
        !got.status.success() && !text(&got.stdout).contains("hello"),
        "a VM without --nat reached the uplink: {}",
        text(&got.stdout)
    );
    let out = ssh(&bed, "net-b", &["getent", "hosts", NAME, "net-a.vm"]);
    let got = text(&out.stdout);
    assert!(out.status.success(), "{got}{}", text(&out.stderr));
    assert!(got.contains(UPLINK_IP), "{got}");
    assert!(
        got.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [a_ip.as_str(), "net-a.vm"]),
        "net-b finds net-a by name: {got}"
    );
    let out = ssh(&bed, "net-a", &["getent", "hosts", "net-b.vm"]);
    assert!(
        text(&out.stdout).starts_with(&format!("{b_ip} ")),
        "net-a finds net-b: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = ssh(&bed, "net-a", &["getent", "hosts", "nope.vm"]);
    assert!(!out.status.success(), "an unknown name does not resolve");

    // NAT rules follow the VM out — also when its VMM dies while the daemon is down: the next
    // daemon's reconcile finds it dead and removes exactly its rule.
    bed.kill_daemon();
    let tag = format!("banger-{id}");
    for pid in tagged_pids(&tag) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(
        wait_until(Duration::from_secs(15), || tagged_pids(&tag).is_empty()),
        "net-a's VMM survived SIGKILL"
    );
    assert!(ruleset(&bed).contains(&format!("banger-vm:{id}")));
    let vm: Value =
        serde_json::from_str(&bed.ok(&["vm", "show", "net-a", "--json"])).expect("json");
    assert_ne!(vm["state"], "running", "{vm}");
    assert!(
        !ruleset(&bed).contains(&format!("banger-vm:{id}")),
        "reconcile left the dead VM's rule: {}",
        ruleset(&bed)
    );
    bed.ok(&["vm", "start", "net-a"]);
    assert!(ruleset(&bed).contains(&format!("banger-vm:{id}")));
    bed.ok(&["vm", "stop", "net-a"]);
    assert!(
        !ruleset(&bed).contains(&format!("banger-vm:{id}")),
        "{}",
        ruleset(&bed)
    );
    bed.ok(&["vm", "delete", "net-a"]);
    bed.ok(&["vm", "delete", "net-b"]);
    assert!(!ruleset(&bed).contains("banger-vm:"), "{}", ruleset(&bed));

    // A bad entry (a fifo) fails the create by its index and leaves nothing behind.
    let fifo = Command::new("mkfifo")
        .arg(sync_dir.join("pipe"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    std::fs::write(&layout.config_file, BAD_SYNC).expect("config");
    bed.ok(&["daemon", "stop"]);
    let vms_before = snapshot(&layout.vms_dir());
    let taps_before = bed.links("bgr-");
    let out = create(&bed, "net-bad", false);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "a bad entry must fail the create");
    assert!(said.contains("file_sync[1]"), "{said}");
    let list = bed.ok(&["vm", "list", "--json"]);
    assert!(!list.contains("net-bad"), "a record was left: {list}");
    assert_eq!(snapshot(&layout.vms_dir()), vms_before, "a VM dir was left");
    assert_eq!(bed.links("bgr-"), taps_before, "a TAP was left");

    // doctor in this set-up namespace (image pulled, VMs have run, no file_sync config).
    std::fs::remove_file(&layout.config_file).expect("config");
    std::fs::remove_dir_all(&sync_dir).expect("sync dir");
    bed.ok(&["daemon", "stop"]);
    let before = snapshot(bed.home().parent().expect("bed root"));
    let out = bed.banger(&["doctor"], Duration::from_secs(120));
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert_eq!(
        said.lines().count(),
        1,
        "a healthy host is one line: {said}"
    );
    let out = bed.banger(&["doctor", "--json"], Duration::from_secs(120));
    let report: Value = serde_json::from_slice(&out.stdout).expect("doctor --json parses");
    let checks = report.as_array().expect("an array of checks");
    let routing = checks
        .iter()
        .find(|c| c["name"] == "resolver-routing")
        .expect("resolver-routing row");
    assert_eq!(routing["status"], "info", "{routing}");
    let no_qemu = tempfile::tempdir().expect("path dir");
    let out = bed.banger_with_path(
        &["doctor"],
        &path_without_qemu(no_qemu.path()),
        Duration::from_secs(120),
    );
    let said = text(&out.stdout);
    assert!(
        !out.status.success() && said.contains("qemu-system-x86_64"),
        "without QEMU doctor fails naming it ({:?}): {said}{}",
        out.status.code(),
        text(&out.stderr)
    );
    assert_eq!(
        snapshot(bed.home().parent().expect("bed root")),
        before,
        "doctor changed a file under the layout"
    );
    drop(uplink);
    drop(leftovers);
}
