//! The HTTP API: a router built from `banger_proto::routes`, one handler per route.
//!
//! Layers, outermost first: [`error::envelope`] (request id, logging, error bodies), then
//! [`crate::access::check_peer`] (peer credentials), then the route. Paths and methods come
//! only from the proto route table, so the router, the CLI and `docs/openapi.json` agree; a
//! test checks that every route in the table is served here.

pub mod error;
mod images;
mod kernels;
mod operations;
mod system;
mod vms;

use axum::Router;
use axum::handler::Handler;
use axum::middleware;
use axum::routing::{MethodFilter, on};

use banger_proto::routes::{self, Route};

use crate::access::{self, AccessPolicy};
use crate::context::DaemonContext;
use error::ApiError;

/// The API router with its middleware, ready to serve.
pub fn router(ctx: DaemonContext, policy: AccessPolicy) -> Router {
    let api = Router::new();
    let api = add(api, routes::PING, system::ping);
    let api = add(api, routes::SHUTDOWN, system::shutdown);
    let api = add(api, routes::LIST_OPERATIONS, operations::list);
    let api = add(api, routes::GET_OPERATION, operations::get);
    let api = add(api, routes::LIST_VMS, vms::list);
    let api = add(api, routes::CREATE_VM, vms::create);
    let api = add(api, routes::GET_VM, vms::get);
    let api = add(api, routes::START_VM, vms::start);
    let api = add(api, routes::STOP_VM, vms::stop);
    let api = add(api, routes::KILL_VM, vms::kill);
    let api = add(api, routes::DELETE_VM, vms::delete);
    let api = add(api, routes::SSH_VM, vms::ssh);
    let api = add(api, routes::VM_LOGS, vms::logs);
    let api = add(api, routes::VM_HEALTH, vms::health);
    let api = add(api, routes::VM_STATS, vms::stats);
    let api = add(api, routes::VM_PORTS, vms::ports);
    let api = add(api, routes::SET_VM, vms::set);
    let api = add(api, routes::SET_VM_WORKSPACE, vms::set_workspace);
    let api = add(api, routes::CLEAR_VM_WORKSPACE, vms::clear_workspace);
    let api = api.route(
        routes::PRUNE_VMS.path,
        on(method_filter(routes::PRUNE_VMS.method), vms::prune).fallback(vms::vm_named_prune),
    );
    let api = add(api, routes::LIST_IMAGES, images::list);
    let api = add(api, routes::REGISTER_IMAGE, images::register);
    let api = add(api, routes::PULL_IMAGE, images::pull);
    let api = add(api, routes::PRUNE_IMAGE_CACHE, images::prune_cache);
    let api = add(api, routes::LIST_SNAPSHOTS, images::snapshots);
    let api = add(api, routes::PROMOTE_IMAGE, images::promote);
    let api = add(api, routes::CATALOG, images::catalog);
    let api = add(api, routes::GET_IMAGE, images::get);
    let api = add(api, routes::DELETE_IMAGE, images::delete);
    let api = add(api, routes::LIST_KERNELS, kernels::list);
    let api = add(api, routes::REGISTER_KERNEL, kernels::register);
    let api = add(api, routes::PULL_KERNEL, kernels::pull);
    let api = add(api, routes::GET_KERNEL, kernels::get);
    let api = add(api, routes::DELETE_KERNEL, kernels::delete);
    api.fallback(unknown_route)
        .with_state(ctx)
        .layer(middleware::from_fn_with_state(policy, access::check_peer))
        .layer(middleware::from_fn(error::envelope))
}

fn add<H, T>(router: Router<DaemonContext>, route: Route, handler: H) -> Router<DaemonContext>
where
    H: Handler<T, DaemonContext>,
    T: 'static,
{
    router.route(route.path, on(method_filter(route.method), handler))
}

fn method_filter(method: &str) -> MethodFilter {
    match method {
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "PATCH" => MethodFilter::PATCH,
        "DELETE" => MethodFilter::DELETE,
        _ => MethodFilter::GET,
    }
}

async fn unknown_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        banger_proto::ErrorCode::UnknownMethod,
        format!(
            "no route {method} {}; this daemon speaks API {}",
            uri.path(),
            routes::PREFIX
        ),
    )
}

/// The requester of a registration, from its connection's peer credentials.
fn requester(
    peer: crate::access::PeerCred,
) -> Result<crate::images::validate::Requester, ApiError> {
    let uid = peer
        .uid
        .ok_or_else(|| ApiError::unauthorized("the peer's credentials are unknown"))?;
    Ok(crate::images::validate::Requester::from_peer(uid, peer.pid))
}
