//! Configuring the guest's NIC in-process, with the classic socket ioctls.
//!
//! Every program init starts costs a fork, an exec and the dynamic loader; under emulation,
//! and worst right after a restore (when the VMM has translated none of the guest's code yet),
//! each `ip` invocation measured 110–290 ms, so the six of a re-identification alone took 1.3 s.
//! These ioctls do the same work in microseconds and exist on every Linux kernel a sandbox
//! boots: link up and down (`SIOC[GS]IFFLAGS`), the MAC (`SIOCSIFHWADDR`), the primary IPv4
//! address and its mask (`SIOCSIFADDR`, `SIOCSIFNETMASK`; setting the address replaces the one
//! the interface had), and the default route (`SIOCDELRT`, `SIOCADDRT`).
//!
//! What to do is planned as typed [`NicStep`]s by pure functions ([`boot_steps`],
//! [`reidentify_steps`]) and carried out by [`apply`], one step at a time, so each outcome is
//! logged (at boot) or reported to the host (after a restore).
//!
//! The module needs `unsafe` for the ioctl calls: each passes a pointer to a fully initialised,
//! correctly sized structure that outlives the call, on a socket this module owns.
#![allow(unsafe_code)]

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::libc;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use banger_guest::Ipv4Cidr;
use banger_guest::identity::format_mac;

/// One change to an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicStep {
    /// Bring the interface up.
    Up,
    /// Take the interface down (IPv4 routes through it go with it).
    Down,
    /// Set the hardware address (the interface must be down).
    Mac([u8; 6]),
    /// Make this the interface's IPv4 address, replacing the one it had.
    Address(Ipv4Cidr),
    /// Make `via` the only default route, through this interface.
    DefaultRoute(Ipv4Addr),
}

/// A step on a named interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The interface.
    pub iface: String,
    /// What to do to it.
    pub step: NicStep,
}

impl Planned {
    fn on(iface: &str, step: NicStep) -> Self {
        Self {
            iface: iface.to_owned(),
            step,
        }
    }

    /// One line for logs and the host's report, in `ip`'s words.
    pub fn describe(&self) -> String {
        let dev = &self.iface;
        match self.step {
            NicStep::Up => format!("link {dev} up"),
            NicStep::Down => format!("link {dev} down"),
            NicStep::Mac(mac) => format!("link {dev} address {}", format_mac(mac)),
            NicStep::Address(cidr) => format!("addr {cidr} dev {dev}"),
            NicStep::DefaultRoute(gw) => format!("route default via {gw} dev {dev}"),
        }
    }
}

/// At boot: loopback up, then with an address on `iface`, the address, link up and (with
/// `gw`) the default route.
pub fn boot_steps(
    iface: Option<&str>,
    addr: Option<Ipv4Cidr>,
    gw: Option<Ipv4Addr>,
) -> Vec<Planned> {
    let mut steps = vec![Planned::on("lo", NicStep::Up)];
    let (Some(iface), Some(addr)) = (iface, addr) else {
        return steps;
    };
    steps.push(Planned::on(iface, NicStep::Address(addr)));
    steps.push(Planned::on(iface, NicStep::Up));
    if let Some(gw) = gw {
        steps.push(Planned::on(iface, NicStep::DefaultRoute(gw)));
    }
    steps
}

/// After a restore: takes `iface` off the saved guest's MAC and address and onto this VM's.
/// The link goes down first (a MAC can only change then, and the kernel drops the old
/// routes and IPv6 link-local address with it), and comes back up with the new values.
pub fn reidentify_steps(
    iface: &str,
    mac: Option<[u8; 6]>,
    addr: Option<Ipv4Cidr>,
    gw: Option<Ipv4Addr>,
) -> Vec<Planned> {
    if mac.is_none() && addr.is_none() {
        return Vec::new();
    }
    let mut steps = vec![Planned::on(iface, NicStep::Down)];
    if let Some(mac) = mac {
        steps.push(Planned::on(iface, NicStep::Mac(mac)));
    }
    if let Some(addr) = addr {
        steps.push(Planned::on(iface, NicStep::Address(addr)));
    }
    steps.push(Planned::on(iface, NicStep::Up));
    if let (Some(gw), Some(_)) = (gw, addr) {
        steps.push(Planned::on(iface, NicStep::DefaultRoute(gw)));
    }
    steps
}

