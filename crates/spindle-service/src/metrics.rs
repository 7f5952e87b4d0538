//! Counters and histograms, rendered in the Prometheus text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the plug-in call duration histogram, in seconds.
pub const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Inner {
    plugin_calls: BTreeMap<(String, &'static str, &'static str), u64>,
    durations: BTreeMap<(String, &'static str), Histogram>,
    actions: BTreeMap<(&'static str, &'static str), u64>,
    /// running, succeeded, failed
    jobs: [i64; 3],
}

/// The service's metrics.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

/// A job state, for the `spindle_jobs` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobState {
    Running = 0,
    Succeeded = 1,
    Failed = 2,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// One plug-in call: `outcome` is ok, raised, rejected, contract or failed.
    pub fn plugin_call(&self, plugin: &str, method: &'static str, outcome: &'static str, took: Duration) {
        self.with(|m| {
            *m.plugin_calls
                .entry((plugin.to_string(), method, outcome))
                .or_default() += 1;
            m.durations
                .entry((plugin.to_string(), method))
                .or_default()
                .observe(took.as_secs_f64());
        });
    }

    /// One action: `outcome` is ok or the error code.
    pub fn action(&self, action: &'static str, outcome: &'static str) {
        self.with(|m| *m.actions.entry((action, outcome)).or_default() += 1);
    }

    /// Sets the job counts (at start).
    pub fn set_jobs(&self, counts: [i64; 3]) {
        self.with(|m| m.jobs = counts);
    }

    /// A job entered `to` (from `from`, if it existed before).
    pub fn job_moved(&self, from: Option<JobState>, to: JobState, n: i64) {
        self.with(|m| {
            if let Some(f) = from {
                m.jobs[f as usize] -= n;
            }
            m.jobs[to as usize] += n;
        });
    }

    /// The text exposition.
    pub fn render(&self, cache_hits: u64, cache_misses: u64) -> String {
        let m = self.with(|m| {
            (
                m.plugin_calls.clone(),
                m.durations.clone(),
                m.actions.clone(),
                m.jobs,
            )
        });
        let (calls, durations, actions, jobs) = m;
        let mut out = String::new();
        let o = &mut out;
        header(
            o,
            "spindle_plugin_calls_total",
            "counter",
            "Plug-in calls, by plug-in, method and outcome (ok, raised, rejected, contract, failed).",
        );
        for ((plugin, method, outcome), n) in &calls {
            let _ = writeln!(
                o,
                "spindle_plugin_calls_total{{plugin=\"{}\",method=\"{}\",outcome=\"{}\"}} {n}",
                esc(plugin),
                esc(method),
                esc(outcome)
            );
        }
        header(
            o,
            "spindle_plugin_call_duration_seconds",
            "histogram",
            "Duration of plug-in calls, by plug-in and method.",
        );
        for ((plugin, method), h) in &durations {
            let labels = format!("plugin=\"{}\",method=\"{}\"", esc(plugin), esc(method));
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    o,
                    "spindle_plugin_call_duration_seconds_bucket{{{labels},le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                o,
                "spindle_plugin_call_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "spindle_plugin_call_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                o,
                "spindle_plugin_call_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        header(
            o,
            "spindle_actions_total",
            "counter",
            "Actions handled, by action and outcome (ok or the error code).",
        );
        for ((action, outcome), n) in &actions {
            let _ = writeln!(
                o,
                "spindle_actions_total{{action=\"{}\",outcome=\"{}\"}} {n}",
                esc(action),
                esc(outcome)
            );
        }
        header(o, "spindle_jobs", "gauge", "Jobs, by state.");
        for (state, n) in ["running", "succeeded", "failed"].iter().zip(jobs) {
            let _ = writeln!(o, "spindle_jobs{{state=\"{state}\"}} {n}");
        }
        header(
            o,
            "spindle_cache_hits_total",
            "counter",
            "Plug-in cache lookups that found a live value.",
        );
        let _ = writeln!(o, "spindle_cache_hits_total {cache_hits}");
        header(
            o,
            "spindle_cache_misses_total",
            "counter",
            "Plug-in cache lookups that found nothing.",
        );
        let _ = writeln!(o, "spindle_cache_misses_total {cache_misses}");
        out
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// A label value escaped for the text format (`\` → `\\`, `"` → `\"`, new line → `\n`).
pub fn esc(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_help_type_buckets_and_escapes() {
        let m = Metrics::default();
        m.plugin_call("a\"b\\c\nd@1", "create", "ok", Duration::from_millis(3));
        m.plugin_call("a\"b\\c\nd@1", "create", "raised", Duration::from_secs(40));
        m.action("lun.create", "ok");
        m.set_jobs([1, 2, 3]);
        m.job_moved(Some(JobState::Running), JobState::Succeeded, 1);
        let t = m.render(5, 6);
        assert!(
            t.contains("# TYPE spindle_plugin_call_duration_seconds histogram"),
            "{t}"
        );
        assert!(
            t.contains(r#"plugin="a\"b\\c\nd@1",method="create",outcome="ok"} 1"#),
            "{t}"
        );
        assert!(t.contains(r#"method="create",le="0.005"} 1"#), "{t}");
        assert!(t.contains(r#"method="create",le="0.0025"} 0"#), "{t}");
        assert!(t.contains(r#"method="create",le="30"} 1"#), "{t}");
        assert!(t.contains(r#"method="create",le="+Inf"} 2"#), "{t}");
        assert!(t.contains("spindle_jobs{state=\"running\"} 0"), "{t}");
        assert!(t.contains("spindle_jobs{state=\"succeeded\"} 3"), "{t}");
        assert!(t.contains("spindle_cache_misses_total 6"), "{t}");
        assert!(
            t.contains("spindle_actions_total{action=\"lun.create\",outcome=\"ok\"} 1"),
            "{t}"
        );
    }
}
