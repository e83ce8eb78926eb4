//! Checks of what boots guests: KVM, the two VMMs and their versions, which one `vmm` picks
//! and why (the daemon's own [`crate::backends::choose`]), the jailer and vhost-vsock.
//!
//! A host without KVM is not a problem: QEMU runs guests with software emulation (TCG), only
//! slower, so an unusable `/dev/kvm` is `info`. What fails is a configuration under which no
//! VMM can boot anything.

use std::path::{Path, PathBuf};

use banger_model::VmmChoice;
use banger_proto::Check;
use banger_vmm::VmmKind;

use super::probe;
use crate::backends::{self, HostFacts, Selection};

/// What `/dev/kvm` looks like to this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvmFacts {
    /// `/dev/kvm` exists.
    pub device: bool,
    /// It opens read-write.
    pub opens: bool,
    /// `/sys/module/kvm_pvm` exists: the paravirtual KVM that only runs PVM guests.
    pub pvm_only: bool,
}

impl KvmFacts {
    /// Whether Firecracker (or QEMU with KVM) could use it.
    pub fn usable(self) -> bool {
        self.device && self.opens && !self.pvm_only
    }
}

/// A VMM binary: where it is and what `--version` said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binary {
    /// Found at.
    pub path: Option<PathBuf>,
    /// First line of `--version`, when it answered.
    pub version: Option<String>,
}

/// Everything the checks of this group look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmmFacts {
    /// `vmm` in config.
    pub choice: VmmChoice,
    /// `firecracker_bin` in config.
    pub firecracker_bin: Option<PathBuf>,
    /// `jailer_bin` in config.
    pub jailer_bin: Option<PathBuf>,
    /// `/dev/kvm`.
    pub kvm: KvmFacts,
    /// `qemu-system-x86_64`.
    pub qemu: Binary,
    /// `firecracker` (or `firecracker_bin`).
    pub firecracker: Binary,
    /// `/dev/vhost-vsock` exists.
    pub vhost_vsock: bool,
}

impl VmmFacts {
    /// Probes this host for a config with these `vmm`, `firecracker_bin` and `jailer_bin`.
    pub fn probe(
        choice: VmmChoice,
        firecracker_bin: Option<&Path>,
        jailer_bin: Option<&Path>,
    ) -> Self {
        let host = HostFacts::probe(firecracker_bin);
        let binary = |path: Option<PathBuf>| Binary {
            version: path.as_deref().and_then(probe::version),
            path,
        };
        let dev = Path::new("/dev/kvm");
        Self {
            choice,
            firecracker_bin: firecracker_bin.map(Path::to_path_buf),
            jailer_bin: jailer_bin.map(Path::to_path_buf),
            kvm: KvmFacts {
                device: dev.exists(),
                opens: std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(dev)
                    .is_ok(),
                pvm_only: Path::new("/sys/module/kvm_pvm").exists(),
            },
            qemu: binary(host.qemu),
            firecracker: binary(host.firecracker),
            vhost_vsock: Path::new("/dev/vhost-vsock").exists(),
        }
    }

    /// The facts [`backends::choose`] decides on.
    fn host(&self) -> HostFacts {
        HostFacts {
            firecracker: self.firecracker.path.clone(),
            qemu: self.qemu.path.clone(),
            kvm_usable: self.kvm.usable(),
        }
    }

    /// What `vmm` picks on this host, or why nothing can boot.
    pub fn selection(&self) -> Result<Selection, backends::NoVmm> {
        backends::choose(self.choice, &self.host())
    }
}

