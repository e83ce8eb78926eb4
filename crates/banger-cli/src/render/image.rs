//! Image records as a table (`image list`) and a field block (`image show`).

use banger_model::ImageRecord;

use super::fields::Fields;
use super::table::Table;

/// What `image list` prints when there are no images.
pub const EMPTY_HINT: &str =
    "no images yet; `banger image pull debian-bookworm` fetches the default one";

/// The `image list` table.
pub fn table(images: &[ImageRecord]) -> Table {
    let mut t = Table::new(&["NAME", "KERNEL", "SOURCE", "CREATED"]);
    for image in images {
        t.row(vec![
            image.name.clone(),
            image.kernel_name.clone().unwrap_or_else(|| "-".to_owned()),
            image.source.clone(),
            image.created_at.clone(),
        ]);
    }
    t
}

/// The `image show` block.
pub fn show(image: &ImageRecord) -> String {
    let mut f = Fields::new();
    f.add("name", image.name.clone())
        .add("id", image.id.clone())
        .add("source", image.source.clone())
        .opt("digest", image.digest.clone())
        .opt("kernel", image.kernel_name.clone())
        .add("rootfs", image.rootfs_path.display().to_string())
        .opt(
            "work seed",
            image
                .work_seed_path
                .as_ref()
                .map(|p| p.display().to_string()),
        )
        .add("created", image.created_at.clone());
    if let Some(run) = &image.oci_config {
        let words = |v: &[String]| (!v.is_empty()).then(|| shell_words(v));
        f.opt("entrypoint", words(&run.entrypoint))
            .opt("cmd", words(&run.cmd))
            .opt("workdir", run.working_dir.clone())
            .opt("user", run.user.clone());
        for e in &run.env {
            f.add("env", e.clone());
        }
    }
    f.render()
}

/// The one line `image cache prune` prints; with `snapshots` (`--snapshots`) it also says
/// what the warm snapshots took.
pub fn pruned(done: &banger_proto::PruneCacheResult, snapshots: bool) -> String {
    let verb = if done.dry_run { "would free" } else { "freed" };
    let noun = if done.blobs_freed == 1 {
        "blob"
    } else {
        "blobs"
    };
    let mut line = format!(
        "{verb} {} across {} {noun} in {}",
        super::vm_inspect::bytes(done.bytes_freed),
        done.blobs_freed,
        done.cache_dir.display()
    );
    if snapshots {
        let noun = if done.snapshots_freed == 1 {
            "snapshot"
        } else {
            "snapshots"
        };
        line.push_str(&format!(
            ", and {} in {} warm {noun}",
            super::vm_inspect::bytes(done.snapshot_bytes_freed),
            done.snapshots_freed
        ));
    }
    line
}

/// An argument vector as a shell would read it back: words with spaces or quotes are quoted.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageRecord {
        ImageRecord {
            id: "abc".into(),
            name: "debian-bookworm".into(),
            source: "catalog:debian-bookworm".into(),
            digest: None,
            rootfs_path: "/s/images/abc/rootfs.ext4".into(),
            work_seed_path: None,
            kernel_name: Some("debian-cloud".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
            oci_config: None,
        }
    }

    #[test]
    fn prune_line() {
        let mut done = banger_proto::PruneCacheResult {
            bytes_freed: 3 << 20,
            blobs_freed: 47,
            dry_run: false,
            cache_dir: "/c/oci".into(),
            snapshots_freed: 1,
            snapshot_bytes_freed: 2 << 30,
        };
        assert_eq!(
            pruned(&done, false),
            "freed 3.0 MiB across 47 blobs in /c/oci"
        );
        assert_eq!(
            pruned(&done, true),
            "freed 3.0 MiB across 47 blobs in /c/oci, and 2.0 GiB in 1 warm snapshot"
        );
        done.dry_run = true;
        done.blobs_freed = 1;
        assert!(pruned(&done, false).starts_with("would free 3.0 MiB across 1 blob in"));
    }

    #[test]
    fn table_and_show() {
        let lines = table(&[image()]).lines();
        assert_eq!(
            lines[0],
            "NAME             KERNEL        SOURCE                   CREATED"
        );
        assert!(lines[1].starts_with("debian-bookworm  debian-cloud  catalog:debian-bookworm"));
        let text = show(&image());
        assert!(text.contains("work seed: -"), "{text}");
        assert!(!text.contains("entrypoint"), "{text}");
        let mut oci = image();
        oci.oci_config = Some(banger_model::OciRunConfig {
            env: vec!["PATH=/usr/bin".into(), "A=b c".into()],
            working_dir: Some("/app".into()),
            user: None,
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec!["echo 'hi there'".into()],
        });
        let oci_text = show(&oci);
        for line in [
            "entrypoint: /bin/sh -c",
            r"cmd:        'echo '\''hi there'\'''",
            "workdir:    /app",
            "env:        PATH=/usr/bin",
            "env:        A=b c",
        ] {
            assert!(oci_text.contains(line), "{line:?} in {oci_text}");
        }
        assert!(
            text.contains("rootfs:    /s/images/abc/rootfs.ext4"),
            "{text}"
        );
    }
}
