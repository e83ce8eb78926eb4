//! `image pull REF` against a real registry (Debian's docker-registry on loopback), on a
//! simulated host: layered images with whiteouts, an opaque dir and a zstd layer, an index,
//! hostile images, a registry behind basic auth. The pull needs no guest, so no root and no
//! VMM; the result is read back out of the built ext4 with debugfs.

mod fakehost;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use banger_daemon::DaemonContext;
use banger_daemon::images::pull::pull_image;
use banger_image::ext4;
use banger_model::{ImageRecord, KernelRecord, Size};
use banger_proto::{Operation, OperationState};
use banger_testkit::oci::*;
use fakehost::*;

/// Registers the catalog kernel OCI images boot with, so a pull does not build one.
fn seed_default_kernel(host: &Host, ctx: &DaemonContext) {
    let dir = host.layout.kernels_dir().join("debian-cloud");
    std::fs::create_dir_all(&dir).expect("kernel dir");
    let vmlinux = dir.join("vmlinux");
    std::fs::write(&vmlinux, banger_testkit::fakes::stand_in_vmlinux()).expect("vmlinux");
    ctx.store()
        .kernels()
        .insert(&KernelRecord {
            id: "k-default".into(),
            name: "debian-cloud".into(),
            version: None,
            source: "test".into(),
            vmlinux_path: vmlinux,
            initrd_path: None,
            created_at: "2026-12-02T00:00:00Z".into(),
        })
        .expect("kernel");
}

fn bed(config: impl FnOnce(&mut banger_model::Config)) -> (Host, DaemonContext) {
    let mut host = Host::new();
    config(&mut host.config);
    let ctx = host.daemon();
    ctx.set_docker_config(None);
    seed_default_kernel(&host, &ctx);
    (host, ctx)
}

async fn pull(ctx: &DaemonContext, reference: &str, name: Option<&str>) -> Operation {
    let op = pull_image(ctx, reference, name.map(str::to_owned))
        .await
        .expect("pull accepted");
    finish(ctx, op).await
}

