//! Host networking for banger VMs.
//!
//! Every VM gets a TAP device on one bridge (default `banger0`) whose address is the guests'
//! gateway. The arithmetic — which IP, which MAC, which TAP name — is pure and lives in
//! [`plan`]; the kernel objects are made by [`linux`] through netlink (bridges, addresses,
//! links) and the TUN ioctls (persistent TAPs, which netlink cannot create). The daemon talks to
//! this crate through the [`NetOps`] trait so tests can substitute a fake and a non-root daemon
//! can route the same typed calls through the root helper.
#![deny(missing_docs)]

pub mod dns_socket;
pub mod linux;
pub mod nat;
pub mod plan;
pub mod resolver;
#[allow(unsafe_code)]
mod tap;

use std::net::Ipv4Addr;

pub use dns_socket::{GUEST_DNS_PORT, GuestDnsSockets};
pub use linux::LinuxNet;
pub use plan::{NetPlan, PlanError};

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink request failed.
    #[error("netlink: {action} {name}")]
    Netlink {
        /// What was being done.
        action: &'static str,
        /// On which interface.
        name: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// Opening netlink itself failed.
    #[error("cannot open a netlink socket")]
    Connect(#[source] std::io::Error),
    /// The TUN device calls failed.
    #[error("cannot create tap {name}")]
    Tap {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An interface that must exist does not.
    #[error("network interface {0} does not exist")]
    Missing(String),
    /// A name failed validation.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// nftables refused or failed.
    #[error("nftables: cannot {action}: {message}")]
    Nft {
        /// What was being done.
        action: &'static str,
        /// What `nft` said.
        message: String,
    },
    /// The host resolver could not be told where the zone is.
    #[error("cannot route the zone in the host resolver: `{command}` failed: {message}")]
    Resolver {
        /// The command line.
        command: String,
        /// What it said.
        message: String,
    },
    /// A sysctl could not be set.
    #[error("cannot set {name}")]
    Sysctl {
        /// The sysctl.
        name: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The guests' DNS sockets could not be bound.
    #[error("cannot bind {addr} for the guests' DNS")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// This daemon may not change the host's network itself and no root helper serves it.
    #[error(
        "creating bridges, TAPs and NAT rules needs root, and no root helper is running \
         (looked for {socket})"
    )]
    Unprivileged {
        /// Where the helper's socket was looked for.
        socket: String,
    },
    /// The root helper's socket could not be used.
    #[error("cannot reach the root helper at {socket}")]
    HelperUnreachable {
        /// The helper's socket.
        socket: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The root helper refused the request by its policy; nothing was changed.
    #[error("the root helper refused: {0}")]
    Refused(String),
    /// The root helper tried and failed; the message is its error chain.
    #[error("the root helper failed: {message}")]
    Helper {
        /// The helper's error chain.
        message: String,
        /// Whether the kernel refused the helper for lack of privilege.
        permission_denied: bool,
    },
}

impl NetError {
    /// Whether the kernel refused for lack of privilege (EPERM/EACCES): the fix is to run as
    /// root or with `CAP_NET_ADMIN`, not to retry.
    pub fn is_permission_denied(&self) -> bool {
        fn denied(code: i32) -> bool {
            code == libc::EPERM || code == libc::EACCES
        }
        match self {
            Self::Netlink {
                source: rtnetlink::Error::NetlinkError(e),
                ..
            } => denied(-e.raw_code()),
            Self::Connect(e)
            | Self::Tap { source: e, .. }
            | Self::Sysctl { source: e, .. }
            | Self::Bind { source: e, .. } => e.raw_os_error().is_some_and(denied),
            Self::Nft { message, .. } => message.starts_with("permission denied"),
            Self::Helper {
                permission_denied, ..
            } => *permission_denied,
            Self::Unprivileged { .. } => true,
            Self::HelperUnreachable { source, .. } => source.raw_os_error().is_some_and(denied),
            _ => false,
        }
    }

    /// Whether the address to bind is taken by another socket.
    pub fn is_addr_in_use(&self) -> bool {
        match self {
            Self::Bind { source, .. } => source.kind() == std::io::ErrorKind::AddrInUse,
            Self::Helper { message, .. } => message.contains("Address already in use"),
            _ => false,
        }
    }
}

/// A boxed, sendable future, so [`NetOps`] implementations can sit behind `Arc<dyn NetOps>`.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What [`NetOps::route_zone`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneRoute {
    /// The host resolver (systemd-resolved) now sends the zone to banger on the bridge link.
    Routed,
    /// The host uses a resolver banger does not configure; `banger doctor` names the line to
    /// add.
    Unmanaged,
}

/// The network operations the daemon needs. Each must be idempotent: repeating a call after a
/// crash converges on the same state.
pub trait NetOps: Send + Sync {
    /// Creates the bridge if missing, gives it the gateway address, and brings it up.
    fn ensure_bridge<'a>(
        &'a self,
        name: &'a str,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> BoxFuture<'a, Result<(), NetError>>;
    /// Creates a persistent TAP owned by `owner_uid` (if missing), attaches it to `bridge` and
    /// brings it up.
    fn ensure_tap<'a>(
        &'a self,
        name: &'a str,
        bridge: &'a str,
        owner_uid: u32,
    ) -> BoxFuture<'a, Result<(), NetError>>;
    /// Renames an interface (taking it down first; the caller brings it up again).
    fn rename_link<'a>(&'a self, from: &'a str, to: &'a str)
    -> BoxFuture<'a, Result<(), NetError>>;
    /// Takes an interface down, so nothing it sends reaches the bridge until
    /// [`NetOps::ensure_tap`] brings it up again: a VM restored from a warm snapshot wakes up
    /// with the saved VM's MAC and address and stays cut off until it has taken its own.
    fn isolate_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetError>>;
    /// Deletes an interface; a missing one is not an error.
    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetError>>;
    /// Names of existing interfaces starting with `prefix`.
    fn links_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, NetError>>;
    /// Gives VM `vm_id` (on `tap`, behind `bridge`) outbound NAT: banger's base rules are
    /// (re)built, then the VM's own rule replaces any earlier one.
    fn allow_nat<'a>(
        &'a self,
        vm_id: &'a str,
        tap: &'a str,
        bridge: &'a str,
    ) -> BoxFuture<'a, Result<(), NetError>>;
    /// Removes VM `vm_id`'s NAT rule; none is not an error.
    fn revoke_nat<'a>(&'a self, vm_id: &'a str) -> BoxFuture<'a, Result<(), NetError>>;
    /// Routes DNS queries for `zone` (e.g. `vm`) to `server` on link `bridge` in the host's
    /// resolver, where banger configures it itself (systemd-resolved); elsewhere does nothing
    /// and says so. Called after every [`NetOps::ensure_bridge`], since the resolver forgets a
    /// link's settings when the link is deleted.
    fn route_zone<'a>(
        &'a self,
        bridge: &'a str,
        server: Ipv4Addr,
        zone: &'a str,
    ) -> BoxFuture<'a, Result<ZoneRoute, NetError>>;
    /// Binds the guests' DNS sockets on `gateway`, port 53 (which needs
    /// `CAP_NET_BIND_SERVICE`) and hands them to the caller, who serves on them.
    fn bind_guest_dns(&self, gateway: Ipv4Addr)
    -> BoxFuture<'_, Result<GuestDnsSockets, NetError>>;
}
