//! Repositories: round trips, constraints, ordering, updates and user-facing lookups.

mod common;

use banger_model::{Size, VmName, VmState, Workspace};
use banger_store::{LookupError, Store, StoreError, open_read_only};
use common::{at, image, kernel, vm};
use rusqlite::Connection;
use tempfile::TempDir;

fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("banger.db")).expect("open the store");
    (dir, store)
}

#[test]
fn records_round_trip_with_every_field() {
    let (_dir, store) = store();
    let img = image("i1", "debian-bookworm");
    let mut bare_img = image("i2", "bare");
    bare_img.digest = None;
    bare_img.work_seed_path = None;
    bare_img.kernel_name = None;
    store.images().insert(&img).unwrap();
    store.images().insert(&bare_img).unwrap();
    assert_eq!(store.images().get("i1").unwrap(), Some(img.clone()));
    assert_eq!(store.images().get("i2").unwrap(), Some(bare_img.clone()));

    let mut full = vm("v1", "web", "i1");
    full.last_error = Some("boot \"timed\" out".to_owned());
    full.spec.disk_size = Size::from_bytes(8 * 1024 * 1024 * 1024 + 1);
    full.updated_at = at(5);
    let mut bare = vm("v2", "db", "i2");
    bare.guest_ip = None;
    bare.tap_name = None;
    bare.state = VmState::Created;
    bare.spec.nat = false;
    store.vms().insert(&full).unwrap();
    store.vms().insert(&bare).unwrap();
    assert_eq!(store.vms().get("v1").unwrap(), Some(full.clone()));
    assert_eq!(store.vms().get_by_name("db").unwrap(), Some(bare.clone()));
    assert_eq!(store.vms().get("nope").unwrap(), None);
    assert_eq!(
        store.vms().get_by_name("we").unwrap(),
        None,
        "names are exact"
    );

    let mut k = kernel("k1", "debian-cloud");
    k.initrd_path = Some("/var/lib/banger/kernels/debian-cloud/initrd.img".into());
    store.kernels().insert(&k).unwrap();
    let mut bare_k = kernel("k2", "plain");
    bare_k.version = None;
    store.kernels().insert(&bare_k).unwrap();
    assert_eq!(
        store.kernels().get_by_name("debian-cloud").unwrap(),
        Some(k)
    );
    assert_eq!(store.kernels().get("k2").unwrap(), Some(bare_k));
}

#[test]
fn taken_names_and_ids_are_typed_errors() {
    let (_dir, store) = store();
    store.images().insert(&image("i1", "deb")).unwrap();
    store.vms().insert(&vm("v1", "web", "i1")).unwrap();
    store.kernels().insert(&kernel("k1", "kern")).unwrap();

    let err = store.vms().insert(&vm("v2", "web", "i1")).unwrap_err();
    assert!(
        matches!(&err, StoreError::AlreadyExists { kind: "vm", name } if name == "web"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "vm \"web\" already exists");
    let err = store.images().insert(&image("i2", "deb")).unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { kind: "image", .. }),
        "{err:?}"
    );
    let err = store.kernels().insert(&kernel("k2", "kern")).unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { kind: "kernel", .. }),
        "{err:?}"
    );

    let err = store.vms().insert(&vm("v1", "other", "i1")).unwrap_err();
    assert!(
        matches!(&err, StoreError::IdTaken { kind: "vm", id } if id == "v1"),
        "{err:?}"
    );
    assert_eq!(store.vms().list().unwrap().len(), 1);
}

#[test]
fn a_vm_must_refer_to_a_stored_image() {
    let (_dir, store) = store();
    let err = store.vms().insert(&vm("v1", "web", "missing")).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::DanglingReference {
                kind: "vm",
                target: "image",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "vm \"web\" refers to an unknown image");
    assert!(store.vms().list().unwrap().is_empty());
}

