//! Static configuration: where proxies listen, which providers run, how the
//! control plane logs and where it serves.
//!
//! The keys are Traefik v3's, so an existing `traefik.yml` or `traefik.toml`
//! mostly works; Sluice's own settings live under `controlPlane`. Start at
//! [`StaticConfig::load`].
//!
//! # Sources and precedence
//!
//! From lowest to highest priority:
//!
//! 1. built-in defaults;
//! 2. the configuration file, YAML or TOML by extension (`--configFile`; see
//!    [`default_config_file`] for where the CLI looks without it);
//! 3. environment variables starting with `SLUICE_`, keys separated by `_`:
//!    `SLUICE_ENTRYPOINTS_WEB_ADDRESS=:80`;
//! 4. flags, keys separated by `.`: `--entryPoints.web.address=:80`; a bare
//!    `--providers.file.watch` means `true`. Among flags, the last one wins.
//!
//! A later source overrides single keys, not whole sections:
//! `--providers.file.watch=false` keeps the file's `providers.file.directory`.
//! A list is one value: `--entryPoints.web.http.middlewares=a,b` (comma
//! separated, as in Traefik) replaces the file's list, while an indexed key
//! (`--entryPoints.websecure.http.tls.domains[0].main=example.com`, or
//! `SLUICE_ENTRYPOINTS_WEBSECURE_HTTP_TLS_DOMAINS_0_MAIN`) overrides one item.
//! A bare duration for `controlPlane.debounce` sets its quiet period, and
//! `http.tls=true` enables TLS with default settings.
//!
//! Keys of the configuration's own structure match case-insensitively in
//! every source (`--entrypoints.web.address` works); names chosen by the
//! user, such as entry point names, are kept as written (lowercase when they
//! come from environment variables, as in Traefik). An unknown key is an
//! error naming its source and full path. `--configFile` and
//! `SLUICE_CONFIGFILE` are not configuration keys: the CLI reads them and
//! [`StaticConfig::load`] skips them.

mod entry_point;
mod keys;
mod kubernetes;
mod load;
mod providers;
mod shape;
mod static_config;
#[cfg(test)]
mod tests;

pub use entry_point::*;
pub use kubernetes::*;
pub use load::{ConfigOrigin, StaticConfigError, StaticConfigSources, default_config_file};
pub use providers::*;
pub use static_config::*;

/// A TOML error on one line: its message and where it is, `at line L column C`.
pub(crate) fn toml_error_message(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} at line {line} column {column}")
        }
        None => message.to_owned(),
    }
}
