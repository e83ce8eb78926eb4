//! Persistent TAP devices through the TUN ioctls.
//!
//! Netlink cannot create TUN/TAP devices (the kernel refuses), so this module does what
//! `ip tuntap add` does: open `/dev/net/tun`, `TUNSETIFF` with `IFF_TAP | IFF_NO_PI`, give the
//! device an owner (`TUNSETOWNER`, so an unprivileged VMM may attach) and make it persistent
//! (`TUNSETPERSIST`), then close the fd. The device then lives until deleted, which is what lets
//! a VMM outlive the daemon and lets the daemon find it again by name.
//!
//! This is the only `unsafe` in the crate: three ioctls on an fd we own, with a fully
//! initialised `ifreq`.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

use crate::NetError;
use crate::plan::check_ifname;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: libc::c_ulong = 0x4004_54cc;

nix::ioctl_write_ptr_bad!(tun_set_iff, TUNSETIFF, libc::ifreq);
nix::ioctl_write_int_bad!(tun_set_persist, TUNSETPERSIST);
nix::ioctl_write_int_bad!(tun_set_owner, TUNSETOWNER);

/// Creates (or re-opens) the persistent TAP `name` owned by `owner_uid`.
pub fn create_persistent_tap(name: &str, owner_uid: u32) -> Result<(), NetError> {
    check_ifname(name)?;
    let fail = |source: io::Error| NetError::Tap {
        name: name.to_owned(),
        source,
    };
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(fail)?;
    // SAFETY: `ifreq` is a plain C struct for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    let fd = tun.as_raw_fd();
    // SAFETY: `fd` is an open /dev/net/tun descriptor owned by `tun`, which outlives the calls;
    // `req` is initialised and NUL-terminated (the name is at most 15 bytes in a 16-byte array).
    unsafe { tun_set_iff(fd, &req) }.map_err(|e| fail(e.into()))?;
    let owner = libc::c_int::try_from(owner_uid).map_err(|_| {
        fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "owner uid out of range",
        ))
    })?;
    // SAFETY: as above; TUNSETOWNER takes the uid by value.
    unsafe { tun_set_owner(fd, owner) }.map_err(|e| fail(e.into()))?;
    // SAFETY: as above; TUNSETPERSIST takes a boolean int by value.
    unsafe { tun_set_persist(fd, 1) }.map_err(|e| fail(e.into()))?;
    Ok(())
}
