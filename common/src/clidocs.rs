//! Shell completions and manual pages generated from a binary's clap
//! command line, so they always say what the binary accepts. The Debian
//! packages carry them (`scripts/package` writes them with the binaries'
//! `completions` and `man` commands).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The completion script of `shell` for `cmd`, on `out`.
pub fn completions(mut cmd: clap::Command, shell: clap_complete::Shell, out: &mut dyn Write) {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Writes a section-1 manual page for `cmd` and one for each of its
/// subcommands, at any depth (`motcua.1`, `motcua-dossier.1`,
/// `motcua-dossier-add.1`...), into `dir`; returns their paths.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = cmd;
    cmd.build();
    let mut written = Vec::new();
    page(&cmd, cmd.get_name(), dir, &mut written)?;
    Ok(written)
}

fn page(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(name.to_owned())).render(&mut buf)?;
    std::fs::write(&path, buf)?;
    written.push(path);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        page(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> clap::Command {
        clap::Command::new("motcua")
            .about("Counter agent")
            .subcommand(
                clap::Command::new("dossier")
                    .about("Dossiers")
                    .subcommand(clap::Command::new("add").about("Receive a dossier")),
            )
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn a_page_for_each_visible_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pages = man_pages(cli(), dir.path()).expect("writes");
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["motcua.1", "motcua-dossier.1", "motcua-dossier-add.1"]
        );
        let add = std::fs::read_to_string(&pages[2]).expect("reads");
        assert!(add.starts_with(".ie"), "roff: {add}");
        assert!(add.contains("motcua\\-dossier\\-add"), "{add}");
        assert!(add.contains("Receive a dossier"), "{add}");
    }

    #[test]
    fn bash_completes_subcommands() {
        let mut out = Vec::new();
        completions(cli(), clap_complete::Shell::Bash, &mut out);
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.contains("complete -F"), "{text}");
        assert!(text.contains("dossier"), "{text}");
    }
}
