//! The daemon's side of the jail requests: [`HelperJail`], a blocking client.
//!
//! Blocking because the VMM backend's jail step is a plain call (it runs it off the async
//! runtime, and removes jails from synchronous teardown code). One connection per request, as
//! for [`crate::HelperNet`]; a [`Request::LaunchJail`] line carries the console log's
//! descriptor, sent with the line in one `sendmsg`.

use std::fs::File;
use std::io::{BufRead, BufReader, IoSlice, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use banger_model::jail::{JailLaunch, JailRef};
use banger_net::NetError;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use crate::client::unexpected;
use crate::server::OP_TIMEOUT;
use crate::wire::{MAX_LINE, Request, Response};

/// Why a jail request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JailCallError {
    /// No helper listens (no socket, or nobody behind it).
    #[error(
        "running Firecracker under the jailer needs root, and no root helper is running at \
         {socket}: run `sudo banger system install` once, or remove jailer_bin from config"
    )]
    NoHelper {
        /// Where it was looked for.
        socket: String,
    },
    /// The helper refused ([`NetError::Refused`]: nothing was changed), failed
    /// ([`NetError::Helper`]) or could not be reached midway ([`NetError::HelperUnreachable`]),
    /// as for the network requests.
    #[error(transparent)]
    Helper(NetError),
}

/// Jail requests to the root helper at a socket.
#[derive(Debug, Clone)]
pub struct HelperJail {
    socket: PathBuf,
}

impl HelperJail {
    /// A client of the helper at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    /// The helper's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stages and starts `launch`'s jail, the jailer's output on `console`; the jailer's pid.
    pub fn launch(&self, launch: &JailLaunch, console: &File) -> Result<u32, JailCallError> {
        let request = Request::LaunchJail {
            launch: launch.clone(),
        };
        match self.exchange(&request, Some(console.as_raw_fd()))? {
            Response::Launched { pid } => Ok(pid),
            other => Err(JailCallError::Helper(unexpected(other))),
        }
    }

    /// Removes `jail`.
    pub fn release(&self, jail: &JailRef) -> Result<(), JailCallError> {
        let request = Request::ReleaseJail { jail: jail.clone() };
        match self.exchange(&request, None)? {
            Response::Ok => Ok(()),
            other => Err(JailCallError::Helper(unexpected(other))),
        }
    }

    fn unreachable(&self, source: impl Into<std::io::Error>) -> JailCallError {
        JailCallError::Helper(NetError::HelperUnreachable {
            socket: self.socket.display().to_string(),
            source: source.into(),
        })
    }

    fn exchange(&self, request: &Request, fd: Option<RawFd>) -> Result<Response, JailCallError> {
        let stream = UnixStream::connect(&self.socket).map_err(|e| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) {
                JailCallError::NoHelper {
                    socket: self.socket.display().to_string(),
                }
            } else {
                self.unreachable(e)
            }
        })?;
        let bound = Some(OP_TIMEOUT + Duration::from_secs(5));
        stream
            .set_read_timeout(bound)
            .and_then(|()| stream.set_write_timeout(bound))
            .map_err(|e| self.unreachable(e))?;
        let mut line =
            serde_json::to_vec(request).map_err(|e| self.unreachable(std::io::Error::other(e)))?;
        line.push(b'\n');
        send_all(&stream, &line, fd).map_err(|e| self.unreachable(e))?;
        let mut answer = Vec::new();
        BufReader::new(&stream)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut answer)
            .map_err(|e| self.unreachable(e))?;
        if answer.last() != Some(&b'\n') {
            return Err(self.unreachable(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the helper closed the connection before a full answer",
            )));
        }
        serde_json::from_slice(&answer).map_err(|e| self.unreachable(std::io::Error::other(e)))
    }
}

/// Writes `line`, with `fd` attached to its first bytes.
fn send_all(stream: &UnixStream, line: &[u8], fd: Option<RawFd>) -> std::io::Result<()> {
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let mut sent = 0;
    while sent < line.len() {
        let attach = if sent == 0 { fds.as_slice() } else { &[] };
        let cmsgs: &[ControlMessage] = if attach.is_empty() {
            &[]
        } else {
            &[ControlMessage::ScmRights(attach)]
        };
        sent += sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(&line[sent..])],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
    }
    Ok(())
}
