//! Every route of the daemon API, in one table.
//!
//! The daemon builds its router from these paths, the CLI builds its URLs from them, and a
//! test compares the table with `docs/openapi.json`, so the three cannot drift apart. Path
//! templates use `{param}`, which both axum and OpenAPI understand.

/// API version prefix.
pub const PREFIX: &str = "/v1";

/// One route: method, path template and a one-line summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// HTTP method in upper case.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
}

const fn route(method: &'static str, path: &'static str, summary: &'static str) -> Route {
    Route {
        method,
        path,
        summary,
    }
}

/// `GET /v1/ping`.
pub const PING: Route = route("GET", "/v1/ping", "Identify the daemon and its build");
/// `POST /v1/shutdown`.
pub const SHUTDOWN: Route = route(
    "POST",
    "/v1/shutdown",
    "Stop the daemon; guests keep running",
);
/// `GET /v1/operations`.
pub const LIST_OPERATIONS: Route = route("GET", "/v1/operations", "List operations");
/// `GET /v1/operations/{id}`.
pub const GET_OPERATION: Route = route("GET", "/v1/operations/{id}", "Show one operation");
/// `GET /v1/vms`.
pub const LIST_VMS: Route = route("GET", "/v1/vms", "List VMs");
/// `POST /v1/vms`.
pub const CREATE_VM: Route = route("POST", "/v1/vms", "Create a VM (returns an operation)");
/// `GET /v1/vms/{vm}`.
pub const GET_VM: Route = route(
    "GET",
    "/v1/vms/{vm}",
    "Show a VM by id, name or unique prefix",
);
/// `POST /v1/vms/{vm}/start`.
pub const START_VM: Route = route(
    "POST",
    "/v1/vms/{vm}/start",
    "Start a stopped VM (returns an operation)",
);
/// `POST /v1/vms/{vm}/stop`.
pub const STOP_VM: Route = route(
    "POST",
    "/v1/vms/{vm}/stop",
    "Stop a VM gracefully, killing it after a timeout",
);
/// `POST /v1/vms/{vm}/kill`.
pub const KILL_VM: Route = route("POST", "/v1/vms/{vm}/kill", "Kill a VM's VMM at once");
/// `DELETE /v1/vms/{vm}`.
pub const DELETE_VM: Route = route("DELETE", "/v1/vms/{vm}", "Delete a VM and its disks");
/// `POST /v1/vms/{vm}/ssh`.
pub const SSH_VM: Route = route(
    "POST",
    "/v1/vms/{vm}/ssh",
    "The ssh command line that reaches a VM",
);
/// `GET /v1/vms/{vm}/logs`.
pub const VM_LOGS: Route = route(
    "GET",
    "/v1/vms/{vm}/logs",
    "A VM's console log from an offset",
);
/// `GET /v1/vms/{vm}/health`.
pub const VM_HEALTH: Route = route(
    "GET",
    "/v1/vms/{vm}/health",
    "Check a VM's VMM, guest agent and SSH",
);
/// `GET /v1/vms/{vm}/stats`.
pub const VM_STATS: Route = route(
    "GET",
    "/v1/vms/{vm}/stats",
    "CPU time, memory and disk use of a VM",
);
/// `GET /v1/vms/{vm}/ports`.
pub const VM_PORTS: Route = route(
    "GET",
    "/v1/vms/{vm}/ports",
    "The TCP and UDP ports a running VM listens on",
);
/// `PATCH /v1/vms/{vm}`.
pub const SET_VM: Route = route(
    "PATCH",
    "/v1/vms/{vm}",
    "Change the spec of a stopped VM (disks only grow)",
);
/// `PUT /v1/vms/{vm}/workspace`.
pub const SET_VM_WORKSPACE: Route = route(
    "PUT",
    "/v1/vms/{vm}/workspace",
    "Record the workspace prepared into a VM",
);
/// `DELETE /v1/vms/{vm}/workspace`.
pub const CLEAR_VM_WORKSPACE: Route = route(
    "DELETE",
    "/v1/vms/{vm}/workspace",
    "Forget the workspace recorded on a VM",
);
/// `POST /v1/vms/prune`.
pub const PRUNE_VMS: Route = route(
    "POST",
    "/v1/vms/prune",
    "Delete every VM that is not running",
);
/// `GET /v1/images`.
pub const LIST_IMAGES: Route = route("GET", "/v1/images", "List images");
/// `POST /v1/images/pull`.
pub const PULL_IMAGE: Route = route(
    "POST",
    "/v1/images/pull",
    "Pull a catalog image (returns an operation)",
);
/// `POST /v1/images/cache/prune`.
pub const PRUNE_IMAGE_CACHE: Route = route(
    "POST",
    "/v1/images/cache/prune",
    "Empty the OCI layer blob cache (or report what that would free)",
);
/// `GET /v1/snapshots`.
pub const LIST_SNAPSHOTS: Route = route(
    "GET",
    "/v1/snapshots",
    "List warm snapshots with their image and size",
);
/// `POST /v1/images/promote`.
pub const PROMOTE_IMAGE: Route = route(
    "POST",
    "/v1/images/promote",
    "Turn a stopped VM's disks into a new image (returns an operation)",
);
/// `GET /v1/catalog`.
pub const CATALOG: Route = route(
    "GET",
    "/v1/catalog",
    "List the images and kernels that can be pulled by name",
);
/// `POST /v1/kernels/pull`.
pub const PULL_KERNEL: Route = route(
    "POST",
    "/v1/kernels/pull",
    "Pull a catalog kernel (returns an operation)",
);
/// `DELETE /v1/images/{image}`.
pub const DELETE_IMAGE: Route = route("DELETE", "/v1/images/{image}", "Delete an image no VM uses");
/// `DELETE /v1/kernels/{kernel}`.
pub const DELETE_KERNEL: Route = route(
    "DELETE",
    "/v1/kernels/{kernel}",
    "Delete a kernel no image uses",
);
/// `POST /v1/images`.
pub const REGISTER_IMAGE: Route = route(
    "POST",
    "/v1/images",
    "Register an existing rootfs as an image",
);
/// `GET /v1/images/{image}`.
pub const GET_IMAGE: Route = route("GET", "/v1/images/{image}", "Show an image");
/// `GET /v1/kernels`.
pub const LIST_KERNELS: Route = route("GET", "/v1/kernels", "List kernels");
/// `POST /v1/kernels`.
pub const REGISTER_KERNEL: Route = route("POST", "/v1/kernels", "Register an existing kernel");
/// `GET /v1/kernels/{kernel}`.
pub const GET_KERNEL: Route = route("GET", "/v1/kernels/{kernel}", "Show a kernel");

