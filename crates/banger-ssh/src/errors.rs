//! Turning an `ssh` exit into an actionable error.
//!
//! `ssh` exits with the remote command's status, or with 255 when ssh itself failed; its stderr
//! then says why, in English (OpenSSH does not localise). [`classify`] is a pure function over
//! that pair: statuses 0–254 are the remote command's exit code and pass through, so
//! `banger vm run -- CMD` can propagate them; a 255 is matched against OpenSSH's messages:
//!
//! - a changed host key (`REMOTE HOST IDENTIFICATION HAS CHANGED`, `Host key verification
//!   failed`) → [`SshError::HostKeyChanged`], which names banger's known_hosts file and both fixes;
//! - a refused, timed-out, unroutable or prematurely closed connection →
//!   [`SshError::Unreachable`], which points at `banger vm logs`;
//! - a rejected key (`Permission denied`) → [`SshError::AuthRejected`];
//! - anything else (including a remote command that itself exited 255 without ssh's own
//!   messages) → [`SshError::Failed`] with ssh's last stderr line.
//!
//! With `LogLevel=ERROR` (which banger always sets), ssh prints nothing on stderr for a successful
//! session, so this classification only sees real failures.

use std::path::{Path, PathBuf};

/// The status `ssh` exits with when ssh itself failed.
pub const SSH_FAILURE_STATUS: i32 = 255;

/// Why an `ssh` invocation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    /// The guest presented a different host key than the one pinned on first connection.
    #[error(
        "the host key of {host} does not match the one banger pinned in {file}: this is either a \
         man-in-the-middle attack or a rebuilt VM; `banger vm delete` and recreating the VM starts \
         fresh, or, if you know the VM was rebuilt, remove the stale entry with \
         `ssh-keygen -R {host} -f {file}`",
        file = known_hosts.display()
    )]
    HostKeyChanged {
        /// The host as recorded in known_hosts (`[host]:port` off port 22).
        host: String,
        /// banger's known_hosts file.
        known_hosts: PathBuf,
    },
    /// No SSH connection could be established.
    #[error(
        "cannot reach ssh on {host} ({detail}); is the VM running and booted? `banger vm logs` \
         shows its console"
    )]
    Unreachable {
        /// The host.
        host: String,
        /// ssh's own explanation.
        detail: String,
    },
    /// The guest refused banger's key.
    #[error(
        "{host} refused banger's ssh key ({detail}); the guest's authorized_keys does not hold \
         banger's public key"
    )]
    AuthRejected {
        /// The host.
        host: String,
        /// ssh's own explanation.
        detail: String,
    },
    /// Any other failure.
    #[error("ssh to {host} failed ({}): {detail}", status_text(*code))]
    Failed {
        /// The host.
        host: String,
        /// ssh's exit status; `None` when killed by a signal.
        code: Option<i32>,
        /// ssh's last stderr line.
        detail: String,
    },
}

fn status_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_owned(),
    }
}

const HOST_KEY_CHANGED: [&str; 2] = [
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "Host key verification failed",
];

const AUTH_REJECTED: [&str; 2] = ["Permission denied", "Too many authentication failures"];

const UNREACHABLE: [&str; 11] = [
    "Connection refused",
    "Connection timed out",
    "Operation timed out",
    "timed out",
    "No route to host",
    "Network is unreachable",
    "Could not resolve hostname",
    "kex_exchange_identification",
    "Connection reset by",
    "Connection closed by",
    "Broken pipe",
];

/// Classifies how `ssh` exited: `Ok(code)` is the remote command's exit code, `Err` is a failure
/// of ssh itself.
///
/// `code` is the process's exit code (`None` when killed by a signal), `stderr` what it printed,
/// `host` the name it is known by in banger's known_hosts (see
/// [`crate::known_hosts::host_key_name`]) and `known_hosts` that file.
pub fn classify(
    code: Option<i32>,
    stderr: &str,
    host: &str,
    known_hosts: &Path,
) -> Result<i32, SshError> {
    let code = match code {
        Some(c) if c != SSH_FAILURE_STATUS => return Ok(c),
        other => other,
    };
    let host = host.to_owned();
    let detail = last_line(stderr);
    if code.is_none() {
        return Err(SshError::Failed { host, code, detail });
    }
    if HOST_KEY_CHANGED.iter().any(|m| stderr.contains(m)) {
        return Err(SshError::HostKeyChanged {
            host,
            known_hosts: known_hosts.to_owned(),
        });
    }
    if let Some(line) = find_line(stderr, &AUTH_REJECTED) {
        return Err(SshError::AuthRejected { host, detail: line });
    }
    if let Some(line) = find_line(stderr, &UNREACHABLE) {
        return Err(SshError::Unreachable { host, detail: line });
    }
    Err(SshError::Failed { host, code, detail })
}

