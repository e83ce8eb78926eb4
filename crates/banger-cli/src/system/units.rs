//! The two systemd units of a system install, rendered from typed data.
//!
//! - `bangerd.service`: the daemon as the owner user, no capabilities. `KillMode=process` and
//!   `RuntimeDirectoryPreserve=yes` let a restart replace the daemon while the VMMs it started
//!   (children in its cgroup) and their sockets under `/run/banger` stay; the new daemon
//!   re-adopts them at start. Hardening stops short of what QEMU needs: `/dev/net/tun` and
//!   `/dev/kvm` stay visible (no `PrivateDevices`), and JIT pages stay allowed (no
//!   `MemoryDenyWriteExecute`: TCG writes code at run time).
//! - `bangerd-root.service`: the root helper, limited to the capabilities its requests need.
//!   `SendSIGKILL=no` as well, so a helper that is slow to stop is never killed mid-request.
//!
//! The renderer is pure: the installer writes its output, `system status` compares it with
//! what is on disk (drift), and the systemd tier runs `systemd-analyze verify` on it.

use std::fmt::Write as _;

/// The daemon's unit name.
pub const DAEMON_UNIT: &str = "bangerd.service";
/// The root helper's unit name.
pub const HELPER_UNIT: &str = "bangerd-root.service";
/// The root helper's socket (its default; `RuntimeDirectory=banger-root`).
pub const HELPER_SOCKET: &str = "/run/banger-root/helper.sock";

/// Who the daemon runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// User name.
    pub name: String,
    /// The user's primary group name.
    pub group: String,
    /// Extra groups the daemon needs (`kvm` when the host has it, for `/dev/kvm`).
    pub extra_groups: Vec<String>,
}

/// What both units are rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// The owner.
    pub owner: Owner,
    /// The installed `bangerd`.
    pub bangerd: String,
    /// The jailer and the Firecracker binary the helper runs for jailed VMs (the owner's
    /// config has `jailer_bin`), pinned in the helper's command line; `None`: no jails.
    pub jail: Option<JailBinaries>,
}

/// The binaries the helper runs as root for jailed VMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailBinaries {
    /// Firecracker's `jailer`.
    pub jailer: String,
    /// The Firecracker binary the jailer may exec.
    pub firecracker: String,
}

/// Capabilities the helper keeps, each with the requests that need it: exactly what its
/// request set (bridge, TAPs, link renames and deletes, the NAT tables, its socket) uses.
pub const HELPER_CAPABILITIES: &[(&str, &str)] = &[
    (
        "CAP_NET_ADMIN",
        "bridge, TAPs (and their owner), link renames and deletes, nftables, IP forwarding",
    ),
    ("CAP_NET_RAW", "the netlink and nftables sockets"),
    (
        "CAP_CHOWN",
        "giving its socket to the owner; the jail's root, devices and log files to the owner",
    ),
    (
        "CAP_FOWNER",
        "setting its socket's mode after handing it over; hard-linking the owner's VM files \
         into a jail (fs.protected_hardlinks)",
    ),
];

/// Capabilities added when the helper runs the jailer (an install whose owner configured
/// `jailer_bin`): the jailer inherits the helper's bounding set, and these are what its
/// staging and its own steps (Firecracker's `docs/jailer.md`) use.
pub const JAILER_CAPABILITIES: &[(&str, &str)] = &[
    (
        "CAP_DAC_OVERRIDE",
        "staging jails inside the owner's 0700 state dir",
    ),
    (
        "CAP_SYS_CHROOT",
        "the jailer's chroot (pivot_root) into a VM's jail",
    ),
    (
        "CAP_SYS_ADMIN",
        "the jailer's own mount namespace and the bind mount of the jail it pivots into",
    ),
    (
        "CAP_MKNOD",
        "the jailer's /dev/kvm and /dev/net/tun nodes in a jail",
    ),
    (
        "CAP_SETUID",
        "the jailer's drop of Firecracker to the owner's uid",
    ),
    (
        "CAP_SETGID",
        "the jailer's drop of Firecracker to the owner's gid and groups",
    ),
];

/// One `[Section]` of a unit: ordered `Key=value` lines, each with an optional comment.
#[derive(Debug, Default)]
struct Section {
    name: &'static str,
    lines: Vec<(String, String, Option<&'static str>)>,
}

impl Section {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            lines: Vec::new(),
        }
    }

    fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.lines.push((key.to_owned(), value.into(), None));
        self
    }

    fn why(mut self, key: &str, value: impl Into<String>, why: &'static str) -> Self {
        self.lines.push((key.to_owned(), value.into(), Some(why)));
        self
    }
}

