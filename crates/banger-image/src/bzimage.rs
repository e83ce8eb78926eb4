//! Extracting the uncompressed `vmlinux` from an x86 bzImage.
//!
//! Firecracker on x86-64 boots an ELF `vmlinux`, while Debian ships only the bzImage
//! (`/boot/vmlinuz-*`). A bzImage is: real-mode setup sectors, then the protected-mode part,
//! which holds the compressed kernel ELF at `payload_offset` (setup header 0x248, relative to
//! the protected-mode part) for `payload_length` bytes (0x24c); both fields exist from boot
//! protocol 2.08. Debian's cloud kernel uses LZ4 (`CONFIG_KERNEL_LZ4`), written in LZ4's
//! *legacy* frame: magic `0x184C2102`, then blocks each prefixed by a 4-byte little-endian
//! compressed size and decompressing to at most 8 MiB. The kernel build appends the
//! uncompressed size as a final 4-byte word, which we check. Other compressions are detected
//! and reported, not decoded.

use crate::elf::{self, VmlinuxInfo};

/// Legacy LZ4 frame magic (little endian on disk).
pub const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;
/// Uncompressed size of every legacy block but the last.
pub const LZ4_LEGACY_BLOCK: usize = 8 << 20;
/// Largest compressed block LZ4 can produce for an 8 MiB input (`LZ4_compressBound`).
const LZ4_LEGACY_BOUND: usize = LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK / 255 + 16;
/// Refuse to inflate beyond this (a vmlinux is ~50 MiB).
pub const MAX_VMLINUX: usize = 1 << 30;

/// Fields of the x86 boot setup header this module needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupHeader {
    /// Number of 512-byte setup sectors after the boot sector (0 means 4).
    pub setup_sects: u8,
    /// Boot protocol version (`0x020f` = 2.15).
    pub version: u16,
    /// Payload offset, relative to the protected-mode part.
    pub payload_offset: u32,
    /// Payload length.
    pub payload_length: u32,
}

/// Compression of a bzImage payload, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// LZ4 legacy frame.
    Lz4Legacy,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
    /// bzip2.
    Bzip2,
    /// lzma (raw header).
    Lzma,
    /// lzop.
    Lzo,
    /// Already an ELF.
    None,
    /// Unrecognised magic.
    Unknown,
}

/// The bzImage or its payload is not what we can extract.
#[derive(Debug, thiserror::Error)]
pub enum BzImageError {
    /// Too short, or missing the `HdrS` signature / boot flag.
    #[error("not an x86 bzImage")]
    NotBzImage,
    /// Boot protocol older than 2.08 has no payload fields.
    #[error("boot protocol {0:#06x} is too old to locate the payload")]
    OldProtocol(u16),
    /// Payload range points outside the file.
    #[error("payload offset/length point outside the file")]
    PayloadOutOfBounds,
    /// Payload compressed with something we do not decode.
    #[error("kernel payload compression {0:?} is not supported (only LZ4)")]
    UnsupportedCompression(Compression),
    /// LZ4 stream is malformed.
    #[error("lz4 payload is corrupt: {0}")]
    Lz4(&'static str),
    /// A block failed to decompress.
    #[error("lz4 block at offset {offset} is corrupt")]
    Lz4Block {
        /// Offset of the block in the payload.
        offset: usize,
        /// Decoder error.
        #[source]
        source: lz4_flex::block::DecompressError,
    },
    /// The trailing size word disagrees with the decompressed length.
    #[error("decompressed {actual} bytes but the trailer says {expected}")]
    SizeMismatch {
        /// Trailer value.
        expected: u32,
        /// Bytes produced.
        actual: usize,
    },
    /// The decompressed payload is not a usable kernel ELF.
    #[error("decompressed payload is not a kernel ELF")]
    Elf(#[source] elf::ElfError),
}

fn le16(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off + 2)?.try_into().ok().map(u16::from_le_bytes)
}
fn le32(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 4)?.try_into().ok().map(u32::from_le_bytes)
}

/// Parses the setup header.
pub fn parse_header(image: &[u8]) -> Result<SetupHeader, BzImageError> {
    if le16(image, 0x1fe) != Some(0xAA55) || image.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        return Err(BzImageError::NotBzImage);
    }
    let version = le16(image, 0x206).ok_or(BzImageError::NotBzImage)?;
    if version < 0x0208 {
        return Err(BzImageError::OldProtocol(version));
    }
    Ok(SetupHeader {
        setup_sects: *image.get(0x1f1).ok_or(BzImageError::NotBzImage)?,
        version,
        payload_offset: le32(image, 0x248).ok_or(BzImageError::NotBzImage)?,
        payload_length: le32(image, 0x24c).ok_or(BzImageError::NotBzImage)?,
    })
}

