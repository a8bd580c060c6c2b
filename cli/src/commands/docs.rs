//! `audit completions SHELL` and `audit man`: shell completion scripts and the manual page,
//! generated from the same command definitions `--help` prints.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

#[derive(Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    shell: ShellName,
}

/// The shells `clap_complete` supports, named as users type them.
#[derive(Clone, Copy, ValueEnum)]
enum ShellName {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl From<ShellName> for Shell {
    fn from(s: ShellName) -> Self {
        match s {
            ShellName::Bash => Self::Bash,
            ShellName::Zsh => Self::Zsh,
            ShellName::Fish => Self::Fish,
            ShellName::Elvish => Self::Elvish,
            ShellName::Powershell => Self::PowerShell,
        }
    }
}

/// Writes the completion script for `args.shell` to stdout.
pub(crate) fn completions<C: CommandFactory>(args: &CompletionsArgs) -> ExitCode {
    let mut cmd = C::command();
    let mut out = Vec::new();
    clap_complete::generate(Shell::from(args.shell), &mut cmd, "audit", &mut out);
    write_stdout(&out, "the completion script")
}

/// Writes the manual page (roff, section 1) to stdout: `audit man > audit.1`.
pub(crate) fn man<C: CommandFactory>() -> ExitCode {
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(C::command()).render(&mut out) {
        eprintln!("audit man: cannot render the manual page: {e}");
        return ExitCode::from(1);
    }
    write_stdout(&out, "the manual page")
}

fn write_stdout(bytes: &[u8], what: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audit: cannot write {what} to stdout: {e}");
            ExitCode::from(super::EXIT_IOERR)
        }
    }
}
