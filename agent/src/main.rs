//! `motcua`: parses the command line and dispatches. All work is in the
//! library crate.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use motcua_agent::cli::{Cli, Command, ConfigCommand};
use motcua_agent::config::AgentConfig;
use motcua_agent::identity::{self, IdentityTarget};
use motcua_agent::{cmd, doctor, provision, selftest};
use motcua_common::config::{LogFormat, LogLevel};
use motcua_common::logging;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands log warnings and errors only; RUST_LOG raises the level.
    // `run` logs as its configuration says.
    if !matches!(cli.command, Command::Run) {
        logging::init(LogFormat::Text, &LogLevel("warn".into()));
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => logging::fatal(&e),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Keygen {
            key_file,
            device,
            force,
        } => {
            let target = IdentityTarget::resolve(&cli.config, key_file, device)?;
            let line = identity::keygen(&target, force)?;
            eprintln!(
                "Wrote the device key to {} (mode 0600).",
                target.key_file.display()
            );
            eprintln!("Give this line to the data-centre operator for 'motcua-dc device add':");
            motcua_common::outln!("{line}");
        }
        Command::Identity { key_file, device } => {
            let target = IdentityTarget::resolve(&cli.config, key_file, device)?;
            motcua_common::outln!("{}", identity::show(&target)?);
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let path = file.unwrap_or(cli.config);
            return Ok(motcua_common::config::check_command(
                &path,
                AgentConfig::load,
            ));
        }
        Command::Dossier(cmd) => return cmd::dossier(&cli.config, cmd),
        Command::Journal(cmd) => return cmd::journal(&cli.config, cmd),
        Command::Status { json } => return cmd::status(&cli.config, json),
        Command::Reference(cmd) => return cmd::reference(&cli.config, cmd),
        Command::Run => return cmd::run(&cli.config),
        Command::Staff(c) => cmd::staff(&cli.config, c)?,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            motcua_common::clidocs::completions(Cli::command(), shell, &mut std::io::stdout());
        }
        Command::Man { dir } => {
            use clap::CommandFactory;
            let pages = motcua_common::clidocs::man_pages(Cli::command(), &dir)?;
            eprintln!("{} manual pages in {}", pages.len(), dir.display());
        }
        Command::Doctor { timeout } => {
            let checks = doctor::run(&cli.config, std::time::Duration::from_secs(timeout));
            motcua_common::outln!("{}", doctor::render(&checks).trim_end());
            if !doctor::passed(&checks) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Provision(opts) => {
            let out = provision::provision(&opts, &cli.config)?;
            for f in &out.files {
                eprintln!("  {f}");
            }
            eprintln!();
            eprintln!("Device {} is provisioned. Next:", out.device);
            eprintln!("  1. The DC operator enrolls the device key:");
            eprintln!("       motcua-dc device add '{}'", out.enrollment);
            eprintln!(
                "  2. The DC operator signs the TLS request {}:",
                out.csr.display()
            );
            eprintln!("       motcua-dc ca sign --dir <CA directory> device.csr --out device.crt");
            eprintln!(
                "     and the certificate goes to {}.",
                out.client_cert.display()
            );
            eprintln!("  3. systemctl enable --now motcua-agent; then motcua doctor");
            eprintln!();
            eprintln!("The enrollment line (standard output), and as a QR code:");
            eprintln!("{}", provision::qr_text(&out.enrollment.to_string())?);
            motcua_common::outln!("{}", out.enrollment);
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            dossiers,
            keep,
            exit,
        } => motcua_agent::demo::run(motcua_agent::demo::DemoOptions {
            dossiers,
            keep,
            exit,
        })?,
        Command::Selftest { records } => {
            let steps = selftest::run(records);
            let mut failed = 0;
            for s in &steps {
                match &s.outcome {
                    Ok(detail) => motcua_common::outln!("ok    {}: {detail}", s.name),
                    Err(e) => {
                        failed += 1;
                        motcua_common::outln!("FAIL  {}: {e:#}", s.name);
                    }
                }
            }
            let n = steps.len();
            motcua_common::outln!("selftest: {} of {n} steps passed", n - failed);
            if failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        motcua_agent::cli::Cli::command().debug_assert();
    }
}
