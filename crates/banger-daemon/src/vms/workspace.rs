//! The workspace recorded on a VM: `PUT`/`DELETE /v1/vms/{vm}/workspace`.
//!
//! The CLI copies a host repository into the guest itself (`vm workspace prepare`) and then
//! records here where it went and at which commit, so `vm list`, `vm exec` and
//! `vm workspace export` can find it. Rules: the workspace is checked as a whole before anything
//! changes (guest path absolute and under `/root`, host path absolute, head a full 40-hex commit
//! id, stored lower-case); the change happens under the VM's lock on a record re-read under that
//! lock, in any VM state; clearing a VM without a workspace is not an error.

use std::path::{Component, Path};

use banger_model::{VmRecord, Workspace};

use super::VmError;
use crate::context::DaemonContext;
use crate::ids;

/// Records `workspace` on the VM `reference` (`None` clears it); returns the updated record.
pub async fn set(
    ctx: &DaemonContext,
    reference: &str,
    workspace: Option<Workspace>,
) -> Result<VmRecord, VmError> {
    let workspace = workspace.map(validate).transpose()?;
    let found = ctx.store().vms().resolve(reference)?;
    let _lock = ctx.vm_locks().lock(&found.id).await;
    // Re-read under the lock: the VM may have changed or gone meanwhile.
    let record = ctx
        .store()
        .vms()
        .get(&found.id)?
        .ok_or_else(|| VmError::not_found(format!("vm {} was deleted", found.name)))?;
    if record.workspace == workspace {
        return Ok(record);
    }
    let updated = VmRecord {
        workspace,
        updated_at: ids::now_rfc3339(),
        ..record
    };
    if !ctx.store().vms().update(&updated)? {
        return Err(VmError::not_found(format!(
            "vm {} was deleted",
            updated.name
        )));
    }
    Ok(updated)
}

/// Checks a workspace a client sent; returns it with `head` in lower case.
pub fn validate(mut workspace: Workspace) -> Result<Workspace, VmError> {
    let guest = &workspace.guest_path;
    if !is_plain_absolute(guest) || !guest.starts_with("/root") || guest == Path::new("/root") {
        return Err(VmError::invalid(format!(
            "workspace guest_path {:?} must be an absolute path under /root without `.` or `..`",
            guest.display().to_string()
        )));
    }
    if !is_plain_absolute(&workspace.host_path) {
        return Err(VmError::invalid(format!(
            "workspace host_path {:?} must be an absolute path without `.` or `..`",
            workspace.host_path.display().to_string()
        )));
    }
    let head = &workspace.head;
    if head.len() != 40 || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(VmError::invalid(format!(
            "workspace head {head:?} must be a full commit id (40 hex characters)"
        )));
    }
    if workspace.prepared_at.trim().is_empty() {
        return Err(VmError::invalid(
            "workspace prepared_at must be an RFC 3339 time",
        ));
    }
    workspace.head.make_ascii_lowercase();
    Ok(workspace)
}

/// Absolute, and made only of normal components after the root.
fn is_plain_absolute(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(guest: &str, host: &str, head: &str) -> Workspace {
        Workspace {
            guest_path: guest.into(),
            host_path: host.into(),
            head: head.to_owned(),
            prepared_at: "2026-11-22T00:00:00Z".to_owned(),
        }
    }

    const HEAD: &str = "0123456789abcdef0123456789ABCDEF01234567";

    #[test]
    fn validation() {
        let ok = validate(ws("/root/repo", "/home/me/repo", HEAD)).unwrap();
        assert_eq!(ok.head, HEAD.to_ascii_lowercase());
        assert!(validate(ws("/root/a/b", "/x", HEAD)).is_ok());
        for (guest, host, head) in [
            ("root/repo", "/x", HEAD),
            ("/root", "/x", HEAD),
            ("/rootfs/repo", "/x", HEAD),
            ("/home/repo", "/x", HEAD),
            ("/root/../etc", "/x", HEAD),
            ("/root/repo", "relative", HEAD),
            ("/root/repo", "/a/../b", HEAD),
            ("/root/repo", "/x", "abc"),
            ("/root/repo", "/x", &HEAD.replace('0', "g")),
        ] {
            assert!(
                validate(ws(guest, host, head)).is_err(),
                "{guest} {host} {head}"
            );
        }
        let mut empty_time = ws("/root/repo", "/x", HEAD);
        empty_time.prepared_at.clear();
        assert!(validate(empty_time).is_err());
    }
}