fn error_of(op: &Operation) -> String {
    assert_eq!(op.state, OperationState::Failed, "{op:?}");
    op.error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

/// Every path under the host's root except the store's files.
fn snapshot(host: &Host) -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            // The store changes; the staging root stays (empty, as for registrations).
            if name.contains(".db") || e.path().ends_with("state/staging") {
                if name == "staging" {
                    walk(&e.path(), out);
                }
                continue;
            }
            out.insert(e.path());
            if e.file_type().expect("type").is_dir() {
                walk(&e.path(), out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(host._dir.path(), &mut out);
    out
}

fn debugfs_ls(image: &Path, dir: &str) -> Vec<String> {
    let out = Command::new("debugfs")
        .args(["-R", &format!("ls -p {dir}")])
        .arg(image)
        .output()
        .expect("debugfs");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('/').nth(5).map(str::to_owned))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .collect();
    names.sort();
    names
}

fn read(image: &Path, path: &str) -> String {
    String::from_utf8(ext4::read_file(image, path).expect(path)).expect("utf8")
}

fn base_layer() -> Vec<u8> {
    tar_layer(&[
        E::Dir("bin/"),
        E::File("bin/sh", b"stand-in shell\n"),
        E::Dir("etc/"),
        E::File("etc/marker", b"base\n"),
        E::File("etc/gone", b"whited out\n"),
        E::Dir("etc/ssh/"),
        E::File("etc/ssh/ssh_host_ed25519_key", b"baked-in key\n"),
        E::Dir("opq/"),
        E::File("opq/lower", b"lower\n"),
        E::Dir("opq/lowerdir/"),
        E::File("opq/lowerdir/deep", b"deep\n"),
        E::Dir("root/"),
        E::File("root/.profile", b"# profile\n"),
        E::Owned("srv-data", b"owned\n", 1234, 4321),
        E::Dir("usr/"),
        E::Dir("usr/local/"),
        E::Dir("usr/local/bin/"),
    ])
}

fn upper_layer() -> Vec<u8> {
    tar_layer(&[
        E::File("etc/.wh.gone", b""),
        E::File("opq/.wh..wh..opq", b""),
        E::File("opq/upper", b"upper\n"),
        E::Hard("opq/upper-link", "opq/upper"),
    ])
}

fn top_layer() -> Vec<u8> {
    tar_layer(&[E::File("etc/marker", b"top\n")])
}

/// Pushes the three-layer test image (gzip, zstd, plain) as `repo:tag`.
fn push_layered(registry: &Registry, scratch: &Path, repo: &str, tag: &str) {
    let mut layout = Layout::new(&scratch.join(format!("{repo}-{tag}").replace('/', "-")));
    let m = layout.manifest(
        &[
            (base_layer(), Z::Gzip),
            (upper_layer(), Z::Zstd),
            (top_layer(), Z::None),
        ],
        host_arch(),
        &["PATH=/usr/bin:/bin", "GREETING=hello world"],
    );
    layout.tag(&m, tag);
    registry.push(&layout.dir, tag, repo, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layered_image_is_flattened_into_rootfs_and_work_seed_with_its_config() {
    let registry = Registry::start(None);
    let scratch = tempfile::tempdir().expect("scratch");
    push_layered(&registry, scratch.path(), "test/app", "1");
    let (host, ctx) = bed(|_| {});
    let reference = format!("{}/test/app:1", registry.host());

    let op = pull(&ctx, &reference, None).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let layer_stages: Vec<_> = op
        .stages
        .iter()
        .filter(|s| s.name.starts_with("layer "))
        .collect();
    assert_eq!(layer_stages.len(), 3, "{op:?}");
    assert!(
        layer_stages[0].name.starts_with("layer 1/3 "),
        "{:?}",
        layer_stages[0]
    );
    assert!(
        layer_stages
            .iter()
            .all(|s| s.detail.as_deref().is_some_and(|d| d.contains("MiB"))),
        "bytes per layer: {layer_stages:?}"
    );

    let image: ImageRecord = ctx.store().images().resolve("app-1").expect("record");
    assert_eq!(image.source, reference);
    assert!(
        image
            .digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert_eq!(image.kernel_name.as_deref(), Some("debian-cloud"));
    let run = image.oci_config.clone().expect("run config recorded");
    assert_eq!(run.env, ["PATH=/usr/bin:/bin", "GREETING=hello world"]);
    assert_eq!(run.working_dir.as_deref(), Some("/srv"));
    assert_eq!(run.entrypoint, ["/bin/sh", "-c"]);
    assert_eq!(run.cmd, ["cat /etc/marker"]);

    let rootfs = &image.rootfs_path;
    assert_eq!(read(rootfs, "/etc/marker"), "top\n");
    // No sshd in the image: banger's OpenSSH bundle (from the host's) is in it, with its loader.
    let sshd = ext4::stat(rootfs, "/usr/local/lib/banger/ssh/bin/sshd")
        .expect("stat")
        .expect("the bundle's sshd");
    assert_eq!(
        (sshd.mode, sshd.size),
        (
            0o755,
            std::fs::metadata("/usr/sbin/sshd")
                .expect("host sshd")
                .len()
        )
    );
    assert!(
        ext4::stat(rootfs, "/usr/local/lib/banger/ssh/ld.so")
            .expect("stat")
            .is_some()
    );
    assert!(
        ext4::stat(rootfs, "/etc/gone").expect("stat").is_none(),
        "whited out"
    );
    assert_eq!(
        debugfs_ls(rootfs, "/opq"),
        ["upper", "upper-link"],
        "the opaque dir holds only the upper layer's files"
    );
    assert_eq!(read(rootfs, "/opq/upper-link"), "upper\n");
    let owned = ext4::stat(rootfs, "/srv-data")
        .expect("stat")
        .expect("exists");
    assert_eq!((owned.uid, owned.gid), (1234, 4321), "ownership kept");
    let agent = ext4::stat(rootfs, "/usr/local/bin/banger-agent")
        .expect("stat")
        .expect("agent injected");
    assert_eq!(agent.mode & 0o777, 0o755);
    assert!(
        ext4::stat(rootfs, "/etc/ssh/ssh_host_ed25519_key")
            .expect("stat")
            .is_none(),
        "baked-in host keys are removed: every VM gets its own"
    );
    assert_eq!(
        debugfs_ls(rootfs, "/root"),
        Vec::<String>::new(),
        "/root is a mount point"
    );
    let seed = image.work_seed_path.as_deref().expect("work seed");
    assert_eq!(read(seed, "/.profile"), "# profile\n");

    // The blobs are cached and shared: a second pull of the same image downloads nothing.
    let blobs = host.layout.cache_dir.join("oci/blobs/sha256");
    assert_eq!(std::fs::read_dir(&blobs).expect("cache").count(), 3);
    let op = pull(&ctx, &reference, Some("app-again")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let cached = op
        .stages
        .iter()
        .filter(|s| s.detail.as_deref().is_some_and(|d| d.ends_with("(cached)")))
        .count();
    assert_eq!(cached, 3, "{op:?}");

    // A corrupted cache entry fails the next pull and is dropped from the cache.
    let victim = std::fs::read_dir(&blobs)
        .expect("cache")
        .next()
        .expect("a blob")
        .expect("entry")
        .path();
    std::fs::write(&victim, b"corrupted").expect("corrupt");
    let err = error_of(&pull(&ctx, &reference, Some("app-corrupt")).await);
    assert!(err.contains("does not match its digest"), "{err}");
    assert!(!victim.exists(), "the bad blob is removed from the cache");
    assert!(
        ctx.store()
            .images()
            .get_by_name("app-corrupt")
            .expect("get")
            .is_none()
    );

    // Names are checked up front.
    let taken = pull_image(&ctx, &reference, Some("app-1".into())).await;
    assert!(taken.is_err_and(|e| e.to_string().contains("already exists")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_resolves_to_the_host_platform() {
    let registry = Registry::start(None);
    let scratch = tempfile::tempdir().expect("scratch");
    let mut layout = Layout::new(&scratch.path().join("multi"));
    let other = layout.manifest(
        &[(
            tar_layer(&[
                E::Dir("bin/"),
                E::File("bin/sh", b"sh\n"),
                E::Dir("etc/"),
                E::File("etc/marker", b"other\n"),
            ]),
            Z::Gzip,
        )],
        other_arch(),
        &[],
    );
    let ours = layout.manifest(
        &[(
            tar_layer(&[
                E::Dir("bin/"),
                E::File("bin/sh", b"sh\n"),
                E::Dir("etc/"),
                E::File("etc/marker", b"ours\n"),
            ]),
            Z::Gzip,
        )],
        host_arch(),
        &[],
    );
    let index = layout.index(&[other, ours]);
    layout.tag(&index, "multi");
    registry.push(&layout.dir, "multi", "test/multi", true);
    let (_host, ctx) = bed(|_| {});

    let reference = format!("{}/test/multi:multi", registry.host());
    let op = pull(&ctx, &reference, Some("multi")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let image = ctx.store().images().resolve("multi").expect("record");
    assert_eq!(read(&image.rootfs_path, "/etc/marker"), "ours\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_images_fail_naming_the_entry_and_leave_nothing() {
    let registry = Registry::start(None);
    let scratch = tempfile::tempdir().expect("scratch");
    // A directory outside the daemon's dirs that the images try to reach.
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("victim"), b"keep").expect("victim");
    let out = outside.path().display().to_string();
    let victim = format!("{out}/victim");
    let bomb_data = vec![0u8; 40 << 20];
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        (
            "dotdot",
            vec![tar_layer(&[E::File("../../escape", b"x")])],
            "../../escape",
        ),
        (
            "absolute",
            vec![tar_layer(&[E::File("/etc/abs", b"x")])],
            "/etc/abs",
        ),
        (
            "write-through-symlink",
            vec![
                tar_layer(&[E::Sym("evil", &out)]),
                tar_layer(&[E::File("evil/victim", b"pwned")]),
            ],
            "evil/victim",
        ),
        (
            "whiteout-through-symlink",
            vec![
                tar_layer(&[E::Sym("evil", &out)]),
                tar_layer(&[E::File("evil/.wh.victim", b"")]),
            ],
            "evil/.wh.victim",
        ),
        (
            "opaque-through-symlink",
            vec![
                tar_layer(&[E::Sym("evil", &out)]),
                tar_layer(&[E::File("evil/.wh..wh..opq", b"")]),
            ],
            "evil/.wh..wh..opq",
        ),
        (
            "hardlink-out",
            vec![tar_layer(&[E::Hard("stolen", &victim)])],
            "stolen",
        ),
        (
            "hardlink-dotdot",
            vec![tar_layer(&[E::Hard("stolen2", "../../../victim")])],
            "stolen2",
        ),
        (
            "bomb",
            vec![tar_layer(&[E::File("zeros", &bomb_data)])],
            "zeros",
        ),
    ];
    let (host, ctx) = bed(|c| c.oci_max_unpacked_size = Some(Size::from_mib(16)));
    for (tag, layers, _) in &cases {
        let mut layout = Layout::new(&scratch.path().join(tag));
        let layers: Vec<_> = layers.iter().map(|l| (l.clone(), Z::Gzip)).collect();
        let m = layout.manifest(&layers, host_arch(), &[]);
        layout.tag(&m, tag);
        registry.push(&layout.dir, tag, "test/hostile", false);
    }
    let before = snapshot(&host);
    for (tag, _, entry) in &cases {
        let reference = format!("{}/test/hostile:{tag}", registry.host());
        let err = error_of(&pull(&ctx, &reference, Some(tag)).await);
        assert!(
            err.contains(&format!("{entry:?}")),
            "{tag}: {err:?} names {entry:?}"
        );
        if *tag == "bomb" {
            assert!(err.contains("oci_max_unpacked_size"), "{err}");
        }
        assert!(
            ctx.store()
                .images()
                .get_by_name(tag)
                .expect("get")
                .is_none(),
            "{tag}: no record"
        );
        assert_eq!(
            snapshot(&host),
            before,
            "{tag}: nothing left in the daemon's dirs"
        );
        let names: Vec<_> = std::fs::read_dir(outside.path())
            .expect("outside")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["victim"], "{tag}: nothing written outside");
        assert_eq!(
            std::fs::read(outside.path().join("victim")).expect("victim"),
            b"keep",
            "{tag}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_behind_basic_auth_needs_the_docker_config() {
    let registry = Registry::start(Some(("banger", "s3cret-pass")));
    let scratch = tempfile::tempdir().expect("scratch");
    push_layered(&registry, scratch.path(), "private/app", "1");
    let (host, ctx) = bed(|_| {});
    let reference = format!("{}/private/app:1", registry.host());

    let err = error_of(&pull(&ctx, &reference, Some("anon")).await);
    assert!(
        err.contains(&reference) && err.to_lowercase().contains("auth"),
        "a clear refusal: {err}"
    );
    assert!(
        ctx.store()
            .images()
            .get_by_name("anon")
            .expect("get")
            .is_none()
    );

    // `docker login` writes base64("user:password") under the registry's host:port.
    let docker = host.home.join(".docker");
    std::fs::create_dir_all(&docker).expect("docker dir");
    let auth = base64_encode(b"banger:s3cret-pass");
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .expect("config.json");
    ctx.set_docker_config(Some(docker.join("config.json")));
    let op = pull(&ctx, &reference, Some("private")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let image = ctx.store().images().resolve("private").expect("record");
    assert_eq!(read(&image.rootfs_path, "/etc/marker"), "top\n");
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_prune_tallies_then_empties_and_a_concurrent_pull_completes() {
    use banger_daemon::images::cache_prune::prune;
    let registry = Registry::start(None);
    let scratch = tempfile::tempdir().expect("scratch");
    push_layered(&registry, scratch.path(), "test/app", "1");
    let (host, ctx) = bed(|_| {});
    let blobs = host.layout.cache_dir.join("oci/blobs/sha256");

    let none = prune(&ctx, false, false)
        .await
        .expect("prune of a missing cache");
    assert_eq!((none.bytes_freed, none.blobs_freed), (0, 0));

    let reference = format!("{}/test/app:1", registry.host());
    let op = pull(&ctx, &reference, Some("a")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let on_disk: u64 = std::fs::read_dir(&blobs)
        .expect("cache")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    let dry = prune(&ctx, true, false).await.expect("dry run");
    assert!(dry.dry_run);
    assert_eq!((dry.bytes_freed, dry.blobs_freed), (on_disk, 3));
    assert_eq!(
        std::fs::read_dir(&blobs).expect("cache").count(),
        3,
        "nothing deleted"
    );

    // A pull started before the prune completes; the prune waits for it.
    let pulling = pull_image(&ctx, &reference, Some("b".into()))
        .await
        .expect("pull accepted");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ctx
        .operations()
        .get(&pulling.id)
        .expect("known")
        .stages
        .iter()
        .any(|s| s.name.starts_with("fetch"))
    {
        assert!(std::time::Instant::now() < deadline, "the pull never began");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let pruned = prune(&ctx, false, false).await.expect("prune");
    let op = finish(&ctx, pulling).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert_eq!((pruned.bytes_freed, pruned.blobs_freed), (on_disk, 3));
    assert!(!blobs.exists() || std::fs::read_dir(&blobs).expect("cache").count() == 0);
    let left: Vec<_> = std::fs::read_dir(&host.layout.cache_dir)
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|n| !n.starts_with(".oci-prune")),
        "{left:?}"
    );
    // Both images still boot from their own files.
    for name in ["a", "b"] {
        let image = ctx.store().images().resolve(name).expect("record");
        assert_eq!(read(&image.rootfs_path, "/etc/marker"), "top\n");
    }
}
