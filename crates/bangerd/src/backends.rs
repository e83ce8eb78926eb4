//! Choosing and building the VM backends for this host.
//!
//! The choice honours `vmm = "auto" | "firecracker" | "qemu"` in config and is a pure function
//! ([`choose`]) over facts probed once at start-up ([`HostFacts::probe`]), so every branch is
//! unit-tested without the host having (or lacking) either VMM. `auto` picks Firecracker, the
//! primary VMM, when `firecracker` is on `PATH` and `/dev/kvm` is usable (opens read-write, and
//! is not the paravirtual `kvm_pvm`, which only runs specially built guests); otherwise QEMU,
//! which runs everywhere (TCG when KVM is unusable). The daemon logs which VMM it chose and why.
//!
//! With `jailer_bin` in config, Firecracker VMs run under the jailer ([`jail_config`]): each in
//! a chroot under `<state dir>/jailer`, dropped to the daemon's uid/gid, the jail staged and
//! the jailer spawned by this process when it is root, else by the root helper
//! ([`crate::privilege::Privilege::jail_runner`]).
//!
//! When no VMM can be used the daemon still serves everything else, and VM operations answer
//! with an error; the log says what to install or change.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use banger_daemon::agent_binary::AgentLocator;
use banger_daemon::vms::{Timeouts, VmBackends};
use banger_model::{Config, Layout, VmmChoice};
use banger_net::NetPlan;
use banger_util::find_on_path;
use banger_vmm::firecracker::{FirecrackerVmm, JailConfig, JailRunner};
use banger_vmm::qemu::{HostCpu, QemuVmm, detect_accel, host_tsc_khz};
use banger_vmm::{Vmm, VmmKind};

/// What the host offers, as far as choosing a VMM goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// `firecracker` on `PATH`.
    pub firecracker: Option<PathBuf>,
    /// `qemu-system-x86_64` on `PATH`.
    pub qemu: Option<PathBuf>,
    /// `/dev/kvm` opens read-write and is not PVM-only (`/sys/module/kvm_pvm` absent).
    pub kvm_usable: bool,
}

impl HostFacts {
    /// Probes this host; `firecracker_bin` (config) replaces the `PATH` lookup of Firecracker.
    pub fn probe(firecracker_bin: Option<&Path>) -> Self {
        Self {
            firecracker: match firecracker_bin {
                Some(bin) => bin.is_file().then(|| bin.to_path_buf()),
                None => find_on_path("firecracker"),
            },
            qemu: find_on_path("qemu-system-x86_64"),
            kvm_usable: kvm_usable(Path::new("/dev/kvm"), Path::new("/sys/module/kvm_pvm")),
        }
    }
}

/// Whether `dev` opens read-write and `pvm_module` does not exist.
fn kvm_usable(dev: &Path, pvm_module: &Path) -> bool {
    let opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .is_ok();
    opens && !pvm_module.exists()
}

/// The VMM to use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Which hypervisor.
    pub kind: VmmKind,
    /// Its binary.
    pub binary: PathBuf,
    /// Why it was chosen (for the log and `doctor`).
    pub reason: String,
}

/// Why no VMM can be used; the message names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoVmm(pub String);

impl fmt::Display for NoVmm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const KVM_HINT: &str = "/dev/kvm must open read-write (add the user to the `kvm` group) and be \
                        hardware KVM, not the paravirtual kvm_pvm";

