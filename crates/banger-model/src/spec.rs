//! VM specs and how their defaults resolve.
//!
//! Each field resolves on its own: a value given on the command line wins; otherwise
//! `[vm_defaults]` in config; otherwise a host heuristic (vCPUs = host CPUs / 4 capped at 4,
//! memory = host RAM / 8 capped at 8 GiB); otherwise a built-in floor. The heuristic never goes
//! below the floor. The resolver reports where each value came from so `doctor` and `--help` can
//! show it, and the CLI sends explicit values, so the daemon never guesses.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::VmDefaultsConfig;
use crate::size::Size;

/// Smallest and largest vCPU counts a VM may have.
pub const VCPU_RANGE: (u32, u32) = (1, 32);
/// Smallest memory a VM may have, in MiB.
pub const MIN_MEMORY_MIB: u64 = 128;
/// Smallest work disk a VM may have.
pub const MIN_DISK: Size = Size::from_mib(256);
/// Largest memory any VM may ask for, in MiB (16 TiB): above any host, and far inside what the
/// store's signed 64-bit integers hold.
pub const MAX_MEMORY_MIB: u64 = 16 << 20;
/// Largest work disk any VM may ask for (64 TiB).
pub const MAX_DISK: Size = Size::from_gib(64 << 10);

const BUILTIN_VCPU: u32 = 1;
const BUILTIN_MEMORY_MIB: u64 = 1024;
const BUILTIN_DISK: Size = Size::from_gib(8);
const HEURISTIC_VCPU_CAP: u32 = 4;
const HEURISTIC_MEMORY_CAP_MIB: u64 = 8 * 1024;

/// The resources of one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    /// Virtual CPUs.
    pub vcpu: u32,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// Size of the work disk mounted at `/root`.
    pub disk_size: Size,
    /// Whether the VM gets outbound NAT.
    pub nat: bool,
}

/// Why a spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// vCPU count outside [`VCPU_RANGE`].
    #[error("vcpu must be between {lo} and {hi}, got {0}", lo = VCPU_RANGE.0, hi = VCPU_RANGE.1)]
    Vcpu(u32),
    /// Memory below [`MIN_MEMORY_MIB`].
    #[error("memory must be at least {MIN_MEMORY_MIB} MiB, got {0} MiB")]
    Memory(u64),
    /// Disk below [`MIN_DISK`].
    #[error("disk size must be at least {MIN_DISK}, got {0}")]
    Disk(Size),
    /// Memory above [`MAX_MEMORY_MIB`].
    #[error("memory must be at most {MAX_MEMORY_MIB} MiB, got {0} MiB")]
    MemoryTooLarge(u64),
    /// Disk above [`MAX_DISK`].
    #[error("disk size must be at most {MAX_DISK}, got {0}")]
    DiskTooLarge(Size),
}

/// What this host can give VMs right now, read by the daemon and passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCapacity {
    /// Online CPUs.
    pub cpus: u32,
    /// Total RAM in MiB.
    pub memory_mib: u64,
    /// Free space on the file system that holds VM disks, in bytes.
    pub free_disk_bytes: u64,
}

/// Which limits of the host a spec may exceed (config `allow_memory_overcommit`,
/// `allow_disk_overcommit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overcommit {
    /// Guest memory above the host's RAM.
    pub memory: bool,
    /// Work disks (sparse) larger than the free space.
    pub disk: bool,
}

/// Why a spec does not fit this host. Messages name the limit and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    /// More vCPUs than the host has.
    #[error("vcpu {asked} is more than this host's {cpus} CPUs; ask for at most {cpus}")]
    Vcpu {
        /// Asked for.
        asked: u32,
        /// The host's.
        cpus: u32,
    },
    /// More memory than the host has.
    #[error(
        "memory {asked} MiB is more than this host's {host} MiB of RAM; ask for less, or set \
         allow_memory_overcommit = true in config"
    )]
    Memory {
        /// Asked for.
        asked: u64,
        /// The host's.
        host: u64,
    },
    /// A bigger work disk than there is free space.
    #[error(
        "disk size {asked} is more than the {free} free for VM disks; ask for less, free space, \
         or set allow_disk_overcommit = true in config (disks are sparse)"
    )]
    Disk {
        /// Asked for.
        asked: Size,
        /// Free now.
        free: Size,
    },
}