/// The compressed payload inside `image`.
pub fn payload(image: &[u8]) -> Result<&[u8], BzImageError> {
    let h = parse_header(image)?;
    let sects = if h.setup_sects == 0 { 4 } else { h.setup_sects };
    let start = (usize::from(sects) + 1) * 512 + h.payload_offset as usize;
    let end = start
        .checked_add(h.payload_length as usize)
        .ok_or(BzImageError::PayloadOutOfBounds)?;
    image
        .get(start..end)
        .ok_or(BzImageError::PayloadOutOfBounds)
}

/// Identifies the payload's compression from its first bytes.
pub fn detect(payload: &[u8]) -> Compression {
    match payload {
        [0x02, 0x21, 0x4c, 0x18, ..] => Compression::Lz4Legacy,
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        [b'B', b'Z', b'h', ..] => Compression::Bzip2,
        [0x5d, 0x00, 0x00, ..] => Compression::Lzma,
        [0x89, b'L', b'Z', b'O', ..] => Compression::Lzo,
        [0x7f, b'E', b'L', b'F', ..] => Compression::None,
        _ => Compression::Unknown,
    }
}

/// Decompresses an LZ4 legacy frame (possibly several concatenated, possibly followed by the
/// kernel's 4-byte uncompressed-size trailer).
pub fn decompress_lz4_legacy(data: &[u8]) -> Result<Vec<u8>, BzImageError> {
    if le32(data, 0) != Some(LZ4_LEGACY_MAGIC) {
        return Err(BzImageError::Lz4("missing legacy frame magic"));
    }
    let mut out = Vec::new();
    let mut block = vec![0u8; LZ4_LEGACY_BLOCK];
    let mut pos = 4usize;
    loop {
        let rest = data.len() - pos;
        if rest == 0 {
            break;
        }
        let Some(word) = le32(data, pos) else {
            return Err(BzImageError::Lz4("truncated block header"));
        };
        if rest == 4 {
            // The kernel's size trailer (`size_append`).
            if word as usize != out.len() {
                return Err(BzImageError::SizeMismatch {
                    expected: word,
                    actual: out.len(),
                });
            }
            break;
        }
        pos += 4;
        if word == LZ4_LEGACY_MAGIC {
            continue;
        }
        let size = word as usize;
        if size == 0 || size > LZ4_LEGACY_BOUND {
            return Err(BzImageError::Lz4("invalid block size"));
        }
        let Some(input) = data.get(pos..pos + size) else {
            return Err(BzImageError::Lz4("truncated block"));
        };
        let n = lz4_flex::block::decompress_into(input, &mut block).map_err(|source| {
            BzImageError::Lz4Block {
                offset: pos - 4,
                source,
            }
        })?;
        if out.len() + n > MAX_VMLINUX {
            return Err(BzImageError::Lz4("output exceeds the size limit"));
        }
        out.extend_from_slice(&block[..n]);
        pos += size;
    }
    Ok(out)
}

