//! Who may talk to the daemon.
//!
//! The socket file is mode 0600, which already keeps other users out on a sane system. The
//! daemon does not rely on that alone: every connection's peer credentials (`SO_PEERCRED`) are
//! read when it is accepted, and each request from a uid other than the owner's or root's is
//! refused with `unauthorized`. A peer whose credentials cannot be read is refused too.

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;

/// The credentials of a connected client, read once per connection
/// ([`crate::connection::handle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// The client's uid, when the kernel told us.
    pub uid: Option<u32>,
    /// The client's pid, when the kernel told us.
    pub pid: Option<i32>,
}

/// The rule: the owner and root may connect; nobody else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessPolicy {
    /// The uid this daemon serves.
    pub owner_uid: u32,
}

impl AccessPolicy {
    /// Whether a peer with `uid` may use the API.
    pub fn allows(&self, uid: Option<u32>) -> bool {
        matches!(uid, Some(u) if u == self.owner_uid || u == 0)
    }
}

/// Middleware that refuses peers the policy does not allow.
pub async fn check_peer(
    State(policy): State<AccessPolicy>,
    ConnectInfo(peer): ConnectInfo<PeerCred>,
    request: Request,
    next: Next,
) -> Response {
    if policy.allows(peer.uid) {
        return next.run(request).await;
    }
    let who = peer
        .uid
        .map_or_else(|| "an unknown user".to_owned(), |u| format!("uid {u}"));
    tracing::warn!(peer_uid = ?peer.uid, peer_pid = ?peer.pid, "refused a client");
    ApiError::unauthorized(format!(
        "{who} may not use this daemon; it serves uid {} (and root)",
        policy.owner_uid
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_root_only() {
        let p = AccessPolicy { owner_uid: 1000 };
        assert!(p.allows(Some(1000)));
        assert!(p.allows(Some(0)));
        assert!(!p.allows(Some(1001)));
        assert!(!p.allows(Some(65534)));
        assert!(!p.allows(None));
    }
}
