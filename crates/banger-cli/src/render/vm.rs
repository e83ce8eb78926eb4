//! VM records as a table (`vm list`) and as a field block (`vm show`).
//!
//! Records carry the image id; the caller passes the id → name map it fetched so tables show
//! names, falling back to the short id for images that are gone.

use std::collections::HashMap;

use banger_model::{Size, VmRecord};

use super::fields::Fields;
use super::short_id;
use super::table::Table;

/// What `vm list` prints when there are no VMs.
pub const EMPTY_HINT: &str =
    "no VMs yet; try `banger vm run -- echo hi` or `banger vm create --name web`";

fn image_label(images: &HashMap<String, String>, id: &str) -> String {
    images
        .get(id)
        .cloned()
        .unwrap_or_else(|| short_id(id).to_owned())
}

/// The `vm list` table.
pub fn table(vms: &[VmRecord], images: &HashMap<String, String>) -> Table {
    let mut t = Table::new(&[
        "NAME", "STATE", "IP", "VCPU", "MEMORY", "DISK", "IMAGE", "CREATED",
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
        .add("dns", vm.dns_name())
        .add("vcpu", vm.spec.vcpu.to_string())
        .add("memory", format!("{} MiB", vm.spec.memory_mib))
        .add("disk", vm.spec.disk_size.to_string())
        .add("nat", if vm.spec.nat { "yes" } else { "no" })
        .add("image", image_label(images, &vm.image_id))
        .opt("tap", vm.tap_name.clone())
        .add("dir", vm.dir.display().to_string())
        .opt("last error", vm.last_error.clone())
        .add("created", vm.created_at.clone())
        .add("updated", vm.updated_at.clone());
    f.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_model::{VmName, VmSpec, VmState};

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
        }
    }

    #[test]
    fn table_shows_names_sizes_and_image_names() {
        let images = HashMap::from([("feedfacecafe0000".to_owned(), "debian-bookworm".to_owned())]);
        let lines = table(&[vm("web")], &images).lines();
        assert_eq!(
            lines[0],
            "NAME  STATE    IP          VCPU  MEMORY  DISK  IMAGE            CREATED"
        );
        assert_eq!(
            lines[1],
            "web   running  172.16.0.2  2     2G      8G    debian-bookworm  2026-01-02T03:04:05Z"
        );
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
            "tap:        -",
            "memory:     2048 MiB",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }
}
