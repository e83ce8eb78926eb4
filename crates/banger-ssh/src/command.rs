//! The `ssh` argv banger runs, built purely from an [`SshCommand`].
//!
//! Every option that matters is on the command line, so the session does not depend on the
//! user's OpenSSH setup:
//!
//! - `-F /dev/null`: neither `~/.ssh/config` nor `/etc/ssh/ssh_config` is read. Command-line
//!   options already win over config files, but only for the options banger sets; a user's
//!   `Host *` block could still add `ProxyJump`, `RemoteCommand`, `RequestTTY`, `SendEnv`,
//!   `CanonicalizeHostname` or a `Match exec`, any of which would break or slow down daemon-side
//!   sessions. It also stops ssh from creating `~/.ssh` (it only does so when no `-F` is given).
//!   Users who want their own settings for guests use `ssh NAME.vm` through the Include block
//!   (see [`crate::config`]).
//! - `-i KEY -o IdentitiesOnly=yes -o PreferredAuthentications=publickey`: only banger's key is
//!   offered (an agent full of keys would otherwise hit the server's `MaxAuthTries`), and there is
//!   never a password prompt.
//! - `-o UserKnownHostsFile=<banger's> -o GlobalKnownHostsFile=/dev/null
//!   -o StrictHostKeyChecking=accept-new`: trust on first use in banger's file only.
//! - `-o LogLevel=ERROR`: no "Permanently added … to the list of known hosts" chatter; real
//!   errors still reach stderr, where [`crate::errors::classify`] reads them.
//! - `-o ConnectTimeout=N`, `-o BatchMode=yes` (when `batch`), `-p PORT`, `-t`/`-tt`/`-T`,
//!   `ControlMaster=auto`/`ControlPath`/`ControlPersist` (when multiplexing).
//! - then `user@host`, `--` (so no remote argument is parsed as an ssh option), and each remote
//!   argument quoted by [`crate::quote::quote`].
//!
//! ssh expands `%` tokens and `${VAR}` in identity, known_hosts and control paths: `%` is escaped
//! as `%%`, and a path containing `${` (which cannot be escaped), a newline or a carriage return is
//! refused. Option values are double-quoted for ssh's own parser, so paths with spaces work.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::errors::{self, SshError};
use crate::known_hosts;
use crate::quote;

/// Whether to ask for a remote terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtyMode {
    /// ssh's default: a terminal for interactive logins when stdin is one, none for commands.
    #[default]
    Auto,
    /// `-t`: a terminal for a command too, if the local stdin is a terminal (`vm ssh -- htop`).
    Request,
    /// `-tt`: a terminal even when the local stdin is not one.
    Force,
    /// `-T`: never a terminal (daemon-side commands, piped data).
    Disable,
}

/// Connection sharing through an OpenSSH control master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMaster {
    /// The control socket (keep it short: Unix socket paths are limited to 107 bytes).
    pub path: PathBuf,
    /// How long an idle master stays up after its last session; zero ends it with the first
    /// session.
    pub persist: Duration,
}

/// A request to a running control master (`ssh -O`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlOp {
    /// `-O check`: exits 0 when a master is running.
    Check,
    /// `-O exit`: stops the master.
    Exit,
}

/// One `ssh` invocation against a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCommand {
    /// Remote user (`root` for guests).
    pub user: String,
    /// Guest address or name (an IP or `NAME.vm`).
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// banger's private key.
    pub identity: PathBuf,
    /// banger's known_hosts.
    pub known_hosts: PathBuf,
    /// TCP connect timeout (rounded up to whole seconds, at least one).
    pub connect_timeout: Duration,
    /// Connection sharing, if any.
    pub control: Option<ControlMaster>,
    /// `BatchMode=yes`: never prompt (for the daemon and scripts).
    pub batch: bool,
    /// Remote terminal.
    pub tty: TtyMode,
    /// Remote command and arguments; empty for a login shell.
    pub remote: Vec<String>,
}