fn render(sections: &[Section]) -> String {
    let mut out = String::from(
        "# Written by `banger system install`; rewritten on every install, removed by\n\
         # `banger system uninstall`. Put local changes in a drop-in (systemctl edit).\n",
    );
    for section in sections {
        let _ = write!(out, "\n[{}]\n", section.name);
        for (key, value, why) in &section.lines {
            if let Some(why) = why {
                let _ = writeln!(out, "# {why}");
            }
            let _ = writeln!(out, "{key}={value}");
        }
    }
    out
}

/// Hardening both units share; none of it hides `/dev` or forbids JIT pages. The helper
/// keeps sysctls (IP forwarding for NAT), cgroups and namespaces (the jailer) reachable.
fn hardened(section: Section) -> Section {
    section
        .set("NoNewPrivileges", "yes")
        .set("ProtectSystem", "full")
        .set("ProtectHome", "read-only")
        .set("PrivateTmp", "yes")
        .set("ProtectKernelModules", "yes")
        .set("ProtectKernelLogs", "yes")
        .set("ProtectClock", "yes")
        .set("ProtectHostname", "yes")
        .set("RestrictSUIDSGID", "yes")
        .set("RestrictRealtime", "yes")
        .set("LockPersonality", "yes")
        .set("SystemCallArchitectures", "native")
}

/// `bangerd.service`.
pub fn daemon_unit(spec: &UnitSpec) -> String {
    let mut service = Section::new("Service")
        .why(
            "Type",
            "notify",
            "ready once the socket answers and running VMs are re-adopted",
        )
        .set("NotifyAccess", "main")
        .why(
            "ExecStartPre",
            format!(
                "-/usr/bin/timeout 10 /bin/sh -c 'until [ -S {HELPER_SOCKET} ]; do sleep 0.1; done'"
            ),
            "the daemon picks the helper at start: give a starting helper up to 10 s to listen",
        )
        .set("ExecStart", format!("{} --system", spec.bangerd))
        .set("User", &spec.owner.name)
        .set("Group", &spec.owner.group);
    if !spec.owner.extra_groups.is_empty() {
        service = service.why(
            "SupplementaryGroups",
            spec.owner.extra_groups.join(" "),
            "/dev/kvm for hardware-accelerated guests",
        );
    }
    service = service
        .set("Restart", "on-failure")
        .set("RestartSec", "1")
        .why(
            "KillMode",
            "process",
            "a stop or restart ends only the daemon: VMMs keep running and are re-adopted",
        )
        .set("RuntimeDirectory", "banger")
        .set("RuntimeDirectoryMode", "0700")
        .why(
            "RuntimeDirectoryPreserve",
            "yes",
            "VM sockets and pid files outlive a restart",
        )
        .set("StateDirectory", "banger")
        .set("StateDirectoryMode", "0700")
        .set("CacheDirectory", "banger")
        .set("CacheDirectoryMode", "0700")
        .why(
            "CapabilityBoundingSet",
            "",
            "no privileges: the root helper does the privileged steps",
        )
        .set("AmbientCapabilities", "");
    let service = hardened(service)
        .set("ProtectKernelTunables", "yes")
        .set("ProtectControlGroups", "yes")
        .set("RestrictNamespaces", "yes");
    render(&[
        Section::new("Unit")
            .set(
                "Description",
                format!("banger daemon (VMs of {})", spec.owner.name),
            )
            .set("Wants", HELPER_UNIT)
            .set("After", format!("network.target {HELPER_UNIT}")),
        service,
        Section::new("Install").set("WantedBy", "multi-user.target"),
    ])
}

/// The helper's command line: the owner, and the jail binaries when the install jails VMs.
fn helper_command(spec: &UnitSpec) -> String {
    let mut command = format!("{} root-helper --owner {}", spec.bangerd, spec.owner.name);
    if let Some(jail) = &spec.jail {
        let _ = write!(
            command,
            " --jailer {} --firecracker {}",
            jail.jailer, jail.firecracker
        );
    }
    command
}

