//! What one microVM should look like ([`VmConfig`]) and the ordered Firecracker API calls that
//! make it so ([`ApiCall`], [`VmConfig::plan`]).
//!
//! Why a pure plan: the order of pre-boot calls matters (the logger first, so Firecracker logs
//! the failures of the calls after it; the root drive first, so it is the guest's first block
//! device; `InstanceStart` last) and is easy to get wrong. Computing it without I/O makes the
//! order a unit test, and the client only replays it.
//!
//! Invariants of a plan from [`VmConfig::plan`]: it passed [`VmConfig::validate`], every call is
//! a pre-boot `PUT`, and exactly one `InstanceStart` ends it.

use std::collections::HashSet;

use serde::Serialize;

use super::api::{
    Action, ActionType, BootSource, Drive, Logger, MachineConfig, Metrics, NetworkInterface,
    SnapshotLoad, Vsock, is_valid_resource_id,
};

/// Most vCPUs Firecracker accepts.
pub const MAX_VCPUS: u8 = 32;

/// Longest TAP name the kernel accepts (`IFNAMSIZ - 1`).
pub const MAX_TAP_NAME: usize = 15;

/// Smallest guest CID the spec allows (0–2 are reserved).
pub const MIN_GUEST_CID: u32 = 3;

/// One call of the Firecracker API. Serialises to exactly its request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ApiCall {
    /// `PUT /logger`.
    PutLogger(Logger),
    /// `PUT /metrics`.
    PutMetrics(Metrics),
    /// `PUT /machine-config`.
    PutMachineConfig(MachineConfig),
    /// `PUT /boot-source`.
    PutBootSource(BootSource),
    /// `PUT /drives/{drive_id}`.
    PutDrive(Drive),
    /// `PUT /network-interfaces/{iface_id}`.
    PutNetworkInterface(NetworkInterface),
    /// `PUT /vsock`.
    PutVsock(Vsock),
    /// `PUT /actions`.
    Action(Action),
    /// `PUT /snapshot/load` (instead of the boot configuration: see
    /// [`crate::firecracker::snapshot`]).
    LoadSnapshot(SnapshotLoad),
}

impl ApiCall {
    /// `InstanceStart`.
    pub const INSTANCE_START: Self = Self::Action(Action {
        action_type: ActionType::InstanceStart,
    });

    /// The HTTP method (every call here is a `PUT`).
    pub fn method(&self) -> &'static str {
        "PUT"
    }

    /// The request path, ids included.
    pub fn path(&self) -> String {
        match self {
            Self::PutLogger(_) => "/logger".to_owned(),
            Self::PutMetrics(_) => "/metrics".to_owned(),
            Self::PutMachineConfig(_) => "/machine-config".to_owned(),
            Self::PutBootSource(_) => "/boot-source".to_owned(),
            Self::PutDrive(d) => format!("/drives/{}", d.drive_id),
            Self::PutNetworkInterface(n) => format!("/network-interfaces/{}", n.iface_id),
            Self::PutVsock(_) => "/vsock".to_owned(),
            Self::Action(_) => "/actions".to_owned(),
            Self::LoadSnapshot(_) => "/snapshot/load".to_owned(),
        }
    }

    /// The id that appears in the path, for calls on an id-addressed resource.
    pub fn resource_id(&self) -> Option<&str> {
        match self {
            Self::PutDrive(d) => Some(&d.drive_id),
            Self::PutNetworkInterface(n) => Some(&n.iface_id),
            _ => None,
        }
    }
}

/// Everything Firecracker needs to boot one microVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// Firecracker's own log, configured first.
    pub logger: Option<Logger>,
    /// Firecracker's metrics sink.
    pub metrics: Option<Metrics>,
    /// vCPUs and memory.
    pub machine: MachineConfig,
    /// Kernel, initrd, command line.
    pub boot_source: BootSource,
    /// Block devices; the root drive (if any) is attached first whatever its position here.
    pub drives: Vec<Drive>,
    /// Network interfaces, attached in this order.
    pub network_interfaces: Vec<NetworkInterface>,
    /// The vsock device (banger's agent channel).
    pub vsock: Option<Vsock>,
}

