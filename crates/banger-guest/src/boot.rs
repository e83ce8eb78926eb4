//! The `banger.*` kernel command-line parameters: the daemon writes them, the agent reads them.
//!
//! Per-VM settings travel on the kernel command line because that works identically under
//! Firecracker (`boot_args`) and QEMU (`-append`) and needs no channel before the network is
//! up (the Debian cloud kernel ignores `ip=`, so the network travels here too). Parameters
//! (later occurrences win, as in the kernel):
//!
//! | parameter | meaning |
//! |---|---|
//! | `banger.hostname=NAME` | hostname; also `/etc/hostname` and `/etc/hosts` |
//! | `banger.ip=A.B.C.D/PREFIX` | IPv4 address of the guest NIC |
//! | `banger.gw=A.B.C.D` | default gateway |
//! | `banger.dns=A.B.C.D` | resolver for `/etc/resolv.conf` (optional) |
//! | `banger.work=/dev/vdX` | work disk mounted (ext4) at `/root` (optional) |
//!
//! [`GuestBoot::to_cmdline`] writes the whole line (console, root disk, `init=` the agent, then
//! the parameters) and refuses values the parser would reject, so no value can smuggle in a
//! parameter of its own. [`GuestBoot::parse`] reads it back: quoting follows the kernel
//! (`"key=value with spaces"` and `key="value"` are both accepted and the quotes removed);
//! invalid values are kept out of [`GuestBoot`] and reported as [`ParamError`]s, so one bad
//! value disables only its own step. A property test checks that parse(write(x)) == x.

use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::paths::{AGENT_PATH, ROOT_DEVICE};

/// The prefix every banger parameter shares.
pub const PREFIX: &str = "banger.";
/// The hostname parameter.
pub const HOSTNAME: &str = "banger.hostname";
/// The guest address parameter (`A.B.C.D/PREFIX`).
pub const IP: &str = "banger.ip";
/// The gateway parameter.
pub const GW: &str = "banger.gw";
/// The resolver parameter.
pub const DNS: &str = "banger.dns";
/// The work-disk parameter.
pub const WORK: &str = "banger.work";

/// Kernel parameters every banger guest boots with, before `root=`, `init=` and the
/// `banger.*` ones: the serial console (the VM's console log), and reboot and panic behaviour
/// that end the VMM process instead of hanging it.
pub const BASE: [&str; 3] = ["console=ttyS0", "reboot=k", "panic=1"];

/// A value [`GuestBoot::to_cmdline`] refused to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot put {key}={value:?} on the kernel command line: {reason}")]
pub struct InvalidBoot {
    /// The parameter name, e.g. `banger.hostname`.
    pub key: &'static str,
    /// The refused value.
    pub value: String,
    /// Why it was refused.
    pub reason: &'static str,
}

impl GuestBoot {
    /// The whole kernel command line for this guest: [`BASE`], `root=`[`ROOT_DEVICE`] `rw`,
    /// `init=`[`AGENT_PATH`], then each parameter that is set. Refuses a hostname or work device that [`parse`] would
    /// reject (which also keeps whitespace and quotes out of the line).
    pub fn to_cmdline(&self) -> Result<String, InvalidBoot> {
        let mut parts: Vec<String> = BASE.iter().map(|s| (*s).to_owned()).collect();
        parts.push(format!("root={ROOT_DEVICE}"));
        parts.push("rw".to_owned());
        parts.push(format!("init={AGENT_PATH}"));
        if let Some(hostname) = &self.hostname {
            if !valid_hostname(hostname) {
                return Err(InvalidBoot {
                    key: HOSTNAME,
                    value: hostname.clone(),
                    reason: "invalid hostname",
                });
            }
            parts.push(format!("{HOSTNAME}={hostname}"));
        }
        if let Some(ip) = self.ip {
            if ip.prefix > 32 {
                return Err(InvalidBoot {
                    key: IP,
                    value: ip.to_string(),
                    reason: "prefix length above 32",
                });
            }
            parts.push(format!("{IP}={ip}"));
        }
        if let Some(gw) = self.gw {
            parts.push(format!("{GW}={gw}"));
        }
        if let Some(dns) = self.dns {
            parts.push(format!("{DNS}={dns}"));
        }
        if let Some(work) = &self.work {
            if !valid_device(work) {
                return Err(InvalidBoot {
                    key: WORK,
                    value: work.clone(),
                    reason: "not a path under /dev/",
                });
            }
            parts.push(format!("{WORK}={work}"));
        }
        Ok(parts.join(" "))
    }

