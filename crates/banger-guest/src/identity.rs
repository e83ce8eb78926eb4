//! The identity a restored guest takes on: what `POST /identity` carries.
//!
//! A VM restored from a warm snapshot wakes up as the guest that was saved: its hostname,
//! address, MAC, clock, entropy pool and SSH host key. Before the daemon reports it ready it
//! sends the agent this VM's own values, and the agent applies them (a fresh host key always,
//! so no two VMs share one). The body is the kernel command line's own `key=value` form, so the
//! network values are read by the same validated parser as at boot ([`crate::boot::parse`]),
//! plus three keys that only make sense after a restore:
//!
//! | key | meaning |
//! |---|---|
//! | `banger.mac=xx:xx:xx:xx:xx:xx` | the NIC's new address (a unicast, locally administered one) |
//! | `banger.clock=SECONDS.NANOS` | the host's wall clock, to step the guest's to |
//! | `banger.seed=HEX` | 32 to 256 bytes of host randomness, credited to the guest's pool |
//! | `banger.hostkey=HEX` | this VM's SSH host key (an OpenSSH ed25519 private key file) |
//! | `banger.hostkey_pub=HEX` | its public half (`ssh-ed25519 AAAA… comment`) |
//!
//! The host makes the key: ssh-keygen costs the host a few milliseconds and a restored guest
//! under emulation a few hundred. The key only ever travels over the VM's private agent
//! channel. Without one the agent makes its own, as at boot.

use crate::boot::{self, GuestBoot, ParamError};

/// The NIC address key.
pub const MAC: &str = "banger.mac";
/// The wall-clock key.
pub const CLOCK: &str = "banger.clock";
/// The entropy key.
pub const SEED: &str = "banger.seed";
/// Fewest seed bytes accepted (the kernel's pool is 256 bits).
pub const MIN_SEED: usize = 32;
/// Most seed bytes accepted.
pub const MAX_SEED: usize = 256;
/// The host key's private half.
pub const HOST_KEY: &str = "banger.hostkey";
/// The host key's public half.
pub const HOST_KEY_PUB: &str = "banger.hostkey_pub";
/// Largest key file accepted (an ed25519 private key file is about 400 bytes).
pub const MAX_KEY_FILE: usize = 4096;

/// An SSH host key for the guest, as the two files `ssh-keygen` writes.
#[derive(Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The private key file (`-----BEGIN OPENSSH PRIVATE KEY-----` …).
    pub private: String,
    /// The public key line (`ssh-ed25519 AAAA… comment`).
    pub public: String,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half, not even in a test failure.
        f.debug_struct("HostKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl HostKey {
    fn private_ok(text: &str) -> bool {
        text.len() <= MAX_KEY_FILE
            && text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
            && text
                .trim_end()
                .ends_with("-----END OPENSSH PRIVATE KEY-----")
    }

    fn public_ok(text: &str) -> bool {
        text.len() <= MAX_KEY_FILE
            && text.starts_with("ssh-ed25519 ")
            && !text.trim_end().contains('\n')
    }
}

/// A wall-clock time: seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// Whole seconds.
    pub secs: u64,
    /// Nanoseconds, below one second.
    pub nanos: u32,
}

/// What a restored guest becomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Hostname, address, gateway and resolver (the work disk is not changed by a restore).
    pub boot: GuestBoot,
    /// The NIC's MAC address.
    pub mac: Option<[u8; 6]>,
    /// The host's clock at the time of the request.
    pub clock: Option<WallClock>,
    /// Host randomness for the guest's entropy pool.
    pub seed: Option<Vec<u8>>,
    /// The SSH host key to serve (else the guest makes one).
    pub host_key: Option<HostKey>,
}

/// The result of [`Identity::parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedIdentity {
    /// What was understood.
    pub identity: Identity,
    /// What was rejected (each rejected value disables only its own step).
    pub errors: Vec<ParamError>,
}

