//! Progress of long-running commands on stderr: one line redrawn in place on a terminal,
//! plain lines (at most one a second) otherwise, so logs and CI output stay readable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    tty: bool,
    /// Width of the line drawn last (to blank what a shorter line leaves).
    drawn: usize,
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
        Self {
            tty: std::io::stderr().is_terminal(),
            drawn: 0,
            last: None,
            last_line: String::new(),
        }
    }

    /// Shows `line` (throttled: ten redraws a second on a terminal, one line a second
    /// otherwise, and never the same line twice in a row).
    pub fn update(&mut self, line: &str) {
        let every = if self.tty {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        if line == self.last_line || self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.draw(line);
    }

    /// Shows `line` now, whatever the throttle, and ends it.
    pub fn finish(&mut self, line: &str) {
        if line != self.last_line || !self.tty {
            self.draw(line);
        }
        if self.tty {
            eprintln!();
        }
        self.drawn = 0;
    }

    fn draw(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = line.chars().count();
            let pad = self.drawn.saturating_sub(width);
            let _ = write!(err, "\r{line}{}", " ".repeat(pad));
            let _ = err.flush();
            self.drawn = width;
        } else {
            let _ = writeln!(err, "{line}");
        }
        self.last = Some(Instant::now());
        self.last_line = line.to_owned();
    }
}