/// Why an [`SshCommand`] cannot be turned into an argv.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The user name is empty or could be mistaken for something else.
    #[error("invalid ssh user {user:?}")]
    InvalidUser {
        /// The user.
        user: String,
    },
    /// The host is empty, starts with `-` or holds whitespace or `@`.
    #[error("invalid ssh host {host:?}")]
    InvalidHost {
        /// The host.
        host: String,
    },
    /// A path that ssh would expand or split.
    #[error("{what} path {} cannot be passed to ssh: it contains {reason}", path.display())]
    UnsafePath {
        /// Which path.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl SshCommand {
    /// A command for `root@host:22` with banger's key and known_hosts, a 10 s connect timeout,
    /// batch mode, no multiplexing, an automatic terminal and no remote command.
    pub fn new(host: impl Into<String>, identity: &Path, known_hosts: &Path) -> Self {
        Self {
            user: "root".to_owned(),
            host: host.into(),
            port: 22,
            identity: identity.to_owned(),
            known_hosts: known_hosts.to_owned(),
            connect_timeout: Duration::from_secs(10),
            control: None,
            batch: true,
            tty: TtyMode::Auto,
            remote: Vec::new(),
        }
    }

    /// The arguments to pass to `ssh` (without the program name).
    pub fn args(&self) -> Result<Vec<OsString>, CommandError> {
        let mut args = self.common_args()?;
        match self.tty {
            TtyMode::Auto => {}
            TtyMode::Request => args.push("-t".into()),
            TtyMode::Force => args.push("-tt".into()),
            TtyMode::Disable => args.push("-T".into()),
        }
        if let Some(control) = &self.control {
            args.extend([
                "-o".into(),
                "ControlMaster=auto".into(),
                "-o".into(),
                control_persist(control.persist),
            ]);
        }
        args.push(self.destination()?.into());
        if !self.remote.is_empty() {
            args.push("--".into());
            args.extend(self.remote.iter().map(|a| OsString::from(quote::quote(a))));
        }
        Ok(args)
    }

    /// A [`Command`] running `ssh` with [`Self::args`]; stdio is left to the caller.
    pub fn to_command(&self) -> Result<Command, CommandError> {
        let mut cmd = Command::new("ssh");
        cmd.args(self.args()?);
        Ok(cmd)
    }

    /// The arguments for `ssh -O check|exit` against this command's control master, or `None`
    /// when it does not multiplex.
    pub fn control_args(&self, op: ControlOp) -> Result<Option<Vec<OsString>>, CommandError> {
        if self.control.is_none() {
            return Ok(None);
        }
        let mut args = self.common_args()?;
        args.push("-O".into());
        args.push(
            match op {
                ControlOp::Check => "check",
                ControlOp::Exit => "exit",
            }
            .into(),
        );
        args.push(self.destination()?.into());
        Ok(Some(args))
    }

    /// The name this host has in banger's known_hosts (`[host]:port` off port 22).
    pub fn known_hosts_name(&self) -> String {
        known_hosts::host_key_name(&self.host, self.port)
    }

    /// Classifies how this command's `ssh` exited; see [`crate::errors::classify`].
    pub fn classify_exit(&self, code: Option<i32>, stderr: &str) -> Result<i32, SshError> {
        errors::classify(code, stderr, &self.known_hosts_name(), &self.known_hosts)
    }

    /// Options shared by sessions and control requests: config isolation, identity, host keys,
    /// timeouts, port and control path.
    fn common_args(&self) -> Result<Vec<OsString>, CommandError> {
        let identity = ssh_path("identity", &self.identity)?;
        let known_hosts = ssh_path("known_hosts", &self.known_hosts)?;
        let mut args: Vec<OsString> = vec!["-F".into(), "/dev/null".into(), "-i".into(), identity];
        let mut opt = |value: OsString| {
            args.push("-o".into());
            args.push(value);
        };
        opt("IdentitiesOnly=yes".into());
        opt("PreferredAuthentications=publickey".into());
        opt(concat("UserKnownHostsFile=", &quote_option(&known_hosts)));
        opt("GlobalKnownHostsFile=/dev/null".into());
        opt("StrictHostKeyChecking=accept-new".into());
        opt("LogLevel=ERROR".into());
        opt(format!("ConnectTimeout={}", timeout_secs(self.connect_timeout)).into());
        if self.batch {
            opt("BatchMode=yes".into());
        }
        if let Some(control) = &self.control {
            let path = ssh_path("control", &control.path)?;
            opt(concat("ControlPath=", &quote_option(&path)));
        }
        args.extend(["-p".into(), self.port.to_string().into()]);
        Ok(args)
    }

    fn destination(&self) -> Result<String, CommandError> {
        let bad = |c: char| c.is_whitespace() || c.is_control() || c == '@';
        if self.user.is_empty() || self.user.starts_with('-') || self.user.contains(bad) {
            return Err(CommandError::InvalidUser {
                user: self.user.clone(),
            });
        }
        if self.host.is_empty() || self.host.starts_with('-') || self.host.contains(bad) {
            return Err(CommandError::InvalidHost {
                host: self.host.clone(),
            });
        }
        Ok(format!("{}@{}", self.user, self.host))
    }
}