impl Identity {
    /// The request body: `key=value` words separated by spaces.
    pub fn to_body(&self) -> Result<String, boot::InvalidBoot> {
        let mut words: Vec<String> = boot_words(&self.boot)?;
        if let Some(mac) = self.mac {
            if !valid_mac(mac) {
                return Err(boot::InvalidBoot {
                    key: MAC,
                    value: format_mac(mac),
                    reason: "not a unicast, locally administered address",
                });
            }
            words.push(format!("{MAC}={}", format_mac(mac)));
        }
        if let Some(c) = self.clock {
            if c.nanos >= 1_000_000_000 {
                return Err(boot::InvalidBoot {
                    key: CLOCK,
                    value: format!("{}.{}", c.secs, c.nanos),
                    reason: "nanoseconds must be below one second",
                });
            }
            words.push(format!("{CLOCK}={}.{:09}", c.secs, c.nanos));
        }
        if let Some(seed) = &self.seed {
            if !(MIN_SEED..=MAX_SEED).contains(&seed.len()) {
                return Err(boot::InvalidBoot {
                    key: SEED,
                    value: format!("{} bytes", seed.len()),
                    reason: "a seed is 32 to 256 bytes",
                });
            }
            words.push(format!("{SEED}={}", hex(seed)));
        }
        if let Some(key) = &self.host_key {
            if !HostKey::private_ok(&key.private) {
                return Err(boot::InvalidBoot {
                    key: HOST_KEY,
                    value: format!("{} bytes", key.private.len()),
                    reason: "not an OpenSSH private key file",
                });
            }
            if !HostKey::public_ok(&key.public) {
                return Err(boot::InvalidBoot {
                    key: HOST_KEY_PUB,
                    value: key.public.clone(),
                    reason: "not one ssh-ed25519 public key line",
                });
            }
            words.push(format!("{HOST_KEY}={}", hex(key.private.as_bytes())));
            words.push(format!("{HOST_KEY_PUB}={}", hex(key.public.as_bytes())));
        }
        Ok(words.join(" "))
    }

    /// Reads a body written by [`Identity::to_body`]; unknown keys are ignored.
    pub fn parse(body: &str) -> ParsedIdentity {
        let parsed = boot::parse(body);
        let mut out = ParsedIdentity {
            identity: Identity {
                boot: GuestBoot {
                    work: None,
                    ..parsed.boot
                },
                ..Identity::default()
            },
            // The boot parser does not know the restore-only keys; they are read below.
            errors: parsed
                .errors
                .into_iter()
                .filter(|e| ![MAC, CLOCK, SEED, HOST_KEY, HOST_KEY_PUB].contains(&e.key.as_str()))
                .collect(),
        };
        let (mut private, mut public) = (None, None);
        for word in body.split_ascii_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let reject = |reason| ParamError {
                key: key.to_owned(),
                value: value.to_owned(),
                reason,
            };
            let id = &mut out.identity;
            let result = match key {
                MAC => parse_mac(value)
                    .filter(|m| valid_mac(*m))
                    .map(|m| id.mac = Some(m))
                    .ok_or_else(|| reject("not a unicast, locally administered MAC address")),
                CLOCK => parse_clock(value)
                    .map(|c| id.clock = Some(c))
                    .ok_or_else(|| reject("expected SECONDS.NANOSECONDS")),
                SEED => unhex(value)
                    .filter(|s| (MIN_SEED..=MAX_SEED).contains(&s.len()))
                    .map(|s| id.seed = Some(s))
                    .ok_or_else(|| reject("expected 32 to 256 bytes in hex")),
                HOST_KEY => unhex_text(value)
                    .filter(|t| HostKey::private_ok(t))
                    .map(|t| private = Some(t))
                    .ok_or_else(|| reject("expected an OpenSSH private key file in hex")),
                HOST_KEY_PUB => unhex_text(value)
                    .filter(|t| HostKey::public_ok(t))
                    .map(|t| public = Some(t))
                    .ok_or_else(|| reject("expected an ssh-ed25519 public key line in hex")),
                _ => Ok(()),
            };
            if let Err(e) = result {
                out.errors.push(e);
            }
        }
        match (private, public) {
            (Some(private), Some(public)) => {
                out.identity.host_key = Some(HostKey { private, public });
            }
            (None, None) => {}
            (private, _) => out.errors.push(ParamError {
                key: if private.is_some() {
                    HOST_KEY_PUB
                } else {
                    HOST_KEY
                }
                .to_owned(),
                value: String::new(),
                reason: "a host key needs both its halves",
            }),
        }
        out
    }
}

/// The `banger.*` words of `boot`'s network settings, validated as the command line is.
fn boot_words(boot: &GuestBoot) -> Result<Vec<String>, boot::InvalidBoot> {
    let network = GuestBoot {
        work: None,
        ..boot.clone()
    };
    let line = network.to_cmdline()?;
    Ok(line
        .split(' ')
        .filter(|w| w.starts_with(boot::PREFIX))
        .map(str::to_owned)
        .collect())
}

/// Unicast (bit 0 of the first byte clear) and locally administered (bit 1 set): the kind
/// banger gives VMs, never a vendor's.
pub fn valid_mac(mac: [u8; 6]) -> bool {
    mac[0] & 0b01 == 0 && mac[0] & 0b10 != 0
}

