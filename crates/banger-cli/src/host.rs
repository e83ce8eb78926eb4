//! Facts about this host that VM spec defaults depend on: CPU count and total RAM.
//!
//! Read here, in the binary, and handed to [`banger_model::ResolvedSpec::resolve`], which keeps
//! the resolution rules pure. Unknown facts are `None`, and the resolver falls back to its
//! built-in floor.

use banger_model::HostFacts;

/// Reads the CPU count and `MemTotal` from `/proc/meminfo`.
pub fn facts() -> HostFacts {
    HostFacts {
        cpus: std::thread::available_parallelism()
            .ok()
            .and_then(|n| u32::try_from(n.get()).ok()),
        mem_bytes: std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| mem_total(&text)),
    }
}

/// `MemTotal` in bytes from the text of `/proc/meminfo`.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    let unit = words.next().unwrap_or("kB");
    match unit {
        "kB" => value.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total_in_kib() {
        let text = "MemTotal:       16318412 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(text), Some(16_318_412 * 1024));
    }

    #[test]
    fn odd_meminfo_is_unknown() {
        assert_eq!(mem_total(""), None);
        assert_eq!(mem_total("MemTotal: lots kB\n"), None);
        assert_eq!(mem_total("MemTotal: 5 MB\n"), None);
    }

    #[test]
    fn this_host_has_facts() {
        let f = facts();
        assert!(f.cpus.is_some_and(|c| c >= 1));
    }
}
