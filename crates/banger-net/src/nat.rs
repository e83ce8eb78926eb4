//! Outbound NAT for VMs that ask for it, with nftables, in tables banger owns.
//!
//! Guests sit behind one bridge, so at the IP layer every guest packet arrives on the bridge;
//! which VM sent it is known only at the bridge port, its TAP. So:
//! - `bridge banger` / `prerouting`: one rule per NAT VM marks what enters from its TAP
//!   ([`NAT_MARK`]). The rule carries the VM id as its comment, so exactly that VM's rule is
//!   removed on stop, delete, a VMM death or reconcile. A guest can spoof its source address,
//!   never its TAP, so the address is never what grants NAT.
//! - `inet banger` / `forward`: marked packets from the bridge to elsewhere are accepted; any
//!   other packet from the bridge to elsewhere is dropped, so a VM without NAT has no route out.
//! - `inet banger` / `postrouting`: marked packets leaving through anything but the bridge are
//!   masqueraded.
//!
//! The base is (re)built atomically in one batch; per-VM rules are added and removed in their
//! own batches, each idempotent. Nothing outside these two tables is touched. IPv4 forwarding
//! is switched on when a NAT rule is added (and never off: something else may rely on it).

use nftables::schema::Nftables;
use serde_json::{Value, json};

use crate::NetError;

/// The name of banger's tables (`inet banger`, `bridge banger`).
pub const TABLE: &str = "banger";
/// The packet mark of traffic from NAT VMs.
pub const NAT_MARK: u32 = 0x0b4e_0001;