/// `kvm`: usable, PVM-only, missing or not accessible.
pub fn kvm(k: KvmFacts) -> Check {
    const NAME: &str = "kvm";
    if k.pvm_only {
        return Check::info(
            NAME,
            "PVM-only KVM (/sys/module/kvm_pvm is loaded): Firecracker cannot use it, so guests \
             run under QEMU with software emulation (slower)",
        )
        .with_fix(
            "for hardware KVM use a host with VT-x/AMD-V (on a cloud VM: nested virtualization)",
        );
    }
    if !k.device {
        return Check::info(
            NAME,
            "no /dev/kvm: guests run under QEMU with software emulation (TCG), several times slower",
        )
        .with_fix(
            "enable VT-x/AMD-V in the firmware (on a cloud VM: nested virtualization) and load the \
             module: `sudo modprobe kvm_intel` or `sudo modprobe kvm_amd`",
        );
    }
    if !k.opens {
        return Check::info(
            NAME,
            "/dev/kvm exists but this user cannot open it read-write: guests run under software \
             emulation (TCG)",
        )
        .with_fix("add yourself to the kvm group (`sudo usermod -aG kvm $USER`) and log in again");
    }
    Check::ok(NAME, "/dev/kvm is usable (hardware KVM)")
}

/// Which VMM binary a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `qemu-system-x86_64`.
    Qemu,
    /// `firecracker`.
    Firecracker,
}

/// `qemu` / `firecracker`: found (with its version) or not, and whether that matters.
pub fn binary(which: Which, facts: &VmmFacts) -> Check {
    let (name, bin) = match which {
        Which::Qemu => ("qemu", &facts.qemu),
        Which::Firecracker => ("firecracker", &facts.firecracker),
    };
    let Some(path) = &bin.path else {
        return missing(which, facts);
    };
    match &bin.version {
        Some(version) => Check::ok(name, format!("{version} ({})", path.display())),
        None => Check::warn(
            name,
            format!("{} does not answer `--version`", path.display()),
            "reinstall it, or check that it runs on this host",
        ),
    }
}

fn missing(which: Which, facts: &VmmFacts) -> Check {
    let selected = facts.selection().ok().map(|s| s.kind);
    // Needed: the configuration asks for it, or nothing else can boot.
    let needed = match (which, facts.choice) {
        (Which::Qemu, VmmChoice::Qemu) | (Which::Firecracker, VmmChoice::Firecracker) => true,
        (Which::Qemu, VmmChoice::Auto) => selected.is_none(),
        _ => false,
    };
    match which {
        Which::Qemu => {
            let detail = "qemu-system-x86_64 is not on PATH";
            let fix = "install QEMU: `sudo apt install qemu-system-x86` (Debian)";
            if needed {
                Check::fail("qemu", detail, fix)
            } else {
                Check::info("qemu", format!("{detail} (optional: Firecracker is used)"))
                    .with_fix(fix)
            }
        }
        Which::Firecracker => {
            let detail = match &facts.firecracker_bin {
                Some(bin) => format!("firecracker_bin = {} is not a file", bin.display()),
                None => "firecracker is not on PATH".to_owned(),
            };
            let fix = "install Firecracker and put it on PATH (or set firecracker_bin in config)";
            if needed {
                Check::fail("firecracker", detail, fix)
            } else {
                Check::info(
                    "firecracker",
                    format!("{detail} (optional: QEMU boots the guests)"),
                )
                .with_fix(fix)
            }
        }
    }
}

/// `vmm`: what `vmm = …` picks on this host and why, or a fail naming what to install.
pub fn vmm(facts: &VmmFacts) -> Check {
    match facts.selection() {
        Ok(sel) => Check::ok(
            "vmm",
            format!("{}: {}", vmm_label(&sel, facts.kvm), sel.reason),
        ),
        Err(e) => Check::fail("vmm", "no VMM can boot guests on this host", e.0),
    }
}

fn vmm_label(sel: &Selection, kvm: KvmFacts) -> String {
    match sel.kind {
        VmmKind::Firecracker => "firecracker".to_owned(),
        VmmKind::Qemu if kvm.usable() => "qemu with kvm".to_owned(),
        VmmKind::Qemu => "qemu with tcg (software emulation)".to_owned(),
    }
}

