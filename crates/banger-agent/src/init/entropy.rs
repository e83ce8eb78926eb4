//! Crediting host randomness to the guest's entropy pool.
//!
//! A restored guest's pool is a copy of the saved guest's: every clone would draw the same
//! "random" numbers until the kernel reseeds. Writing to `/dev/random` mixes bytes in without
//! crediting them; the `RNDADDENTROPY` ioctl mixes and credits, and `RNDRESEEDCRNG` then makes
//! the kernel reseed its generator from the pool at once (a ready generator otherwise keeps
//! its state until its next scheduled reseed, up to a minute later). It takes a variable-length struct, so this module is the
//! agent's one other use of `unsafe` (besides the vsock socket).
#![allow(unsafe_code)]

/// `RNDADDENTROPY`: `_IOW('R', 0x03, int[2])`.
const RNDADDENTROPY: u64 = 0x4008_5203;
/// `RNDRESEEDCRNG`: `_IO('R', 0x07)`.
const RNDRESEEDCRNG: u64 = 0x5207;

/// Writes `seed` into the kernel's pool and credits it (8 bits per byte), as `rngd` does,
/// then reseeds the generator from the pool.
pub fn credit_entropy(seed: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let random = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/random")?;
    // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
    let bits = i32::try_from(seed.len() * 8).map_err(std::io::Error::other)?;
    let size = i32::try_from(seed.len()).map_err(std::io::Error::other)?;
    let mut info = Vec::with_capacity(8 + seed.len());
    info.extend_from_slice(&bits.to_ne_bytes());
    info.extend_from_slice(&size.to_ne_bytes());
    info.extend_from_slice(seed);
    // SAFETY: `info` is a valid rand_pool_info: two ints, then `buf_size` bytes, and it lives
    // for the whole call; the kernel only reads it.
    let rc = unsafe {
        nix::libc::ioctl(
            random.as_raw_fd(),
            RNDADDENTROPY as nix::libc::Ioctl,
            info.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: RNDRESEEDCRNG takes no argument.
    let rc = unsafe { nix::libc::ioctl(random.as_raw_fd(), RNDRESEEDCRNG as nix::libc::Ioctl) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
