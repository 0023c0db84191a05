//! Progress for the long steps of a build: a spinner per step and a byte bar
//! for writes, drawn by `indicatif` on a terminal (well kept, made for
//! exactly this, and it hides itself when stderr is not a terminal). Without
//! a terminal each step prints one plain line, so CI logs still say what took
//! how long.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a build reports progress.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Draw bars (a terminal) or print plain lines.
    bars: bool,
    /// Print nothing at all (tests).
    quiet: bool,
}

/// One running step; finish it with [`Step::done`].
#[derive(Debug)]
pub struct Step {
    bar: Option<ProgressBar>,
    message: String,
    started: std::time::Instant,
    quiet: bool,
}

impl Progress {
    /// Bars on a terminal, plain lines otherwise.
    #[must_use]
    pub fn stderr() -> Self {
        Self { bars: std::io::stderr().is_terminal(), quiet: false }
    }

    /// Nothing printed.
    #[must_use]
    pub fn quiet() -> Self {
        Self { bars: false, quiet: true }
    }

    /// Starts a step with a spinner.
    #[must_use]
    pub fn step(&self, message: &str) -> Step {
        let bar = self.bars.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(message.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Step { bar, message: message.to_owned(), started: runtime::clock::now(), quiet: self.quiet }
    }

    /// A byte counter for writing `len` bytes (hidden without a terminal).
    #[must_use]
    pub fn bytes(&self, message: &str, len: u64) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("  {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(message.to_owned());
        bar
    }
}

impl Step {
    /// Ends the step, saying how long it took and `detail`.
    pub fn done(self, detail: &str) {
        let secs = (runtime::clock::now() - self.started).as_secs_f64();
        let line = if detail.is_empty() {
            format!("{} ({secs:.1} s)", self.message)
        } else {
            format!("{}: {detail} ({secs:.1} s)", self.message)
        };
        match self.bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("  {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(line);
            }
            None if !self.quiet => eprintln!("mkimage: {line}"),
            None => {}
        }
    }
}
