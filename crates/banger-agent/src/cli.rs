//! Command-line arguments and the choice between init and service mode.
//!
//! Hand-parsed (no clap) to keep the guest binary small. The kernel passes unrecognised boot
//! parameters without `=` to init as arguments, so as PID 1 the agent must tolerate arguments it
//! does not know: [`parse`] collects them instead of failing, and only the service mode treats
//! them as a usage error. PID 1 never exits on a usage error.

use std::ffi::OsString;
use std::path::PathBuf;

/// Usage text for `--help`.
pub const USAGE: &str = "\
usage: banger-agent [--init] [--listen-unix PATH] [--exit-on-shutdown]

The banger guest agent. As PID 1 (or with --init) it is the guest's init; otherwise it only
serves the agent API (service mode, e.g. under systemd).

options:
  --init               run as init even if not PID 1 (only on a kernel booted by banger)
  --listen-unix PATH   serve the API on a Unix socket at PATH instead of the guest transports
                       (virtio-serial port banger.agent, vsock port 52); for tests
  --exit-on-shutdown   service mode: POST /shutdown makes the agent exit 0 instead of powering
                       the machine off; for tests
  -h, --help           print this help
  -V, --version        print the version
";

/// Parsed options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `--init`.
    pub force_init: bool,
    /// `--listen-unix PATH`.
    pub listen_unix: Option<PathBuf>,
    /// `--exit-on-shutdown`.
    pub exit_on_shutdown: bool,
    /// Arguments that were not understood (fatal only in service mode).
    pub unknown: Vec<String>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the agent.
    Run(Options),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// A command line that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// A flag needs a value that is missing.
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    /// Arguments that are not flags of the agent.
    #[error("unknown arguments: {}", .0.join(" "))]
    Unknown(Vec<String>),
    /// `--init` outside a banger guest.
    #[error("--init refused: not PID 1 and the kernel command line has no banger.* parameter")]
    InitOutsideGuest,
    /// `--exit-on-shutdown` with init mode.
    #[error("--exit-on-shutdown is not allowed in init mode")]
    ExitOnShutdownInInit,
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, UsageError> {
    let mut opts = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--init") => opts.force_init = true,
            Some("--exit-on-shutdown") => opts.exit_on_shutdown = true,
            Some("--listen-unix") => {
                let v = args
                    .next()
                    .ok_or(UsageError::MissingValue("--listen-unix"))?;
                opts.listen_unix = Some(PathBuf::from(v));
            }
            Some(s) if s.starts_with("--listen-unix=") => {
                let v = &s["--listen-unix=".len()..];
                if v.is_empty() {
                    return Err(UsageError::MissingValue("--listen-unix"));
                }
                opts.listen_unix = Some(PathBuf::from(v));
            }
            Some("-h" | "--help") => return Ok(Command::Help),
            Some("-V" | "--version") => return Ok(Command::Version),
            _ => opts.unknown.push(arg.to_string_lossy().into_owned()),
        }
    }
    Ok(Command::Run(opts))
}

/// The agent's mode of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of the guest.
    Init,
    /// An ordinary service next to another init.
    Service,
}

impl Mode {
    /// `init` or `service`, as reported by `/healthz`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Init => "init",
            Mode::Service => "service",
        }
    }
}

/// Chooses the mode. PID 1 is always init (whatever else is wrong, PID 1 must not exit). `--init`
/// on another PID is honoured only on a kernel booted by banger, so that running the agent by
/// mistake on a workstation cannot take the init role (which kills every process on power-off).
pub fn decide_mode(is_pid1: bool, opts: &Options, cmdline: &str) -> Result<Mode, UsageError> {
    if is_pid1 {
        return Ok(Mode::Init);
    }
    if opts.force_init {
        if !banger_guest::boot::is_banger_guest(cmdline) {
            return Err(UsageError::InitOutsideGuest);
        }
        if opts.exit_on_shutdown {
            return Err(UsageError::ExitOnShutdownInInit);
        }
        return Ok(Mode::Init);
    }
    if !opts.unknown.is_empty() {
        return Err(UsageError::Unknown(opts.unknown.clone()));
    }
    Ok(Mode::Service)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_flags() {
        assert_eq!(
            p(&[
                "--init",
                "--listen-unix",
                "/tmp/a.sock",
                "--exit-on-shutdown"
            ]),
            Ok(Command::Run(Options {
                force_init: true,
                listen_unix: Some("/tmp/a.sock".into()),
                exit_on_shutdown: true,
                unknown: vec![],
            }))
        );
        assert_eq!(
            p(&["--listen-unix=/x"]),
            Ok(Command::Run(Options {
                listen_unix: Some("/x".into()),
                ..Options::default()
            }))
        );
        assert_eq!(p(&["--help"]), Ok(Command::Help));
        assert_eq!(p(&["-V"]), Ok(Command::Version));
        assert_eq!(
            p(&["--listen-unix"]),
            Err(UsageError::MissingValue("--listen-unix"))
        );
        assert_eq!(
            p(&["--listen-unix="]),
            Err(UsageError::MissingValue("--listen-unix"))
        );
    }

    #[test]
    fn unknown_args_are_collected() {
        let Ok(Command::Run(o)) = p(&["single", "--frob"]) else {
            panic!()
        };
        assert_eq!(o.unknown, vec!["single", "--frob"]);
    }

    #[test]
    fn mode_rules() {
        let guest = "console=ttyS0 banger.hostname=a";
        let host = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro";
        let plain = Options::default();
        let init = Options {
            force_init: true,
            ..Options::default()
        };
        let junk = Options {
            unknown: vec!["single".into()],
            exit_on_shutdown: true,
            ..Options::default()
        };
        assert_eq!(decide_mode(true, &plain, host), Ok(Mode::Init));
        assert_eq!(decide_mode(true, &junk, host), Ok(Mode::Init));
        assert_eq!(decide_mode(false, &plain, host), Ok(Mode::Service));
        assert_eq!(decide_mode(false, &init, guest), Ok(Mode::Init));
        assert_eq!(
            decide_mode(false, &init, host),
            Err(UsageError::InitOutsideGuest)
        );
        assert!(matches!(
            decide_mode(false, &junk, guest),
            Err(UsageError::Unknown(_))
        ));
        let both = Options {
            exit_on_shutdown: true,
            ..init
        };
        assert_eq!(
            decide_mode(false, &both, guest),
            Err(UsageError::ExitOnShutdownInInit)
        );
    }
}
