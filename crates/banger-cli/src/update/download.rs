//! Getting release files: small ones into memory, the tarball into a file, over http(s) or
//! from a `file://` URL (a local mirror).
//!
//! A tarball download goes to `NAME.part` and is renamed to `NAME` only once complete; each
//! attempt starts the file afresh (never appends to what an interrupted attempt left), and a
//! failed attempt is retried a few times before the update gives up. Its sha256 is computed
//! while it streams. Progress: a line redrawn in place on a terminal, plain lines (start,
//! every [`PLAIN_EVERY`], end) otherwise.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::error::CliError;

/// Largest small file (manifest, `SHA256SUMS`, signature) accepted.
const SMALL_LIMIT: usize = 4 << 20;
/// Attempts at one tarball download.
const ATTEMPTS: u32 = 3;
/// How often plain (non-terminal) progress says how far it is.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Fetches release files.
pub struct Downloader {
    client: reqwest::Client,
    tty: bool,
}

fn failed(text: String) -> CliError {
    CliError::Failed(text)
}

impl Downloader {
    /// A downloader with bounded connects and reads; progress drawn in place when stderr is a
    /// terminal.
    pub fn new() -> Result<Self, CliError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("banger-update/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| failed(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            client,
            tty: std::io::stderr().is_terminal(),
        })
    }

    /// The body at `url` (at most a few MiB).
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, CliError> {
        if let Some(path) = url.strip_prefix("file://") {
            let body =
                std::fs::read(path).map_err(|e| failed(format!("cannot read {url}: {e}")))?;
            if body.len() > SMALL_LIMIT {
                return Err(failed(format!("{url} is larger than {SMALL_LIMIT} bytes")));
            }
            return Ok(body);
        }
        let mut response = self.get(url).await?;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(format!("download of {url} failed: {e}")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > SMALL_LIMIT {
                return Err(failed(format!("{url} is larger than {SMALL_LIMIT} bytes")));
            }
        }
        Ok(body)
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, CliError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(failed(format!(
                "{url} is not an http(s) or file:// URL; the manifest must name one"
            )));
        }
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| failed(format!("cannot fetch {url}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("cannot fetch {url}: HTTP {status}")));
        }
        Ok(response)
    }

    /// Downloads `url` to `dest` (through `dest.part`), retrying from the start on failure;
    /// returns the sha256 of what arrived.
    pub async fn download(&self, url: &str, dest: &Path) -> Result<String, CliError> {
        let part = part_path(dest);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.attempt(url, &part).await {
                Ok(digest) => {
                    std::fs::rename(&part, dest).map_err(|e| {
                        failed(format!("cannot move {} into place: {e}", part.display()))
                    })?;
                    return Ok(digest);
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&part);
                    last = e.to_string();
                    if attempt < ATTEMPTS {
                        crate::output::note(&format!(
                            "{last}; starting the download again ({}/{ATTEMPTS})",
                            attempt + 1
                        ));
                        tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                    }
                }
            }
        }
        Err(failed(format!("{last} (after {ATTEMPTS} attempts)")))
    }

    async fn attempt(&self, url: &str, part: &Path) -> Result<String, CliError> {
        let name = part
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".part").to_owned())
            .unwrap_or_default();
        let mut file = std::fs::File::create(part)
            .map_err(|e| failed(format!("cannot create {}: {e}", part.display())))?;
        let write = |file: &mut std::fs::File, bytes: &[u8]| {
            file.write_all(bytes)
                .map_err(|e| failed(format!("cannot write {}: {e}", part.display())))
        };
        let mut hash = Sha256::new();
        let mut progress = Progress::new(&name, self.tty);
        if let Some(path) = url.strip_prefix("file://") {
            let bytes =
                std::fs::read(path).map_err(|e| failed(format!("cannot read {url}: {e}")))?;
            progress.total = Some(bytes.len() as u64);
            hash.update(&bytes);
            write(&mut file, &bytes)?;
            progress.advance(bytes.len() as u64);
        } else {
            let mut response = self.get(url).await?;
            progress.total = response.content_length();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| failed(format!("download of {url} was cut off: {e}")))?
            {
                hash.update(&chunk);
                write(&mut file, &chunk)?;
                progress.advance(chunk.len() as u64);
            }
            if let Some(total) = progress.total
                && progress.done != total
            {
                return Err(failed(format!(
                    "download of {url} ended after {} of {total} bytes",
                    progress.done
                )));
            }
        }
        file.sync_all()
            .map_err(|e| failed(format!("cannot write {}: {e}", part.display())))?;
        progress.finish();
        Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Where an unfinished download of `dest` lives.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Download progress on stderr.