    /// Parses the `banger.*` parameters out of a kernel command line (`/proc/cmdline`).
    pub fn parse(cmdline: &str) -> Parsed {
        parse(cmdline)
    }
}

/// An IPv4 address with its prefix length (`10.0.0.2/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0–32.
    pub prefix: u8,
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.split_once('/').ok_or("expected A.B.C.D/PREFIX")?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| "invalid IPv4 address")?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err("invalid prefix length");
        }
        let prefix: u8 = prefix.parse().map_err(|_| "invalid prefix length")?;
        if prefix > 32 {
            return Err("prefix length above 32");
        }
        Ok(Self { addr, prefix })
    }
}

/// What the kernel command line tells one guest. `None` is an absent parameter (or, after
/// [`GuestBoot::parse`], a rejected one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestBoot {
    /// `banger.hostname`.
    pub hostname: Option<String>,
    /// `banger.ip`.
    pub ip: Option<Ipv4Cidr>,
    /// `banger.gw`.
    pub gw: Option<Ipv4Addr>,
    /// `banger.dns`.
    pub dns: Option<Ipv4Addr>,
    /// `banger.work`.
    pub work: Option<String>,
}

/// A `banger.*` parameter whose value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ignoring {key}={value:?}: {reason}")]
pub struct ParamError {
    /// The parameter name, e.g. `banger.ip`.
    pub key: String,
    /// The rejected value.
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// The result of [`GuestBoot::parse`]: what was understood and what was rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Accepted settings.
    pub boot: GuestBoot,
    /// Rejected `banger.*` parameters (unknown `banger.*` keys included).
    pub errors: Vec<ParamError>,
}

/// Splits a kernel command line into arguments the way the kernel's `next_arg` does: whitespace
/// separates, double quotes group and are removed.
pub fn split(cmdline: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut started = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                started = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if started {
                    args.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        args.push(cur);
    }
    args
}

/// Whether `name` is an acceptable hostname: 1–64 characters of `[A-Za-z0-9.-]`, not starting
/// or ending with `-` or `.`.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.'])
}

/// Whether `dev` is an acceptable work-disk path: an absolute path under `/dev/` without `..`.
pub fn valid_device(dev: &str) -> bool {
    dev.len() > "/dev/".len()
        && dev.starts_with("/dev/")
        && !dev.split('/').any(|c| c == "..")
        && !dev.contains(|c: char| c.is_whitespace() || c.is_control())
}

/// Parses the `banger.*` parameters out of a kernel command line (same as [`GuestBoot::parse`]).
pub fn parse(cmdline: &str) -> Parsed {
    let mut out = Parsed::default();
    for arg in split(cmdline) {
        let Some((key, value)) = arg.split_once('=') else {
            continue;
        };
        if !key.starts_with(PREFIX) {
            continue;
        }
        let reject = |reason| ParamError {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        };
        let p = &mut out.boot;
        let res: Result<(), ParamError> = match key {
            HOSTNAME => {
                if valid_hostname(value) {
                    p.hostname = Some(value.to_owned());
                    Ok(())
                } else {
                    Err(reject("invalid hostname"))
                }
            }
            IP => value
                .parse::<Ipv4Cidr>()
                .map(|v| p.ip = Some(v))
                .map_err(reject),
            GW => value
                .parse::<Ipv4Addr>()
                .map(|v| p.gw = Some(v))
                .map_err(|_| reject("invalid IPv4 address")),
            DNS => value
                .parse::<Ipv4Addr>()
                .map(|v| p.dns = Some(v))
                .map_err(|_| reject("invalid IPv4 address")),
            WORK => {
                if valid_device(value) {
                    p.work = Some(value.to_owned());
                    Ok(())
                } else {
                    Err(reject("not a path under /dev/"))
                }
            }
            _ => Err(reject("unknown parameter")),
        };
        if let Err(e) = res {
            out.errors.push(e);
        }
    }
    out
}