/// Every route, in documentation order.
pub const ALL: &[Route] = &[
    PING,
    SHUTDOWN,
    LIST_OPERATIONS,
    GET_OPERATION,
    LIST_VMS,
    CREATE_VM,
    GET_VM,
    START_VM,
    STOP_VM,
    KILL_VM,
    DELETE_VM,
    SSH_VM,
    VM_LOGS,
    VM_HEALTH,
    VM_STATS,
    VM_PORTS,
    SET_VM,
    SET_VM_WORKSPACE,
    CLEAR_VM_WORKSPACE,
    PRUNE_VMS,
    LIST_IMAGES,
    REGISTER_IMAGE,
    PULL_IMAGE,
    PRUNE_IMAGE_CACHE,
    LIST_SNAPSHOTS,
    PROMOTE_IMAGE,
    CATALOG,
    GET_IMAGE,
    DELETE_IMAGE,
    LIST_KERNELS,
    REGISTER_KERNEL,
    PULL_KERNEL,
    GET_KERNEL,
    DELETE_KERNEL,
];

impl Route {
    /// The path with each `{param}` replaced, in order, by a percent-encoded value.
    pub fn url(&self, params: &[&str]) -> String {
        let mut out = String::with_capacity(self.path.len());
        let mut rest = self.path;
        let mut values = params.iter();
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .map_or(rest.len(), |e| start + e + 1);
            out.push_str(&encode(values.next().copied().unwrap_or_default()));
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}

fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_fill_and_encode_params() {
        assert_eq!(GET_VM.url(&["web"]), "/v1/vms/web");
        assert_eq!(GET_VM.url(&["a b/c"]), "/v1/vms/a%20b%2Fc");
        assert_eq!(LIST_VMS.url(&[]), "/v1/vms");
    }

    #[test]
    fn routes_are_unique_and_versioned() {
        let mut seen = std::collections::HashSet::new();
        for r in ALL {
            assert!(r.path.starts_with(PREFIX), "{}", r.path);
            assert!(seen.insert((r.method, r.path)), "duplicate {r:?}");
        }
    }
}