/// Picks the VMM for `choice` on a host with `facts`.
pub fn choose(choice: VmmChoice, facts: &HostFacts) -> Result<Selection, NoVmm> {
    let qemu = |reason: String| match &facts.qemu {
        Some(binary) => Ok(Selection {
            kind: VmmKind::Qemu,
            binary: binary.clone(),
            reason,
        }),
        None => Err(NoVmm(format!(
            "{reason}, but qemu-system-x86_64 is not on PATH; install QEMU (Debian: \
             qemu-system-x86){}",
            if choice == VmmChoice::Auto {
                ", or Firecracker with a usable /dev/kvm"
            } else {
                ""
            }
        ))),
    };
    match choice {
        VmmChoice::Qemu => qemu("vmm = \"qemu\" in config".to_owned()),
        VmmChoice::Firecracker => match (&facts.firecracker, facts.kvm_usable) {
            (Some(binary), true) => Ok(Selection {
                kind: VmmKind::Firecracker,
                binary: binary.clone(),
                reason: "vmm = \"firecracker\" in config".to_owned(),
            }),
            (None, _) => Err(NoVmm(
                "vmm = \"firecracker\" in config, but `firecracker` is not on PATH; install \
                 Firecracker (and put it on PATH) or set vmm = \"auto\" or \"qemu\""
                    .to_owned(),
            )),
            (Some(_), false) => Err(NoVmm(format!(
                "vmm = \"firecracker\" in config, but /dev/kvm is not usable; {KVM_HINT}, or \
                 set vmm = \"auto\" or \"qemu\""
            ))),
        },
        VmmChoice::Auto => match (&facts.firecracker, facts.kvm_usable) {
            (Some(binary), true) => Ok(Selection {
                kind: VmmKind::Firecracker,
                binary: binary.clone(),
                reason: "vmm = \"auto\": firecracker is on PATH and /dev/kvm is usable".to_owned(),
            }),
            (None, _) => qemu("vmm = \"auto\": firecracker is not on PATH".to_owned()),
            (Some(_), false) => qemu(format!(
                "vmm = \"auto\": firecracker is on PATH but /dev/kvm is not usable ({KVM_HINT})"
            )),
        },
    }
}

/// The chroot base of jailed VMs: in the state dir, so the VMs' disks can be hard-linked in.
pub const JAIL_DIR: &str = "jailer";

/// How Firecracker VMs are jailed, if `jailer_bin` is configured: as the daemon's `uid`/`gid`,
/// in chroots under the state dir.
pub fn jail_config(layout: &Layout, config: &Config, uid: u32, gid: u32) -> Option<JailConfig> {
    config.jailer_bin.as_ref().map(|jailer_bin| JailConfig {
        jailer_bin: jailer_bin.clone(),
        chroot_base: layout.state_dir.join(JAIL_DIR),
        uid,
        gid,
    })
}

/// Why `jailer_bin` cannot be used, naming the fix; `None` when it is an executable file.
pub fn check_jailer_bin(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let ok =
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    (!ok).then(|| {
        format!(
            "jailer_bin: {} is not an executable file; install Firecracker's jailer there (or \
             point jailer_bin at it), or remove jailer_bin to run Firecracker unjailed",
            path.display()
        )
    })
}

/// Builds the chosen VMM; a Firecracker one under the jailer when `jail` says so.
fn build(selection: &Selection, jail: Option<(JailConfig, Arc<dyn JailRunner>)>) -> Arc<dyn Vmm> {
    match selection.kind {
        VmmKind::Firecracker => {
            let vmm = FirecrackerVmm::new(selection.binary.clone());
            Arc::new(match jail {
                Some((config, runner)) => {
                    tracing::info!(
                        jailer = %config.jailer_bin.display(),
                        chroot_base = %config.chroot_base.display(),
                        "firecracker runs under the jailer"
                    );
                    vmm.with_jail(Some(config)).with_jail_runner(runner)
                }
                None => vmm,
            })
        }
        VmmKind::Qemu => {
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            let host = HostCpu {
                accel: detect_accel(),
                tsc_khz: host_tsc_khz(&cpuinfo),
            };
            tracing::info!(accel = ?host.accel, "qemu acceleration");
            Arc::new(QemuVmm::new(selection.binary.clone(), host))
        }
    }
}

