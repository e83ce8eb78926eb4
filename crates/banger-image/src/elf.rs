//! Just enough ELF64 (little endian) to check a `vmlinux` and read kernel module metadata.
//!
//! Firecracker boots an uncompressed ELF `vmlinux`; after extracting one from a bzImage we
//! check that it is an x86-64 executable and whether it carries the PVH entry note
//! (`Xen`, type 18), which lets a VMM enter the kernel in 32-bit protected mode directly.
//! Kernel modules keep their `depends=` list in the `.modinfo` section, which is how this crate
//! orders modules when a package ships no `modules.dep`. Every offset is bounds checked; a
//! malformed file is an error, never a panic.

/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
/// `e_type` of an executable.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a relocatable object (kernel modules).
pub const ET_REL: u16 = 1;
/// Xen note type carrying the 32-bit PVH entry point (`XEN_ELFNOTE_PHYS32_ENTRY`).
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

const SHT_NOTE: u32 = 7;
const PT_NOTE: u32 = 4;
const PT_INTERP: u32 = 3;

/// A malformed or unexpected ELF file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// No ELF magic.
    #[error("not an ELF file")]
    NotElf,
    /// Not a 64-bit little-endian ELF.
    #[error("not a 64-bit little-endian ELF file")]
    Unsupported,
    /// A header or table points outside the file.
    #[error("ELF {what} out of bounds")]
    OutOfBounds {
        /// Which structure.
        what: &'static str,
    },
    /// The file is not an x86-64 executable.
    #[error("ELF is not an x86-64 executable (type {e_type}, machine {machine})")]
    NotX86Executable {
        /// `e_type`.
        e_type: u16,
        /// `e_machine`.
        machine: u16,
    },
}

/// A parsed ELF64 little-endian file header plus the raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct Elf<'a> {
    data: &'a [u8],
    /// `e_type`.
    pub e_type: u16,
    /// `e_machine`.
    pub machine: u16,
    /// `e_entry`.
    pub entry: u64,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
    shoff: u64,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

/// A section header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
}

/// One ELF note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note<'a> {
    /// Owner name without the trailing NUL (`Xen`, `GNU`, `Linux`).
    pub name: &'a [u8],
    /// Note type.
    pub kind: u32,
    /// Descriptor bytes.
    pub desc: &'a [u8],
}

pub(crate) fn slice<'d>(
    data: &'d [u8],
    off: u64,
    len: u64,
    what: &'static str,
) -> Result<&'d [u8], ElfError> {
    let start = usize::try_from(off).map_err(|_| ElfError::OutOfBounds { what })?;
    let len = usize::try_from(len).map_err(|_| ElfError::OutOfBounds { what })?;
    let end = start
        .checked_add(len)
        .ok_or(ElfError::OutOfBounds { what })?;
    data.get(start..end).ok_or(ElfError::OutOfBounds { what })
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

