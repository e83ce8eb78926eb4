//! How the host reaches the guest agent, and what it asks.
//!
//! QEMU gives the agent a named virtio-serial port; Firecracker forwards a host `CONNECT 52\n`
//! on its hybrid-vsock socket to a guest vsock port. Over either stream the host speaks plain
//! HTTP/1.1 to the routes below. The VMM backends set up the channel, the daemon calls the
//! routes, the agent serves them; all three take the values from here.

/// The vsock port the agent listens on. Firecracker's hybrid vsock forwards a host
/// `CONNECT 52\n` on the VM's vsock Unix socket to this port.
pub const VSOCK_PORT: u32 = 52;

/// The name of the QEMU virtio-serial port the agent serves (`-device virtserialport,name=…`).
pub const VIRTIO_PORT_NAME: &str = "banger.agent";

/// Where udev (when it runs) links the named virtio-serial port in the guest.
pub const VIRTIO_PORT_LINK: &str = "/dev/virtio-ports/banger.agent";

/// `GET`: the agent is up; answers its version, boot id and uptime.
pub const HEALTHZ: &str = "/healthz";

/// `GET`: the TCP ports listening in the guest.
pub const PORTS: &str = "/ports";

/// `POST`: power the guest off cleanly.
pub const SHUTDOWN: &str = "/shutdown";

/// `POST`: take on a new identity after a restore from a warm snapshot (the body is an
/// [`crate::identity::Identity`]); answers once it is applied, with a fresh SSH host key.
pub const IDENTITY: &str = "/identity";