impl VmSpec {
    /// Checks every field against its limits.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.vcpu < VCPU_RANGE.0 || self.vcpu > VCPU_RANGE.1 {
            return Err(SpecError::Vcpu(self.vcpu));
        }
        if self.memory_mib < MIN_MEMORY_MIB {
            return Err(SpecError::Memory(self.memory_mib));
        }
        if self.disk_size < MIN_DISK {
            return Err(SpecError::Disk(self.disk_size));
        }
        if self.memory_mib > MAX_MEMORY_MIB {
            return Err(SpecError::MemoryTooLarge(self.memory_mib));
        }
        if self.disk_size > MAX_DISK {
            return Err(SpecError::DiskTooLarge(self.disk_size));
        }
        Ok(())
    }

    /// Checks the spec against what `host` has; `disk_growth` is how much more disk the
    /// change needs (the whole size for a new VM, the growth for a resize).
    pub fn check_capacity(
        &self,
        host: &HostCapacity,
        overcommit: Overcommit,
        disk_growth: Size,
    ) -> Result<(), CapacityError> {
        if self.vcpu > host.cpus {
            return Err(CapacityError::Vcpu {
                asked: self.vcpu,
                cpus: host.cpus,
            });
        }
        if !overcommit.memory && self.memory_mib > host.memory_mib {
            return Err(CapacityError::Memory {
                asked: self.memory_mib,
                host: host.memory_mib,
            });
        }
        if !overcommit.disk && disk_growth.bytes() > host.free_disk_bytes {
            return Err(CapacityError::Disk {
                asked: disk_growth,
                free: Size::from_bytes(host.free_disk_bytes),
            });
        }
        Ok(())
    }

    /// The one-line summary the CLI prints: `2 vcpu | 2048 MiB | 8G disk`.
    pub fn summary(&self) -> String {
        let nat = if self.nat { " | nat" } else { "" };
        format!(
            "{} vcpu | {} MiB | {} disk{nat}",
            self.vcpu, self.memory_mib, self.disk_size
        )
    }
}

/// Facts about the host that the heuristics use. Read by binaries, passed in here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostFacts {
    /// Online CPUs, if known.
    pub cpus: Option<u32>,
    /// Total RAM in bytes, if known.
    pub mem_bytes: Option<u64>,
}

/// Where a resolved value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// Given explicitly on the command line or in the request.
    Flag,
    /// `[vm_defaults]` in config.
    Config,
    /// Host heuristic.
    Auto,
    /// Built-in floor.
    Builtin,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flag => "flag",
            Self::Config => "config",
            Self::Auto => "auto",
            Self::Builtin => "builtin",
        })
    }
}

/// Values the user gave explicitly; `None` means "use the default".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpecOverrides {
    /// `--vcpu`.
    pub vcpu: Option<u32>,
    /// `--memory`.
    pub memory: Option<Size>,
    /// `--disk-size`.
    pub disk_size: Option<Size>,
    /// `--nat`.
    pub nat: Option<bool>,
}

/// A resolved spec plus the provenance of each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedSpec {
    /// The values.
    pub spec: VmSpec,
    /// Where `vcpu` came from.
    pub vcpu_from: Provenance,
    /// Where `memory_mib` came from.
    pub memory_from: Provenance,
    /// Where `disk_size` came from.
    pub disk_from: Provenance,
    /// Where `nat` came from.
    pub nat_from: Provenance,
}

impl ResolvedSpec {
    /// Resolves each field: overrides → config → host heuristic → built-in floor.
    pub fn resolve(
        overrides: SpecOverrides,
        config: &VmDefaultsConfig,
        host: HostFacts,
    ) -> ResolvedSpec {
        let (vcpu, vcpu_from) = pick(overrides.vcpu, config.vcpu, || {
            host.cpus
                .map(|c| (c / 4).min(HEURISTIC_VCPU_CAP))
                .filter(|v| *v >= BUILTIN_VCPU)
        })
        .unwrap_or((BUILTIN_VCPU, Provenance::Builtin));
        let (memory_mib, memory_from) = pick(
            overrides.memory.map(Size::mib),
            config.memory.map(Size::mib),
            || {
                host.mem_bytes
                    .map(|b| (b / 8 / (1024 * 1024)).min(HEURISTIC_MEMORY_CAP_MIB))
                    .filter(|m| *m >= BUILTIN_MEMORY_MIB)
            },
        )
        .unwrap_or((BUILTIN_MEMORY_MIB, Provenance::Builtin));
        let (disk_size, disk_from) = pick(overrides.disk_size, config.disk_size, || None)
            .unwrap_or((BUILTIN_DISK, Provenance::Builtin));
        let (nat, nat_from) =
            pick(overrides.nat, config.nat, || None).unwrap_or((false, Provenance::Builtin));
        ResolvedSpec {
            spec: VmSpec {
                vcpu,
                memory_mib,
                disk_size,
                nat,
            },
            vcpu_from,
            memory_from,
            disk_from,
            nat_from,
        }
    }
}

