//! [`NetOps`] on the real kernel: rtnetlink for links and addresses, TUN ioctls for TAPs.
//!
//! Each call opens its own netlink connection on the current thread's network namespace, so the
//! daemon (or a test) that runs inside a namespace manages that namespace's devices only.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkUnspec};

use crate::plan::check_ifname;
use crate::{BoxFuture, NetError, NetOps, ZoneRoute, resolver, tap};

/// Real host networking. Needs `CAP_NET_ADMIN`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxNet;

fn nl(action: &'static str, name: &str) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let name = name.to_owned();
    move |source| NetError::Netlink {
        action,
        name,
        source,
    }
}

async fn connect() -> Result<Handle, NetError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(NetError::Connect)?;
    tokio::spawn(connection);
    Ok(handle)
}

async fn find(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, NetError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        // ENODEV: no such device.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(nl("look up", name)(e)),
    }
}

async fn index_of(handle: &Handle, name: &str) -> Result<u32, NetError> {
    find(handle, name)
        .await?
        .map(|l| l.header.index)
        .ok_or_else(|| NetError::Missing(name.to_owned()))
}

impl NetOps for LinuxNet {
    fn ensure_bridge<'a>(
        &'a self,
        name: &'a str,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(ensure_bridge(name, gateway, prefix))
    }

    fn ensure_tap<'a>(
        &'a self,
        name: &'a str,
        bridge: &'a str,
        owner_uid: u32,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(ensure_tap(name, bridge, owner_uid))
    }

    fn rename_link<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(rename_link(from, to))
    }

    fn isolate_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(isolate_link(name))
    }

    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(delete_link(name))
    }

    fn links_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, NetError>> {
        Box::pin(links_with_prefix(prefix))
    }

    fn allow_nat<'a>(
        &'a self,
        vm_id: &'a str,
        tap: &'a str,
        bridge: &'a str,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        let (vm_id, tap, bridge) = (vm_id.to_owned(), tap.to_owned(), bridge.to_owned());
        Box::pin(blocking(move || {
            crate::nat::apply(
                "build banger's NAT tables",
                &crate::nat::typed(crate::nat::base_batch(&bridge))?,
            )?;
            let stale = crate::nat::list_bridge_chain()?
                .map(|l| crate::nat::handles_of(&l, &vm_id))
                .unwrap_or_default();
            crate::nat::apply(
                "add a VM's NAT rule",
                &crate::nat::typed(crate::nat::allow_batch(&vm_id, &tap, &stale))?,
            )?;
            crate::nat::enable_ipv4_forwarding()
        }))
    }

    fn revoke_nat<'a>(&'a self, vm_id: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        let vm_id = vm_id.to_owned();
        Box::pin(blocking(move || {
            let Some(listing) = crate::nat::list_bridge_chain()? else {
                return Ok(());
            };
            let handles = crate::nat::handles_of(&listing, &vm_id);
            if handles.is_empty() {
                return Ok(());
            }
            crate::nat::apply(
                "remove a VM's NAT rule",
                &crate::nat::typed(crate::nat::revoke_batch(&handles))?,
            )
        }))
    }

    fn route_zone<'a>(
        &'a self,
        bridge: &'a str,
        server: Ipv4Addr,
        zone: &'a str,
    ) -> BoxFuture<'a, Result<ZoneRoute, NetError>> {
        Box::pin(route_zone(bridge, server, zone))
    }

    fn bind_guest_dns(
        &self,
        gateway: Ipv4Addr,
    ) -> BoxFuture<'_, Result<crate::GuestDnsSockets, NetError>> {
        Box::pin(async move {
            crate::dns_socket::bind_guest_dns(gateway).map_err(|source| NetError::Bind {
                addr: std::net::SocketAddr::from((gateway, crate::GUEST_DNS_PORT)),
                source,
            })
        })
    }
}