/// Carries out one step.
pub fn apply(planned: &Planned) -> io::Result<()> {
    let sock = control_socket()?;
    let dev = &planned.iface;
    match planned.step {
        NicStep::Up => set_flag(&sock, dev, libc::IFF_UP, true),
        NicStep::Down => set_flag(&sock, dev, libc::IFF_UP, false),
        NicStep::Mac(mac) => {
            let mut req = ifreq(dev)?;
            let mut hw = zeroed_sockaddr();
            hw.sa_family = libc::ARPHRD_ETHER;
            for (slot, byte) in hw.sa_data.iter_mut().zip(mac) {
                *slot = byte as libc::c_char;
            }
            req.ifr_ifru.ifru_hwaddr = hw;
            ioctl(&sock, libc::SIOCSIFHWADDR, &mut req)
        }
        NicStep::Address(cidr) => {
            let mut req = ifreq(dev)?;
            req.ifr_ifru.ifru_addr = inet(cidr.addr);
            ioctl(&sock, libc::SIOCSIFADDR, &mut req)?;
            let mut req = ifreq(dev)?;
            req.ifr_ifru.ifru_netmask = inet(mask(cidr.prefix));
            ioctl(&sock, libc::SIOCSIFNETMASK, &mut req)
        }
        NicStep::DefaultRoute(gw) => replace_default_route(&sock, dev, gw),
    }
}

/// The netmask of a prefix length (clamped to 32).
pub fn mask(prefix: u8) -> Ipv4Addr {
    let bits = u32::from(prefix.min(32));
    Ipv4Addr::from(u32::MAX.checked_shl(32 - bits).unwrap_or(0))
}

fn control_socket() -> io::Result<OwnedFd> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

fn ifreq(dev: &str) -> io::Result<libc::ifreq> {
    // SAFETY: `ifreq` is plain old data (a name array and a union of plain values), for which
    // all zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = dev.as_bytes();
    if name.is_empty() || name.len() >= req.ifr_name.len() || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {dev:?}"),
        ));
    }
    for (slot, byte) in req.ifr_name.iter_mut().zip(name) {
        *slot = *byte as libc::c_char;
    }
    Ok(req)
}