/// Whether the command line carries any `banger.*` parameter, i.e. whether this kernel was booted
/// by banger. Used to refuse `--init` on a machine that is not a banger guest.
pub fn is_banger_guest(cmdline: &str) -> bool {
    split(cmdline).iter().any(|a| a.starts_with(PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::WORK_DEVICE;
    use proptest::prelude::*;

    const FULL: &str = "console=ttyS0 reboot=k panic=1 init=/usr/local/bin/banger-agent \
        banger.hostname=dev-box banger.ip=172.16.0.2/24 banger.gw=172.16.0.1 \
        banger.dns=172.16.0.1 banger.work=/dev/vdb\n";

    #[test]
    fn parses_all_params() {
        let p = parse(FULL);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(
            p.boot,
            GuestBoot {
                hostname: Some("dev-box".into()),
                ip: Some(Ipv4Cidr {
                    addr: Ipv4Addr::new(172, 16, 0, 2),
                    prefix: 24
                }),
                gw: Some(Ipv4Addr::new(172, 16, 0, 1)),
                dns: Some(Ipv4Addr::new(172, 16, 0, 1)),
                work: Some("/dev/vdb".into()),
            }
        );
    }

    #[test]
    fn missing_params_are_none() {
        let p = parse("console=ttyS0 banger.hostname=a");
        assert!(p.errors.is_empty());
        assert_eq!(p.boot.hostname.as_deref(), Some("a"));
        assert_eq!(p.boot.ip, None);
        assert_eq!(p.boot.gw, None);
        assert_eq!(p.boot.dns, None);
        assert_eq!(p.boot.work, None);
        assert_eq!(parse("").boot, GuestBoot::default());
    }

    #[test]
    fn quoted_values() {
        assert_eq!(
            split(r#"a "b=c d" e="f g" h"#),
            vec!["a", "b=c d", "e=f g", "h"]
        );
        let p = parse(r#"banger.hostname="box1" "banger.work=/dev/vdc""#);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.boot.hostname.as_deref(), Some("box1"));
        assert_eq!(p.boot.work.as_deref(), Some("/dev/vdc"));
        // A quoted value with a space is not a valid hostname.
        let p = parse(r#"banger.hostname="a b""#);
        assert_eq!(p.boot.hostname, None);
        assert_eq!(p.errors[0].value, "a b");
        // Empty quotes give an empty argument.
        assert_eq!(split(r#"x="" """#), vec!["x=", ""]);
    }

    #[test]
    fn later_occurrence_wins() {
        let p = parse("banger.hostname=a banger.hostname=b");
        assert_eq!(p.boot.hostname.as_deref(), Some("b"));
    }

    #[test]
    fn invalid_values_are_reported_not_applied() {
        let p = parse(
            "banger.ip=10.0.0.2 banger.gw=nope banger.dns=1.2.3 banger.work=/etc/passwd \
             banger.hostname=-x banger.bogus=1 banger.ip=10.0.0.300/24",
        );
        assert_eq!(p.boot, GuestBoot::default());
        let keys: Vec<&str> = p.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "banger.ip",
                "banger.gw",
                "banger.dns",
                "banger.work",
                "banger.hostname",
                "banger.bogus",
                "banger.ip"
            ]
        );
        assert_eq!(
            p.errors[0].to_string(),
            "ignoring banger.ip=\"10.0.0.2\": expected A.B.C.D/PREFIX"
        );
    }

    #[test]
    fn cidr_bounds() {
        assert!("10.0.0.1/32".parse::<Ipv4Cidr>().is_ok());
        assert!("10.0.0.1/0".parse::<Ipv4Cidr>().is_ok());
        assert!("10.0.0.1/33".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.1/".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.1/+8".parse::<Ipv4Cidr>().is_err());
        assert_eq!(
            "10.0.0.1/8".parse::<Ipv4Cidr>().map(|c| c.to_string()),
            Ok("10.0.0.1/8".to_owned())
        );
    }

    #[test]
    fn hostname_and_device_rules() {
        assert!(valid_hostname("a"));
        assert!(valid_hostname("box-1.local"));
        assert!(!valid_hostname(""));
        assert!(!valid_hostname("a_b"));
        assert!(!valid_hostname("a-"));
        assert!(!valid_hostname(&"a".repeat(65)));
        assert!(valid_device("/dev/vdb"));
        assert!(valid_device("/dev/disk/by-id/x"));
        assert!(!valid_device("/dev/"));
        assert!(!valid_device("/dev/../etc/shadow"));
        assert!(!valid_device("vdb"));
    }

    #[test]
    fn guest_detection() {
        assert!(is_banger_guest(FULL));
        assert!(!is_banger_guest(
            "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet"
        ));
    }

    fn sandbox() -> GuestBoot {
        GuestBoot {
            hostname: Some("web".into()),
            ip: Some(Ipv4Cidr {
                addr: Ipv4Addr::new(172, 30, 0, 2),
                prefix: 24,
            }),
            gw: Some(Ipv4Addr::new(172, 30, 0, 1)),
            dns: None,
            work: Some(WORK_DEVICE.into()),
        }
    }

    #[test]
    fn writes_everything_the_agent_reads() {
        assert_eq!(
            sandbox().to_cmdline().expect("valid"),
            "console=ttyS0 reboot=k panic=1 root=/dev/vda rw init=/usr/local/bin/banger-agent \
             banger.hostname=web banger.ip=172.30.0.2/24 banger.gw=172.30.0.1 banger.work=/dev/vdb"
        );
        assert_eq!(
            GuestBoot::default().to_cmdline().expect("valid"),
            "console=ttyS0 reboot=k panic=1 root=/dev/vda rw init=/usr/local/bin/banger-agent"
        );
    }

    #[test]
    fn the_writer_refuses_what_the_parser_would_reject() {
        let mut boot = sandbox();
        boot.hostname = Some("x banger.work=/dev/sda".into());
        let err = boot.to_cmdline().expect_err("injection");
        assert_eq!(err.key, HOSTNAME);
        let mut boot = sandbox();
        boot.work = Some("/etc/shadow".into());
        assert_eq!(boot.to_cmdline().expect_err("not a device").key, WORK);
        let mut boot = sandbox();
        boot.ip = Some(Ipv4Cidr {
            addr: Ipv4Addr::LOCALHOST,
            prefix: 33,
        });
        assert_eq!(boot.to_cmdline().expect_err("prefix").key, IP);
    }

    fn hostname() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]([A-Za-z0-9.-]{0,62}[A-Za-z0-9])?"
    }

    fn device() -> impl Strategy<Value = String> {
        "/dev/[a-z0-9]{1,8}(/[A-Za-z0-9_.-]{1,12}){0,2}"
            .prop_filter("no `..` component", |d| !d.split('/').any(|c| c == ".."))
    }

    fn cidr() -> impl Strategy<Value = Ipv4Cidr> {
        (any::<u32>(), 0u8..=32).prop_map(|(addr, prefix)| Ipv4Cidr {
            addr: Ipv4Addr::from(addr),
            prefix,
        })
    }

    fn boot() -> impl Strategy<Value = GuestBoot> {
        (
            proptest::option::of(hostname()),
            proptest::option::of(cidr()),
            proptest::option::of(any::<u32>().prop_map(Ipv4Addr::from)),
            proptest::option::of(any::<u32>().prop_map(Ipv4Addr::from)),
            proptest::option::of(device()),
        )
            .prop_map(|(hostname, ip, gw, dns, work)| GuestBoot {
                hostname,
                ip,
                gw,
                dns,
                work,
            })
    }

    proptest! {
        #[test]
        fn the_parser_reads_back_what_the_writer_wrote(boot in boot()) {
            let line = boot.to_cmdline().expect("generated values are valid");
            let parsed = GuestBoot::parse(&line);
            prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            prop_assert_eq!(&parsed.boot, &boot);
            prop_assert!(is_banger_guest(&line) || boot == GuestBoot::default());
        }

        #[test]
        fn the_writer_never_emits_what_the_parser_rejects(
            hostname in "\\PC{0,20}",
            work in "\\PC{0,20}",
        ) {
            let boot = GuestBoot {
                hostname: Some(hostname),
                work: Some(work),
                ..GuestBoot::default()
            };
            if let Ok(line) = boot.to_cmdline() {
                let parsed = GuestBoot::parse(&line);
                prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
                prop_assert_eq!(parsed.boot, boot);
            }
        }
    }
}