/// Why a [`VmConfig`] cannot be planned. Each is a request Firecracker would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmConfigError {
    /// vCPU count outside 1..=32.
    #[error("vcpu count {count} is outside 1..={MAX_VCPUS}")]
    VcpuCount {
        /// The requested count.
        count: u8,
    },
    /// SMT needs 1 or an even number of vCPUs.
    #[error("with smt enabled the vcpu count must be 1 or even, not {count}")]
    SmtOddVcpus {
        /// The requested count.
        count: u8,
    },
    /// Zero guest memory.
    #[error("guest memory size must not be zero")]
    ZeroMemory,
    /// An id Firecracker rejects in a path.
    #[error("invalid {kind} id {id:?}: only ascii letters, digits and '_' are allowed")]
    InvalidId {
        /// `drive` or `network interface`.
        kind: &'static str,
        /// The offending id.
        id: String,
    },
    /// Two drives or two interfaces with the same id (the second would overwrite the first).
    #[error("duplicate {kind} id {id:?}")]
    DuplicateId {
        /// `drive` or `network interface`.
        kind: &'static str,
        /// The repeated id.
        id: String,
    },
    /// More than one root drive.
    #[error("drives {first:?} and {second:?} are both marked as the root device")]
    SecondRootDrive {
        /// The first root drive.
        first: String,
        /// The second one.
        second: String,
    },
    /// A MAC that is not six `:`-separated hex octets.
    #[error("invalid guest mac {mac:?} for interface {iface_id:?}")]
    InvalidGuestMac {
        /// The interface.
        iface_id: String,
        /// The offending MAC.
        mac: String,
    },
    /// The same MAC on two interfaces.
    #[error("guest mac {mac:?} is used by more than one interface")]
    DuplicateGuestMac {
        /// The repeated MAC.
        mac: String,
    },
    /// An empty or too long TAP name.
    #[error("tap name {name:?} must be 1..={MAX_TAP_NAME} bytes")]
    TapName {
        /// The offending name.
        name: String,
    },
    /// A reserved vsock CID.
    #[error("guest cid {cid} is reserved; the smallest allowed is {MIN_GUEST_CID}")]
    GuestCid {
        /// The requested CID.
        cid: u32,
    },
}

impl VmConfig {
    /// Checks the rules Firecracker enforces on these requests, so a bad config fails before
    /// any process is started.
    pub fn validate(&self) -> Result<(), VmConfigError> {
        let count = self.machine.vcpu_count;
        if count == 0 || count > MAX_VCPUS {
            return Err(VmConfigError::VcpuCount { count });
        }
        if self.machine.smt == Some(true) && count > 1 && count % 2 == 1 {
            return Err(VmConfigError::SmtOddVcpus { count });
        }
        if self.machine.mem_size_mib == 0 {
            return Err(VmConfigError::ZeroMemory);
        }

        let mut drive_ids = HashSet::new();
        let mut root: Option<&str> = None;
        for drive in &self.drives {
            check_id("drive", &drive.drive_id, &mut drive_ids)?;
            if drive.is_root_device {
                if let Some(first) = root {
                    return Err(VmConfigError::SecondRootDrive {
                        first: first.to_owned(),
                        second: drive.drive_id.clone(),
                    });
                }
                root = Some(&drive.drive_id);
            }
        }

        let mut iface_ids = HashSet::new();
        let mut macs = HashSet::new();
        for iface in &self.network_interfaces {
            check_id("network interface", &iface.iface_id, &mut iface_ids)?;
            if iface.host_dev_name.is_empty() || iface.host_dev_name.len() > MAX_TAP_NAME {
                return Err(VmConfigError::TapName {
                    name: iface.host_dev_name.clone(),
                });
            }
            if let Some(mac) = &iface.guest_mac {
                if !is_valid_mac(mac) {
                    return Err(VmConfigError::InvalidGuestMac {
                        iface_id: iface.iface_id.clone(),
                        mac: mac.clone(),
                    });
                }
                if !macs.insert(mac.to_ascii_lowercase()) {
                    return Err(VmConfigError::DuplicateGuestMac { mac: mac.clone() });
                }
            }
        }

        if let Some(vsock) = &self.vsock
            && vsock.guest_cid < MIN_GUEST_CID
        {
            return Err(VmConfigError::GuestCid {
                cid: vsock.guest_cid,
            });
        }
        Ok(())
    }

