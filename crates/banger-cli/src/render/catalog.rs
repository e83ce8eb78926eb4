//! What can be pulled by name, as a table (`image catalog`, `kernel catalog`).

use banger_proto::CatalogEntry;

use super::table::Table;

/// The catalog table; `images` adds the kernel column.
pub fn table(entries: &[CatalogEntry], images: bool) -> Table {
    let mut header = vec!["NAME", "SOURCE"];
    if images {
        header.push("KERNEL");
    }
    header.push("PULLED");
    let mut t = Table::new(&header);
    for entry in entries {
        let mut row = vec![entry.name.clone(), entry.source.clone()];
        if images {
            row.push(entry.kernel.clone().unwrap_or_else(|| "bundled".to_owned()));
        }
        row.push(if entry.pulled { "yes" } else { "no" }.to_owned());
        t.row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kernel: Option<&str>, pulled: bool) -> CatalogEntry {
        CatalogEntry {
            name: name.into(),
            source: "debootstrap bookworm (amd64)".into(),
            kernel: kernel.map(Into::into),
            pulled,
        }
    }

    #[test]
    fn images_show_their_kernel_and_whether_they_are_here() {
        let lines = table(
            &[
                entry("debian-bookworm", Some("debian-cloud"), true),
                entry("team", None, false),
            ],
            true,
        )
        .lines();
        assert!(lines[0].starts_with("NAME") && lines[0].contains("KERNEL"));
        assert!(lines[1].contains("debian-cloud") && lines[1].ends_with("yes"));
        assert!(lines[2].contains("bundled") && lines[2].ends_with("no"));
        let kernels = table(&[entry("debian-cloud", None, false)], false).lines();
        assert!(!kernels[0].contains("KERNEL"), "{kernels:?}");
    }
}
