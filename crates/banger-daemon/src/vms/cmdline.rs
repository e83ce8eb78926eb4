//! The guest kernel command line: a pure function of the VM's identity and network.
//!
//! The Debian cloud kernel ignores `ip=`, so the network travels as `banger.*` parameters that
//! the guest agent (PID 1) reads: `banger.hostname`, `banger.ip` (address/prefix), `banger.gw`,
//! `banger.work` (the work disk mounted at `/root`). `init=` points at the agent; the initramfs
//! loads the virtio modules and switches to the root disk.

use std::net::Ipv4Addr;

/// Where the agent lives in every image.
pub const AGENT_GUEST_PATH: &str = "/usr/local/bin/banger-agent";

/// What the command line says about one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestBoot<'a> {
    /// Hostname (the VM name).
    pub hostname: &'a str,
    /// Guest address.
    pub ip: Ipv4Addr,
    /// Subnet prefix length.
    pub prefix: u8,
    /// Gateway (the bridge address).
    pub gateway: Ipv4Addr,
    /// Whether a work disk is attached as the second disk.
    pub work_disk: bool,
}

/// Builds the command line.
pub fn kernel_cmdline(boot: &GuestBoot<'_>) -> String {
    let mut parts = vec![
        "console=ttyS0".to_owned(),
        "reboot=k".to_owned(),
        "panic=1".to_owned(),
        "root=/dev/vda".to_owned(),
        "rw".to_owned(),
        format!("init={AGENT_GUEST_PATH}"),
        format!("banger.hostname={}", boot.hostname),
        format!("banger.ip={}/{}", boot.ip, boot.prefix),
        format!("banger.gw={}", boot.gateway),
    ];
    if boot.work_disk {
        parts.push("banger.work=/dev/vdb".to_owned());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_everything_the_agent_reads() {
        let line = kernel_cmdline(&GuestBoot {
            hostname: "web",
            ip: Ipv4Addr::new(172, 30, 0, 2),
            prefix: 24,
            gateway: Ipv4Addr::new(172, 30, 0, 1),
            work_disk: true,
        });
        assert_eq!(
            line,
            "console=ttyS0 reboot=k panic=1 root=/dev/vda rw init=/usr/local/bin/banger-agent \
             banger.hostname=web banger.ip=172.30.0.2/24 banger.gw=172.30.0.1 banger.work=/dev/vdb"
        );
    }
}