/// The backends. On a host where no VMM can be used they carry a [`NoVmm`] (logged), so
/// the daemon still serves, deletes and prunes, and says what to install when asked to boot.
pub fn detect(
    layout: &Layout,
    config: &Config,
    home: &Path,
    owner_uid: u32,
) -> Result<Arc<VmBackends>, banger_ssh::KeyError> {
    let facts = HostFacts::probe(config.firecracker_bin.as_deref());
    let privilege = crate::privilege::Privilege::probe();
    let gid = nix::unistd::getegid().as_raw();
    let jail = jail_config(layout, config, owner_uid, gid).map(|c| (c, privilege.jail_runner()));
    let vmm: Arc<dyn Vmm> = match choose(config.vmm, &facts) {
        Ok(selection) => {
            tracing::info!(
                vmm = selection.kind.as_str(),
                binary = %selection.binary.display(),
                reason = %selection.reason,
                "vm backend ready"
            );
            build(&selection, jail)
        }
        Err(e) => {
            if config.vmm == VmmChoice::Auto {
                tracing::warn!(error = %e, "no VMM found; VMs cannot boot until one is installed");
            } else {
                tracing::error!(error = %e, "the configured VMM is unavailable; VMs cannot boot");
            }
            Arc::new(banger_vmm::NoVmm::new(e.0))
        }
    };
    let ssh_dir = layout.ssh_dir();
    let ssh_key = match config.ssh_key_path(home) {
        Some(key) => banger_ssh::load_keypair(&key)?,
        None => banger_ssh::ensure_keypair(&ssh_dir)?,
    };
    match &privilege {
        crate::privilege::Privilege::None(_) => tracing::warn!(
            privilege = %privilege.describe(),
            fix = crate::privilege::FIX,
            "privileged network steps will fail"
        ),
        _ => tracing::info!(privilege = %privilege.describe(), "privileged backend"),
    }
    Ok(Arc::new(VmBackends {
        vmm,
        net: privilege.backend(),
        plan: NetPlan::default(),
        ssh_key,
        known_hosts: banger_ssh::known_hosts::path(&ssh_dir),
        owner_uid,
        home: home.to_path_buf(),
        ssh_port: 22,
        timeouts: Timeouts::default(),
    }))
}