fn pick<T>(
    flag: Option<T>,
    config: Option<T>,
    auto: impl FnOnce() -> Option<T>,
) -> Option<(T, Provenance)> {
    flag.map(|v| (v, Provenance::Flag))
        .or_else(|| config.map(|v| (v, Provenance::Config)))
        .or_else(|| auto().map(|v| (v, Provenance::Auto)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_bounded_above_and_by_the_host() {
        let mut spec = VmSpec {
            vcpu: 2,
            memory_mib: 2048,
            disk_size: Size::from_gib(8),
            nat: false,
        };
        assert!(spec.validate().is_ok());
        spec.memory_mib = u64::MAX;
        assert_eq!(spec.validate(), Err(SpecError::MemoryTooLarge(u64::MAX)));
        spec.memory_mib = 2048;
        spec.disk_size = Size::from_gib(1 << 20);
        assert!(matches!(spec.validate(), Err(SpecError::DiskTooLarge(_))));
        spec.disk_size = Size::from_gib(8);

        let host = HostCapacity {
            cpus: 2,
            memory_mib: 4096,
            free_disk_bytes: Size::from_gib(10).bytes(),
        };
        let none = Overcommit::default();
        assert!(spec.check_capacity(&host, none, spec.disk_size).is_ok());
        let big = VmSpec { vcpu: 4, ..spec };
        assert!(matches!(
            big.check_capacity(&host, none, big.disk_size),
            Err(CapacityError::Vcpu { .. })
        ));
        let big = VmSpec {
            memory_mib: 8192,
            ..spec
        };
        let err = big.check_capacity(&host, none, big.disk_size).unwrap_err();
        assert!(err.to_string().contains("allow_memory_overcommit"), "{err}");
        let memory = Overcommit {
            memory: true,
            ..none
        };
        assert!(big.check_capacity(&host, memory, big.disk_size).is_ok());
        let err = spec
            .check_capacity(&host, none, Size::from_gib(1024))
            .unwrap_err();
        assert!(err.to_string().contains("allow_disk_overcommit"), "{err}");
        let disk = Overcommit { disk: true, ..none };
        assert!(
            spec.check_capacity(&host, disk, Size::from_gib(1024))
                .is_ok()
        );
    }

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn heuristics_scale_with_the_host_and_cap() {
        let small = ResolvedSpec::resolve(
            SpecOverrides::default(),
            &VmDefaultsConfig::default(),
            HostFacts {
                cpus: Some(8),
                mem_bytes: Some(16 * GIB),
            },
        );
        assert_eq!(small.spec.vcpu, 2);
        assert_eq!(small.spec.memory_mib, 2048);
        assert_eq!(small.vcpu_from, Provenance::Auto);
        assert_eq!(small.memory_from, Provenance::Auto);
        assert_eq!(small.disk_from, Provenance::Builtin);
        assert_eq!(small.spec.summary(), "2 vcpu | 2048 MiB | 8G disk");

        let big = ResolvedSpec::resolve(
            SpecOverrides::default(),
            &VmDefaultsConfig::default(),
            HostFacts {
                cpus: Some(64),
                mem_bytes: Some(512 * GIB),
            },
        );
        assert_eq!(big.spec.vcpu, 4);
        assert_eq!(big.spec.memory_mib, 8192);
    }

    #[test]
    fn tiny_or_unknown_hosts_fall_to_the_floor() {
        for host in [
            HostFacts {
                cpus: Some(2),
                mem_bytes: Some(4 * GIB),
            },
            HostFacts::default(),
        ] {
            let r =
                ResolvedSpec::resolve(SpecOverrides::default(), &VmDefaultsConfig::default(), host);
            assert_eq!(r.spec.vcpu, 1);
            assert_eq!(r.vcpu_from, Provenance::Builtin);
            assert_eq!(r.spec.memory_mib, 1024);
            assert_eq!(r.memory_from, Provenance::Builtin);
        }
    }

    #[test]
    fn config_beats_heuristics_and_flags_beat_config() {
        let config = VmDefaultsConfig {
            vcpu: Some(3),
            memory: Some(Size::from_mib(3000)),
            disk_size: Some(Size::from_gib(20)),
            nat: Some(true),
        };
        let host = HostFacts {
            cpus: Some(16),
            mem_bytes: Some(64 * GIB),
        };
        let r = ResolvedSpec::resolve(SpecOverrides::default(), &config, host);
        assert_eq!(
            r.spec,
            VmSpec {
                vcpu: 3,
                memory_mib: 3000,
                disk_size: Size::from_gib(20),
                nat: true
            }
        );
        assert_eq!(r.nat_from, Provenance::Config);
        let r = ResolvedSpec::resolve(
            SpecOverrides {
                vcpu: Some(1),
                ..Default::default()
            },
            &config,
            host,
        );
        assert_eq!((r.spec.vcpu, r.vcpu_from), (1, Provenance::Flag));
        assert_eq!(r.memory_from, Provenance::Config);
    }

    #[test]
    fn validation_names_the_field() {
        let ok = VmSpec {
            vcpu: 1,
            memory_mib: 512,
            disk_size: Size::from_gib(1),
            nat: false,
        };
        assert!(ok.validate().is_ok());
        let err = VmSpec { vcpu: 0, ..ok }.validate().unwrap_err();
        assert!(err.to_string().contains("vcpu"), "{err}");
        let err = VmSpec {
            memory_mib: 64,
            ..ok
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
        let err = VmSpec {
            disk_size: Size::from_mib(10),
            ..ok
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("disk"), "{err}");
    }
}
