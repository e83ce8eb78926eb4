//! `scripts/make-release` against the code that reads its output: a release cut with fake
//! binaries and a fresh openssl key must parse, verify and stage; the same release checked
//! against another key must not.

use std::path::Path;
use std::process::Command;

use super::download::Downloader;
use super::manifest::Manifest;
use super::stage;
use super::verify::{ReleaseKey, Sums, VerifyError, sha256_hex};
use super::version::Version;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let pem = dir.join(format!("{name}.pem"));
    run(Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&pem));
    let public = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&pem));
    (pem, public)
}

#[test]
fn make_release_output_verifies_and_stages() {
    let dir = tempfile::tempdir().expect("dir");
    let bins = dir.path().join("bins");
    std::fs::create_dir_all(&bins).expect("bins");
    for bin in ["banger", "bangerd", "banger-agent"] {
        std::fs::write(bins.join(bin), format!("#!/bin/sh\necho {bin}\n")).expect("bin");
        run(Command::new("chmod").arg("755").arg(bins.join(bin)));
    }
    let (good, public) = key(dir.path(), "good");
    let (_, other) = key(dir.path(), "other");
    let out = dir.path().join("out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-release");
    for version in ["v1.0.0", "v1.1.0-rc.1"] {
        run(Command::new(&script)
            .arg(version)
            .arg(&out)
            .arg("--key")
            .arg(&good)
            .arg("--binaries")
            .arg(&bins));
    }

    let url = format!("file://{}/manifest.json", out.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let d = Downloader::new().expect("client");
    let text = rt.block_on(d.fetch(&url)).expect("manifest");
    let manifest = Manifest::parse(&url, &String::from_utf8_lossy(&text)).expect("parses");
    assert_eq!(
        manifest.latest_stable.as_deref(),
        Some("v1.0.0"),
        "a pre-release never becomes latest"
    );
    let selected = manifest.select(&url, None).expect("latest");
    assert_eq!(selected.version, Version::parse("v1.0.0").expect("v"));
    assert!(
        manifest
            .select(&url, Version::parse("v1.1.0-rc.1").as_ref())
            .is_ok()
    );

    let body = rt.block_on(d.fetch(&selected.sums_url)).expect("sums");
    let sig = rt.block_on(d.fetch(&selected.signature_url)).expect("sig");
    let sig = String::from_utf8_lossy(&sig);
    ReleaseKey::from_pem(&public)
        .expect("key")
        .verify(&body, &sig)
        .expect("make-release's signature verifies");
    assert_eq!(
        ReleaseKey::from_pem(&other)
            .expect("key")
            .verify(&body, &sig),
        Err(VerifyError::BadSignature)
    );
    let sums = Sums::parse(&String::from_utf8_lossy(&body)).expect("sums");
    let tarball = dir.path().join(&selected.tarball_name);
    let digest = rt
        .block_on(d.download(&selected.tarball_url, &tarball))
        .expect("tarball");
    sums.check(&selected.tarball_name, &digest).expect("listed");
    let staged = stage::unpack(&tarball, &dir.path().join("staged"), &sums).expect("stages");
    let bangerd = std::fs::read(&staged.bangerd).expect("bangerd");
    assert_eq!(
        sha256_hex(&bangerd),
        sha256_hex(&std::fs::read(bins.join("bangerd")).expect("src"))
    );
}
