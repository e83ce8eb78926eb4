//! Looking at a VM without changing it: health, stats and listening ports.
//!
//! None of these take the VM's lock: they only read, and a status command must answer while a
//! long stop or start is under way. Every guest call is bounded by a short timeout, so an
//! unresponsive guest makes a check fail instead of hanging the request.
//!
//! - **health**: the VMM process (alive and this VM's), the agent's `GET /healthz`, and an SSH
//!   banner on port 22, checked together. A VM that is not running is unhealthy, not an error.
//! - **stats**: CPU time and resident memory of the VMM process from `/proc/<pid>/stat` and
//!   `/proc/<pid>/status`, and each disk file's allocated versus apparent size. The `/proc`
//!   parsers are pure functions.
//! - **ports**: relayed from the agent's `GET /ports`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use banger_guest::agent::{HEALTHZ, PORTS};
use banger_model::{VmRecord, VmState};
use banger_proto::{
    DiskUsage, ErrorCode, HealthCheck, ListeningPort, ProcessStats, VmHealth, VmPorts, VmStats,
};
use banger_vmm::AgentEndpoint;

use super::VmError;
use super::handles::{self, VmHandles};
use super::{agent, ssh_addr};
use crate::api::error::chain;
use crate::context::DaemonContext;

/// Bound on one agent call made by these commands.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on the SSH banner probe.
pub const SSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`: 100 on every architecture banger
/// runs on; the kernel scales to it whatever its internal `HZ`).
pub const USER_HZ: f64 = 100.0;

/// The handles of VM `record` if its VMM is alive and is this VM's.
pub(crate) fn live_handles(ctx: &DaemonContext, record: &VmRecord) -> Option<VmHandles> {
    let backends = ctx.backends();
    let saved = ctx
        .handles(&record.id)
        .or_else(|| handles::load(&record.dir))?;
    backends.vmm.is_running(&saved.vmm).then_some(saved)
}

fn not_running(record: &VmRecord) -> String {
    if record.state == VmState::Running {
        "not checked: the VMM is gone".to_owned()
    } else {
        format!("not checked: the vm is {}", record.state)
    }
}

/// VMM, agent and SSH of VM `reference`, checked at once.
pub async fn health(ctx: &DaemonContext, reference: &str) -> Result<VmHealth, VmError> {
    let record = ctx.store().vms().resolve(reference)?;
    let Some(live) = live_handles(ctx, &record) else {
        let skipped = HealthCheck {
            ok: false,
            detail: not_running(&record),
        };
        return Ok(VmHealth {
            vm: record.name.to_string(),
            state: record.state,
            vmm_alive: false,
            agent: skipped.clone(),
            ssh: skipped,
        });
    };
    let (agent, ssh) = tokio::join!(
        check_agent(&live.vmm.agent),
        check_ssh(ssh_addr(&ctx.backends(), &record))
    );
    Ok(VmHealth {
        vm: record.name.to_string(),
        state: record.state,
        vmm_alive: true,
        agent,
        ssh,
    })
}

async fn check_agent(endpoint: &AgentEndpoint) -> HealthCheck {
    let started = Instant::now();
    match agent::call(endpoint, "GET", HEALTHZ, AGENT_TIMEOUT).await {
        Ok((200, body)) => {
            let mut detail = format!("answered in {} ms", started.elapsed().as_millis());
            if let Some(version) = body["version"].as_str() {
                detail.push_str(&format!(", agent {version}"));
            }
            if let Some(ms) = body["uptime_ms"].as_u64() {
                detail.push_str(&format!(", guest up {}s", ms / 1000));
            }
            HealthCheck { ok: true, detail }
        }
        Ok((status, body)) => HealthCheck {
            ok: false,
            detail: format!("answered {status}: {body}"),
        },
        Err(e) => HealthCheck {
            ok: false,
            detail: chain(&e),
        },
    }
}

async fn check_ssh(addr: Option<SocketAddr>) -> HealthCheck {
    let Some(addr) = addr else {
        return HealthCheck {
            ok: false,
            detail: "the vm has no guest address".to_owned(),
        };
    };
    let started = Instant::now();
    let probe = tokio::task::spawn_blocking(move || banger_ssh::probe::probe(addr, SSH_TIMEOUT));
    match probe.await {
        Ok(Ok(())) => HealthCheck {
            ok: true,
            detail: format!("banner from {addr} in {} ms", started.elapsed().as_millis()),
        },
        Ok(Err(e)) => HealthCheck {
            ok: false,
            detail: format!("{addr}: {}", chain(&e)),
        },
        Err(e) => HealthCheck {
            ok: false,
            detail: format!("the probe crashed: {e}"),
        },
    }
}

/// Why the VMM's `/proc` entries could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcStatsError {
    /// A file could not be read.
    #[error("read {path}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file did not have the expected shape.
    #[error("cannot parse {path}")]
    Parse {
        /// The file.
        path: String,
    },
}

impl ProcStatsError {
    /// Whether the process went away while it was being read.
    fn is_gone(&self) -> bool {
        matches!(self, Self::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound
            || source.raw_os_error() == Some(nix::libc::ESRCH))
    }
}

/// CPU and start time from `/proc/<pid>/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Time in user mode (field 14).
    pub utime: u64,
    /// Time in kernel mode (field 15).
    pub stime: u64,
    /// When the process started, after boot (field 22).
    pub starttime: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
