//! The helper's wire format: one JSON object per line, each way, one exchange per connection.
//!
//! A request is a [`Request`] tagged by `op`; the answer is a [`Response`] tagged by `result`.
//! Lines are bounded ([`MAX_LINE`]) on both sides, so a client cannot make the helper buffer
//! without end, and an unknown `op` or field is refused by the parser — the set of requests is
//! closed.

use std::net::Ipv4Addr;

use banger_model::jail::{JailLaunch, JailRef};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest line either side accepts, newline included.
pub const MAX_LINE: usize = 64 * 1024;

/// One privileged step, as the daemon asks for it (one per [`banger_net::NetOps`] method).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Create banger's bridge if missing, with the gateway address, up.
    EnsureBridge {
        /// The bridge.
        name: String,
        /// The guests' gateway (the bridge's address).
        gateway: Ipv4Addr,
        /// The subnet's prefix length.
        prefix: u8,
    },
    /// Create a persistent TAP owned by `owner_uid`, on `bridge`, up.
    EnsureTap {
        /// The TAP.
        name: String,
        /// banger's bridge.
        bridge: String,
        /// Who may open the TAP (the VMM's user).
        owner_uid: u32,
    },
    /// Rename a TAP (a pooled one to a VM's).
    RenameLink {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// Take a TAP down (a restored VM's, until it has its own identity).
    IsolateLink {
        /// The TAP.
        name: String,
    },
    /// Delete a TAP; a missing one is not an error.
    DeleteLink {
        /// The TAP.
        name: String,
    },
    /// List interfaces whose name starts with `prefix`.
    LinksWithPrefix {
        /// A prefix of banger's TAP names.
        prefix: String,
    },
    /// Give a VM outbound NAT in banger's nftables tables.
    AllowNat {
        /// The VM's id (the rule's comment).
        vm_id: String,
        /// Its TAP.
        tap: String,
        /// banger's bridge.
        bridge: String,
    },
    /// Remove a VM's NAT rule from banger's tables.
    RevokeNat {
        /// The VM's id.
        vm_id: String,
    },
    /// Route the `vm` zone to banger's server on its bridge in the host resolver
    /// (systemd-resolved); elsewhere nothing changes and the answer says so.
    RouteZone {
        /// banger's bridge.
        bridge: String,
        /// The server the zone goes to (the bridge's gateway).
        server: Ipv4Addr,
        /// The zone (`vm`).
        zone: String,
    },
    /// Bind the guests' DNS sockets (UDP and TCP, port 53) on banger's gateway and hand them
    /// over: the answer [`Response::Sockets`] carries the two descriptors (`SCM_RIGHTS`,
    /// UDP first), so the daemon serves DNS as the owner.
    BindGuestDns {
        /// The bridge's gateway.
        gateway: Ipv4Addr,
    },
    /// Stage a VM's jail and start the jailer in it (see [`crate::jail`]); the request line
    /// carries one descriptor (`SCM_RIGHTS`), the console log the jailer's output goes to.
    /// The answer is [`Response::Launched`].
    LaunchJail {
        /// What to stage and run.
        launch: JailLaunch,
    },
    /// Remove a VM's jail (its VMM gone); a missing one is not an error.
    ReleaseJail {
        /// Which jail.
        jail: JailRef,
    },
}

impl Request {
    /// The request's name, for logs.
    pub fn op(&self) -> &'static str {
        match self {
            Self::EnsureBridge { .. } => "ensure_bridge",
            Self::EnsureTap { .. } => "ensure_tap",
            Self::RenameLink { .. } => "rename_link",
            Self::IsolateLink { .. } => "isolate_link",
            Self::DeleteLink { .. } => "delete_link",
            Self::LinksWithPrefix { .. } => "links_with_prefix",
            Self::AllowNat { .. } => "allow_nat",
            Self::RevokeNat { .. } => "revoke_nat",
            Self::RouteZone { .. } => "route_zone",
            Self::BindGuestDns { .. } => "bind_guest_dns",
            Self::LaunchJail { .. } => "launch_jail",
            Self::ReleaseJail { .. } => "release_jail",
        }
    }
}