    /// The calls that configure and boot this VM, in order: logger, metrics, machine config,
    /// boot source, drives (root first, then the others in order), network interfaces, vsock,
    /// `InstanceStart`.
    pub fn plan(&self) -> Result<Vec<ApiCall>, VmConfigError> {
        self.validate()?;
        let mut calls = Vec::new();
        if let Some(logger) = &self.logger {
            calls.push(ApiCall::PutLogger(logger.clone()));
        }
        if let Some(metrics) = &self.metrics {
            calls.push(ApiCall::PutMetrics(metrics.clone()));
        }
        calls.push(ApiCall::PutMachineConfig(self.machine.clone()));
        calls.push(ApiCall::PutBootSource(self.boot_source.clone()));
        let (root, others): (Vec<&Drive>, Vec<&Drive>) =
            self.drives.iter().partition(|d| d.is_root_device);
        calls.extend(
            root.into_iter()
                .chain(others)
                .map(|d| ApiCall::PutDrive(d.clone())),
        );
        calls.extend(
            self.network_interfaces
                .iter()
                .map(|n| ApiCall::PutNetworkInterface(n.clone())),
        );
        if let Some(vsock) = &self.vsock {
            calls.push(ApiCall::PutVsock(vsock.clone()));
        }
        calls.push(ApiCall::INSTANCE_START);
        Ok(calls)
    }
}