/// How long one `resolvectl` call may take.
const RESOLVECTL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn route_zone(bridge: &str, server: Ipv4Addr, zone: &str) -> Result<ZoneRoute, NetError> {
    check_ifname(bridge)?;
    if !resolver::valid_zone(zone) {
        return Err(NetError::Resolver {
            command: "resolvectl".to_owned(),
            message: format!("{zone:?} is not a DNS label"),
        });
    }
    if resolver::detect(std::path::Path::new("/")) != resolver::HostResolver::SystemdResolved {
        return Ok(ZoneRoute::Unmanaged);
    }
    for args in resolver::resolvectl_commands(bridge, server, zone) {
        resolvectl(&args).await?;
    }
    Ok(ZoneRoute::Routed)
}

/// Runs `resolvectl ARGS` with a timeout; its stderr is the error.
async fn resolvectl(args: &[String]) -> Result<(), NetError> {
    let command = format!("resolvectl {}", args.join(" "));
    let fail = |message: String| NetError::Resolver {
        command: command.clone(),
        message,
    };
    let run = tokio::process::Command::new("resolvectl")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(RESOLVECTL_TIMEOUT, run).await {
        Err(_) => return Err(fail(format!("no answer within {RESOLVECTL_TIMEOUT:?}"))),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(
                "resolvectl is not installed (Debian: `apt install systemd-resolved`)".to_owned(),
            ));
        }
        Ok(Err(e)) => return Err(fail(e.to_string())),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

/// Runs blocking `nft` work off the async threads.
async fn blocking(
    work: impl FnOnce() -> Result<(), NetError> + Send + 'static,
) -> Result<(), NetError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| NetError::Nft {
            action: "run nft",
            message: format!("the task crashed: {e}"),
        })?
}

async fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<(), NetError> {
    check_ifname(name)?;
    let handle = connect().await?;
    if find(&handle, name).await?.is_none() {
        handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
            .map_err(nl("create bridge", name))?;
    }
    let index = index_of(&handle, name).await?;
    let mut addrs = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    let mut has_gateway = false;
    while let Some(msg) = addrs
        .try_next()
        .await
        .map_err(nl("list addresses of", name))?
    {
        has_gateway |= msg
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Address(IpAddr::V4(ip)) if *ip == gateway))
            && msg.header.prefix_len == prefix;
    }
    if !has_gateway {
        handle
            .address()
            .add(index, IpAddr::V4(gateway), prefix)
            .execute()
            .await
            .map_err(nl("add gateway address to", name))?;
    }
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl("bring up", name))
}

async fn ensure_tap(name: &str, bridge: &str, owner_uid: u32) -> Result<(), NetError> {
    check_ifname(name)?;
    let handle = connect().await?;
    if find(&handle, name).await?.is_none() {
        tap::create_persistent_tap(name, owner_uid)?;
    }
    let bridge_index = index_of(&handle, bridge).await?;
    let index = index_of(&handle, name).await?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(index)
                .controller(bridge_index)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(nl("attach to bridge", name))
}

async fn rename_link(from: &str, to: &str) -> Result<(), NetError> {
    check_ifname(from)?;
    check_ifname(to)?;
    let handle = connect().await?;
    let index = index_of(&handle, from).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).down().build())
        .execute()
        .await
        .map_err(nl("take down", from))?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(index)
                .name(to.to_owned())
                .build(),
        )
        .execute()
        .await
        .map_err(nl("rename", from))
}

async fn isolate_link(name: &str) -> Result<(), NetError> {
    check_ifname(name)?;
    let handle = connect().await?;
    let index = index_of(&handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).down().build())
        .execute()
        .await
        .map_err(nl("take down", name))
}

async fn delete_link(name: &str) -> Result<(), NetError> {
    check_ifname(name)?;
    let handle = connect().await?;
    let Some(link) = find(&handle, name).await? else {
        return Ok(());
    };
    handle
        .link()
        .del(link.header.index)
        .execute()
        .await
        .map_err(nl("delete", name))
}

async fn links_with_prefix(prefix: &str) -> Result<Vec<String>, NetError> {
    let handle = connect().await?;
    let mut links = handle.link().get().execute();
    let mut out = Vec::new();
    while let Some(msg) = links.try_next().await.map_err(nl("list", "links"))? {
        for attr in &msg.attributes {
            if let LinkAttribute::IfName(n) = attr
                && n.starts_with(prefix)
            {
                out.push(n.clone());
            }
        }
    }
    out.sort();
    Ok(out)
}