/// The one-line summary's facts: `vmm: qemu, kvm: not usable, tcg`.
pub fn summary(facts: &VmmFacts) -> String {
    let kvm = if facts.kvm.usable() {
        "usable"
    } else if facts.kvm.pvm_only {
        "pvm only"
    } else {
        "not usable"
    };
    match facts.selection() {
        Ok(sel) => match sel.kind {
            VmmKind::Firecracker => format!("vmm: firecracker, kvm: {kvm}"),
            VmmKind::Qemu => {
                let accel = if facts.kvm.usable() { "kvm" } else { "tcg" };
                format!("vmm: qemu, kvm: {kvm}, {accel}")
            }
        },
        Err(_) => format!("vmm: none, kvm: {kvm}"),
    }
}

/// `jailer`: whether Firecracker VMs run under the jailer, and whether `jailer_bin` can.
pub fn jailer(facts: &VmmFacts) -> Check {
    match &facts.jailer_bin {
        None => Check::info(
            "jailer",
            "jailer_bin is not set: Firecracker VMs run unjailed, as the daemon's user",
        ),
        Some(bin) => match crate::backends::check_jailer_bin(bin) {
            Some(why) => Check::fail(
                "jailer",
                why,
                "install Firecracker's jailer at jailer_bin, or remove jailer_bin",
            ),
            None => Check::ok(
                "jailer",
                format!(
                    "Firecracker VMs run under {} in chroots under the state dir, staged and \
                     started by the root helper (or by the daemon when it runs as root)",
                    bin.display()
                ),
            ),
        },
    }
}