/// hold spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let (_, rest) = text.rsplit_once(')')?;
    // `rest` starts at field 3 (state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
    })
}

/// `VmRSS` from `/proc/<pid>/status`, in bytes.
pub fn parse_vm_rss(text: &str) -> Option<u64> {
    let value = text.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut parts = value.split_whitespace();
    let number: u64 = parts.next()?.parse().ok()?;
    let unit = match parts.next() {
        Some("kB") | Some("KB") | Some("kb") => 1024,
        Some("mB") | Some("MB") => 1024 * 1024,
        None | Some("B") => 1,
        Some(_) => return None,
    };
    number.checked_mul(unit)
}

/// Seconds since boot from `/proc/uptime`.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace()
        .next()?
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite())
}

/// Reads the stats of process `pid` under `proc_root` (normally `/proc`).
pub fn read_process(proc_root: &Path, pid: u32) -> Result<ProcessStats, ProcStatsError> {
    let read = |rel: String| {
        let path = proc_root.join(&rel);
        std::fs::read_to_string(&path).map_err(|source| ProcStatsError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let stat_rel = format!("{pid}/stat");
    let stat = parse_stat(&read(stat_rel.clone())?).ok_or_else(|| ProcStatsError::Parse {
        path: proc_root.join(&stat_rel).display().to_string(),
    })?;
    let status_rel = format!("{pid}/status");
    let rss = parse_vm_rss(&read(status_rel.clone())?).ok_or_else(|| ProcStatsError::Parse {
        path: proc_root.join(&status_rel).display().to_string(),
    })?;
    let uptime_seconds = read("uptime".to_owned())
        .ok()
        .and_then(|t| parse_uptime(&t))
        .map(|up| (up - stat.starttime as f64 / USER_HZ).max(0.0));
    Ok(ProcessStats {
        pid,
        cpu_seconds: (stat.utime + stat.stime) as f64 / USER_HZ,
        rss_bytes: rss,
        uptime_seconds,
    })
}

/// Allocated and apparent size of the VM's disk files that exist.
pub fn disk_usage(vm_dir: &Path) -> Vec<DiskUsage> {
    use std::os::unix::fs::MetadataExt;
    [("rootfs", "rootfs.ext4"), ("work", "work.ext4")]
        .into_iter()
        .filter_map(|(name, file)| {
            let path = vm_dir.join(file);
            let meta = std::fs::metadata(&path).ok()?;
            Some(DiskUsage {
                name: name.to_owned(),
                path,
                allocated_bytes: meta.blocks().saturating_mul(512),
                apparent_bytes: meta.len(),
            })
        })
        .collect()
}

/// What VM `reference` costs the host: its VMM's CPU time and memory (when running) and its
/// disks.
pub async fn stats(ctx: &DaemonContext, reference: &str) -> Result<VmStats, VmError> {
    let record = ctx.store().vms().resolve(reference)?;
    let handles = live_handles(ctx, &record);
    let pid = handles.as_ref().map(|h| h.vmm.pid);
    let vmm = handles.as_ref().map(|h| h.vmm.kind.as_str().to_owned());
    let console_log = banger_vmm::console_log_path(&record.dir);
    let console_log = handles
        .map(|h| h.vmm.console_log)
        .or_else(|| console_log.exists().then_some(console_log));
    let dir = record.dir.clone();
    let (process, disks) = tokio::task::spawn_blocking(move || {
        let process = pid.map(|pid| read_process(Path::new("/proc"), pid));
        (process, disk_usage(&dir))
    })
    .await
    .map_err(|e| VmError::new(ErrorCode::OperationFailed, e.to_string()))?;
    let process = match process {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) if e.is_gone() => None,
        Some(Err(e)) => return Err(VmError::failed(&e)),
        None => None,
    };
    Ok(VmStats {
        vm: record.name.to_string(),
        state: record.state,
        vcpu: record.spec.vcpu,
        memory_mib: record.spec.memory_mib,
        process,
        disks,
        vmm,
        console_log,
    })
}

/// The shape of the agent's `GET /ports` body.
#[derive(serde::Deserialize)]
struct AgentPorts {
    ports: Vec<ListeningPort>,
}

/// The TCP and UDP ports VM `reference` listens on, as its agent reports them.
pub async fn ports(ctx: &DaemonContext, reference: &str) -> Result<VmPorts, VmError> {
    let record = ctx.store().vms().resolve(reference)?;
    let Some(live) = live_handles(ctx, &record) else {
        return Err(VmError::invalid(format!(
            "vm {} is not running; start it with `banger vm start {}`",
            record.name, record.name
        )));
    };
    let failed = |what: String| {
        VmError::new(
            ErrorCode::OperationFailed,
            format!("cannot list the ports of {}: {what}", record.name),
        )
    };
    let body = match agent::call(&live.vmm.agent, "GET", PORTS, AGENT_TIMEOUT).await {
        Ok((200, body)) => body,
        Ok((404, _)) => {
            return Err(VmError::new(
                ErrorCode::Unavailable,
                format!(
                    "the agent in {} is older than this banger and cannot list ports; \
                     recreate the vm from a freshly pulled image",
                    record.name
                ),
            ));
        }
        Ok((status, body)) => return Err(failed(format!("the agent answered {status}: {body}"))),
        Err(e) => return Err(failed(chain(&e))),
    };
    let mut ports = serde_json::from_value::<AgentPorts>(body)
        .map_err(|e| failed(format!("the agent's answer is unreadable: {e}")))?
        .ports;
    ports.sort_by_key(|p| (p.port, p.protocol, p.address));
    ports.dedup();
    Ok(VmPorts {
        vm: record.name.to_string(),
        guest_ip: record.guest_ip.clone(),
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real QEMU line: the command name holds a space and a parenthesis.
    const STAT: &str = "4242 (qemu-system-x86 (x)) S 1 4241 4241 0 -1 4194624 123 0 0 0 \
                        2510 735 0 0 20 0 3 0 18250 1234567 890 18446744073709551615 1 1 0 0 0 0 0 \
                        4096 17635 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        assert_eq!(
            parse_stat(STAT),
            Some(ProcStat {
                utime: 2510,
                stime: 735,
                starttime: 18250,
            })
        );
        assert_eq!(parse_stat("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn rss_is_read_in_bytes() {
        let status =
            "Name:\tqemu-system-x86\nVmPeak:\t  999 kB\nVmRSS:\t  524288 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(512 << 20));
        assert_eq!(
            parse_vm_rss("Name: x\n"),
            None,
            "kernel threads have no VmRSS"
        );
        assert_eq!(parse_vm_rss("VmRSS: lots kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS: 1 parsecs\n"), None);
    }

    #[test]
    fn uptime_is_the_first_number() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350_735.47));
        assert_eq!(parse_uptime(""), None);
        assert_eq!(parse_uptime("NaN 1"), None);
    }

    #[test]
    fn a_fake_proc_gives_cpu_rss_and_uptime() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("4242")).unwrap();
        std::fs::write(dir.path().join("4242/stat"), STAT).unwrap();
        std::fs::write(dir.path().join("4242/status"), "VmRSS:\t 2048 kB\n").unwrap();
        std::fs::write(dir.path().join("uptime"), "200.50 10.0\n").unwrap();
        let p = read_process(dir.path(), 4242).unwrap();
        assert_eq!(p.pid, 4242);
        assert!((p.cpu_seconds - 32.45).abs() < 1e-9, "{}", p.cpu_seconds);
        assert_eq!(p.rss_bytes, 2 << 20);
        let up = p.uptime_seconds.unwrap();
        assert!((up - 18.0).abs() < 1e-9, "{up}");
        let gone = read_process(dir.path(), 1).unwrap_err();
        assert!(gone.is_gone(), "{gone}");
        std::fs::write(dir.path().join("4242/status"), "Name: x\n").unwrap();
        let bad = read_process(dir.path(), 4242).unwrap_err();
        assert!(matches!(bad, ProcStatsError::Parse { .. }), "{bad}");
        assert!(!bad.is_gone());
    }

    #[test]
    fn our_own_process_has_cpu_and_memory() {
        let p = read_process(Path::new("/proc"), std::process::id()).unwrap();
        assert!(p.rss_bytes > 0);
        assert!(p.uptime_seconds.is_some());
    }

    #[test]
    fn disk_usage_counts_allocated_blocks_of_sparse_files() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work.ext4");
        let f = std::fs::File::create(&work).unwrap();
        f.set_len(64 << 20).unwrap();
        drop(f);
        let disks = disk_usage(dir.path());
        assert_eq!(disks.len(), 1, "a missing rootfs is left out");
        assert_eq!(disks[0].name, "work");
        assert_eq!(disks[0].apparent_bytes, 64 << 20);
        assert!(disks[0].allocated_bytes < 1 << 20, "sparse: {:?}", disks[0]);
    }
}