/// `06:00:ac:1e:00:02`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn parse_clock(text: &str) -> Option<WallClock> {
    let (secs, nanos) = text.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !digits(nanos) || nanos.len() != 9 {
        return None;
    }
    Some(WallClock {
        secs: secs.parse().ok()?,
        nanos: nanos.parse().ok()?,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex_text(text: &str) -> Option<String> {
    String::from_utf8(unhex(text)?).ok()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ipv4Cidr;
    use proptest::prelude::*;

    fn full() -> Identity {
        Identity {
            boot: GuestBoot {
                hostname: Some("web".into()),
                ip: Some(Ipv4Cidr {
                    addr: "172.30.0.5".parse().expect("ip"),
                    prefix: 24,
                }),
                gw: Some("172.30.0.1".parse().expect("gw")),
                dns: Some("172.30.0.1".parse().expect("dns")),
                work: None,
            },
            mac: Some([0x06, 0, 0xac, 0x1e, 0, 5]),
            clock: Some(WallClock {
                secs: 1_764_720_000,
                nanos: 5,
            }),
            seed: Some((0..32).collect()),
            host_key: Some(HostKey {
                private: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n-----END OPENSSH PRIVATE KEY-----\n"
                    .into(),
                public: "ssh-ed25519 AAAAC3Nza web\n".into(),
            }),
        }
    }

    #[test]
    fn a_host_key_needs_both_halves_and_the_right_shape() {
        let mut id = full();
        let body = id.to_body().expect("body");
        let only_private: String = body
            .split(' ')
            .filter(|w| !w.starts_with("banger.hostkey_pub="))
            .collect::<Vec<_>>()
            .join(" ");
        let parsed = Identity::parse(&only_private);
        assert_eq!(parsed.identity.host_key, None);
        assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
        assert_eq!(parsed.errors[0].key, HOST_KEY_PUB);
        let bad = Identity::parse(&format!("{HOST_KEY}={}", hex(b"not a key")));
        assert_eq!(bad.errors[0].key, HOST_KEY);
        id.host_key = Some(HostKey {
            private: "x".into(),
            public: "ssh-ed25519 A".into(),
        });
        assert_eq!(id.to_body().expect_err("refused").key, HOST_KEY);
        assert!(!format!("{:?}", full()).contains("b3Blbg"));
    }

    #[test]
    fn a_body_reads_back_as_written() {
        let body = full().to_body().expect("body");
        assert!(body.contains("banger.mac=06:00:ac:1e:00:05"), "{body}");
        assert!(body.contains("banger.clock=1764720000.000000005"), "{body}");
        assert!(!body.contains("init="), "{body}");
        let parsed = Identity::parse(&body);
        assert_eq!(parsed.errors, Vec::new());
        assert_eq!(parsed.identity, full());
    }

    #[test]
    fn the_work_disk_is_not_part_of_an_identity() {
        let mut id = full();
        id.boot.work = Some("/dev/vdb".into());
        let body = id.to_body().expect("body");
        assert!(!body.contains("banger.work"), "{body}");
        assert_eq!(
            Identity::parse("banger.work=/dev/vdc").identity.boot.work,
            None
        );
    }

    #[test]
    fn bad_values_are_refused_one_by_one() {
        let parsed = Identity::parse(
            "banger.mac=07:00:00:00:00:01 banger.clock=12 banger.seed=abcd banger.hostname=ok",
        );
        let keys: Vec<&str> = parsed.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, [MAC, CLOCK, SEED]);
        assert_eq!(parsed.identity.boot.hostname.as_deref(), Some("ok"));
        assert_eq!(parsed.identity.mac, None);
        for bad in [
            "00:00:00:00:00:01",
            "06:00:00:00:00",
            "06:00:00:00:00:01:02",
            "06:0:00:00:00:01",
        ] {
            assert!(
                Identity::parse(&format!("banger.mac={bad}"))
                    .identity
                    .mac
                    .is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn writing_refuses_what_reading_would() {
        let mut id = full();
        id.mac = Some([1, 0, 0, 0, 0, 1]);
        assert_eq!(id.to_body().expect_err("multicast").key, MAC);
        let mut id = full();
        id.seed = Some(vec![0; 8]);
        assert_eq!(id.to_body().expect_err("short seed").key, SEED);
        let mut id = full();
        id.clock = Some(WallClock {
            secs: 1,
            nanos: 1_000_000_000,
        });
        assert_eq!(id.to_body().expect_err("nanos").key, CLOCK);
    }

    proptest! {
        #[test]
        fn mac_clock_and_seed_round_trip(
            tail in proptest::array::uniform5(any::<u8>()),
            first in any::<u8>(),
            secs in any::<u64>(),
            nanos in 0u32..1_000_000_000,
            seed in proptest::collection::vec(any::<u8>(), MIN_SEED..=MAX_SEED),
        ) {
            let mac = [(first & !0b01) | 0b10, tail[0], tail[1], tail[2], tail[3], tail[4]];
            let id = Identity {
                mac: Some(mac),
                clock: Some(WallClock { secs, nanos }),
                seed: Some(seed),
                ..Identity::default()
            };
            let parsed = Identity::parse(&id.to_body().expect("body"));
            prop_assert_eq!(parsed.errors, Vec::new());
            prop_assert_eq!(parsed.identity, id);
        }
    }
}
