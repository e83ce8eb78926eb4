//! The QEMU command line, as a pure function of the launch spec and host facts.
//!
//! Shape: `-M microvm` with virtio-mmio block, net and serial devices, no firmware option
//! ROMs, the serial console to the VM's log file, QMP and the agent's virtio-serial port on
//! Unix sockets, and `-daemonize` with a pid file so the VM outlives the daemon that started
//! it. The Debian cloud kernel needs the TSC frequency on its command line under microvm or it
//! stalls calibrating (measured; see TESTING.md), so the backend appends it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::snapshot::{Memory, memory_args};
use crate::launch::{LaunchSpec, VmmError, tag_for};

/// Files of one QEMU instance inside the run dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuFiles {
    /// QMP control socket.
    pub qmp: PathBuf,
    /// Host end of the agent's virtio-serial port.
    pub agent: PathBuf,
    /// Pid file written by `-daemonize`.
    pub pidfile: PathBuf,
    /// Guest serial console.
    pub console_log: PathBuf,
}

impl QemuFiles {
    /// The files under `run_dir`.
    pub fn in_dir(run_dir: &Path) -> Self {
        Self {
            qmp: run_dir.join("qmp.sock"),
            agent: run_dir.join("agent.sock"),
            pidfile: run_dir.join("vmm.pid"),
            console_log: crate::launch::console_log_path(run_dir),
        }
    }
}

/// Hardware acceleration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM.
    Kvm,
    /// Software emulation.
    Tcg,
}

/// Name of the agent's virtio-serial port inside the guest (`/dev/virtio-ports/<name>`).
pub use banger_guest::agent::VIRTIO_PORT_NAME as AGENT_PORT_NAME;

/// Host facts that shape the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCpu {
    /// Acceleration to use.
    pub accel: Accel,
    /// TSC frequency in kHz, when known.
    pub tsc_khz: Option<u64>,
}

/// Builds the argv (without the binary itself) for an ordinary boot.
pub fn qemu_args(spec: &LaunchSpec, host: HostCpu) -> Result<Vec<OsString>, VmmError> {
    qemu_args_with(spec, host, &Memory::Anonymous)
}

