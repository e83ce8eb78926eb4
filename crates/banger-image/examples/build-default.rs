//! Builds the default kernel and image into a directory, for manual boots and test harnesses.
//!
//! ```text
//! cargo run -p banger-image --example build-default -- DEST [AUTHORIZED_KEYS]
//! ```
//!
//! Produces `DEST/kernels/debian-cloud/` and `DEST/images/debian-bookworm/` (with
//! `/sbin/banger-init` = [`banger_image::guest_init::FAST_INIT`], and the given public keys as
//! `/root/.ssh/authorized_keys` in the work seed). Cached: a second run is a no-op.
//! Needs root, debootstrap and the host's Debian mirror.

use std::path::{Path, PathBuf};
use std::time::Instant;

use banger_image::{Catalog, ExtraFile, Progress, build_image, build_kernel, guest_init, mirror};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let dest = PathBuf::from(
        args.next()
            .ok_or("usage: build-default DEST [AUTHORIZED_KEYS]")?,
    );
    let keys = args.next().map(PathBuf::from);
    if !dest.is_absolute() {
        return Err("DEST must be absolute".into());
    }
    let catalog = Catalog::builtin()?;
    let recipe = catalog.image("debian-bookworm").ok_or("no default image")?;
    let krecipe = catalog.kernel(&recipe.kernel).ok_or("no kernel")?;
    let m = mirror::resolve(None, Path::new("/etc/apt"), &recipe.suite)?;
    let started = Instant::now();
    let mut show = |p: Progress<'_>| {
        if let Progress::Stage(s) = p {
            eprintln!("[{:>6.1}s] {s}", started.elapsed().as_secs_f64());
        }
    };
    let kernel = build_kernel(
        krecipe,
        &m,
        &dest.join("kernels").join(&krecipe.name),
        &mut show,
    )?;

    let files = tempfile::tempdir()?;
    let init = files.path().join("banger-init");
    std::fs::write(&init, guest_init::FAST_INIT)?;
    let mut extra = vec![ExtraFile {
        guest_path: "/sbin/banger-init".into(),
        host_path: init,
        mode: 0o755,
    }];
    if let Some(keys) = keys {
        extra.push(ExtraFile {
            guest_path: "/root/.ssh/authorized_keys".into(),
            host_path: keys,
            mode: 0o600,
        });
    }
    let image = build_image(
        recipe,
        &m,
        &dest.join("images").join(&recipe.name),
        &extra,
        &mut show,
    )?;
    println!("vmlinux   {}", kernel.vmlinux.display());
    println!("bzimage   {}", kernel.bzimage.display());
    println!("initrd    {}", kernel.initrd.display());
    println!("modules   {}", kernel.modules_dir.display());
    println!("rootfs    {}", image.rootfs_ext4.display());
    println!("work-seed {}", image.work_seed_ext4.display());
    Ok(())
}
