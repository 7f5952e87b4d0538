//! Following a job: poll `GET /v1/jobs/{id}` every 250 ms until it has finished, showing its
//! progress on stderr (an indicatif bar on a terminal, plain lines otherwise).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use spindle_client::{Client, Error as ClientError, Job, JobState};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Interval between polls.
pub const POLL: Duration = Duration::from_millis(250);
/// How long an unreachable server is retried while following (it may be restarting).
const UNREACHABLE_GRACE: Duration = Duration::from_secs(30);

fn label(job: &Job) -> String {
    let method = job.method.as_deref().unwrap_or("job");
    match &job.target {
        Some(t) => format!("{method} {t}"),
        None => method.to_string(),
    }
}

/// What is shown while following.
enum Display {
    Bar { bar: ProgressBar, spinning: bool },
    Lines { last: Option<(String, Option<i64>)> },
}

impl Display {
    fn new(job: &Job) -> Display {
        if !std::io::stderr().is_terminal() {
            if job.state == JobState::Running {
                eprintln!(
                    "job {} ({}) is running; following it (interrupt: it goes on; `spindle job watch {}`)",
                    job.id,
                    label(job),
                    job.id
                );
            }
            return Display::Lines { last: None };
        }
        let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::hidden());
        let mut d = Display::Bar { bar, spinning: false };
        d.set_style(job.percent.is_none());
        if let Display::Bar { bar, .. } = &d {
            bar.set_message(label(job));
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        d
    }

    fn set_style(&mut self, spinner: bool) {
        if let Display::Bar { bar, spinning } = self {
            let template = if spinner {
                "{spinner} {msg} [{elapsed}] (percentage unknown)"
            } else {
                "{msg} [{bar:30}] {pos:>3}% [{elapsed}]"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("#>-"));
            }
            if spinner {
                bar.enable_steady_tick(Duration::from_millis(120));
            } else {
                bar.disable_steady_tick();
            }
            *spinning = spinner;
        }
    }

    fn update(&mut self, job: &Job) {
        let percent = job.percent.map(|p| p.clamp(0, 100));
        if let Display::Bar { spinning, .. } = self {
            let want_spinner = percent.is_none();
            if want_spinner != *spinning {
                self.set_style(want_spinner);
            }
        }
        match self {
            Display::Bar { bar, .. } => {
                if let Some(p) = percent {
                    bar.set_position(p as u64);
                }
            }
            Display::Lines { last } => {
                // One line per state change or 10% step: logs stay short.
                let now = (job.state.as_str().to_string(), percent.map(|p| p / 10));
                if !job.state.is_finished() && last.as_ref() != Some(&now) {
                    match percent {
                        Some(p) => eprintln!("job {} ({}): {} {p}%", job.id, label(job), now.0),
                        None => eprintln!("job {} ({}): {}", job.id, label(job), now.0),
                    }
                    *last = Some(now);
                }
            }
        }
    }

    fn finish(self, job: &Job) {
        if let Display::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
        eprintln!("job {} ({}) {}", job.id, label(job), job.state.as_str());
    }
}

/// Follows `job` until it has finished; returns its final view.
pub fn follow(client: &Client, mut job: Job) -> Result<Job, ClientError> {
    let mut display = Display::new(&job);
    let mut unreachable_since: Option<Instant> = None;
    loop {
        display.update(&job);
        if job.state.is_finished() {
            display.finish(&job);
            return Ok(job);
        }
        std::thread::sleep(POLL);
        match client.job(&job.id) {
            Ok(j) => {
                job = j;
                unreachable_since = None;
            }
            Err(ClientError::Unreachable { .. })
                if unreachable_since.is_none_or(|t| t.elapsed() < UNREACHABLE_GRACE) =>
            {
                unreachable_since.get_or_insert_with(Instant::now);
            }
            Err(e) => {
                if let Display::Bar { bar, .. } = display {
                    bar.abandon();
                }
                return Err(e);
            }
        }
    }
}