/// The helper's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// Done.
    Ok,
    /// The answer to [`Request::RouteZone`]: whether the host resolver now routes the zone.
    Zone {
        /// `true`: routed; `false`: the host's resolver is not one banger configures.
        routed: bool,
    },
    /// The answer to [`Request::BindGuestDns`]; the line travels with the UDP and the TCP
    /// socket as ancillary data ([`crate::fds`]).
    Sockets,
    /// The answer to [`Request::LaunchJail`]: the jailer runs (and becomes Firecracker).
    Launched {
        /// Its pid.
        pid: u32,
    },
    /// The answer to [`Request::LinksWithPrefix`].
    Links {
        /// The matching interface names.
        names: Vec<String>,
    },
    /// Refused before anything happened: the caller, the request or its arguments are not
    /// allowed.
    Refused {
        /// Why, naming what was refused.
        reason: String,
    },
    /// Allowed, tried, and failed.
    Failed {
        /// The error chain.
        message: String,
        /// Whether the kernel refused the helper itself for lack of privilege.
        permission_denied: bool,
    },
}

/// Why a line could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed.
    #[error("i/o on the helper socket")]
    Io(#[from] std::io::Error),
    /// The peer closed before sending a full line.
    #[error("the peer closed the connection before a full message")]
    Closed,
    /// The line exceeded [`MAX_LINE`].
    #[error("message longer than {MAX_LINE} bytes")]
    TooLong,
    /// The line is not a message this side knows.
    #[error("not a valid message")]
    Malformed(#[source] serde_json::Error),
}

/// Reads one bounded line and parses it as `T`.
pub async fn read_message<T, R>(reader: &mut R) -> Result<T, WireError>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncBufRead + Unpin,
{
    let mut line = Vec::new();
    let mut limited = reader.take(MAX_LINE as u64);
    let n = limited.read_until(b'\n', &mut line).await?;
    if line.last() != Some(&b'\n') {
        return Err(if n >= MAX_LINE {
            WireError::TooLong
        } else {
            WireError::Closed
        });
    }
    serde_json::from_slice(&line).map_err(WireError::Malformed)
}

/// Writes `message` as one line.
pub async fn write_message<T, W>(writer: &mut W, message: &T) -> Result<(), WireError>
where
    T: Serialize,
    W: AsyncWrite + Unpin,
{
    let mut line = serde_json::to_vec(message).map_err(WireError::Malformed)?;
    if line.len() >= MAX_LINE {
        return Err(WireError::TooLong);
    }
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_requests() -> Vec<Request> {
        vec![
            Request::EnsureBridge {
                name: "banger0".into(),
                gateway: Ipv4Addr::new(172, 30, 0, 1),
                prefix: 24,
            },
            Request::EnsureTap {
                name: "bgr-0123456789a".into(),
                bridge: "banger0".into(),
                owner_uid: 1000,
            },
            Request::RenameLink {
                from: "tap-pool-0".into(),
                to: "bgr-0123456789a".into(),
            },
            Request::IsolateLink {
                name: "bgr-0123456789a".into(),
            },
            Request::DeleteLink {
                name: "bgr-0123456789a".into(),
            },
            Request::LinksWithPrefix {
                prefix: "tap-pool-".into(),
            },
            Request::AllowNat {
                vm_id: "0123456789abcdef".into(),
                tap: "bgr-0123456789a".into(),
                bridge: "banger0".into(),
            },
            Request::RevokeNat {
                vm_id: "0123456789abcdef".into(),
            },
            Request::RouteZone {
                bridge: "banger0".into(),
                server: Ipv4Addr::new(172, 30, 0, 1),
                zone: "vm".into(),
            },
            Request::BindGuestDns {
                gateway: Ipv4Addr::new(172, 30, 0, 1),
            },
            Request::LaunchJail {
                launch: JailLaunch {
                    jail: jail_ref(),
                    jailer_bin: "/usr/bin/jailer".into(),
                    uid: 1000,
                    gid: 1000,
                    kernel: "/var/lib/banger/kernels/k/vmlinux".into(),
                    initrd: None,
                    disks: vec!["/var/lib/banger/vms/x/rootfs.ext4".into()],
                },
            },
            Request::ReleaseJail { jail: jail_ref() },
        ]
    }

    fn jail_ref() -> JailRef {
        JailRef {
            vm_id: "0123456789abcdef".into(),
            exec_file: "/usr/bin/firecracker".into(),
            chroot_base: "/var/lib/banger/jailer".into(),
        }
    }

    #[tokio::test]
    async fn every_request_and_response_round_trips_as_one_line() {
        let responses = vec![
            Response::Ok,
            Response::Sockets,
            Response::Launched { pid: 4242 },
            Response::Links {
                names: vec!["tap-pool-0".into()],
            },
            Response::Refused {
                reason: "no".into(),
            },
            Response::Failed {
                message: "netlink".into(),
                permission_denied: true,
            },
        ];
        let mut buf = Vec::new();
        for r in all_requests() {
            write_message(&mut buf, &r).await.expect("write");
        }
        for r in &responses {
            write_message(&mut buf, r).await.expect("write");
        }
        assert_eq!(
            buf.iter().filter(|b| **b == b'\n').count(),
            all_requests().len() + responses.len()
        );
        let mut reader = tokio::io::BufReader::new(buf.as_slice());
        for r in all_requests() {
            let back: Request = read_message(&mut reader).await.expect("read");
            assert_eq!(back, r);
        }
        for r in responses {
            let back: Response = read_message(&mut reader).await.expect("read");
            assert_eq!(back, r);
        }
        let end: Result<Request, _> = read_message(&mut reader).await;
        assert!(matches!(end, Err(WireError::Closed)), "{end:?}");
    }

    #[test]
    fn the_format_is_tagged_json() {
        let text = serde_json::to_string(&Request::DeleteLink {
            name: "bgr-1".into(),
        })
        .expect("json");
        assert_eq!(text, r#"{"op":"delete_link","name":"bgr-1"}"#);
        let text = serde_json::to_string(&Response::Ok).expect("json");
        assert_eq!(text, r#"{"result":"ok"}"#);
    }

    #[tokio::test]
    async fn unknown_ops_extra_fields_and_long_lines_are_refused() {
        for line in [
            "{\"op\":\"run_command\",\"argv\":[\"sh\"]}\n",
            "{\"op\":\"flush_table\",\"family\":\"inet\",\"table\":\"filter\"}\n",
            "{\"op\":\"delete_link\",\"name\":\"bgr-1\",\"force\":true}\n",
            "not json\n",
        ] {
            let mut reader = tokio::io::BufReader::new(line.as_bytes());
            let got: Result<Request, _> = read_message(&mut reader).await;
            assert!(
                matches!(got, Err(WireError::Malformed(_))),
                "{line}: {got:?}"
            );
        }
        let long = format!("{}\n", "x".repeat(MAX_LINE + 10));
        let mut reader = tokio::io::BufReader::new(long.as_bytes());
        let got: Result<Request, _> = read_message(&mut reader).await;
        assert!(matches!(got, Err(WireError::TooLong)), "{got:?}");
        let mut sink = Vec::new();
        let huge = Request::DeleteLink {
            name: "x".repeat(MAX_LINE),
        };
        assert!(matches!(
            write_message(&mut sink, &huge).await,
            Err(WireError::TooLong)
        ));
        assert!(sink.is_empty(), "nothing written");
    }
}