/// Extracts and checks the kernel ELF inside a bzImage.
pub fn extract_vmlinux(image: &[u8]) -> Result<(Vec<u8>, VmlinuxInfo), BzImageError> {
    let payload = payload(image)?;
    let vmlinux = match detect(payload) {
        Compression::Lz4Legacy => decompress_lz4_legacy(payload)?,
        Compression::None => payload.to_vec(),
        other => return Err(BzImageError::UnsupportedCompression(other)),
    };
    let info = elf::check_vmlinux(&vmlinux).map_err(BzImageError::Elf)?;
    Ok((vmlinux, info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::tests::{build_elf, note};

    /// A legacy frame of `data`, split into blocks of `block` bytes, with an optional trailer.
    fn legacy_frame(data: &[u8], block: usize, trailer: bool) -> Vec<u8> {
        let mut out = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        for chunk in data.chunks(block) {
            let c = lz4_flex::block::compress(chunk);
            out.extend_from_slice(&(c.len() as u32).to_le_bytes());
            out.extend_from_slice(&c);
        }
        if trailer {
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        }
        out
    }

    /// A synthetic bzImage with `setup_sects` and the given payload.
    fn bzimage(setup_sects: u8, payload: &[u8]) -> Vec<u8> {
        let base = (usize::from(setup_sects) + 1) * 512;
        let mut img = vec![0u8; base + 100];
        img[0x1f1] = setup_sects;
        img[0x1fe..0x200].copy_from_slice(&0xAA55u16.to_le_bytes());
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        img[0x248..0x24c].copy_from_slice(&100u32.to_le_bytes());
        img[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        img.extend_from_slice(payload);
        img.extend_from_slice(&[0xee; 64]); // trailing data after the payload
        img
    }

    fn sample_kernel() -> Vec<u8> {
        let notes = note(b"Xen", 18, &0x0100_0850u64.to_le_bytes());
        let mut elf = build_elf(2, &[(".notes", 7, &notes)]);
        // Enough compressible bulk to span several blocks with a small block size.
        elf.extend((0..200_000u32).map(|i| (i % 251) as u8));
        elf
    }

    #[test]
    fn lz4_round_trip_multi_block_with_trailer() {
        let data = sample_kernel();
        let frame = legacy_frame(&data, 64 << 10, true);
        assert_eq!(decompress_lz4_legacy(&frame).expect("decodes"), data);
        let frame = legacy_frame(&data, 64 << 10, false);
        assert_eq!(decompress_lz4_legacy(&frame).expect("decodes"), data);
    }

    #[test]
    fn lz4_bad_trailer_and_truncation() {
        let data = sample_kernel();
        let mut frame = legacy_frame(&data, 64 << 10, true);
        let n = frame.len();
        frame[n - 4..].copy_from_slice(&7u32.to_le_bytes());
        assert!(matches!(
            decompress_lz4_legacy(&frame),
            Err(BzImageError::SizeMismatch { expected: 7, .. })
        ));
        let frame = legacy_frame(&data, 64 << 10, false);
        assert!(decompress_lz4_legacy(&frame[..frame.len() - 9]).is_err());
        assert!(decompress_lz4_legacy(b"\x02\x21\x4c\x18\xff\xff\xff\x7f\0\0").is_err());
        assert!(decompress_lz4_legacy(b"junk").is_err());
    }

    #[test]
    fn lz4_corrupt_block_is_an_error() {
        let mut frame = legacy_frame(&[7u8; 10_000], 8 << 20, false);
        // Point the first match offset far behind the start.
        let n = frame.len();
        frame[n - 8..].fill(0xff);
        assert!(decompress_lz4_legacy(&frame).is_err());
    }

    #[test]
    fn extracts_from_synthetic_bzimage() {
        let kernel = sample_kernel();
        let img = bzimage(27, &legacy_frame(&kernel, 1 << 20, true));
        let h = parse_header(&img).expect("header");
        assert_eq!(h.setup_sects, 27);
        assert_eq!(h.payload_offset, 100);
        let (vmlinux, info) = extract_vmlinux(&img).expect("extract");
        assert_eq!(vmlinux, kernel);
        assert_eq!(info.pvh_entry, Some(0x0100_0850));
    }

    #[test]
    fn setup_sects_zero_means_four() {
        let kernel = sample_kernel();
        let img = bzimage(4, &legacy_frame(&kernel, 1 << 20, true));
        let mut zero = img.clone();
        zero[0x1f1] = 0;
        assert_eq!(
            payload(&zero).expect("payload"),
            payload(&img).expect("payload")
        );
    }

    #[test]
    fn header_errors() {
        assert!(matches!(
            parse_header(&[0; 100]),
            Err(BzImageError::NotBzImage)
        ));
        let mut img = bzimage(4, b"\x1f\x8bxx");
        assert!(matches!(
            extract_vmlinux(&img),
            Err(BzImageError::UnsupportedCompression(Compression::Gzip))
        ));
        img[0x24c..0x250].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            payload(&img),
            Err(BzImageError::PayloadOutOfBounds)
        ));
        img[0x206..0x208].copy_from_slice(&0x0206u16.to_le_bytes());
        assert!(matches!(
            parse_header(&img),
            Err(BzImageError::OldProtocol(0x0206))
        ));
    }

    #[test]
    fn payload_that_is_not_elf() {
        let img = bzimage(4, &legacy_frame(b"hello world, not an elf", 1 << 20, true));
        assert!(matches!(extract_vmlinux(&img), Err(BzImageError::Elf(_))));
    }

    #[test]
    fn detects_compressions() {
        assert_eq!(detect(b"\xfd7zXZ\0"), Compression::Xz);
        assert_eq!(detect(b"\x28\xb5\x2f\xfd"), Compression::Zstd);
        assert_eq!(detect(b"BZh9"), Compression::Bzip2);
        assert_eq!(detect(b"\x89LZO"), Compression::Lzo);
        assert_eq!(detect(b"??"), Compression::Unknown);
    }

    proptest::proptest! {
        #[test]
        fn lz4_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut frame = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
            frame.extend(bytes);
            let _ = decompress_lz4_legacy(&frame);
        }

        #[test]
        fn header_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = extract_vmlinux(&bytes);
        }
    }
}