/// Builds the argv with guest RAM from `memory` (see [`super::snapshot`]).
pub fn qemu_args_with(
    spec: &LaunchSpec,
    host: HostCpu,
    memory: &Memory,
) -> Result<Vec<OsString>, VmmError> {
    if spec.disks.is_empty() {
        return Err(VmmError::InvalidSpec("a root disk is required".to_owned()));
    }
    if spec.vcpu == 0 || spec.memory_mib == 0 {
        return Err(VmmError::InvalidSpec(
            "vcpu and memory must be positive".to_owned(),
        ));
    }
    for disk in &spec.disks {
        if disk.path.to_string_lossy().contains(',') {
            return Err(VmmError::InvalidSpec(format!(
                "disk path {} contains ',' which QEMU cannot take",
                disk.path.display()
            )));
        }
    }
    let files = QemuFiles::in_dir(&spec.run_dir);
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(OsString::from(s));
    let tag = tag_for(&spec.vm_id);
    push("-name");
    push(&format!("{tag},process={tag}"));
    let (memory_machine, memory_args) = memory_args(memory, spec.memory_mib);
    push("-M");
    let mut machine = "microvm,x-option-roms=off,isa-serial=on,rtc=on".to_owned();
    if let Some(backend) = memory_machine {
        machine.push(',');
        machine.push_str(&backend);
    }
    push(&machine);
    push("-accel");
    push(match host.accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg",
    });
    push("-cpu");
    push(match host.accel {
        Accel::Kvm => "host",
        Accel::Tcg => "max",
    });
    push("-smp");
    push(&spec.vcpu.to_string());
    push("-m");
    push(&format!("{}M", spec.memory_mib));
    for flag in [
        "-nodefaults",
        "-no-user-config",
        "-no-reboot",
        "-display",
        "none",
    ] {
        push(flag);
    }
    push("-serial");
    push(&format!("file:{}", files.console_log.display()));
    push("-kernel");
    push(&spec.kernel.to_string_lossy());
    if let Some(initrd) = &spec.initrd {
        push("-initrd");
        push(&initrd.to_string_lossy());
    }
    let mut cmdline = spec.cmdline.clone();
    if let Some(khz) = host.tsc_khz {
        cmdline.push_str(&format!(" tsc_early_khz={khz} tsc=reliable"));
    }
    push("-append");
    push(cmdline.trim());
    // `cache=writeback`: guest reads hit the host's page cache (a boot reads the same system
    // files every time; with O_DIRECT, `cache=none`, a cold create measured 0.7 s slower under
    // emulation) while the guest still sees a volatile write cache, so its flushes (ext4's
    // journal commits, fsync) reach the disk as fdatasync: nothing it synced is lost.
    for (i, disk) in spec.disks.iter().enumerate() {
        let ro = if disk.read_only { ",read-only=on" } else { "" };
        push("-drive");
        push(&format!(
            "id=disk{i},file={},format=raw,if=none,cache=writeback{ro}",
            disk.path.display()
        ));
        push("-device");
        push(&format!("virtio-blk-device,drive=disk{i}"));
    }
    if let Some(net) = &spec.net {
        push("-netdev");
        push(&format!(
            "tap,id=net0,ifname={},script=no,downscript=no",
            net.tap
        ));
        push("-device");
        push(&format!("virtio-net-device,netdev=net0,mac={}", net.mac));
    }
    push("-device");
    push("virtio-serial-device");
    push("-chardev");
    push(&format!(
        "socket,id=agent,path={},server=on,wait=off",
        files.agent.display()
    ));
    push("-device");
    push(&format!(
        "virtserialport,chardev=agent,name={AGENT_PORT_NAME}"
    ));
    push("-qmp");
    push(&format!("unix:{},server=on,wait=off", files.qmp.display()));
    push("-daemonize");
    push("-pidfile");
    push(&files.pidfile.to_string_lossy());
    a.extend(memory_args);
    Ok(a)
}

/// Chooses KVM when `/dev/kvm` opens and the KVM module is not the paravirtual-only kind;
/// TCG otherwise.
pub fn detect_accel() -> Accel {
    let pvm_only = Path::new("/sys/module/kvm_pvm").exists();
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm_opens && !pvm_only {
        Accel::Kvm
    } else {
        Accel::Tcg
    }
}