/// The helper's bounding set for `spec`: its own, plus the jailer's when it runs one.
pub fn helper_capabilities(spec: &UnitSpec) -> Vec<&'static str> {
    let jail: &[(&str, &str)] = if spec.jail.is_some() {
        JAILER_CAPABILITIES
    } else {
        &[]
    };
    HELPER_CAPABILITIES
        .iter()
        .chain(jail)
        .map(|(cap, _)| *cap)
        .collect()
}

/// `bangerd-root.service`.
pub fn helper_unit(spec: &UnitSpec) -> String {
    let caps = helper_capabilities(spec);
    let service = Section::new("Service")
        .set("Type", "simple")
        .set("ExecStart", helper_command(spec))
        .set("Restart", "on-failure")
        .set("RestartSec", "1")
        .why(
            "KillMode",
            "process",
            "a restart never touches what the helper set up",
        )
        .why(
            "SendSIGKILL",
            "no",
            "a helper finishing a request is never killed half-way",
        )
        .set("RuntimeDirectory", "banger-root")
        .set("RuntimeDirectoryMode", "0755")
        .set("RuntimeDirectoryPreserve", "yes")
        .why(
            "CapabilityBoundingSet",
            caps.join(" "),
            "only what the helper's requests need (see `banger system status`)",
        );
    let service = hardened(service);
    render(&[
        Section::new("Unit")
            .set(
                "Description",
                format!(
                    "banger root helper (privileged steps for {}'s bangerd)",
                    spec.owner.name
                ),
            )
            .set("Before", DAEMON_UNIT),
        service,
        Section::new("Install").set("WantedBy", "multi-user.target"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &[&str]) -> UnitSpec {
        UnitSpec {
            owner: Owner {
                name: "tester".into(),
                group: "tester".into(),
                extra_groups: extra.iter().map(|g| (*g).to_owned()).collect(),
            },
            bangerd: "/usr/local/bin/bangerd".into(),
            jail: None,
        }
    }

    fn value<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .collect()
    }

    #[test]
    fn the_daemon_runs_as_the_owner_without_capabilities() {
        let unit = daemon_unit(&spec(&["kvm"]));
        assert_eq!(
            value(&unit, "ExecStart"),
            ["/usr/local/bin/bangerd --system"]
        );
        assert_eq!(value(&unit, "User"), ["tester"]);
        assert_eq!(value(&unit, "Group"), ["tester"]);
        assert_eq!(value(&unit, "SupplementaryGroups"), ["kvm"]);
        assert_eq!(value(&unit, "KillMode"), ["process"]);
        assert_eq!(value(&unit, "RuntimeDirectory"), ["banger"]);
        assert_eq!(value(&unit, "RuntimeDirectoryPreserve"), ["yes"]);
        assert_eq!(value(&unit, "StateDirectory"), ["banger"]);
        assert_eq!(value(&unit, "CacheDirectory"), ["banger"]);
        assert_eq!(value(&unit, "CapabilityBoundingSet"), [""]);
        assert_eq!(value(&unit, "Wants"), ["bangerd-root.service"]);
        // QEMU needs /dev/net/tun, /dev/kvm and writable-executable pages under TCG.
        assert!(value(&unit, "PrivateDevices").is_empty());
        assert!(value(&unit, "MemoryDenyWriteExecute").is_empty());
    }

    #[test]
    fn no_kvm_group_means_no_supplementary_groups() {
        let unit = daemon_unit(&spec(&[]));
        assert!(value(&unit, "SupplementaryGroups").is_empty());
    }

    #[test]
    fn the_helper_keeps_only_its_capabilities_and_is_never_sigkilled() {
        let unit = helper_unit(&spec(&[]));
        assert_eq!(
            value(&unit, "ExecStart"),
            ["/usr/local/bin/bangerd root-helper --owner tester"]
        );
        assert!(value(&unit, "User").is_empty(), "the helper runs as root");
        assert_eq!(value(&unit, "KillMode"), ["process"]);
        assert_eq!(value(&unit, "SendSIGKILL"), ["no"]);
        assert_eq!(value(&unit, "RuntimeDirectory"), ["banger-root"]);
        assert_eq!(value(&unit, "RuntimeDirectoryPreserve"), ["yes"]);
        let caps = value(&unit, "CapabilityBoundingSet");
        assert_eq!(caps.len(), 1);
        assert!(caps[0].contains("CAP_NET_ADMIN"));
        for broad in [
            "CAP_SYS_MODULE",
            "CAP_SYS_PTRACE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_BOOT",
        ] {
            assert!(!caps[0].contains(broad), "{broad}");
        }
        assert_eq!(value(&unit, "Before"), ["bangerd.service"]);
        // NAT needs IP forwarding, the jailer cgroups and namespaces.
        for key in [
            "ProtectKernelTunables",
            "ProtectControlGroups",
            "RestrictNamespaces",
        ] {
            assert!(value(&unit, key).is_empty(), "{key}");
        }
    }

    #[test]
    fn a_jailing_install_pins_the_binaries_and_adds_only_the_jailers_capabilities() {
        let plain = helper_unit(&spec(&[]));
        let plain_caps = value(&plain, "CapabilityBoundingSet")[0].to_owned();
        for cap in ["CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_SETUID", "CAP_SYS_ADMIN"] {
            assert!(!plain_caps.contains(cap), "{cap} without a jailer");
        }
        let jailing = UnitSpec {
            jail: Some(JailBinaries {
                jailer: "/usr/local/bin/jailer".into(),
                firecracker: "/usr/local/bin/firecracker".into(),
            }),
            ..spec(&[])
        };
        let unit = helper_unit(&jailing);
        assert_eq!(
            value(&unit, "ExecStart"),
            [
                "/usr/local/bin/bangerd root-helper --owner tester --jailer \
                 /usr/local/bin/jailer --firecracker /usr/local/bin/firecracker"
            ]
        );
        let caps: Vec<&str> = value(&unit, "CapabilityBoundingSet")[0]
            .split(' ')
            .collect();
        for cap in [
            "CAP_NET_ADMIN",
            "CAP_SYS_CHROOT",
            "CAP_MKNOD",
            "CAP_SETUID",
            "CAP_SETGID",
            "CAP_CHOWN",
            "CAP_FOWNER",
            "CAP_DAC_OVERRIDE",
            "CAP_SYS_ADMIN",
        ] {
            assert!(caps.contains(&cap), "{cap}: {caps:?}");
        }
        for broad in [
            "CAP_SYS_MODULE",
            "CAP_SYS_PTRACE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_BOOT",
        ] {
            assert!(!caps.contains(&broad), "{broad}");
        }
        assert_eq!(
            caps.len(),
            HELPER_CAPABILITIES.len() + JAILER_CAPABILITIES.len(),
            "no duplicates"
        );
    }

    #[test]
    #[ignore = "needs systemd-analyze (Debian: systemd) and setpriv; the systemd tier verifies a plain install"]
    fn systemd_analyze_verifies_both_units_of_a_jailing_install() {
        let dir = tempfile::tempdir().expect("tempdir");
        // verify checks that ExecStart's binary exists: point it at one that does.
        let spec = UnitSpec {
            bangerd: "/bin/true".into(),
            jail: Some(JailBinaries {
                jailer: "/bin/true".into(),
                firecracker: "/bin/true".into(),
            }),
            ..spec(&[])
        };
        let (daemon, helper) = (dir.path().join(DAEMON_UNIT), dir.path().join(HELPER_UNIT));
        std::fs::write(&daemon, daemon_unit(&spec)).expect("daemon unit");
        std::fs::write(&helper, helper_unit(&spec)).expect("helper unit");
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&daemon)
            .arg(&helper)
            .output()
            .expect("systemd-analyze runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The owner `tester` need not exist on the test host; nothing else may be reported.
        let problems: Vec<&str> = stderr.lines().filter(|l| !l.contains("tester")).collect();
        assert!(problems.is_empty(), "systemd-analyze verify: {stderr}");
        // verify does not check capability names: the kernel's list (util-linux) does.
        let known = std::process::Command::new("setpriv")
            .arg("--list-caps")
            .output()
            .expect("setpriv runs");
        let known = String::from_utf8_lossy(&known.stdout);
        for cap in helper_capabilities(&spec) {
            let name = cap.trim_start_matches("CAP_").to_lowercase();
            assert!(
                known.lines().any(|l| l == name),
                "{cap} is not a capability"
            );
        }
    }

    #[test]
    fn every_line_is_a_comment_a_section_or_a_key() {
        for unit in [daemon_unit(&spec(&["kvm"])), helper_unit(&spec(&[]))] {
            for line in unit.lines().filter(|l| !l.is_empty()) {
                assert!(
                    line.starts_with('#') || line.starts_with('[') || line.contains('='),
                    "{line}"
                );
            }
            assert!(unit.contains("\n[Install]\nWantedBy=multi-user.target\n"));
        }
    }
}