/// The comment that ties a rule to VM `vm_id`.
pub fn comment_for(vm_id: &str) -> String {
    format!("banger-vm:{vm_id}")
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn matches(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

/// The batch that creates (or re-creates) the tables, chains and static rules for `bridge`.
pub fn base_batch(bridge: &str) -> Value {
    let inet = |name: &str| json!({"family": "inet", "table": TABLE, "name": name});
    let rule = |chain: &str, expr: Vec<Value>| json!({"add": {"rule": {"family": "inet", "table": TABLE, "chain": chain, "expr": expr}}});
    json!({"nftables": [
        {"add": {"table": {"family": "inet", "name": TABLE}}},
        {"add": {"chain": {"family": "inet", "table": TABLE, "name": "forward",
            "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}},
        {"add": {"chain": {"family": "inet", "table": TABLE, "name": "postrouting",
            "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}},
        {"flush": {"chain": inet("forward")}},
        {"flush": {"chain": inet("postrouting")}},
        rule("forward", vec![
            matches("==", meta("iifname"), json!(bridge)),
            matches("!=", meta("oifname"), json!(bridge)),
            matches("==", meta("mark"), json!(NAT_MARK)),
            json!({"accept": null}),
        ]),
        rule("forward", vec![
            matches("==", meta("iifname"), json!(bridge)),
            matches("!=", meta("oifname"), json!(bridge)),
            json!({"drop": null}),
        ]),
        rule("postrouting", vec![
            matches("==", meta("mark"), json!(NAT_MARK)),
            matches("!=", meta("oifname"), json!(bridge)),
            json!({"masquerade": null}),
        ]),
        {"add": {"table": {"family": "bridge", "name": TABLE}}},
        {"add": {"chain": {"family": "bridge", "table": TABLE, "name": "prerouting",
            "type": "filter", "hook": "prerouting", "prio": -200, "policy": "accept"}}},
    ]})
}

/// The batch that marks VM `vm_id`'s traffic from `tap`, preceded by deleting the rules with
/// `stale_handles` (that VM's earlier rules), so applying it twice leaves one rule.
pub fn allow_batch(vm_id: &str, tap: &str, stale_handles: &[u32]) -> Value {
    let mut cmds = delete_cmds(stale_handles);
    cmds.push(
        json!({"add": {"rule": {"family": "bridge", "table": TABLE, "chain": "prerouting",
        "comment": comment_for(vm_id),
        "expr": [
            matches("==", meta("iifname"), json!(tap)),
            json!({"mangle": {"key": meta("mark"), "value": NAT_MARK}}),
        ]}}}),
    );
    json!({ "nftables": cmds })
}

/// The batch that deletes the rules with `handles` from the bridge chain.
pub fn revoke_batch(handles: &[u32]) -> Value {
    json!({ "nftables": delete_cmds(handles) })
}

fn delete_cmds(handles: &[u32]) -> Vec<Value> {
    handles
        .iter()
        .map(|h| {
            json!({"delete": {"rule": {"family": "bridge", "table": TABLE,
                "chain": "prerouting", "handle": h, "expr": []}}})
        })
        .collect()
}

/// The handles of VM `vm_id`'s rules in a listing of the bridge chain (`nft -j list chain
/// bridge banger prerouting`).
pub fn handles_of(listing: &Nftables<'_>, vm_id: &str) -> Vec<u32> {
    let wanted = comment_for(vm_id);
    listing
        .objects
        .iter()
        .filter_map(|o| match o {
            nftables::schema::NfObject::ListObject(nftables::schema::NfListObject::Rule(r)) => {
                Some(r)
            }
            _ => None,
        })
        .filter(|r| r.comment.as_deref() == Some(wanted.as_str()))
        .filter_map(|r| r.handle)
        .collect()
}

/// Parses a batch into the crate's typed document (so only valid nftables JSON is applied).
pub fn typed(batch: Value) -> Result<Nftables<'static>, NetError> {
    serde_json::from_value(batch).map_err(|e| NetError::Nft {
        action: "build a ruleset",
        message: e.to_string(),
    })
}

fn nft_error(action: &'static str) -> impl FnOnce(nftables::helper::NftablesError) -> NetError {
    use nftables::helper::NftablesError as E;
    move |e| {
        let message = match e {
            E::NftExecution { inner, .. } if inner.kind() == std::io::ErrorKind::NotFound => {
                "`nft` is not installed (Debian: apt install nftables)".to_owned()
            }
            E::NftExecution { inner, .. }
                if inner.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                "permission denied: changing nftables needs root (CAP_NET_ADMIN)".to_owned()
            }
            E::NftFailed { stderr, .. } if stderr.contains("Operation not permitted") => format!(
                "permission denied: changing nftables needs root (CAP_NET_ADMIN): {}",
                stderr.trim()
            ),
            E::NftFailed { stderr, .. } => stderr.trim().to_owned(),
            other => other.to_string(),
        };
        NetError::Nft { action, message }
    }
}

/// Applies a typed batch with `nft -j -f -` (blocking).
pub fn apply(action: &'static str, batch: &Nftables<'_>) -> Result<(), NetError> {
    nftables::helper::apply_ruleset(batch).map_err(nft_error(action))
}

/// Lists the bridge chain, or `None` when banger's tables do not exist (blocking).
pub fn list_bridge_chain() -> Result<Option<Nftables<'static>>, NetError> {
    let args: [&str; 5] = ["list", "chain", "bridge", TABLE, "prerouting"];
    match nftables::helper::get_current_ruleset_with_args(Some("nft"), args) {
        Ok(listing) => Ok(Some(listing)),
        Err(nftables::helper::NftablesError::NftFailed { stderr, .. })
            if stderr.contains("No such file or directory") =>
        {
            Ok(None)
        }
        Err(e) => Err(nft_error("list banger's NAT rules")(e)),
    }
}

/// Turns on IPv4 forwarding in this network namespace.
pub fn enable_ipv4_forwarding() -> Result<(), NetError> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1").map_err(|source| NetError::Sysctl {
        name: "net.ipv4.ip_forward",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_valid_nftables_documents() {
        let base = typed(base_batch("banger0")).expect("base parses");
        assert_eq!(base.objects.len(), 10);
        let text = serde_json::to_string(&base).expect("serialise");
        assert!(text.contains("masquerade"), "{text}");
        assert!(text.contains("\"drop\""), "{text}");
        let allow = typed(allow_batch("vm1", "bgr-vm1", &[7, 9])).expect("allow parses");
        assert_eq!(allow.objects.len(), 3, "two stale rules deleted, one added");
        let text = serde_json::to_string(&allow).expect("serialise");
        assert!(
            text.contains("banger-vm:vm1") && text.contains("bgr-vm1"),
            "{text}"
        );
        assert!(typed(revoke_batch(&[])).expect("empty").objects.is_empty());
    }

    #[test]
    fn finds_a_vms_rules_by_comment() {
        let listing: Nftables<'static> = serde_json::from_value(json!({"nftables": [
            {"metainfo": {"version": "1.0.6", "release_name": "x", "json_schema_version": 1}},
            {"chain": {"family": "bridge", "table": "banger", "name": "prerouting", "handle": 1}},
            {"rule": {"family": "bridge", "table": "banger", "chain": "prerouting", "handle": 4,
                "comment": "banger-vm:aa", "expr": []}},
            {"rule": {"family": "bridge", "table": "banger", "chain": "prerouting", "handle": 5,
                "comment": "banger-vm:bb", "expr": []}},
            {"rule": {"family": "bridge", "table": "banger", "chain": "prerouting", "handle": 6,
                "comment": "banger-vm:aa", "expr": []}},
        ]}))
        .expect("listing parses");
        assert_eq!(handles_of(&listing, "aa"), [4, 6]);
        assert_eq!(handles_of(&listing, "cc"), Vec::<u32>::new());
    }
}