fn control_persist(persist: Duration) -> OsString {
    let secs = persist.as_secs();
    if secs == 0 {
        "ControlPersist=no".into()
    } else {
        format!("ControlPersist={secs}").into()
    }
}

/// Whole seconds, rounded up, at least one (`ConnectTimeout=0` would mean "no timeout").
fn timeout_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// A path as ssh's token expander needs it: `%` doubled; `${`, newlines and CRs refused.
pub(crate) fn ssh_path(what: &'static str, path: &Path) -> Result<OsString, CommandError> {
    let bytes = path.as_os_str().as_bytes();
    let unsafe_path = |reason| CommandError::UnsafePath {
        what,
        path: path.to_owned(),
        reason,
    };
    if bytes.windows(2).any(|w| w == b"${") {
        return Err(unsafe_path("\"${\", which ssh would expand"));
    }
    if bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(unsafe_path("a line break"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b'%' {
            out.push(b'%');
        }
        out.push(b);
    }
    Ok(OsString::from_vec(out))
}

/// Double-quotes a value for ssh's option parser (`\` and `"` escaped).
pub(crate) fn quote_option(value: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(b'"');
    for &b in value.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    OsString::from_vec(out)
}

fn concat(prefix: &str, value: &OsStr) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(value);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_str().expect("utf-8").to_owned())
            .collect()
    }

    fn sample() -> SshCommand {
        let mut cmd = SshCommand::new(
            "10.0.0.2",
            Path::new("/s/ssh/id_ed25519"),
            Path::new("/s/ssh/known_hosts"),
        );
        cmd.connect_timeout = Duration::from_millis(4500);
        cmd.tty = TtyMode::Disable;
        cmd.remote = vec!["sh".into(), "-c".into(), "exit 42".into()];
        cmd
    }

    #[test]
    fn builds_the_full_argv() {
        let args = strings(&sample().args().expect("args"));
        assert_eq!(
            args,
            [
                "-F",
                "/dev/null",
                "-i",
                "/s/ssh/id_ed25519",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "PreferredAuthentications=publickey",
                "-o",
                "UserKnownHostsFile=\"/s/ssh/known_hosts\"",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "BatchMode=yes",
                "-p",
                "22",
                "-T",
                "root@10.0.0.2",
                "--",
                "'sh'",
                "'-c'",
                "'exit 42'",
            ]
        );
    }

    #[test]
    fn interactive_sessions_have_no_separator_and_no_batch_mode() {
        let mut cmd = sample();
        cmd.remote.clear();
        cmd.batch = false;
        cmd.tty = TtyMode::Auto;
        let args = strings(&cmd.args().expect("args"));
        assert_eq!(args.last().map(String::as_str), Some("root@10.0.0.2"));
        assert!(!args.iter().any(|a| a == "--" || a == "BatchMode=yes"));
        assert!(!args.iter().any(|a| a.starts_with("-t") || a == "-T"));
    }

    #[test]
    fn tty_modes_map_to_flags() {
        for (mode, flag) in [
            (TtyMode::Request, "-t"),
            (TtyMode::Force, "-tt"),
            (TtyMode::Disable, "-T"),
        ] {
            let mut cmd = sample();
            cmd.tty = mode;
            let args = strings(&cmd.args().expect("args"));
            let host = args
                .iter()
                .position(|a| a == "root@10.0.0.2")
                .expect("host");
            assert_eq!(args[host - 1], flag);
        }
    }

    #[test]
    fn multiplexing_adds_control_options_before_the_host() {
        let mut cmd = sample();
        cmd.port = 2222;
        cmd.control = Some(ControlMaster {
            path: "/run/banger/ssh/%vm.sock".into(),
            persist: Duration::from_secs(60),
        });
        let args = strings(&cmd.args().expect("args"));
        let tail: Vec<&str> = args
            .iter()
            .skip_while(|a| *a != "BatchMode=yes")
            .skip(1)
            .take(12)
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                "-o",
                "ControlPath=\"/run/banger/ssh/%%vm.sock\"",
                "-p",
                "2222",
                "-T",
                "-o",
                "ControlMaster=auto",
                "-o",
                "ControlPersist=60",
                "root@10.0.0.2",
                "--",
                "'sh'",
            ]
        );
        cmd.control = Some(ControlMaster {
            path: "/c".into(),
            persist: Duration::ZERO,
        });
        assert!(strings(&cmd.args().expect("args")).contains(&"ControlPersist=no".to_owned()));
    }

    #[test]
    fn control_requests_reuse_the_control_path() {
        let mut cmd = sample();
        assert_eq!(cmd.control_args(ControlOp::Exit), Ok(None));
        cmd.control = Some(ControlMaster {
            path: "/c.sock".into(),
            persist: Duration::from_secs(5),
        });
        let args = strings(
            &cmd.control_args(ControlOp::Exit)
                .expect("ok")
                .expect("some"),
        );
        let n = args.len();
        assert_eq!(args[n - 3..], ["-O", "exit", "root@10.0.0.2"]);
        assert!(args.contains(&"ControlPath=\"/c.sock\"".to_owned()));
        assert!(!args.iter().any(|a| a.starts_with("ControlMaster")));
    }

    #[test]
    fn paths_are_escaped_for_ssh() {
        let mut cmd = sample();
        cmd.identity = "/home/a b/100%/id".into();
        cmd.known_hosts = "/home/a \"b\"\\/kh".into();
        let args = strings(&cmd.args().expect("args"));
        assert!(args.contains(&"/home/a b/100%%/id".to_owned()), "{args:?}");
        assert!(
            args.contains(&"UserKnownHostsFile=\"/home/a \\\"b\\\"\\\\/kh\"".to_owned()),
            "{args:?}"
        );
    }

    #[test]
    fn refuses_what_ssh_would_misread() {
        let mut cmd = sample();
        cmd.known_hosts = "/x/${HOME}/kh".into();
        assert!(matches!(
            cmd.args(),
            Err(CommandError::UnsafePath {
                what: "known_hosts",
                ..
            })
        ));
        let mut cmd = sample();
        cmd.identity = "/x/a\nb".into();
        assert!(matches!(
            cmd.args(),
            Err(CommandError::UnsafePath {
                what: "identity",
                ..
            })
        ));
        for host in ["", "-oProxyCommand=x", "a b", "u@h"] {
            let mut cmd = sample();
            cmd.host = host.into();
            assert!(
                matches!(cmd.args(), Err(CommandError::InvalidHost { .. })),
                "{host}"
            );
        }
        let mut cmd = sample();
        cmd.user = "".into();
        assert!(matches!(cmd.args(), Err(CommandError::InvalidUser { .. })));
    }

    #[test]
    fn timeouts_round_up_to_whole_seconds() {
        assert_eq!(timeout_secs(Duration::ZERO), 1);
        assert_eq!(timeout_secs(Duration::from_millis(1)), 1);
        assert_eq!(timeout_secs(Duration::from_secs(3)), 3);
        assert_eq!(timeout_secs(Duration::from_millis(3001)), 4);
    }

    #[test]
    fn known_hosts_name_follows_the_port() {
        let mut cmd = sample();
        assert_eq!(cmd.known_hosts_name(), "10.0.0.2");
        cmd.port = 2222;
        assert_eq!(cmd.known_hosts_name(), "[10.0.0.2]:2222");
        let err = cmd
            .classify_exit(Some(255), "Host key verification failed.")
            .expect_err("error");
        assert!(
            err.to_string()
                .contains("ssh-keygen -R [10.0.0.2]:2222 -f /s/ssh/known_hosts")
        );
    }

    /// ssh itself agrees with how the options are written: `ssh -G` prints the resolved config.
    #[test]
    fn real_ssh_parses_the_options() {
        let mut cmd = sample();
        cmd.known_hosts = "/tmp/with space/100%/known_hosts".into();
        cmd.control = Some(ControlMaster {
            path: "/tmp/c %h.sock".into(),
            persist: Duration::from_secs(30),
        });
        cmd.remote.clear();
        let mut args = cmd.args().expect("args");
        args.insert(0, "-G".into());
        let out = Command::new("ssh")
            .args(&args)
            .output()
            .expect("run ssh -G");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for line in [
            "userknownhostsfile /tmp/with space/100%/known_hosts",
            "globalknownhostsfile /dev/null",
            "stricthostkeychecking accept-new",
            "identitiesonly yes",
            "batchmode yes",
            "loglevel ERROR",
            "connecttimeout 5",
            "controlmaster auto",
            "controlpath /tmp/c %h.sock",
            "controlpersist 30",
            "port 22",
            "user root",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }
}