/// Where this daemon looks for `banger-agent`: beside itself, its prefix's libexec, `PATH`.
pub fn agent_locator() -> AgentLocator {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/bin/bangerd"));
    AgentLocator::for_daemon(&exe, std::env::var_os("PATH").as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jailer_bin_jails_firecracker_in_the_state_dir_as_the_daemons_user() {
        let layout = Layout::rooted(banger_model::Mode::User, Path::new("/r"));
        assert_eq!(jail_config(&layout, &Config::default(), 1000, 1000), None);
        let config = Config::parse("jailer_bin = \"/usr/bin/jailer\"").expect("config");
        let jail = jail_config(&layout, &config, 1000, 1001).expect("jailed");
        assert_eq!(jail.jailer_bin, Path::new("/usr/bin/jailer"));
        assert_eq!(jail.chroot_base, layout.state_dir.join("jailer"));
        assert_eq!((jail.uid, jail.gid), (1000, 1001));
    }

    #[test]
    fn a_jailer_bin_that_is_not_an_executable_file_is_refused_at_load_naming_the_fix() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::rooted(banger_model::Mode::User, tmp.path());
        std::fs::create_dir_all(layout.config_file.parent().expect("dir")).expect("dir");
        let plain = tmp.path().join("jailer");
        std::fs::write(&plain, "not executable").expect("file");
        for bad in [
            plain.clone(),
            tmp.path().join("missing"),
            tmp.path().to_path_buf(),
        ] {
            std::fs::write(
                &layout.config_file,
                format!("jailer_bin = \"{}\"\n", bad.display()),
            )
            .expect("config");
            let err = crate::setup::config(&layout).expect_err("refused");
            let text = format!("{err:#}");
            assert!(text.contains("jailer_bin"), "{text}");
            assert!(text.contains("remove jailer_bin"), "{text}");
        }
        std::fs::write(&layout.config_file, "jailer_bin = \"/bin/sh\"\n").expect("config");
        let config = crate::setup::config(&layout).expect("an executable is accepted");
        assert_eq!(config.jailer_bin.as_deref(), Some(Path::new("/bin/sh")));
    }

    fn facts(firecracker: bool, qemu: bool, kvm_usable: bool) -> HostFacts {
        HostFacts {
            firecracker: firecracker.then(|| PathBuf::from("/usr/bin/firecracker")),
            qemu: qemu.then(|| PathBuf::from("/usr/bin/qemu-system-x86_64")),
            kvm_usable,
        }
    }

    fn kind(choice: VmmChoice, f: &HostFacts) -> Option<VmmKind> {
        choose(choice, f).ok().map(|s| s.kind)
    }

    #[test]
    fn auto_prefers_firecracker_only_with_usable_kvm() {
        use VmmKind::{Firecracker, Qemu};
        let cases = [
            // (firecracker, qemu, kvm) → choice
            ((true, true, true), Some(Firecracker)),
            ((true, false, true), Some(Firecracker)),
            ((true, true, false), Some(Qemu)),
            ((false, true, true), Some(Qemu)),
            ((false, true, false), Some(Qemu)),
            ((true, false, false), None),
            ((false, false, true), None),
            ((false, false, false), None),
        ];
        for ((fc, q, kvm), expected) in cases {
            assert_eq!(
                kind(VmmChoice::Auto, &facts(fc, q, kvm)),
                expected,
                "firecracker={fc} qemu={q} kvm={kvm}"
            );
        }
        let chosen = choose(VmmChoice::Auto, &facts(true, true, true)).expect("chosen");
        assert_eq!(chosen.binary, Path::new("/usr/bin/firecracker"));
        assert!(chosen.reason.contains("usable"), "{}", chosen.reason);
        let chosen = choose(VmmChoice::Auto, &facts(true, true, false)).expect("chosen");
        assert_eq!(chosen.binary, Path::new("/usr/bin/qemu-system-x86_64"));
        assert!(
            chosen.reason.contains("/dev/kvm is not usable"),
            "{}",
            chosen.reason
        );
        let chosen = choose(VmmChoice::Auto, &facts(false, true, true)).expect("chosen");
        assert!(chosen.reason.contains("not on PATH"), "{}", chosen.reason);
    }

    #[test]
    fn explicit_choices_are_honoured_or_name_the_fix() {
        assert_eq!(
            kind(VmmChoice::Qemu, &facts(true, true, true)),
            Some(VmmKind::Qemu)
        );
        assert_eq!(
            kind(VmmChoice::Firecracker, &facts(true, false, true)),
            Some(VmmKind::Firecracker)
        );

        let err = choose(VmmChoice::Firecracker, &facts(false, true, true)).expect_err("none");
        assert!(err.0.contains("`firecracker` is not on PATH"), "{err}");
        assert!(err.0.contains("vmm = \"auto\" or \"qemu\""), "{err}");
        let err = choose(VmmChoice::Firecracker, &facts(true, true, false)).expect_err("no kvm");
        assert!(err.0.contains("/dev/kvm is not usable"), "{err}");
        assert!(err.0.contains("kvm` group"), "{err}");
        let err = choose(VmmChoice::Qemu, &facts(true, false, true)).expect_err("no qemu");
        assert!(err.0.contains("install QEMU"), "{err}");
        assert!(!err.0.contains("Firecracker"), "{err}");
        let err = choose(VmmChoice::Auto, &facts(false, false, false)).expect_err("nothing");
        assert!(
            err.0.contains("or Firecracker with a usable /dev/kvm"),
            "{err}"
        );
    }

    #[test]
    fn kvm_probe_needs_a_read_write_device_and_no_pvm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = dir.path().join("kvm");
        let pvm = dir.path().join("kvm_pvm");
        assert!(!kvm_usable(&dev, &pvm), "missing device");
        std::fs::write(&dev, b"").expect("device stand-in");
        assert!(kvm_usable(&dev, &pvm));
        std::fs::create_dir(&pvm).expect("pvm module");
        assert!(!kvm_usable(&dev, &pvm), "pvm-only kvm");
    }
}
