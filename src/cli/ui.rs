//! Terminal output: stdout for results, stderr for diagnostics, colours via `console`; everything
//! printed passes through the core's secret scrubber ([`git_migrate_core::db::secrets`]).

pub use git_migrate_core::db::secrets::{register_secret, scrub};
use std::io::Write;

/// Output settings.
#[derive(Clone, Debug)]
pub(crate) struct Ui {
    /// `-q`.
    pub quiet: bool,
    /// `-v` count.
    pub verbose: u8,
    /// Colours on stdout.
    pub color: bool,
    /// Colours on stderr.
    pub color_err: bool,
}

impl Ui {
    /// From flags (`--color auto|always|never`, `NO_COLOR`).
    pub fn new(color: &str, quiet: bool, verbose: u8) -> Ui {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let (c, ce) = match color {
            "always" => (true, true),
            "never" => (false, false),
            _ => (
                !no_color && console::Term::stdout().is_term(),
                !no_color && console::Term::stderr().is_term(),
            ),
        };
        Ui {
            quiet,
            verbose,
            color: c,
            color_err: ce,
        }
    }

    /// Prints a line to stdout.
    pub fn out(&self, line: &str) {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{}", scrub(line));
    }

    /// Prints a line to stderr unless quiet.
    pub(crate) fn info(&self, line: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{}", scrub(line));
        }
    }

    /// Prints a warning to stderr.
    pub fn warn(&self, line: &str) {
        let label = self.paint_err("warning:", console::Style::new().yellow().bold());
        let _ = writeln!(std::io::stderr().lock(), "{label} {}", scrub(line));
    }

    /// Styles text for stdout.
    pub(crate) fn paint(&self, s: &str, style: console::Style) -> String {
        if self.color {
            style.force_styling(true).apply_to(s).to_string()
        } else {
            s.to_string()
        }
    }

    /// Styles text for stderr.
    pub(crate) fn paint_err(&self, s: &str, style: console::Style) -> String {
        if self.color_err {
            style.force_styling(true).apply_to(s).to_string()
        } else {
            s.to_string()
        }
    }

    /// Prints a command error.
    pub fn error(&self, e: &super::error::CommandError) {
        let mut err = std::io::stderr().lock();
        for line in self.error_lines(e) {
            let _ = writeln!(err, "{line}");
        }
    }

    /// The lines [`Ui::error`] prints: `error:`, `caused by:` and `hint:`, secrets scrubbed.
    pub(crate) fn error_lines(&self, e: &super::error::CommandError) -> Vec<String> {
        let red = self.paint_err("error:", console::Style::new().red().bold());
        let mut out = vec![format!("{red} {}", scrub(&e.message))];
        for c in &e.causes {
            out.push(format!("caused by: {}", scrub(c)));
        }
        for h in &e.hints {
            let hint = self.paint_err("hint:", console::Style::new().cyan());
            out.push(format!("{hint} {}", scrub(h)));
        }
        out
    }

    /// Asks a yes/no question on the terminal; `None` when there is no terminal.
    pub fn confirm(&self, question: &str) -> Option<bool> {
        let term = console::Term::stderr();
        if !term.is_term() || !console::Term::stdout().is_term() {
            return None;
        }
        let _ = write!(std::io::stderr(), "{} [y/N] ", scrub(question));
        let line = term.read_line().ok()?;
        Some(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }

    /// Asks `question`; a "no" refuses with "not confirmed; {nothing}", and no terminal at all
    /// refuses with "{no_terminal}; {nothing}" and `hint` (exit 3 either way).
    pub(crate) fn confirm_or_refuse(
        &self,
        question: &str,
        no_terminal: &str,
        nothing: &str,
        hint: &str,
    ) -> Result<(), super::error::CommandError> {
        use super::error::{CommandError, Kind};
        match self.confirm(question) {
            Some(true) => Ok(()),
            Some(false) => Err(CommandError::new(
                Kind::Refused,
                format!("not confirmed; {nothing}"),
            )),
            None => Err(
                CommandError::new(Kind::Refused, format!("{no_terminal}; {nothing}")).hint(hint),
            ),
        }
    }
}