#[test]
fn an_image_in_use_cannot_be_deleted() {
    let (_dir, store) = store();
    store.images().insert(&image("i1", "deb")).unwrap();
    store.vms().insert(&vm("v2", "web", "i1")).unwrap();
    store.vms().insert(&vm("v1", "api", "i1")).unwrap();
    let err = store.images().delete("i1").unwrap_err();
    match &err {
        StoreError::ImageInUse { id, vms } => {
            assert_eq!(id, "i1");
            assert_eq!(vms, &["api", "web"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "image i1 is used by vms api, web; delete them first"
    );
    assert!(store.images().get("i1").unwrap().is_some());

    assert!(store.vms().delete("v1").unwrap());
    assert!(store.vms().delete("v2").unwrap());
    assert!(!store.vms().delete("v2").unwrap(), "already gone");
    assert!(store.images().delete("i1").unwrap());
    assert!(!store.images().delete("i1").unwrap());
    store.kernels().insert(&kernel("k1", "kern")).unwrap();
    assert!(store.kernels().delete("k1").unwrap());
    assert!(store.kernels().list().unwrap().is_empty());
}

#[test]
fn lists_are_ordered_by_creation_then_name() {
    let (_dir, store) = store();
    for (id, name, secs) in [("a", "zeta", 10), ("b", "beta", 20), ("c", "alpha", 10)] {
        let mut k = kernel(id, name);
        k.created_at = at(secs);
        store.kernels().insert(&k).unwrap();
    }
    let names: Vec<String> = store
        .kernels()
        .list()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["alpha", "zeta", "beta"]);
}

#[test]
fn update_replaces_the_whole_record_and_nothing_else() {
    let (_dir, store) = store();
    store.images().insert(&image("i1", "deb")).unwrap();
    store.images().insert(&image("i2", "alpine")).unwrap();
    let original = vm("v1", "web", "i1");
    let other = vm("v2", "api", "i1");
    store.vms().insert(&original).unwrap();
    store.vms().insert(&other).unwrap();

    let mut changed = original.clone();
    changed.name = VmName::parse("web2").unwrap();
    changed.image_id = "i2".to_owned();
    changed.spec.vcpu = 4;
    changed.spec.memory_mib = 4096;
    changed.spec.disk_size = Size::from_gib(20);
    changed.spec.nat = false;
    changed.state = VmState::Stopped;
    changed.guest_ip = None;
    changed.tap_name = None;
    changed.dir = "/elsewhere".into();
    changed.last_error = Some("x".to_owned());
    changed.created_at = at(1);
    changed.updated_at = at(2);
    assert!(store.vms().update(&changed).unwrap());
    assert_eq!(store.vms().get("v1").unwrap(), Some(changed.clone()));
    assert_eq!(store.vms().get("v2").unwrap(), Some(other));

    let mut clash = changed.clone();
    clash.name = VmName::parse("api").unwrap();
    let err = store.vms().update(&clash).unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { kind: "vm", .. }),
        "{err:?}"
    );
    let mut dangling = changed.clone();
    dangling.image_id = "nope".to_owned();
    assert!(matches!(
        store.vms().update(&dangling),
        Err(StoreError::DanglingReference { .. })
    ));
    assert_eq!(store.vms().get("v1").unwrap(), Some(changed));

    assert!(!store.vms().update(&vm("ghost", "ghost", "i1")).unwrap());
    assert_eq!(store.vms().get("ghost").unwrap(), None);
}

#[test]
fn set_state_changes_state_error_and_updated_at_only() {
    let (_dir, store) = store();
    store.images().insert(&image("i1", "deb")).unwrap();
    let original = vm("v1", "web", "i1");
    store.vms().insert(&original).unwrap();

    assert!(
        store
            .vms()
            .set_state("v1", VmState::Error, Some("kvm missing"), &at(60))
            .unwrap()
    );
    let got = store.vms().get("v1").unwrap().unwrap();
    let mut expected = original.clone();
    expected.state = VmState::Error;
    expected.last_error = Some("kvm missing".to_owned());
    expected.updated_at = at(60);
    assert_eq!(got, expected);

    assert!(
        store
            .vms()
            .set_state("v1", VmState::Stopped, None, &at(61))
            .unwrap()
    );
    let got = store.vms().get("v1").unwrap().unwrap();
    assert_eq!(got.state, VmState::Stopped);
    assert_eq!(got.last_error, None);
    assert_eq!(got.created_at, original.created_at);
    assert!(
        !store
            .vms()
            .set_state("ghost", VmState::Running, None, &at(62))
            .unwrap()
    );
}