impl<'a> Elf<'a> {
    /// Parses the file header.
    pub fn parse(data: &'a [u8]) -> Result<Self, ElfError> {
        if data.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err(ElfError::NotElf);
        }
        let header = slice(data, 0, 64, "header")?;
        if header[4] != 2 || header[5] != 1 {
            return Err(ElfError::Unsupported);
        }
        Ok(Elf {
            data,
            e_type: u16_at(header, 16),
            machine: u16_at(header, 18),
            entry: u64_at(header, 24),
            phoff: u64_at(header, 32),
            shoff: u64_at(header, 40),
            phentsize: u16_at(header, 54),
            phnum: u16_at(header, 56),
            shentsize: u16_at(header, 58),
            shnum: u16_at(header, 60),
            shstrndx: u16_at(header, 62),
        })
    }

    fn sections(&self) -> Result<Vec<Section>, ElfError> {
        if self.shoff == 0 || self.shnum == 0 {
            return Ok(Vec::new());
        }
        if self.shentsize < 64 {
            return Err(ElfError::OutOfBounds {
                what: "section header size",
            });
        }
        let size = u64::from(self.shentsize);
        (0..u64::from(self.shnum))
            .map(|i| {
                let sh = slice(self.data, self.shoff + i * size, 64, "section header")?;
                Ok(Section {
                    name: u32_at(sh, 0),
                    kind: u32_at(sh, 4),
                    offset: u64_at(sh, 24),
                    size: u64_at(sh, 32),
                })
            })
            .collect()
    }

    /// The contents of the section called `name`, if present.
    pub fn section(&self, name: &str) -> Result<Option<&'a [u8]>, ElfError> {
        let sections = self.sections()?;
        let Some(strtab) = sections.get(usize::from(self.shstrndx)) else {
            return Ok(None);
        };
        let strtab = slice(self.data, strtab.offset, strtab.size, "section names")?;
        for s in &sections {
            let start = usize::try_from(s.name).unwrap_or(usize::MAX);
            let Some(rest) = strtab.get(start..) else {
                continue;
            };
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            if &rest[..end] == name.as_bytes() {
                return slice(self.data, s.offset, s.size, "section").map(Some);
            }
        }
        Ok(None)
    }

    /// The program headers (none when the file has no usable table).
    fn program_headers(&self) -> Result<Vec<&'a [u8]>, ElfError> {
        if self.phoff == 0 || self.phentsize < 56 {
            return Ok(Vec::new());
        }
        (0..u64::from(self.phnum))
            .map(|i| {
                slice(
                    self.data,
                    self.phoff + i * u64::from(self.phentsize),
                    56,
                    "program header",
                )
            })
            .collect()
    }

    /// The program interpreter (`PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`) of a
    /// dynamically linked program; `None` for a static one.
    pub fn interpreter(&self) -> Result<Option<&'a str>, ElfError> {
        for ph in self.program_headers()? {
            if u32_at(ph, 0) == PT_INTERP {
                let raw = slice(self.data, u64_at(ph, 8), u64_at(ph, 32), "interpreter")?;
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                return std::str::from_utf8(&raw[..end]).map(Some).map_err(|_| {
                    ElfError::OutOfBounds {
                        what: "interpreter name",
                    }
                });
            }
        }
        Ok(None)
    }

    /// All notes, from `SHT_NOTE` sections, or from `PT_NOTE` segments when the file has no
    /// section headers.
    pub fn notes(&self) -> Result<Vec<Note<'a>>, ElfError> {
        let mut blobs = Vec::new();
        for s in self.sections()? {
            if s.kind == SHT_NOTE {
                blobs.push(slice(self.data, s.offset, s.size, "note section")?);
            }
        }
        if blobs.is_empty() {
            for ph in self.program_headers()? {
                if u32_at(ph, 0) == PT_NOTE {
                    blobs.push(slice(
                        self.data,
                        u64_at(ph, 8),
                        u64_at(ph, 32),
                        "note segment",
                    )?);
                }
            }
        }
        let mut notes = Vec::new();
        for blob in blobs {
            parse_notes(blob, &mut notes)?;
        }
        Ok(notes)
    }
}

fn align4(n: u64) -> u64 {
    n.div_ceil(4) * 4
}

fn parse_notes<'a>(blob: &'a [u8], out: &mut Vec<Note<'a>>) -> Result<(), ElfError> {
    let mut pos = 0u64;
    let len = blob.len() as u64;
    while pos + 12 <= len {
        let head = slice(blob, pos, 12, "note header")?;
        let namesz = u64::from(u32_at(head, 0));
        let descsz = u64::from(u32_at(head, 4));
        let kind = u32_at(head, 8);
        let name_off = pos + 12;
        let mut name = slice(blob, name_off, namesz, "note name")?;
        if let Some(stripped) = name.strip_suffix(&[0]) {
            name = stripped;
        }
        let desc_off = name_off + align4(namesz);
        let desc = slice(blob, desc_off, descsz, "note descriptor")?;
        out.push(Note { name, kind, desc });
        pos = desc_off + align4(descsz);
    }
    Ok(())
}

/// What [`check_vmlinux`] learned about a kernel ELF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmlinuxInfo {
    /// ELF entry point (64-bit boot protocol).
    pub entry: u64,
    /// PVH 32-bit entry point, when the kernel has the Xen PVH note.
    pub pvh_entry: Option<u32>,
}

