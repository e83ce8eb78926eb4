//! VM records as a table (`vm list`) and as a field block (`vm show`).
//!
//! Records carry the image id; the caller passes the id → name map it fetched so tables show
//! names, falling back to the short id for images that are gone.

use std::collections::HashMap;

use banger_model::{Size, VmRecord, Workspace};

use super::fields::Fields;
use super::short_id;
use super::table::Table;

/// What `vm list` prints when there are no VMs.
pub const EMPTY_HINT: &str =
    "no VMs yet; try `banger vm run -- echo hi` or `banger vm create --name web`";

/// The reminder after an interactive session when the VM is still up.
pub fn still_running(name: &str) -> String {
    format!("vm {name} is still running; stop it with `banger vm stop {name}`")
}

fn image_label(images: &HashMap<String, String>, id: &str) -> String {
    images
        .get(id)
        .cloned()
        .unwrap_or_else(|| short_id(id).to_owned())
}

/// The WORKSPACE cell: the host repository's directory name and the short prepared commit.
fn workspace_label(workspace: Option<&Workspace>) -> String {
    workspace.map_or_else(
        || "-".to_owned(),
        |w| {
            let base = w.host_path.file_name().map_or_else(
                || w.host_path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            format!("{base}@{}", w.short_head())
        },
    )
}

/// The `vm list` table.
pub fn table(vms: &[VmRecord], images: &HashMap<String, String>) -> Table {
    let mut t = Table::new(&[
        "NAME",
        "STATE",
        "IP",
        "VCPU",
        "MEMORY",
        "DISK",
        "IMAGE",
        "WORKSPACE",
        "CREATED",
    ]);
    for vm in vms {
        t.row(vec![
            vm.name.to_string(),
            vm.state.to_string(),
            vm.guest_ip.clone().unwrap_or_else(|| "-".to_owned()),
            vm.spec.vcpu.to_string(),
            Size::from_mib(vm.spec.memory_mib).to_string(),
            vm.spec.disk_size.to_string(),
            image_label(images, &vm.image_id),
            workspace_label(vm.workspace.as_ref()),
            vm.created_at.clone(),
        ]);
    }
    t
}

/// The `vm show` block.
pub fn show(vm: &VmRecord, images: &HashMap<String, String>) -> String {
    let mut f = Fields::new();
    f.add("name", vm.name.to_string())
        .add("id", vm.id.clone())
        .add("state", vm.state.to_string())
        .opt("ip", vm.guest_ip.clone())
        // Answered by the daemon's vm zone while the VM runs.
        .add("dns", vm.dns_name())
        .add("vcpu", vm.spec.vcpu.to_string())
        .add("memory", format!("{} MiB", vm.spec.memory_mib))
        .add("disk", vm.spec.disk_size.to_string())
        .add("nat", if vm.spec.nat { "yes" } else { "no" })
        .add("image", image_label(images, &vm.image_id))
        .opt("tap", vm.tap_name.clone())
        .add("dir", vm.dir.display().to_string())
        .opt("last error", vm.last_error.clone());
    if let Some(w) = &vm.workspace {
        f.add(
            "workspace",
            format!(
                "{} from {} at {}",
                w.guest_path.display(),
                w.host_path.display(),
                w.short_head()
            ),
        );
    }
    f.add("created", vm.created_at.clone())
        .add("updated", vm.updated_at.clone());
    f.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_model::{VmName, VmSpec, VmState};

    #[test]
    fn the_reminder_names_the_stop_command() {
        assert_eq!(
            still_running("web"),
            "vm web is still running; stop it with `banger vm stop web`"
        );
    }

    fn vm(name: &str) -> VmRecord {
        VmRecord {
            id: "0123456789abcdef".into(),
            name: VmName::parse(name).unwrap(),
            image_id: "feedfacecafe0000".into(),
            spec: VmSpec {
                vcpu: 2,
                memory_mib: 2048,
                disk_size: Size::from_gib(8),
                nat: false,
            },
            state: VmState::Running,
            guest_ip: Some("172.16.0.2".into()),
            tap_name: None,
            dir: "/s/vms/0123".into(),
            last_error: None,
            created_at: "2026-01-02T03:04:05Z".into(),
            updated_at: "2026-01-02T03:04:05Z".into(),
            workspace: None,
        }
    }

    #[test]
    fn table_shows_names_sizes_and_image_names() {
        let images = HashMap::from([("feedfacecafe0000".to_owned(), "debian-bookworm".to_owned())]);
        let lines = table(&[vm("web")], &images).lines();
        assert_eq!(
            lines[0],
            "NAME  STATE    IP          VCPU  MEMORY  DISK  IMAGE            WORKSPACE  CREATED"
        );
        assert_eq!(
            lines[1],
            "web   running  172.16.0.2  2     2G      8G    debian-bookworm  -          2026-01-02T03:04:05Z"
        );
    }

    fn with_workspace(name: &str) -> VmRecord {
        VmRecord {
            workspace: Some(Workspace {
                guest_path: "/root/repo".into(),
                host_path: "/home/me/src/banger".into(),
                head: "0123456789abcdef0123456789abcdef01234567".into(),
                prepared_at: "2026-01-02T03:04:05Z".into(),
            }),
            ..vm(name)
        }
    }

    #[test]
    fn the_workspace_column_shows_the_repo_and_short_head() {
        let lines = table(&[with_workspace("web"), vm("db")], &HashMap::new()).lines();
        assert!(lines[0].contains(" WORKSPACE "), "{}", lines[0]);
        assert!(lines[1].contains(" banger@0123456 "), "{}", lines[1]);
        let col = lines[0].find("WORKSPACE").unwrap();
        assert_eq!(&lines[2][col..col + 2], "- ", "{}", lines[2]);
    }

    #[test]
    fn show_prints_the_workspace_only_when_set() {
        let text = show(&with_workspace("web"), &HashMap::new());
        assert!(
            text.lines().any(|l| l.starts_with("workspace:")
                && l.ends_with(" /root/repo from /home/me/src/banger at 0123456")),
            "{text}"
        );
        assert!(!show(&vm("web"), &HashMap::new()).contains("workspace"));
    }

    #[test]
    fn unknown_images_show_a_short_id() {
        let lines = table(&[vm("web")], &HashMap::new()).lines();
        assert!(lines[1].contains("feedface "), "{}", lines[1]);
    }

    #[test]
    fn show_lists_every_field() {
        let text = show(&vm("web"), &HashMap::new());
        for needle in [
            "name:",
            "dns:        web.vm",
            "nat:        no\n",
            "tap:        -",
            "memory:     2048 MiB",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }
}