struct Progress {
    name: String,
    tty: bool,
    total: Option<u64>,
    done: u64,
    started: Instant,
    next_plain: Instant,
}

impl Progress {
    fn new(name: &str, tty: bool) -> Self {
        let now = Instant::now();
        if !tty {
            crate::output::info(&format!("downloading {name}"));
        }
        Self {
            name: name.to_owned(),
            tty,
            total: None,
            done: 0,
            started: now,
            next_plain: now + PLAIN_EVERY,
        }
    }

    fn line(&self) -> String {
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        match self.total {
            Some(total) if total > 0 => format!(
                "downloading {}: {:.1} / {:.1} MiB ({}%)",
                self.name,
                mib(self.done),
                mib(total),
                self.done * 100 / total
            ),
            _ => format!("downloading {}: {:.1} MiB", self.name, mib(self.done)),
        }
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        if self.tty {
            eprint!("\r\x1b[2K{}", self.line());
        } else if Instant::now() >= self.next_plain {
            crate::output::info(&self.line());
            self.next_plain = Instant::now() + PLAIN_EVERY;
        }
    }

    fn finish(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        crate::output::info(&format!(
            "downloaded {} ({} bytes in {:.1}s)",
            self.name,
            self.done,
            self.started.elapsed().as_secs_f64()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Serves `bodies` in turn on loopback, one connection each, as raw HTTP/1.1.
    fn serve(bodies: Vec<Vec<u8>>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for body in bodies {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut conn, &mut buf);
                let _ = conn.write_all(&body);
            }
        });
        format!("http://{addr}/x.tar.gz")
    }

    fn response(body: &[u8], claimed: usize) -> Vec<u8> {
        let mut r =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n")
                .into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn a_cut_off_download_starts_again_from_scratch() {
        let body = b"all of the tarball".to_vec();
        // First attempt: the connection closes half-way; the second is whole.
        let url = serve(vec![
            response(&body[..5], body.len()),
            response(&body, body.len()),
        ]);
        let dir = tempfile::tempdir().expect("dir");
        let dest = dir.path().join("x.tar.gz");
        let d = Downloader::new().expect("client");
        let digest = rt().block_on(d.download(&url, &dest)).expect("downloads");
        assert_eq!(std::fs::read(&dest).expect("file"), body);
        assert_eq!(digest, crate::update::verify::sha256_hex(&body));
        assert!(!part_path(&dest).exists());
    }

    #[test]
    fn failures_leave_no_part_file_and_say_why() {
        let url = serve(vec![
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
            3
        ]);
        let dir = tempfile::tempdir().expect("dir");
        let dest = dir.path().join("x.tar.gz");
        let d = Downloader::new().expect("client");
        let err = rt()
            .block_on(d.download(&url, &dest))
            .unwrap_err()
            .to_string();
        assert!(err.contains("404") && err.contains("3 attempts"), "{err}");
        assert!(!dest.exists() && !part_path(&dest).exists());
        let err = rt()
            .block_on(d.fetch("ftp://example.invalid/m.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an http(s) or file:// URL"), "{err}");
    }

    #[test]
    fn file_urls_read_local_mirrors() {
        let dir = tempfile::tempdir().expect("dir");
        let src = dir.path().join("m.json");
        std::fs::write(&src, b"{}").expect("write");
        let d = Downloader::new().expect("client");
        let url = format!("file://{}", src.display());
        assert_eq!(rt().block_on(d.fetch(&url)).expect("reads"), b"{}");
        let dest = dir.path().join("copy");
        rt().block_on(d.download(&url, &dest)).expect("copies");
        assert_eq!(std::fs::read(dest).expect("copy"), b"{}");
    }
}
