//! The image config blob (`application/vnd.oci.image.config.v1+json`): only what says how the
//! image runs is kept, and the platform, which must match the host.

use banger_model::OciRunConfig;
use serde::Deserialize;

/// The parsed config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// `os`, e.g. `linux`.
    pub os: String,
    /// `architecture`, e.g. `amd64`.
    pub architecture: String,
    /// The run settings.
    pub run: OciRunConfig,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    config: Option<RawRun>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRun {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
}

/// This host's architecture in OCI's words.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl ImageConfig {
    /// Parses the config JSON; the reason on failure.
    pub fn parse(json: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if !value.is_object() {
            return Err("the config is not a JSON object".to_owned());
        }
        let raw: Raw = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let run = raw.config.unwrap_or(RawRun {
            env: None,
            working_dir: None,
            user: None,
            entrypoint: None,
            cmd: None,
        });
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Ok(Self {
            os: raw.os,
            architecture: raw.architecture,
            run: OciRunConfig {
                env: run.env.unwrap_or_default(),
                working_dir: nonempty(run.working_dir),
                user: nonempty(run.user),
                entrypoint: run.entrypoint.unwrap_or_default(),
                cmd: run.cmd.unwrap_or_default(),
            },
        })
    }

    /// Refuses an image built for another OS or CPU (it would not boot, or not run).
    pub fn check_platform(&self) -> Result<(), String> {
        let arch = host_architecture();
        if (self.os.is_empty() || self.os == "linux")
            && (self.architecture.is_empty() || self.architecture == arch)
        {
            Ok(())
        } else {
            Err(format!(
                "the image is for {}/{}, this host is linux/{arch}",
                self.os, self.architecture
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_run_settings() {
        let c = ImageConfig::parse(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin","A=b"],
            "WorkingDir":"/app","User":"1000:1000","Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],
            "Labels":{"x":"y"}},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .expect("parse");
        assert_eq!(c.run.env, ["PATH=/usr/bin", "A=b"]);
        assert_eq!(c.run.working_dir.as_deref(), Some("/app"));
        assert_eq!(c.run.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.run.entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(c.run.cmd, ["echo hi"]);
        let bare = ImageConfig::parse(r#"{"config":{"WorkingDir":"","Env":null}}"#).expect("parse");
        assert_eq!(bare.run, OciRunConfig::default());
        assert!(ImageConfig::parse("[]").is_err());
    }

    #[test]
    fn refuses_other_platforms() {
        let mut c = ImageConfig::parse(r#"{"os":"linux"}"#).expect("parse");
        c.architecture = host_architecture().to_owned();
        assert!(c.check_platform().is_ok());
        c.architecture = "s390x".to_owned();
        assert!(c.check_platform().unwrap_err().contains("s390x"));
        c.architecture = host_architecture().to_owned();
        c.os = "windows".to_owned();
        assert!(c.check_platform().is_err());
    }
}
