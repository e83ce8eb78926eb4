//! `vm health`, `vm stats`, `vm ports` and `vm prune` as text.
//!
//! Health is one line per check (`vmm`, `agent`, `ssh`), the verdict coloured on a terminal;
//! stats a field block with sizes in binary units; ports a `PROTO ADDRESS PORT` table.

use banger_model::VmRecord;
use banger_proto::{VmHealth, VmPorts, VmStats};

use super::fields::Fields;
use super::table::Table;
use crate::style;

/// What `vm ports` prints when nothing listens.
pub const NO_PORTS: &str = "nothing listens in this VM";

/// Bytes in binary units with one decimal: `412.5 MiB`; below 1 KiB, plain bytes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// Seconds as `1h02m03s`, `4m05s` or `12s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// One line per check: name, `ok` or `fail`, detail.
pub fn health(h: &VmHealth) -> String {
    let vmm_detail = if h.vmm_alive {
        "running".to_owned()
    } else {
        format!("not running (the vm is {})", h.state)
    };
    let rows = [
        ("vmm", h.vmm_alive, vmm_detail.as_str()),
        ("agent", h.agent.ok, h.agent.detail.as_str()),
        ("ssh", h.ssh.ok, h.ssh.detail.as_str()),
    ];
    let mut out = String::new();
    for (name, ok, detail) in rows {
        let verdict = if ok {
            style::paint(style::OK, "ok  ")
        } else {
            style::paint(style::ERROR, "fail")
        };
        out.push_str(&format!("{name:<6}{verdict}  {detail}\n"));
    }
    out
}

/// The checks that failed, for the closing error: `agent, ssh`.
pub fn failed_checks(h: &VmHealth) -> String {
    [
        ("vmm", h.vmm_alive),
        ("agent", h.agent.ok),
        ("ssh", h.ssh.ok),
    ]
    .iter()
    .filter(|(_, ok)| !ok)
    .map(|(name, _)| *name)
    .collect::<Vec<_>>()
    .join(", ")
}

/// The `vm stats` block.
pub fn stats(s: &VmStats) -> String {
    let mut f = Fields::new();
    f.add("name", s.vm.clone())
        .add("state", s.state.to_string())
        .opt("vmm", s.vmm.clone())
        .opt(
            "console",
            s.console_log.as_ref().map(|p| p.display().to_string()),
        );
    let configured = bytes(s.memory_mib.saturating_mul(1024 * 1024));
    match &s.process {
        Some(p) => {
            f.add("pid", p.pid.to_string())
                .add("cpu", format!("{:.2}s over {} vcpu", p.cpu_seconds, s.vcpu))
                .add(
                    "memory",
                    format!("{} resident of {configured}", bytes(p.rss_bytes)),
                )
                .opt("uptime", p.uptime_seconds.map(duration));
        }
        None => {
            f.add("cpu", format!("- (not running; {} vcpu)", s.vcpu))
                .add("memory", format!("- (not running; {configured})"));
        }
    }
    for disk in &s.disks {
        let key = if disk.name == "rootfs" {
            "rootfs disk"
        } else {
            "work disk"
        };
        f.add(
            key,
            format!(
                "{} allocated of {}",
                bytes(disk.allocated_bytes),
                bytes(disk.apparent_bytes)
            ),
        );
    }
    f.render()
}

/// The `vm ports` table.
pub fn ports(p: &VmPorts) -> Table {
    let mut t = Table::new(&["PROTO", "ADDRESS", "PORT"]);
    for port in &p.ports {
        t.row(vec![
            port.protocol.as_str().to_owned(),
            port.address.to_string(),
            port.port.to_string(),
        ]);
    }
    t
}

/// What `vm prune` asks about: name, state and the last error, if any.
pub fn prune_candidates(vms: &[&VmRecord]) -> Table {
    let mut t = Table::new(&["NAME", "STATE", "CREATED", "LAST ERROR"]);
    for vm in vms {
        t.row(vec![
            vm.name.to_string(),
            vm.state.to_string(),
            vm.created_at.clone(),
            vm.last_error.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_model::VmState;
    use banger_proto::{DiskUsage, HealthCheck, ListeningPort, PortProtocol, ProcessStats};

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(432_537_600), "412.5 MiB");
        assert_eq!(bytes(8 << 30), "8.0 GiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(12.9), "12s");
        assert_eq!(duration(245.0), "4m05s");
        assert_eq!(duration(3723.0), "1h02m03s");
        assert_eq!(duration(-1.0), "0s");
    }

    fn check(ok: bool, detail: &str) -> HealthCheck {
        HealthCheck {
            ok,
            detail: detail.to_owned(),
        }
    }

    #[test]
    fn health_is_one_line_per_check() {
        let h = VmHealth {
            vm: "web".into(),
            state: VmState::Running,
            vmm_alive: true,
            agent: check(true, "answered in 3 ms"),
            ssh: check(false, "172.30.0.2:22: cannot connect"),
        };
        let text = health(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("vmm   "), "{text}");
        assert!(lines[0].contains("ok") && lines[0].ends_with("running"));
        assert!(lines[1].contains("answered in 3 ms"), "{text}");
        assert!(lines[2].contains("fail") && lines[2].ends_with("cannot connect"));
        assert_eq!(failed_checks(&h), "ssh");
    }

    #[test]
    fn stats_show_process_and_disks() {
        let mut s = VmStats {
            vm: "web".into(),
            state: VmState::Running,
            vcpu: 2,
            memory_mib: 2048,
            process: Some(ProcessStats {
                pid: 42,
                cpu_seconds: 12.345,
                rss_bytes: 432_537_600,
                uptime_seconds: Some(245.0),
            }),
            disks: vec![DiskUsage {
                name: "work".into(),
                path: "/s/vms/x/work.ext4".into(),
                allocated_bytes: 20 << 20,
                apparent_bytes: 8 << 30,
            }],
            vmm: Some("qemu".into()),
            console_log: Some("/s/vms/x/console.log".into()),
        };
        let text = stats(&s);
        for needle in [
            "vmm:       qemu",
            "console:   /s/vms/x/console.log",
            "cpu:       12.35s over 2 vcpu",
            "memory:    412.5 MiB resident of 2.0 GiB",
            "uptime:    4m05s",
            "work disk: 20.0 MiB allocated of 8.0 GiB",
        ] {
            assert!(text.contains(needle), "{needle:?} in\n{text}");
        }
        s.process = None;
        s.state = VmState::Stopped;
        let text = stats(&s);
        assert!(
            text.contains("cpu:       - (not running; 2 vcpu)"),
            "{text}"
        );
        assert!(!text.contains("pid:"), "{text}");
    }

    #[test]
    fn ports_table() {
        let p = VmPorts {
            vm: "web".into(),
            guest_ip: None,
            ports: vec![
                ListeningPort {
                    protocol: PortProtocol::Tcp,
                    address: "0.0.0.0".parse().unwrap(),
                    port: 22,
                },
                ListeningPort {
                    protocol: PortProtocol::Udp,
                    address: "::".parse().unwrap(),
                    port: 5353,
                },
            ],
        };
        assert_eq!(
            ports(&p).lines(),
            [
                "PROTO  ADDRESS  PORT",
                "tcp    0.0.0.0  22",
                "udp    ::       5353"
            ]
        );
    }
}
