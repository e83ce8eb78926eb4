//! The daemon's side: [`NetOps`] over the helper's socket.
//!
//! [`HelperNet`] opens one connection per step, sends the [`Request`] and maps the
//! [`Response`] back to the `NetOps` result, so refusals and failures arrive as typed
//! [`NetError`]s (`Refused`, `Helper`, `HelperUnreachable`) the daemon reports like its own.
//! When no helper runs (no socket, or nobody listening on it) a step fails with
//! [`NetError::Unprivileged`], the host problem naming the fix; since the socket is looked up
//! per step, a helper started after the daemon is used from its first request on.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::os::fd::OwnedFd;

use banger_net::{BoxFuture, GuestDnsSockets, NetError, NetOps, ZoneRoute};
use tokio::io::BufReader;
use tokio::net::UnixStream;

use crate::server::OP_TIMEOUT;
use crate::wire::{Request, Response, read_message, write_message};

/// [`NetOps`] carried out by the root helper listening on a socket.
#[derive(Debug, Clone)]
pub struct HelperNet {
    socket: PathBuf,
}

impl HelperNet {
    /// A client of the helper at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    /// The helper's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request and returns the helper's answer.
    pub async fn send(&self, request: &Request) -> Result<Response, NetError> {
        self.bounded(async {
            // No socket, or nobody behind it: no helper runs. That is the host problem whose
            // fix is to install (or start) the helper, not a transport failure.
            let stream = self.connect().await?;
            let (read, mut write) = stream.into_split();
            write_message(&mut write, request)
                .await
                .map_err(|e| self.unreachable(e))?;
            read_message::<Response, _>(&mut BufReader::new(read))
                .await
                .map_err(|e| self.unreachable(e))
        })
        .await
    }

    /// Asks for the guests' DNS sockets: the answer line comes with their descriptors.
    async fn receive_sockets(&self, request: &Request) -> Result<GuestDnsSockets, NetError> {
        self.bounded(async {
            let mut stream = self.connect().await?;
            write_message(&mut stream, request)
                .await
                .map_err(|e| self.unreachable(e))?;
            let (line, fds) = crate::fds::recv_line_with_fds(&stream)
                .await
                .map_err(|e| self.unreachable(e))?;
            let response: Response =
                serde_json::from_slice(&line).map_err(|e| self.unreachable(e))?;
            match (response, <[OwnedFd; 2]>::try_from(fds)) {
                (Response::Sockets, Ok([udp, tcp])) => Ok(GuestDnsSockets {
                    udp: std::net::UdpSocket::from(udp),
                    tcp: std::net::TcpListener::from(tcp),
                }),
                (Response::Sockets, Err(fds)) => Err(NetError::Helper {
                    message: format!(
                        "the sockets answer carried {} descriptors, not 2",
                        fds.len()
                    ),
                    permission_denied: false,
                }),
                (other, _) => Err(unexpected(other)),
            }
        })
        .await
    }

    /// One exchange, bounded in time: a helper that never answers is unreachable.
    async fn bounded<T>(
        &self,
        exchange: impl std::future::Future<Output = Result<T, NetError>>,
    ) -> Result<T, NetError> {
        tokio::time::timeout(OP_TIMEOUT + Duration::from_secs(5), exchange)
            .await
            .map_err(|_| {
                self.unreachable(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer in time",
                ))
            })?
    }

    /// The transport failed mid-exchange.
    fn unreachable(&self, source: impl std::error::Error + Send + Sync + 'static) -> NetError {
        NetError::HelperUnreachable {
            socket: self.socket.display().to_string(),
            source: std::io::Error::other(source),
        }
    }

    /// Connects to the helper; no socket or nobody behind it is "no helper runs".
    async fn connect(&self) -> Result<UnixStream, NetError> {
        let socket = self.socket.display().to_string();
        UnixStream::connect(&self.socket).await.map_err(|e| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) {
                NetError::Unprivileged { socket }
            } else {
                NetError::HelperUnreachable { socket, source: e }
            }
        })
    }

    async fn call(&self, request: Request) -> Result<(), NetError> {
        match self.send(&request).await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

/// A response other than the one expected, as the error it stands for.
pub(crate) fn unexpected(response: Response) -> NetError {
    match response {
        Response::Refused { reason } => NetError::Refused(reason),
        Response::Failed {
            message,
            permission_denied,
        } => NetError::Helper {
            message,
            permission_denied,
        },
        other => NetError::Helper {
            message: format!("unexpected answer {other:?}"),
            permission_denied: false,
        },
    }
}

impl NetOps for HelperNet {
    fn ensure_bridge<'a>(
        &'a self,
        name: &'a str,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(self.call(Request::EnsureBridge {
            name: name.to_owned(),
            gateway,
            prefix,
        }))
    }

    fn ensure_tap<'a>(
        &'a self,
        name: &'a str,
        bridge: &'a str,
        owner_uid: u32,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(self.call(Request::EnsureTap {
            name: name.to_owned(),
            bridge: bridge.to_owned(),
            owner_uid,
        }))
    }

    fn rename_link<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(self.call(Request::RenameLink {
            from: from.to_owned(),
            to: to.to_owned(),
        }))
    }

    fn isolate_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(self.call(Request::IsolateLink {
            name: name.to_owned(),
        }))
    }

    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(self.call(Request::DeleteLink {
            name: name.to_owned(),
        }))
    }

    fn links_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, NetError>> {
        Box::pin(async move {
            let request = Request::LinksWithPrefix {
                prefix: prefix.to_owned(),
            };
            match self.send(&request).await? {
                Response::Links { names } => Ok(names),
                other => Err(unexpected(other)),
            }
        })
    }

    fn allow_nat<'a>(
        &'a self,
        vm_id: &'a str,
        tap: &'a str,
        bridge: &'a str,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(self.call(Request::AllowNat {
            vm_id: vm_id.to_owned(),
            tap: tap.to_owned(),
            bridge: bridge.to_owned(),
        }))
    }

    fn revoke_nat<'a>(&'a self, vm_id: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(self.call(Request::RevokeNat {
            vm_id: vm_id.to_owned(),
        }))
    }

    fn route_zone<'a>(
        &'a self,
        bridge: &'a str,
        server: Ipv4Addr,
        zone: &'a str,
    ) -> BoxFuture<'a, Result<ZoneRoute, NetError>> {
        Box::pin(async move {
            let request = Request::RouteZone {
                bridge: bridge.to_owned(),
                server,
                zone: zone.to_owned(),
            };
            match self.send(&request).await? {
                Response::Zone { routed: true } => Ok(ZoneRoute::Routed),
                Response::Zone { routed: false } => Ok(ZoneRoute::Unmanaged),
                other => Err(unexpected(other)),
            }
        })
    }

    fn bind_guest_dns(
        &self,
        gateway: Ipv4Addr,
    ) -> BoxFuture<'_, Result<GuestDnsSockets, NetError>> {
        Box::pin(async move {
            self.receive_sockets(&Request::BindGuestDns { gateway })
                .await
        })
    }
}
