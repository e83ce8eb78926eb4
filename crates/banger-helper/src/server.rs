//! The helper's serving loop: one request per connection, checked, carried out, logged.
//!
//! For each connection: read the peer's credentials (`SO_PEERCRED`) and refuse anyone but the
//! owner and root; read one bounded request line (within [`READ_TIMEOUT`]); check it against the
//! [`Policy`]; only then call the [`NetOps`] backend (the real one is `banger_net::LinuxNet`);
//! answer; log one line with the peer, the request and the result. A refused or malformed
//! request never reaches the backend.

use std::sync::Arc;
use std::time::Duration;

use std::os::fd::{AsRawFd, OwnedFd};

use banger_net::{GuestDnsSockets, NetError, NetOps, ZoneRoute};
use tokio::net::{UnixListener, UnixStream};

use crate::policy::{Policy, Refusal};
use crate::wire::{Request, Response, WireError, write_message};

/// How long a client has to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one privileged step may take before the client is told it failed.
pub const OP_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves `listener` until `stop` resolves.
pub async fn serve(
    listener: UnixListener,
    policy: Arc<Policy>,
    net: Arc<dyn NetOps>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (policy, net) = (policy.clone(), net.clone());
                    tokio::spawn(async move { handle(stream, &policy, net.as_ref()).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Answers one connection.
pub async fn handle(stream: UnixStream, policy: &Policy, net: &dyn NetOps) {
    let (uid, pid) = match stream.peer_cred() {
        Ok(cred) => (cred.uid(), cred.pid()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read peer credentials; connection dropped");
            return;
        }
    };
    let pid = pid.map_or_else(|| "?".to_owned(), |p| p.to_string());
    let mut stream = stream;
    // The request is read (bounded) before anyone is answered, so the answer is not lost to a
    // reset over unread input; a stranger's is then discarded unused. It is read with
    // `recvmsg`, keeping the descriptors a request may carry (closed unless it needs them).
    let Ok(received) =
        tokio::time::timeout(READ_TIMEOUT, crate::fds::recv_line_with_fds(&stream)).await
    else {
        tracing::warn!(peer_uid = uid, peer_pid = %pid, result = "refused", reason = "no request in time", "request");
        return;
    };
    let received = received.and_then(|(line, fds)| {
        serde_json::from_slice::<Request>(&line)
            .map(|request| (request, fds))
            .map_err(WireError::Malformed)
    });
    let response = match (policy.check_peer(uid), received) {
        (Err(refusal), _) => {
            tracing::warn!(peer_uid = uid, peer_pid = %pid, result = "refused", reason = %refusal, "request");
            Response::Refused {
                reason: refusal.to_string(),
            }
        }
        (Ok(()), Err(e)) => {
            let reason = format!("not a request this helper knows: {}", chain(&e));
            tracing::warn!(peer_uid = uid, peer_pid = %pid, result = "refused", reason = %reason, "request");
            Response::Refused { reason }
        }
        (Ok(()), Ok((request, fds))) => {
            let (response, sockets) = answer_with_fds(policy, net, &request, fds).await;
            log(uid, &pid, &request, &response);
            if let Some(sockets) = sockets {
                // The descriptors travel with the answer line; ours close when this returns.
                let line = encode(&response);
                let fds = [sockets.udp.as_raw_fd(), sockets.tcp.as_raw_fd()];
                if let Err(e) = crate::fds::send_line_with_fds(&stream, &line, &fds).await {
                    tracing::debug!(error = %e, "the client left before the sockets");
                }
                return;
            }
            response
        }
    };
    if let Err(e) = write_message(&mut stream, &response).await {
        tracing::debug!(error = %e, "the client left before the answer");
    }
}

fn log(uid: u32, pid: &str, request: &Request, response: &Response) {
    let op = request.op();
    match response {
        Response::Ok
        | Response::Sockets
        | Response::Links { .. }
        | Response::Zone { .. }
        | Response::Launched { .. } => {
            tracing::info!(peer_uid = uid, peer_pid = %pid, op, request = ?request, result = "ok", "request");
        }
        Response::Refused { reason } => {
            tracing::warn!(peer_uid = uid, peer_pid = %pid, op, request = ?request, result = "refused", reason = %reason, "request");
        }
        Response::Failed { message, .. } => {
            tracing::warn!(peer_uid = uid, peer_pid = %pid, op, request = ?request, result = "failed", error = %message, "request");
        }
    }
}

/// Checks and carries out one request (one that carries no descriptor).
pub async fn answer(policy: &Policy, net: &dyn NetOps, request: &Request) -> Response {
    answer_with_fds(policy, net, request, Vec::new()).await.0
}

/// [`answer`] for a request that came with `fds`, keeping the sockets a
/// [`Request::BindGuestDns`] bound, to hand them over.
async fn answer_with_fds(
    policy: &Policy,
    net: &dyn NetOps,
    request: &Request,
    fds: Vec<OwnedFd>,
) -> (Response, Option<GuestDnsSockets>) {
    if let Some(response) = answer_jail(policy, request, fds).await {
        return (response, None);
    }
    if let Err(refusal) = policy.check(request) {
        let reason = refusal.to_string();
        return (Response::Refused { reason }, None);
    }
    let outcome = tokio::time::timeout(OP_TIMEOUT, dispatch(net, request)).await;
    match outcome {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => (
            Response::Failed {
                message: chain(&e),
                permission_denied: e.is_permission_denied(),
            },
            None,
        ),
        Err(_) => (
            Response::Failed {
                message: format!("{} took longer than {OP_TIMEOUT:?}", request.op()),
                permission_denied: false,
            },
            None,
        ),
    }
}

fn refused(refusal: &Refusal) -> Response {
    Response::Refused {
        reason: refusal.to_string(),
    }
}

/// The jail requests (`None` for any other): checked, then carried out off the runtime (file
/// operations and a spawn).
async fn answer_jail(policy: &Policy, request: &Request, fds: Vec<OwnedFd>) -> Option<Response> {
    let job: Box<dyn FnOnce() -> Result<Response, banger_jail::JailError> + Send> = match request {
        Request::LaunchJail { launch } => {
            let vetted = policy
                .jail()
                .and_then(|jail| Ok((jail.clone(), jail.check_launch(launch, policy.owner_uid)?)));
            let (jail, (args, files)) = match vetted {
                Ok(vetted) => vetted,
                Err(refusal) => return Some(refused(&refusal)),
            };
            let Ok([console]) = <[OwnedFd; 1]>::try_from(fds) else {
                return Some(Response::Refused {
                    reason: "launch_jail carries exactly one descriptor: the console log"
                        .to_owned(),
                });
            };
            Box::new(move || {
                crate::jail::launch(&jail, &args, &files, std::fs::File::from(console))
                    .map(|pid| Response::Launched { pid })
            })
        }
        Request::ReleaseJail { jail } => {
            let vetted = policy
                .jail()
                .and_then(|p| p.check_ref(jail, policy.owner_uid, p.owner_gid));
            let args = match vetted {
                Ok(args) => args,
                Err(refusal) => return Some(refused(&refusal)),
            };
            Box::new(move || crate::jail::release(&args).map(|()| Response::Ok))
        }
        _ => return None,
    };
    let outcome = tokio::time::timeout(OP_TIMEOUT, tokio::task::spawn_blocking(job)).await;
    Some(match outcome {
        Ok(Ok(Ok(response))) => response,
        Ok(Ok(Err(e))) => Response::Failed {
            message: chain(&e),
            permission_denied: permission_denied(&e),
        },
        Ok(Err(e)) => Response::Failed {
            message: format!("{} crashed: {e}", request.op()),
            permission_denied: false,
        },
        Err(_) => Response::Failed {
            message: format!("{} took longer than {OP_TIMEOUT:?}", request.op()),
            permission_denied: false,
        },
    })
}

fn permission_denied(error: &banger_jail::JailError) -> bool {
    matches!(error, banger_jail::JailError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied)
}

/// A response as its line; the variants carry nothing that can fail to serialise.
fn encode(response: &Response) -> Vec<u8> {
    let mut line = serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

async fn dispatch(
    net: &dyn NetOps,
    request: &Request,
) -> Result<(Response, Option<GuestDnsSockets>), NetError> {
    match request {
        Request::EnsureBridge {
            name,
            gateway,
            prefix,
        } => net.ensure_bridge(name, *gateway, *prefix).await?,
        Request::EnsureTap {
            name,
            bridge,
            owner_uid,
        } => net.ensure_tap(name, bridge, *owner_uid).await?,
        Request::RenameLink { from, to } => net.rename_link(from, to).await?,
        Request::IsolateLink { name } => net.isolate_link(name).await?,
        Request::DeleteLink { name } => net.delete_link(name).await?,
        Request::LinksWithPrefix { prefix } => {
            let names = net.links_with_prefix(prefix).await?;
            return Ok((Response::Links { names }, None));
        }
        Request::AllowNat { vm_id, tap, bridge } => net.allow_nat(vm_id, tap, bridge).await?,
        Request::RevokeNat { vm_id } => net.revoke_nat(vm_id).await?,
        Request::RouteZone {
            bridge,
            server,
            zone,
        } => {
            let routed = net.route_zone(bridge, *server, zone).await? == ZoneRoute::Routed;
            return Ok((Response::Zone { routed }, None));
        }
        Request::BindGuestDns { gateway } => {
            let sockets = net.bind_guest_dns(*gateway).await?;
            return Ok((Response::Sockets, Some(sockets)));
        }
        // Answered by `answer_jail` before this is reached.
        Request::LaunchJail { .. } | Request::ReleaseJail { .. } => {
            return Ok((
                Response::Refused {
                    reason: "not a network request".to_owned(),
                },
                None,
            ));
        }
    }
    Ok((Response::Ok, None))
}

/// An error and its sources, joined by ": ".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
