//! Command-line parsing, shaped like Traefik's: a main command (`run`, also
//! the default), `validate` and `version`, with the static configuration
//! given as `--configFile PATH` and Traefik-style dotted flags
//! (`--providers.file.directory=/etc/sluice`).
//!
//! Dotted flags are open-ended, so they are collected here and interpreted
//! by the static configuration loader, which rejects unknown keys.

use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the control plane.
    Run(ConfigArgs),
    /// Load every provider once, print every error, exit non-zero on errors.
    Validate(ConfigArgs),
    /// Print the version and git commit.
    Version,
    /// Print usage.
    Help,
}

/// Where the static configuration comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigArgs {
    /// `--configFile PATH`.
    pub config_file: Option<PathBuf>,
    /// Every other `--key=value` flag, as written.
    pub flags: Vec<String>,
}

/// Usage text.
pub const USAGE: &str = "\
Sluice control plane: watches providers, compiles snapshots, streams them to proxies.

Usage:
  sluice-control-plane [run] [--configFile=PATH] [--<static.config.key>=VALUE ...]
  sluice-control-plane validate [--configFile=PATH] [--<static.config.key>=VALUE ...]
  sluice-control-plane version

Static configuration uses Traefik's key names, from a YAML/TOML file, flags such as
--providers.file.directory=/etc/sluice --entryPoints.web.address=:8000
--controlPlane.grpcAddress=127.0.0.1:7050, or SLUICE_-prefixed environment variables
(SLUICE_PROVIDERS_FILE_DIRECTORY). Flags override the environment, which overrides the file.
";

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    let subcommand = match args.peek().map(String::as_str) {
        Some("run") | Some("validate") | Some("version") | Some("help") => args.next(),
        _ => None,
    };
    let mut config = ConfigArgs::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--configFile" | "--configfile" => {
                let path = args
                    .next()
                    .ok_or_else(|| "`--configFile` needs a path".to_owned())?;
                config.config_file = Some(PathBuf::from(path));
            }
            _ => {
                if let Some(path) = arg
                    .strip_prefix("--configFile=")
                    .or_else(|| arg.strip_prefix("--configfile="))
                {
                    config.config_file = Some(PathBuf::from(path));
                } else if arg.starts_with("--") && arg.len() > 2 {
                    config.flags.push(arg);
                } else {
                    return Err(format!(
                        "unexpected argument `{arg}` (static configuration flags look like `--entryPoints.web.address=:80`)"
                    ));
                }
            }
        }
    }
    Ok(match subcommand.as_deref() {
        Some("validate") => Command::Validate(config),
        Some("version") => Command::Version,
        Some("help") => Command::Help,
        _ => Command::Run(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<Command, String> {
        parse(words.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn the_main_command_runs() {
        assert_eq!(parse_words(""), Ok(Command::Run(ConfigArgs::default())));
        assert_eq!(
            parse_words("--configFile /etc/sluice.yml --providers.file.watch"),
            Ok(Command::Run(ConfigArgs {
                config_file: Some("/etc/sluice.yml".into()),
                flags: vec!["--providers.file.watch".to_owned()],
            }))
        );
    }

    #[test]
    fn subcommands_and_errors() {
        assert_eq!(parse_words("version"), Ok(Command::Version));
        assert_eq!(parse_words("run --help"), Ok(Command::Help));
        assert_eq!(
            parse_words("validate --configFile=x.toml --log.level=DEBUG"),
            Ok(Command::Validate(ConfigArgs {
                config_file: Some("x.toml".into()),
                flags: vec!["--log.level=DEBUG".to_owned()],
            }))
        );
        assert!(parse_words("run stray").unwrap_err().contains("`stray`"));
        assert!(
            parse_words("--configFile")
                .unwrap_err()
                .contains("--configFile")
        );
    }
}
