//! Warm snapshots as a table (`image snapshots`).

use banger_proto::SnapshotInfo;

use super::table::Table;
use super::vm_inspect::bytes;

/// What `image snapshots` prints when there are none.
pub const EMPTY_HINT: &str =
    "no warm snapshots yet; they are saved when the first VM of an image and size boots";

/// How many characters of a class key the table shows (`--json` has it whole).
const KEY_SHOWN: usize = 12;

/// The `image snapshots` table.
pub fn table(snapshots: &[SnapshotInfo]) -> Table {
    let mut t = Table::new(&["IMAGE", "CLASS", "MEMORY", "VCPU", "SIZE", "CREATED"]);
    for s in snapshots {
        t.row(vec![
            s.image.clone().unwrap_or_else(|| "(deleted)".to_owned()),
            s.key.chars().take(KEY_SHOWN).collect(),
            bytes(s.memory_mib << 20),
            s.vcpu.map_or_else(|| "-".to_owned(), |v| v.to_string()),
            bytes(s.bytes),
            s.created_at.clone(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(image: Option<&str>, vcpu: Option<u32>) -> SnapshotInfo {
        SnapshotInfo {
            key: "0123456789abcdef0123".into(),
            image_id: "img1".into(),
            image: image.map(str::to_owned),
            memory_mib: 1024,
            vcpu,
            bytes: 300 << 20,
            created_at: "2026-12-03T10:00:00Z".into(),
        }
    }

    #[test]
    fn rows_name_the_image_or_say_it_is_gone() {
        let lines = table(&[
            snapshot(Some("debian-bookworm"), Some(2)),
            snapshot(None, None),
        ])
        .lines();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["IMAGE", "CLASS", "MEMORY", "VCPU", "SIZE", "CREATED"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "debian-bookworm",
                "0123456789ab",
                "1.0",
                "GiB",
                "2",
                "300.0",
                "MiB",
                "2026-12-03T10:00:00Z"
            ]
        );
        assert!(lines[2].starts_with("(deleted)"), "{}", lines[2]);
        assert_eq!(lines[2].split_whitespace().nth(4), Some("-"));
    }
}