/// `vhost-vsock`: present or not; neither backend needs it in this build.
pub fn vhost_vsock(present: bool) -> Check {
    if present {
        Check::ok("vhost-vsock", "/dev/vhost-vsock is present")
    } else {
        Check::info(
            "vhost-vsock",
            "/dev/vhost-vsock is absent, which is fine: QEMU reaches the guest agent over \
             virtio-serial and Firecracker over its own Unix-socket vsock",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_proto::CheckStatus::{Fail, Info, Ok, Warn};

    const KVM: KvmFacts = KvmFacts {
        device: true,
        opens: true,
        pvm_only: false,
    };
    const NO_KVM: KvmFacts = KvmFacts {
        device: false,
        opens: false,
        pvm_only: false,
    };

    fn bin(name: &str, version: Option<&str>) -> Binary {
        Binary {
            path: Some(PathBuf::from(format!("/usr/bin/{name}"))),
            version: version.map(str::to_owned),
        }
    }

    fn facts(choice: VmmChoice, qemu: bool, fc: bool, kvm: KvmFacts) -> VmmFacts {
        VmmFacts {
            choice,
            firecracker_bin: None,
            jailer_bin: None,
            kvm,
            qemu: if qemu {
                bin("qemu-system-x86_64", Some("QEMU emulator version 7.2.0"))
            } else {
                Binary::default()
            },
            firecracker: if fc {
                bin("firecracker", Some("Firecracker v1.7.0"))
            } else {
                Binary::default()
            },
            vhost_vsock: false,
        }
    }

    #[test]
    fn kvm_states_are_named_and_never_fail() {
        assert_eq!(kvm(KVM).status, Ok);
        let pvm = kvm(KvmFacts {
            pvm_only: true,
            ..KVM
        });
        assert_eq!(pvm.status, Info);
        assert!(pvm.detail.contains("PVM-only"), "{}", pvm.detail);
        let missing = kvm(NO_KVM);
        assert_eq!(missing.status, Info);
        assert!(missing.detail.contains("no /dev/kvm"));
        let denied = kvm(KvmFacts {
            opens: false,
            ..KVM
        });
        assert!(
            denied
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("kvm group")
        );
    }

    #[test]
    fn binaries_show_versions_and_fail_only_when_needed() {
        let f = facts(VmmChoice::Auto, true, false, NO_KVM);
        let q = binary(Which::Qemu, &f);
        assert_eq!(q.status, Ok);
        assert!(
            q.detail
                .starts_with("QEMU emulator version 7.2.0 (/usr/bin/"),
            "{}",
            q.detail
        );
        assert_eq!(binary(Which::Firecracker, &f).status, Info);

        let none = facts(VmmChoice::Auto, false, false, NO_KVM);
        let q = binary(Which::Qemu, &none);
        assert_eq!(q.status, Fail);
        assert!(
            q.fix
                .as_deref()
                .unwrap_or_default()
                .contains("qemu-system-x86")
        );
        assert_eq!(binary(Which::Firecracker, &none).status, Info);

        let fc_host = facts(VmmChoice::Auto, false, true, KVM);
        assert_eq!(binary(Which::Qemu, &fc_host).status, Info);
        let wants_fc = VmmFacts {
            firecracker_bin: Some(PathBuf::from("/opt/fc")),
            ..facts(VmmChoice::Firecracker, true, false, KVM)
        };
        let fc = binary(Which::Firecracker, &wants_fc);
        assert_eq!(fc.status, Fail);
        assert!(
            fc.detail.contains("firecracker_bin = /opt/fc"),
            "{}",
            fc.detail
        );

        let silent = VmmFacts {
            qemu: bin("qemu-system-x86_64", None),
            ..f
        };
        assert_eq!(binary(Which::Qemu, &silent).status, Warn);
    }

    #[test]
    fn vmm_says_what_auto_picks_and_why() {
        let c = vmm(&facts(VmmChoice::Auto, true, true, KVM));
        assert_eq!(c.status, Ok);
        assert!(
            c.detail.starts_with("firecracker: vmm = \"auto\""),
            "{}",
            c.detail
        );
        let c = vmm(&facts(VmmChoice::Auto, true, true, NO_KVM));
        assert!(c.detail.starts_with("qemu with tcg"), "{}", c.detail);
        assert!(c.detail.contains("/dev/kvm is not usable"), "{}", c.detail);
        let c = vmm(&facts(VmmChoice::Auto, false, false, NO_KVM));
        assert_eq!(c.status, Fail);
        assert!(
            c.fix
                .as_deref()
                .unwrap_or_default()
                .contains("qemu-system-x86_64")
        );
        let c = vmm(&facts(VmmChoice::Firecracker, true, true, NO_KVM));
        assert_eq!(c.status, Fail);
    }

    #[test]
    fn summary_names_vmm_kvm_and_acceleration() {
        assert_eq!(
            summary(&facts(VmmChoice::Auto, true, false, NO_KVM)),
            "vmm: qemu, kvm: not usable, tcg"
        );
        assert_eq!(
            summary(&facts(VmmChoice::Qemu, true, true, KVM)),
            "vmm: qemu, kvm: usable, kvm"
        );
        assert_eq!(
            summary(&facts(VmmChoice::Auto, true, true, KVM)),
            "vmm: firecracker, kvm: usable"
        );
        let pvm = KvmFacts {
            pvm_only: true,
            ..KVM
        };
        assert_eq!(
            summary(&facts(VmmChoice::Auto, false, false, pvm)),
            "vmm: none, kvm: pvm only"
        );
    }

    #[test]
    fn jailer_and_vsock_are_honest_notes() {
        let f = facts(VmmChoice::Auto, true, false, NO_KVM);
        let j = jailer(&f);
        assert_eq!(j.status, Info);
        assert!(j.detail.contains("unjailed"));
        let j = jailer(&VmmFacts {
            jailer_bin: Some(PathBuf::from("/nonexistent/jailer")),
            ..f.clone()
        });
        assert_eq!(j.status, Fail);
        assert!(j.detail.contains("not an executable file"), "{}", j.detail);
        let j = jailer(&VmmFacts {
            jailer_bin: Some(PathBuf::from("/bin/sh")),
            ..f
        });
        assert_eq!(j.status, Ok);
        assert!(j.detail.contains("/bin/sh"), "{}", j.detail);
        assert_eq!(vhost_vsock(true).status, Ok);
        assert_eq!(vhost_vsock(false).status, Info);
    }
}
