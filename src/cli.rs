//! The command line of the node binaries (`cuttlefish-cni-agent`, `cuttlefish-cni-install`):
//! `--flag VALUE` or `--flag=VALUE`; `--help` (or `-h`) prints the usage on stdout and exits 0; a
//! usage error is one line on stderr that ends in "see --help", and exit code 2.

use std::process::ExitCode;

/// What a command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command<T> {
    Run(T),
    Help,
}

/// One argument: a `--flag=value` split at its first `=`; `-h` is `--help`.
pub struct Arg {
    pub name: String,
    inline: Option<String>,
}

impl Arg {
    /// For a flag that takes no value: refuses `--flag=value`.
    pub fn no_value(&self) -> Result<(), String> {
        match self.inline {
            None => Ok(()),
            Some(_) => Err(format!("{} takes no value", self.name)),
        }
    }
}

/// The arguments after the program name.
pub struct Args<I>(I);

impl<I: Iterator<Item = String>> Args<I> {
    pub fn new(args: impl IntoIterator<IntoIter = I>) -> Args<I> {
        Args(args.into_iter())
    }

    /// The value of `arg`: written inline, or the next argument.
    pub fn value(&mut self, arg: Arg) -> Result<String, String> {
        match arg.inline {
            Some(value) => Ok(value),
            None => self.0.next().ok_or_else(|| format!("{} needs a value", arg.name)),
        }
    }
}

impl<I: Iterator<Item = String>> Iterator for Args<I> {
    type Item = Arg;

    fn next(&mut self) -> Option<Arg> {
        let arg = self.0.next()?;
        if arg == "-h" {
            return Some(Arg {
                name: "--help".into(),
                inline: None,
            });
        }
        Some(match arg.split_once('=').filter(|_| arg.starts_with("--")) {
            Some((name, value)) => Arg {
                name: name.into(),
                inline: Some(value.into()),
            },
            None => Arg {
                name: arg,
                inline: None,
            },
        })
    }
}

pub fn unknown(arg: &Arg) -> String {
    format!("unknown argument {:?}", arg.name)
}

/// `main` of a binary: `run` what was parsed, or print the usage on stdout, or the error on
/// stderr.
pub fn main<T>(
    binary: &str,
    usage: &str,
    parsed: Result<Command<T>, String>,
    run: impl FnOnce(T) -> ExitCode,
) -> ExitCode {
    match parsed {
        Ok(Command::Run(parsed)) => run(parsed),
        Ok(Command::Help) => {
            print!("{usage}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{binary}: {message}; see --help");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &[&str]) -> Vec<(String, Option<String>)> {
        Args::new(args.iter().map(|a| a.to_string()))
            .map(|arg| (arg.name, arg.inline))
            .collect()
    }

    #[test]
    fn flags_split_at_their_first_equals_sign_and_dash_h_is_help() {
        assert_eq!(
            names(&["--a=b=c", "-h", "status", "x=y", "--plain"]),
            [
                ("--a".to_string(), Some("b=c".to_string())),
                ("--help".to_string(), None),
                ("status".to_string(), None),
                ("x=y".to_string(), None),
                ("--plain".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_value_is_inline_or_the_next_argument() {
        let mut args = Args::new(["--a=1", "--b", "2", "--c"].map(String::from));
        let first = args.next().unwrap();
        assert_eq!(args.value(first).unwrap(), "1");
        let second = args.next().unwrap();
        assert_eq!(args.value(second).unwrap(), "2");
        let third = args.next().unwrap();
        assert_eq!(args.value(third).unwrap_err(), "--c needs a value");
        let flag = Args::new(["--watch=yes".to_string()]).next().unwrap();
        assert_eq!(flag.no_value().unwrap_err(), "--watch takes no value");
    }
}