/// The first stderr line containing one of `needles`, trimmed and without ssh's `ssh: ` prefix.
fn find_line(stderr: &str, needles: &[&str]) -> Option<String> {
    stderr
        .lines()
        .find(|l| needles.iter().any(|n| l.contains(n)))
        .map(tidy)
}

fn last_line(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(tidy)
        .unwrap_or_else(|| "no error output".to_owned())
}

fn tidy(line: &str) -> String {
    let line = line.trim();
    let line = line.strip_prefix("ssh: ").unwrap_or(line);
    line.trim_end_matches(['.', '\r']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KH: &str = "/state/banger/ssh/known_hosts";

    fn run(code: Option<i32>, stderr: &str) -> Result<i32, SshError> {
        classify(code, stderr, "foo.vm", Path::new(KH))
    }

    const CHANGED: &str = "\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:abc.
Please contact your system administrator.
Add correct host key in /state/banger/ssh/known_hosts to get rid of this message.
Offending ED25519 key in /state/banger/ssh/known_hosts:1
Host key for foo.vm has changed and you have requested strict checking.
Host key verification failed.
";

    #[test]
    fn remote_exit_codes_pass_through() {
        assert_eq!(run(Some(0), ""), Ok(0));
        assert_eq!(run(Some(42), "whatever the command printed"), Ok(42));
        assert_eq!(run(Some(254), "Connection refused"), Ok(254));
    }

    #[test]
    fn changed_host_key_is_a_possible_mitm() {
        let err = run(Some(255), CHANGED).expect_err("error");
        assert_eq!(
            err,
            SshError::HostKeyChanged {
                host: "foo.vm".into(),
                known_hosts: KH.into()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("man-in-the-middle"), "{msg}");
        assert!(msg.contains(KH), "{msg}");
        assert!(msg.contains("banger vm delete"), "{msg}");
        assert!(
            msg.contains("`ssh-keygen -R foo.vm -f /state/banger/ssh/known_hosts`"),
            "{msg}"
        );
        assert_eq!(msg, msg.trim_end_matches('.'));
        assert!(
            matches!(
                run(Some(255), "Host key verification failed.\r\n"),
                Err(SshError::HostKeyChanged { .. })
            ),
            "the short form alone is enough"
        );
    }

    #[test]
    fn connection_failures_point_at_the_logs() {
        for stderr in [
            "ssh: connect to host 10.0.0.2 port 22: Connection refused\n",
            "ssh: connect to host 10.0.0.2 port 22: Connection timed out\r\n",
            "ssh: connect to host 10.0.0.2 port 22: No route to host\n",
            "ssh: Could not resolve hostname foo.vm: Name or service not known\n",
            "kex_exchange_identification: Connection closed by remote host\n\
             Connection closed by 10.0.0.2 port 22\n",
        ] {
            let err = run(Some(255), stderr).expect_err("error");
            let SshError::Unreachable { host, detail } = &err else {
                panic!("{stderr:?} gave {err:?}");
            };
            assert_eq!(host, "foo.vm");
            assert!(!detail.starts_with("ssh: "), "{detail}");
            let msg = err.to_string();
            assert!(
                msg.contains("foo.vm") && msg.contains("banger vm logs"),
                "{msg}"
            );
        }
    }

    #[test]
    fn rejected_keys_are_named() {
        let err = run(Some(255), "root@foo.vm: Permission denied (publickey).\n").expect_err("e");
        assert_eq!(
            err,
            SshError::AuthRejected {
                host: "foo.vm".into(),
                detail: "root@foo.vm: Permission denied (publickey)".into()
            }
        );
    }

    #[test]
    fn anything_else_is_generic() {
        assert_eq!(
            run(Some(255), "something odd\nreally odd.\n"),
            Err(SshError::Failed {
                host: "foo.vm".into(),
                code: Some(255),
                detail: "really odd".into()
            })
        );
        let err = run(Some(255), "").expect_err("e");
        assert_eq!(
            err.to_string(),
            "ssh to foo.vm failed (exit status 255): no error output"
        );
        let err = run(None, "").expect_err("e");
        assert_eq!(
            err.to_string(),
            "ssh to foo.vm failed (killed by a signal): no error output"
        );
    }
}
