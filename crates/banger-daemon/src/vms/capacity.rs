//! What this host can give VMs right now: CPUs, RAM and free space for VM disks.
//!
//! Read when a create or a resize is checked (not cached: free space changes), from
//! `sysconf`, `/proc/meminfo` and `statvfs` of the state dir. The comparison itself is the
//! model's pure [`banger_model::VmSpec::check_capacity`].

use std::path::Path;

use banger_model::HostCapacity;

/// `MemTotal` of a `/proc/meminfo` text, in MiB.
fn mem_total_mib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib / 1024)
}

/// This host's capacity for VMs whose disks live under `state_dir`. Anything that cannot be
/// read counts as unlimited (the VMM will then be the one to refuse).
pub fn probe(state_dir: &Path) -> HostCapacity {
    let cpus = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(u32::MAX);
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total_mib(&m))
        .unwrap_or(u64::MAX);
    let dir = state_dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    let free_disk_bytes = nix::sys::statvfs::statvfs(dir)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .unwrap_or(u64::MAX);
    HostCapacity {
        cpus,
        memory_mib,
        free_disk_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_host() {
        assert_eq!(
            mem_total_mib("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24000)
        );
        let dir = tempfile::tempdir().unwrap();
        let cap = probe(&dir.path().join("not/yet/there"));
        assert!(cap.cpus >= 1 && cap.cpus < u32::MAX);
        assert!(cap.memory_mib > 0 && cap.memory_mib < u64::MAX);
        assert!(cap.free_disk_bytes < u64::MAX);
    }
}
