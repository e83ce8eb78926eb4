//! Kernel records as a table (`kernel list`) and a field block (`kernel show`).

use banger_model::KernelRecord;

use super::fields::Fields;
use super::table::Table;

/// What `kernel list` prints when there are no kernels.
pub const EMPTY_HINT: &str =
    "no kernels yet; pulling an image fetches its kernel, or run `banger kernel pull NAME`";

/// The `kernel list` table.
pub fn table(kernels: &[KernelRecord]) -> Table {
    let mut t = Table::new(&["NAME", "VERSION", "SOURCE", "CREATED"]);
    for kernel in kernels {
        t.row(vec![
            kernel.name.clone(),
            kernel.version.clone().unwrap_or_else(|| "-".to_owned()),
            kernel.source.clone(),
            kernel.created_at.clone(),
        ]);
    }
    t
}

/// The `kernel show` block.
pub fn show(kernel: &KernelRecord) -> String {
    let mut f = Fields::new();
    f.add("name", kernel.name.clone())
        .add("id", kernel.id.clone())
        .opt("version", kernel.version.clone())
        .add("source", kernel.source.clone())
        .add("vmlinux", kernel.vmlinux_path.display().to_string())
        .opt(
            "initrd",
            kernel.initrd_path.as_ref().map(|p| p.display().to_string()),
        )
        .add("created", kernel.created_at.clone());
    f.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> KernelRecord {
        KernelRecord {
            id: "k1".into(),
            name: "debian-cloud".into(),
            version: Some("6.1.0-27-cloud-amd64".into()),
            source: "catalog:debian-cloud".into(),
            vmlinux_path: "/s/kernels/debian-cloud/vmlinux".into(),
            initrd_path: None,
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn table_and_show() {
        let lines = table(&[kernel()]).lines();
        assert_eq!(
            lines[0],
            "NAME          VERSION               SOURCE                CREATED"
        );
        let text = show(&kernel());
        assert!(text.contains("initrd:  -"), "{text}");
        assert!(text.contains("version: 6.1.0-27-cloud-amd64"), "{text}");
    }
}