/// Checks that `data` is an x86-64 executable ELF and reads its entry points.
pub fn check_vmlinux(data: &[u8]) -> Result<VmlinuxInfo, ElfError> {
    let elf = Elf::parse(data)?;
    if elf.e_type != ET_EXEC || elf.machine != EM_X86_64 {
        return Err(ElfError::NotX86Executable {
            e_type: elf.e_type,
            machine: elf.machine,
        });
    }
    let pvh_entry = elf
        .notes()?
        .iter()
        .find(|n| n.name == b"Xen" && n.kind == XEN_ELFNOTE_PHYS32_ENTRY && n.desc.len() >= 4)
        .map(|n| u32_at(n.desc, 0));
    Ok(VmlinuxInfo {
        entry: elf.entry,
        pvh_entry,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal ELF64 with the given type and named sections (plus `.shstrtab`).
    pub(crate) fn build_elf(e_type: u16, sections: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut data = vec![0u8; 64];
        data[..4].copy_from_slice(b"\x7fELF");
        data[4] = 2;
        data[5] = 1;
        data[6] = 1;
        data[16..18].copy_from_slice(&e_type.to_le_bytes());
        data[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        data[24..32].copy_from_slice(&0x100_0000u64.to_le_bytes());
        let mut strtab = vec![0u8];
        let mut headers = vec![[0u8; 64]];
        for (name, kind, body) in sections {
            let name_off = strtab.len() as u32;
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
            let off = data.len() as u64;
            data.extend_from_slice(body);
            let mut sh = [0u8; 64];
            sh[0..4].copy_from_slice(&name_off.to_le_bytes());
            sh[4..8].copy_from_slice(&kind.to_le_bytes());
            sh[24..32].copy_from_slice(&off.to_le_bytes());
            sh[32..40].copy_from_slice(&(body.len() as u64).to_le_bytes());
            headers.push(sh);
        }
        let name_off = strtab.len() as u32;
        strtab.extend_from_slice(b".shstrtab\0");
        let off = data.len() as u64;
        data.extend_from_slice(&strtab);
        let mut sh = [0u8; 64];
        sh[0..4].copy_from_slice(&name_off.to_le_bytes());
        sh[4..8].copy_from_slice(&3u32.to_le_bytes());
        sh[24..32].copy_from_slice(&off.to_le_bytes());
        sh[32..40].copy_from_slice(&(strtab.len() as u64).to_le_bytes());
        headers.push(sh);
        while !data.len().is_multiple_of(8) {
            data.push(0);
        }
        let shoff = data.len() as u64;
        for h in &headers {
            data.extend_from_slice(h);
        }
        data[40..48].copy_from_slice(&shoff.to_le_bytes());
        data[58..60].copy_from_slice(&64u16.to_le_bytes());
        data[60..62].copy_from_slice(&(headers.len() as u16).to_le_bytes());
        data[62..64].copy_from_slice(&((headers.len() - 1) as u16).to_le_bytes());
        data
    }

    pub(crate) fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(name);
        n.push(0);
        while n.len() % 4 != 0 {
            n.push(0);
        }
        n.extend_from_slice(desc);
        while n.len() % 4 != 0 {
            n.push(0);
        }
        n
    }

    #[test]
    fn vmlinux_with_pvh_note() {
        let mut notes = note(b"GNU", 3, &[1, 2, 3]);
        notes.extend(note(
            b"Xen",
            XEN_ELFNOTE_PHYS32_ENTRY,
            &0x0100_0850u64.to_le_bytes(),
        ));
        let elf = build_elf(ET_EXEC, &[(".notes", SHT_NOTE, &notes)]);
        let info = check_vmlinux(&elf).expect("valid");
        assert_eq!(info.entry, 0x100_0000);
        assert_eq!(info.pvh_entry, Some(0x0100_0850));
    }

    #[test]
    fn vmlinux_without_pvh() {
        let elf = build_elf(ET_EXEC, &[]);
        assert_eq!(check_vmlinux(&elf).expect("valid").pvh_entry, None);
    }

    #[test]
    fn rejects_relocatable_and_garbage() {
        let elf = build_elf(ET_REL, &[]);
        assert!(matches!(
            check_vmlinux(&elf),
            Err(ElfError::NotX86Executable { e_type: ET_REL, .. })
        ));
        assert_eq!(check_vmlinux(b"MZ\x90\0").err(), Some(ElfError::NotElf));
        assert!(check_vmlinux(b"\x7fELF").is_err());
    }

    #[test]
    fn section_lookup_and_truncation() {
        let elf = build_elf(ET_REL, &[(".modinfo", 1, b"depends=a,b\0")]);
        let parsed = Elf::parse(&elf).expect("parse");
        assert_eq!(
            parsed.section(".modinfo").expect("ok"),
            Some(b"depends=a,b\0".as_slice())
        );
        assert_eq!(parsed.section(".nope").expect("ok"), None);
        // Cut the file inside the section header table: an error, not a panic.
        let cut = &elf[..elf.len() - 10];
        assert!(
            Elf::parse(cut)
                .expect("header ok")
                .section(".modinfo")
                .is_err()
        );
    }

    #[test]
    fn notes_out_of_bounds_is_an_error() {
        let mut bad = note(b"Xen", 18, &[0; 8]);
        bad[4..8].copy_from_slice(&1000u32.to_le_bytes());
        let elf = build_elf(ET_EXEC, &[(".notes", SHT_NOTE, &bad)]);
        assert!(check_vmlinux(&elf).is_err());
    }

    #[test]
    fn interpreter_of_host_programs() {
        let sh = std::fs::read("/bin/sh").unwrap();
        let interp = Elf::parse(&sh).unwrap().interpreter().unwrap();
        assert!(
            interp.is_some_and(|i| i.starts_with('/') && i.contains("ld-")),
            "{interp:?}"
        );
        // No program headers (as in a static program without PT_INTERP): no interpreter.
        let mut no_ph = sh.clone();
        no_ph[56..58].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(Elf::parse(&no_ph).unwrap().interpreter().unwrap(), None);
    }
}