fn zeroed_sockaddr() -> libc::sockaddr {
    // SAFETY: `sockaddr` is plain old data; all zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// `addr` as a `sockaddr` holding a `sockaddr_in`.
fn inet(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sockaddr_in` and `sockaddr` are both 16 bytes of plain old data; the kernel
    // reads a `sockaddr` slot as a `sockaddr_in` when its family is AF_INET.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn ioctl<T>(sock: &OwnedFd, request: libc::c_ulong, arg: &mut T) -> io::Result<()> {
    // SAFETY: every caller passes the structure the request expects, initialised and alive
    // for the duration of the call; the kernel reads and writes only within it.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            request as libc::Ioctl,
            std::ptr::from_mut(arg),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn set_flag(sock: &OwnedFd, dev: &str, flag: libc::c_int, on: bool) -> io::Result<()> {
    let mut req = ifreq(dev)?;
    ioctl(sock, libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS has just filled the flags member of the union.
    let mut flags = libc::c_int::from(unsafe { req.ifr_ifru.ifru_flags });
    if on {
        flags |= flag;
    } else {
        flags &= !flag;
    }
    // The interface flags are a C short; IFF_UP and friends fit in it.
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    ioctl(sock, libc::SIOCSIFFLAGS, &mut req)
}

/// The kernel's `struct rtentry` (include/uapi/linux/route.h), which glibc's libc bindings
/// leave out.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

/// Removes every default route (bounded), then adds the one via `gw` on `dev`.
fn replace_default_route(sock: &OwnedFd, dev: &str, gw: Ipv4Addr) -> io::Result<()> {
    let mut name: Vec<u8> = dev.as_bytes().to_vec();
    name.push(0);
    let any = Ipv4Addr::UNSPECIFIED;
    for _ in 0..16 {
        let mut del = RtEntry {
            rt_pad1: 0,
            rt_dst: inet(any),
            rt_gateway: zeroed_sockaddr(),
            rt_genmask: inet(any),
            rt_flags: 0,
            rt_pad2: 0,
            rt_pad3: 0,
            rt_pad4: std::ptr::null_mut(),
            rt_metric: 0,
            rt_dev: std::ptr::null_mut(),
            rt_mtu: 0,
            rt_window: 0,
            rt_irtt: 0,
        };
        match ioctl(sock, libc::SIOCDELRT, &mut del) {
            Ok(()) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => break,
            Err(e) => return Err(e),
        }
    }
    let mut add = RtEntry {
        rt_pad1: 0,
        rt_dst: inet(any),
        rt_gateway: inet(gw),
        rt_genmask: inet(any),
        rt_flags: libc::RTF_UP | libc::RTF_GATEWAY,
        rt_pad2: 0,
        rt_pad3: 0,
        rt_pad4: std::ptr::null_mut(),
        // The kernel stores metric - 1; 1 gives the route priority 0, as `ip route` does.
        rt_metric: 1,
        rt_dev: name.as_mut_ptr().cast(),
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    ioctl(sock, libc::SIOCADDRT, &mut add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().expect("cidr")
    }

    fn lines(steps: &[Planned]) -> Vec<String> {
        steps.iter().map(Planned::describe).collect()
    }

    #[test]
    fn boot_brings_up_loopback_then_the_address_link_and_route() {
        let gw = Ipv4Addr::new(172, 16, 0, 1);
        assert_eq!(
            lines(&boot_steps(
                Some("eth0"),
                Some(cidr("172.16.0.2/24")),
                Some(gw)
            )),
            [
                "link lo up",
                "addr 172.16.0.2/24 dev eth0",
                "link eth0 up",
                "route default via 172.16.0.1 dev eth0",
            ]
        );
        assert_eq!(
            lines(&boot_steps(Some("eth0"), None, Some(gw))),
            ["link lo up"]
        );
        assert_eq!(
            lines(&boot_steps(None, Some(cidr("10.0.0.2/8")), None)),
            ["link lo up"]
        );
        assert_eq!(
            boot_steps(Some("ens3"), Some(cidr("10.0.0.2/8")), None).len(),
            3
        );
    }

    #[test]
    fn reidentifying_takes_the_link_down_for_the_mac_and_brings_it_back() {
        let gw = Ipv4Addr::new(172, 30, 0, 1);
        assert_eq!(
            lines(&reidentify_steps(
                "eth0",
                Some([6, 0, 0xac, 0x1e, 0, 7]),
                Some(cidr("172.30.0.7/24")),
                Some(gw)
            )),
            [
                "link eth0 down",
                "link eth0 address 06:00:ac:1e:00:07",
                "addr 172.30.0.7/24 dev eth0",
                "link eth0 up",
                "route default via 172.30.0.1 dev eth0",
            ]
        );
        assert_eq!(
            lines(&reidentify_steps(
                "eth0",
                Some([6, 0, 0, 0, 0, 1]),
                None,
                Some(gw)
            )),
            [
                "link eth0 down",
                "link eth0 address 06:00:00:00:00:01",
                "link eth0 up"
            ]
        );
        assert!(reidentify_steps("eth0", None, None, Some(gw)).is_empty());
    }

    #[test]
    fn masks_and_names() {
        assert_eq!(mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(mask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(mask(32), Ipv4Addr::BROADCAST);
        assert_eq!(mask(40), Ipv4Addr::BROADCAST);
        assert!(ifreq("").is_err());
        assert!(ifreq("a-name-far-too-long").is_err());
        assert!(ifreq("eth0").is_ok());
        assert_eq!(
            std::mem::size_of::<libc::sockaddr_in>(),
            std::mem::size_of::<libc::sockaddr>()
        );
    }
}