/// The host TSC frequency from `/proc/cpuinfo` (`cpu MHz`), in kHz.
pub fn host_tsc_khz(cpuinfo: &str) -> Option<u64> {
    let mhz = cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "cpu MHz").then(|| value.trim().to_owned())
    })?;
    let mhz: f64 = mhz.parse().ok()?;
    (mhz > 0.0).then(|| (mhz * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::{DiskSpec, NetSpec};

    fn spec() -> LaunchSpec {
        LaunchSpec {
            vm_id: "0123abcd".into(),
            vcpu: 2,
            memory_mib: 1024,
            kernel: "/k/vmlinuz".into(),
            initrd: Some("/k/initrd.img".into()),
            cmdline: "console=ttyS0 root=/dev/vda rw".into(),
            disks: vec![
                DiskSpec {
                    path: "/v/rootfs.ext4".into(),
                    read_only: false,
                },
                DiskSpec {
                    path: "/v/work.ext4".into(),
                    read_only: false,
                },
            ],
            net: Some(NetSpec {
                tap: "bgr-0123abcd".into(),
                mac: "06:00:ac:1e:00:02".into(),
            }),
            run_dir: "/v".into(),
        }
    }

    fn joined(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn builds_a_microvm_command_line() {
        let args = qemu_args(
            &spec(),
            HostCpu {
                accel: Accel::Tcg,
                tsc_khz: Some(2_994_374),
            },
        )
        .unwrap();
        let s = joined(&args);
        assert!(
            s.contains("-name banger-0123abcd,process=banger-0123abcd"),
            "{s}"
        );
        assert!(
            s.contains("-M microvm,x-option-roms=off,isa-serial=on,rtc=on"),
            "{s}"
        );
        assert!(s.contains("-accel tcg -cpu max -smp 2 -m 1024M"), "{s}");
        assert!(s.contains("-serial file:/v/console.log"), "{s}");
        assert!(s.contains("-initrd /k/initrd.img"), "{s}");
        let append = args
            .iter()
            .position(|a| a == "-append")
            .map(|i| args[i + 1].to_string_lossy().into_owned())
            .unwrap();
        assert_eq!(
            append,
            "console=ttyS0 root=/dev/vda rw tsc_early_khz=2994374 tsc=reliable"
        );
        assert!(s.contains("file=/v/rootfs.ext4,format=raw"), "{s}");
        assert!(s.contains("virtio-blk-device,drive=disk1"), "{s}");
        assert!(s.contains(",format=raw,if=none,cache=writeback"), "{s}");
        assert!(
            s.contains("tap,id=net0,ifname=bgr-0123abcd,script=no"),
            "{s}"
        );
        assert!(
            s.contains("virtio-net-device,netdev=net0,mac=06:00:ac:1e:00:02"),
            "{s}"
        );
        assert!(s.contains("path=/v/agent.sock,server=on,wait=off"), "{s}");
        assert!(s.contains("name=banger.agent"), "{s}");
        assert!(
            s.contains("-qmp unix:/v/qmp.sock,server=on,wait=off"),
            "{s}"
        );
        assert!(s.ends_with("-daemonize -pidfile /v/vmm.pid"), "{s}");
    }

    #[test]
    fn a_restore_names_the_ram_backend_on_the_machine_and_waits_for_its_state() {
        let host = HostCpu {
            accel: Accel::Tcg,
            tsc_khz: None,
        };
        let memory = Memory::Restore(crate::qemu::Snapshot {
            memory: "/s/ram".into(),
            state: "/s/state".into(),
        });
        let s = joined(&qemu_args_with(&spec(), host, &memory).unwrap());
        assert!(
            s.contains("-M microvm,x-option-roms=off,isa-serial=on,rtc=on,memory-backend=ram0 "),
            "{s}"
        );
        assert!(s.contains("share=off"), "{s}");
        assert!(s.ends_with("-pidfile /v/vmm.pid -object memory-backend-file,id=ram0,size=1024M,mem-path=/s/ram,share=off -incoming defer"), "{s}");
        let cold = joined(&qemu_args(&spec(), host).unwrap());
        assert!(
            !cold.contains("memory-backend") && !cold.contains("-incoming"),
            "{cold}"
        );
    }

    #[test]
    fn refuses_specs_qemu_cannot_take() {
        let host = HostCpu {
            accel: Accel::Kvm,
            tsc_khz: None,
        };
        let mut s = spec();
        s.disks.clear();
        assert!(qemu_args(&s, host).is_err());
        let mut s = spec();
        s.disks[0].path = "/a,b".into();
        assert!(qemu_args(&s, host).is_err());
        let mut s = spec();
        s.vcpu = 0;
        assert!(qemu_args(&s, host).is_err());
        let args = qemu_args(&spec(), host).unwrap();
        assert!(joined(&args).contains("-accel kvm -cpu host"));
    }

    #[test]
    fn reads_the_tsc_frequency() {
        let cpuinfo = "processor\t: 0\ncpu MHz\t\t: 2994.374\nflags\t: fpu\n";
        assert_eq!(host_tsc_khz(cpuinfo), Some(2_994_374));
        assert_eq!(host_tsc_khz("processor: 0\n"), None);
    }
}