fn check_id<'a>(
    kind: &'static str,
    id: &'a str,
    seen: &mut HashSet<&'a str>,
) -> Result<(), VmConfigError> {
    if !is_valid_resource_id(id) {
        return Err(VmConfigError::InvalidId {
            kind,
            id: id.to_owned(),
        });
    }
    if !seen.insert(id) {
        return Err(VmConfigError::DuplicateId {
            kind,
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// Six `:`-separated two-digit hex octets, as Firecracker's `MacAddr` parses them.
fn is_valid_mac(mac: &str) -> bool {
    let octets: Vec<&str> = mac.split(':').collect();
    octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn drive(id: &str, root: bool) -> Drive {
        Drive {
            drive_id: id.to_owned(),
            path_on_host: format!("/img/{id}.ext4").into(),
            is_root_device: root,
            is_read_only: false,
        }
    }

    fn base() -> VmConfig {
        VmConfig {
            logger: None,
            metrics: None,
            machine: MachineConfig {
                vcpu_count: 2,
                mem_size_mib: 1024,
                smt: None,
            },
            boot_source: BootSource {
                kernel_image_path: "/img/vmlinux".into(),
                boot_args: "console=ttyS0".to_owned(),
                initrd_path: None,
            },
            drives: vec![],
            network_interfaces: vec![],
            vsock: None,
        }
    }

    fn paths(plan: &[ApiCall]) -> Vec<String> {
        plan.iter().map(ApiCall::path).collect()
    }

    #[test]
    fn minimal_plan_is_machine_boot_start() {
        let plan = base().plan().unwrap();
        assert_eq!(
            paths(&plan),
            ["/machine-config", "/boot-source", "/actions"]
        );
        assert_eq!(plan.last(), Some(&ApiCall::INSTANCE_START));
    }

    #[test]
    fn full_plan_order_puts_logger_first_root_drive_first_and_start_last() {
        let mut cfg = base();
        cfg.logger = Some(Logger {
            log_path: "/run/fc.log".into(),
            level: None,
            show_level: None,
            show_log_origin: None,
        });
        cfg.metrics = Some(Metrics {
            metrics_path: "/run/fc.metrics".into(),
        });
        cfg.drives = vec![
            drive("scratch", false),
            drive("rootfs", true),
            drive("work", false),
        ];
        cfg.network_interfaces = vec![NetworkInterface {
            iface_id: "eth0".to_owned(),
            host_dev_name: "bgr-tap0".to_owned(),
            guest_mac: Some("06:00:0a:00:00:02".to_owned()),
        }];
        cfg.vsock = Some(Vsock {
            guest_cid: 3,
            uds_path: "/run/v.sock".into(),
        });
        let plan = cfg.plan().unwrap();
        assert_eq!(
            paths(&plan),
            [
                "/logger",
                "/metrics",
                "/machine-config",
                "/boot-source",
                "/drives/rootfs",
                "/drives/scratch",
                "/drives/work",
                "/network-interfaces/eth0",
                "/vsock",
                "/actions",
            ]
        );
        assert!(plan.iter().all(|c| c.method() == "PUT"));
    }

    #[test]
    fn calls_serialise_to_their_bare_body() {
        assert_eq!(
            serde_json::to_value(ApiCall::INSTANCE_START).unwrap(),
            json!({"action_type": "InstanceStart"})
        );
        assert_eq!(
            serde_json::to_value(ApiCall::PutDrive(drive("rootfs", true))).unwrap(),
            json!({"drive_id": "rootfs", "path_on_host": "/img/rootfs.ext4",
                   "is_root_device": true, "is_read_only": false})
        );
    }

    #[test]
    fn rejects_what_firecracker_rejects() {
        type Mutation = Box<dyn Fn(&mut VmConfig)>;
        let cases: Vec<(Mutation, VmConfigError)> = vec![
            (
                Box::new(|c| c.machine.vcpu_count = 0),
                VmConfigError::VcpuCount { count: 0 },
            ),
            (
                Box::new(|c| c.machine.vcpu_count = 33),
                VmConfigError::VcpuCount { count: 33 },
            ),
            (
                Box::new(|c| {
                    c.machine.vcpu_count = 3;
                    c.machine.smt = Some(true);
                }),
                VmConfigError::SmtOddVcpus { count: 3 },
            ),
            (
                Box::new(|c| c.machine.mem_size_mib = 0),
                VmConfigError::ZeroMemory,
            ),
            (
                Box::new(|c| c.drives = vec![drive("root-fs", true)]),
                VmConfigError::InvalidId {
                    kind: "drive",
                    id: "root-fs".to_owned(),
                },
            ),
            (
                Box::new(|c| c.drives = vec![drive("a", false), drive("a", false)]),
                VmConfigError::DuplicateId {
                    kind: "drive",
                    id: "a".to_owned(),
                },
            ),
            (
                Box::new(|c| c.drives = vec![drive("a", true), drive("b", true)]),
                VmConfigError::SecondRootDrive {
                    first: "a".to_owned(),
                    second: "b".to_owned(),
                },
            ),
            (
                Box::new(|c| {
                    c.vsock = Some(Vsock {
                        guest_cid: 2,
                        uds_path: "/v".into(),
                    })
                }),
                VmConfigError::GuestCid { cid: 2 },
            ),
        ];
        for (mutate, expected) in cases {
            let mut cfg = base();
            mutate(&mut cfg);
            assert_eq!(cfg.plan().unwrap_err(), expected);
        }
    }

    #[test]
    fn network_interface_rules() {
        let iface = |id: &str, tap: &str, mac: Option<&str>| NetworkInterface {
            iface_id: id.to_owned(),
            host_dev_name: tap.to_owned(),
            guest_mac: mac.map(str::to_owned),
        };
        let mut cfg = base();
        cfg.network_interfaces = vec![iface("eth0", "a-very-long-tap-name", None)];
        assert!(matches!(cfg.validate(), Err(VmConfigError::TapName { .. })));
        cfg.network_interfaces = vec![iface("eth0", "tap0", Some("06:00:0a:00:00"))];
        assert!(matches!(
            cfg.validate(),
            Err(VmConfigError::InvalidGuestMac { .. })
        ));
        cfg.network_interfaces = vec![
            iface("eth0", "tap0", Some("06:00:0A:00:00:02")),
            iface("eth1", "tap1", Some("06:00:0a:00:00:02")),
        ];
        assert!(matches!(
            cfg.validate(),
            Err(VmConfigError::DuplicateGuestMac { .. })
        ));
        cfg.network_interfaces[1].guest_mac = None;
        assert_eq!(cfg.validate(), Ok(()));
    }
}