#[test]
fn values_sqlite_cannot_hold_are_refused_before_writing() {
    let (_dir, store) = store();
    store.images().insert(&image("i1", "deb")).unwrap();
    let mut huge = vm("v1", "web", "i1");
    huge.spec.memory_mib = u64::MAX;
    let err = store.vms().insert(&huge).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidValue {
                field: "vm.spec.memory_mib",
                ..
            }
        ),
        "{err:?}"
    );
    let mut zero = vm("v1", "web", "i1");
    zero.spec.vcpu = 0;
    let err = store.vms().insert(&zero).unwrap_err();
    assert!(
        matches!(err, StoreError::Sql { .. }),
        "CHECK (vcpu >= 1): {err:?}"
    );
    assert!(store.vms().list().unwrap().is_empty());
}

#[test]
fn rows_the_model_rejects_are_errors_not_silently_wrong_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("banger.db");
    let store = Store::open(&path).unwrap();
    store.images().insert(&image("i1", "deb")).unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO vms VALUES ('v1', 'Bad_Name', 'i1', 1, 512, 1024, 0, 'created', NULL, NULL,
         '/d', NULL, 't', 't', NULL)",
        [],
    )
    .unwrap();
    let err = store.vms().list().unwrap_err();
    assert!(matches!(err, StoreError::Sql { .. }), "{err:?}");
    assert_eq!(err.to_string(), "cannot list vms");
}

fn lookup_store() -> (TempDir, Store) {
    let (dir, store) = store();
    store
        .images()
        .insert(&image("i0", "deb"))
        .expect("insert image");
    for (id, name) in [
        ("1a2b3c4d5e", "ab1"),
        ("2b3c4d5e6f", "ab2"),
        ("9f8e7d6c5b", "web"),
        ("77aa88bb99", "9f8e7d6c5b"),
        ("c0ffee0000", "cafe"),
    ] {
        store.vms().insert(&vm(id, name, "i0")).expect("insert vm");
    }
    (dir, store)
}

#[test]
fn resolve_prefers_exact_id_then_exact_name_then_a_unique_prefix() {
    let (_dir, store) = lookup_store();
    let vms = store.vms();
    // "9f8e7d6c5b" is one VM's id and another VM's name: the id wins.
    assert_eq!(vms.resolve("9f8e7d6c5b").unwrap().name.as_str(), "web");
    assert_eq!(vms.resolve("web").unwrap().id, "9f8e7d6c5b");
    assert_eq!(vms.resolve("ab1").unwrap().id, "1a2b3c4d5e");
    // Unique prefixes of an id or of a name.
    assert_eq!(vms.resolve("c0f").unwrap().name.as_str(), "cafe");
    assert_eq!(vms.resolve("caf").unwrap().id, "c0ffee0000");
    assert_eq!(vms.resolve("1a").unwrap().name.as_str(), "ab1");
    assert_eq!(vms.resolve("we").unwrap().id, "9f8e7d6c5b");
}

