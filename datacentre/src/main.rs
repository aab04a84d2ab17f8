//! `motcua-dc`: parses the command line and dispatches. All work is in the
//! library crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use motcua_dc::cli::{Cli, Command, ConfigCommand};
use motcua_dc::config::DcConfig;
use motcua_dc::identity;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The key file from the flag, else from the configuration.
fn key_file(config: &Path, flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path);
    }
    let cfg = DcConfig::load(config)
        .map_err(anyhow::Error::new)
        .with_context(|| {
            format!(
                "--key-file was not given, so it is read from {}",
                config.display()
            )
        })?;
    Ok(cfg.key_file.as_path().to_owned())
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Keygen {
            key_file: flag,
            force,
        } => {
            let path = key_file(&cli.config, flag)?;
            let public = identity::keygen(&path, force)?;
            eprintln!(
                "Wrote the data-centre key to {} (mode 0600).",
                path.display()
            );
            eprintln!("Put this line in the [dc] section of every counter's agent.toml:");
            motcua_common::outln!("{}", identity::agent_config_line(&public));
        }
        Command::PublicKey { key_file: flag } => {
            let path = key_file(&cli.config, flag)?;
            motcua_common::outln!(
                "{}",
                identity::agent_config_line(&identity::public_key(&path)?)
            );
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let path = file.unwrap_or(cli.config);
            return Ok(motcua_common::config::check_command(&path, DcConfig::load));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        motcua_dc::cli::Cli::command().debug_assert();
    }
}
