//! Resolving a VM spec from flags, config and host facts, before anything is sent.
//!
//! The CLI resolves every field (flag → `[vm_defaults]` → host heuristic → built-in floor),
//! validates the result, and sends explicit values, so an invalid spec such as `--vcpu 0` is
//! refused before the daemon is contacted, let alone started. The same resolution feeds the
//! defaults shown in `vm create --help`.

use banger_model::{Config, HostFacts, ResolvedSpec, SpecOverrides};

use crate::error::CliError;

/// Resolves and validates a spec.
pub fn resolve(
    overrides: SpecOverrides,
    config: &Config,
    host: HostFacts,
) -> Result<ResolvedSpec, CliError> {
    let resolved = ResolvedSpec::resolve(overrides, &config.vm_defaults, host);
    resolved
        .spec
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(resolved)
}

/// The line printed before a create: `spec: 2 vcpu | 2048 MiB | 8G disk`.
pub fn line(resolved: &ResolvedSpec) -> String {
    format!("spec: {}", resolved.spec.summary())
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_model::Size;

    const HOST: HostFacts = HostFacts {
        cpus: Some(8),
        mem_bytes: Some(16 * 1024 * 1024 * 1024),
    };

    #[test]
    fn flags_win_and_host_fills_the_rest() {
        let over = SpecOverrides {
            vcpu: Some(3),
            ..SpecOverrides::default()
        };
        let r = resolve(over, &Config::default(), HOST).unwrap();
        assert_eq!(r.spec.vcpu, 3);
        assert_eq!(r.spec.memory_mib, 2048);
        assert_eq!(line(&r), "spec: 3 vcpu | 2048 MiB | 8G disk");
    }

    #[test]
    fn invalid_specs_are_usage_errors() {
        let over = SpecOverrides {
            vcpu: Some(0),
            ..SpecOverrides::default()
        };
        let err = resolve(over, &Config::default(), HOST).unwrap_err();
        assert_eq!(err.exit().code(), 2);
        assert!(err.to_string().contains("vcpu must be between"), "{err}");
        let over = SpecOverrides {
            memory: Some(Size::from_mib(1)),
            ..SpecOverrides::default()
        };
        assert!(resolve(over, &Config::default(), HOST).is_err());
    }
}