#[test]
fn resolve_reports_ambiguity_with_sorted_candidates() {
    let (_dir, store) = lookup_store();
    let err = store.vms().resolve("ab").unwrap_err();
    assert_eq!(
        err.to_string(),
        "vm \"ab\" is ambiguous: matches ab1 (1a2b3c4d), ab2 (2b3c4d5e); \
         use more characters or the full id"
    );
    // "9f" prefixes one id and another name.
    match store.vms().resolve("9f").unwrap_err() {
        LookupError::Ambiguous {
            kind, candidates, ..
        } => {
            assert_eq!(kind, "vm");
            assert_eq!(candidates, ["9f8e7d6c5b (77aa88bb)", "web (9f8e7d6c)"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn resolve_reports_what_matched_nothing() {
    let (_dir, store) = lookup_store();
    for reference in ["zzz", "", "AB1", "ab1x"] {
        let err = store.vms().resolve(reference).unwrap_err();
        match &err {
            LookupError::NotFound { kind, reference: r } => {
                assert_eq!((*kind, r.as_str()), ("vm", reference));
            }
            other => panic!("{reference:?}: {other:?}"),
        }
    }
    let err = store.images().resolve("zzz").unwrap_err();
    assert!(
        err.to_string().starts_with("image \"zzz\" not found"),
        "{err}"
    );
}

#[test]
fn resolve_matches_like_wildcards_literally() {
    let (_dir, store) = store();
    for (id, name) in [
        ("id1", "a_b"),
        ("id2", "axb"),
        ("id3", "a%c"),
        ("id4", "abc"),
    ] {
        store.images().insert(&image(id, name)).unwrap();
    }
    assert_eq!(store.images().resolve("a_").unwrap().name, "a_b");
    assert_eq!(store.images().resolve("a%").unwrap().name, "a%c");
    match store.images().resolve("a").unwrap_err() {
        LookupError::Ambiguous { candidates, .. } => assert_eq!(candidates.len(), 4),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.images().resolve("%"),
        Err(LookupError::NotFound { .. })
    ));
    assert!(matches!(
        store.images().resolve("_"),
        Err(LookupError::NotFound { .. })
    ));
}

#[test]
fn a_read_only_store_reads_what_the_store_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("banger.db");
    {
        let store = Store::open(&path).unwrap();
        store.kernels().insert(&kernel("k1", "kern")).unwrap();
        store.images().insert(&image("i1", "deb")).unwrap();
        store.vms().insert(&vm("v1", "web", "i1")).unwrap();
    }
    let ro = open_read_only(&path).unwrap();
    assert_eq!(ro.path(), path);
    assert_eq!(
        ro.vms().get_by_name("web").unwrap(),
        Some(vm("v1", "web", "i1"))
    );
    assert_eq!(ro.images().resolve("d").unwrap().id, "i1");
    assert_eq!(ro.kernels().list().unwrap(), [kernel("k1", "kern")]);
}

fn workspace() -> Workspace {
    Workspace {
        guest_path: "/root/repo".into(),
        host_path: "/home/me/src/repo".into(),
        head: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        prepared_at: at(60),
    }
}

#[test]
fn a_vm_round_trips_with_and_without_a_workspace() {
    let (_dir, store) = store();
    store.images().insert(&image("i1", "deb")).unwrap();
    let bare = vm("v1", "bare", "i1");
    let mut with = vm("v2", "with", "i1");
    with.workspace = Some(workspace());
    store.vms().insert(&bare).unwrap();
    store.vms().insert(&with).unwrap();
    assert_eq!(store.vms().get("v1").unwrap(), Some(bare.clone()));
    assert_eq!(store.vms().get("v2").unwrap(), Some(with.clone()));

    // Set on one, cleared on the other, through update.
    let mut set = bare.clone();
    set.workspace = Some(workspace());
    let mut cleared = with.clone();
    cleared.workspace = None;
    assert!(store.vms().update(&set).unwrap());
    assert!(store.vms().update(&cleared).unwrap());
    assert_eq!(store.vms().list().unwrap(), [set, cleared]);
}

#[test]
fn a_malformed_workspace_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("banger.db");
    let store = Store::open(&path).unwrap();
    store.images().insert(&image("i1", "deb")).unwrap();
    store.vms().insert(&vm("v1", "web", "i1")).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE vms SET workspace_json = '{\"head\": 1}'", [])
        .unwrap();
    let err = store.vms().get("v1").unwrap_err();
    assert!(matches!(err, StoreError::Sql { .. }), "{err:?}");
    assert_eq!(err.to_string(), "cannot read vm");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("invalid workspace"), "{source}");
}
