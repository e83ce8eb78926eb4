//! A few idle TAPs kept ready (`tap-pool-N`), so a create renames one instead of making one.
//!
//! Pooled TAPs are capacity, not leaks: they sit on the bridge, owned by the daemon's owner,
//! carrying no traffic. A create claims one by renaming it to the VM's durable TAP name; when
//! the pool is empty (or another create won the race for the same TAP) it simply creates the
//! TAP. The pool is refilled in the background after each claim and when the daemon starts.
//! A VM's TAP is deleted when the VM stops; it never returns to the pool, so a pooled name is
//! never a VM's.
//!
//! Claims and refills run one at a time under [`DaemonContext::tap_pool_lock`]: the kernel
//! renames an interface by index, so two creates that both looked up `tap-pool-0` could
//! otherwise both rename it, the second one stealing the first one's TAP.

use banger_net::NetError;
use banger_net::plan::{POOL_PREFIX, pool_tap_name};

use super::VmBackends;
use crate::context::DaemonContext;

/// Idle TAPs kept ready.
pub const POOL_SIZE: usize = 2;

/// Makes the VM's TAP `tap` exist, attached and up: reuses it if it is already there, else
/// renames a pooled one, else creates it. Returns whether it came from the pool.
pub async fn claim(
    ctx: &DaemonContext,
    backends: &VmBackends,
    tap: &str,
) -> Result<bool, NetError> {
    let _pool = ctx.tap_pool_lock().lock().await;
    let net = &backends.net;
    let bridge = &backends.plan.bridge;
    if net.links_with_prefix(tap).await?.iter().any(|l| l == tap) {
        net.ensure_tap(tap, bridge, backends.owner_uid).await?;
        return Ok(false);
    }
    for pooled in net.links_with_prefix(POOL_PREFIX).await? {
        if net.rename_link(&pooled, tap).await.is_ok() {
            net.ensure_tap(tap, bridge, backends.owner_uid).await?;
            return Ok(true);
        }
        // Gone meanwhile (removed behind our back); try the next.
    }
    net.ensure_tap(tap, bridge, backends.owner_uid).await?;
    Ok(false)
}

/// Creates the missing pooled TAPs (best effort: a failure is logged, never fatal).
pub async fn refill(ctx: &DaemonContext, backends: &VmBackends) {
    let _pool = ctx.tap_pool_lock().lock().await;
    let net = &backends.net;
    let present = match net.links_with_prefix(POOL_PREFIX).await {
        Ok(links) => links,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list pooled taps");
            return;
        }
    };
    let mut n = 0;
    let mut have = present.len();
    while have < POOL_SIZE && n < POOL_SIZE * 4 {
        let name = pool_tap_name(n);
        n += 1;
        if present.contains(&name) {
            continue;
        }
        match net
            .ensure_tap(&name, &backends.plan.bridge, backends.owner_uid)
            .await
        {
            Ok(()) => have += 1,
            Err(e) => {
                tracing::warn!(tap = %name, error = %e, "cannot add a pooled tap");
                return;
            }
        }
    }
}
