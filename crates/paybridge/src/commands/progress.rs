//! Progress of long-running commands on stderr: an `indicatif` spinner (a bar once the
//! total is known) on a terminal; plain lines otherwise (at most one a second, never the
//! same twice in a row), so logs and CI output stay readable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    /// None when stderr is not a terminal.
    bar: Option<ProgressBar>,
    last: Option<Instant>,
    last_line: String,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(style("{spinner} {msg}"));
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self {
            bar,
            last: None,
            last_line: String::new(),
        }
    }

    /// How far along: `done` of `total` (on a terminal the spinner becomes a bar).
    pub fn set_position(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_style(style("{spinner} [{bar:24}] {msg}"));
            }
            bar.set_position(done);
        }
    }

    /// Shows `line` (off a terminal: throttled to one line a second, and never the same
    /// line twice in a row).
    pub fn update(&mut self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(line.to_owned());
            return;
        }
        let throttled = self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if line != self.last_line && !throttled {
            self.print(line);
        }
    }

    /// Shows `line` now, whatever the throttle, and ends the progress.
    pub fn finish(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(line.to_owned()),
            None => self.print(line),
        }
    }

    fn print(&mut self, line: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        self.last = Some(Instant::now());
        self.last_line = line.to_owned();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .progress_chars("=> ")
}
