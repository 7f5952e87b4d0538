//! Request metrics: `spindle_http_requests_total{route,method,status}` and
//! `spindle_http_request_duration_seconds{route}` (a histogram). `route` is the template
//! (`/v1/servers/{server}/luns`), never the raw path, so the label set stays bounded.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` label of requests no template matched.
pub const UNMATCHED: &str = "unmatched";

const METHODS: [&str; 8] = [
    "GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "other",
];

fn method_index(m: &str) -> u8 {
    METHODS[..7].iter().position(|x| *x == m).map_or(7, |i| i as u8)
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// The counters of one transport.
#[derive(Debug)]
pub struct Metrics {
    /// Route labels: every template, then [`UNMATCHED`].
    labels: Vec<&'static str>,
    counts: Mutex<HashMap<(u16, u8, u16), u64>>,
    histograms: Vec<Histogram>,
}

impl Metrics {
    /// Counters for these templates (plus [`UNMATCHED`]).
    pub fn new(templates: &[&'static str]) -> Metrics {
        let mut labels = templates.to_vec();
        labels.push(UNMATCHED);
        let histograms = labels.iter().map(|_| Histogram::default()).collect();
        Metrics {
            labels,
            counts: Mutex::new(HashMap::new()),
            histograms,
        }
    }

    /// The label index of a template ([`UNMATCHED`] when unknown).
    pub fn label_of(&self, template: Option<&str>) -> u16 {
        let unmatched = self.labels.len() - 1;
        let i = template
            .and_then(|t| self.labels[..unmatched].iter().position(|l| *l == t))
            .unwrap_or(unmatched);
        i as u16
    }

    /// Counts one request.
    pub fn observe(&self, label: u16, method: &str, status: u16, elapsed: Duration) {
        let label = label.min(self.labels.len() as u16 - 1);
        {
            let mut counts = self
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *counts.entry((label, method_index(method), status)).or_insert(0) += 1;
        }
        let h = &self.histograms[usize::from(label)];
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        h.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of these metrics.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut counts: Vec<((u16, u8, u16), u64)> = {
            let c = self
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            c.iter().map(|(k, v)| (*k, *v)).collect()
        };
        counts.sort_unstable();
        out.push_str("# HELP spindle_http_requests_total HTTP requests answered, by route template, method and status.\n");
        out.push_str("# TYPE spindle_http_requests_total counter\n");
        for ((label, method, status), n) in counts {
            let _ = writeln!(
                out,
                "spindle_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(self.labels[usize::from(label)]),
                METHODS[usize::from(method)],
            );
        }
        out.push_str("# HELP spindle_http_request_duration_seconds Time to answer an HTTP request (to the response head), by route template.\n");
        out.push_str("# TYPE spindle_http_request_duration_seconds histogram\n");
        for (label, h) in self.labels.iter().zip(&self.histograms) {
            let count = h.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let route = escape(label);
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "spindle_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "spindle_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "spindle_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "spindle_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new(&["/v1/servers", "/v1/servers/{server}"]);
        let l = m.label_of(Some("/v1/servers/{server}"));
        m.observe(l, "GET", 200, Duration::from_micros(700));
        m.observe(l, "GET", 200, Duration::from_millis(30));
        m.observe(m.label_of(None), "BREW", 404, Duration::from_micros(10));
        let t = m.render();
        assert!(
            t.contains(
                "spindle_http_requests_total{route=\"/v1/servers/{server}\",method=\"GET\",status=\"200\"} 2"
            ),
            "{t}"
        );
        assert!(
            t.contains("spindle_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 1"),
            "{t}"
        );
        assert!(
            t.contains(
                "spindle_http_request_duration_seconds_bucket{route=\"/v1/servers/{server}\",le=\"0.001\"} 1"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "spindle_http_request_duration_seconds_bucket{route=\"/v1/servers/{server}\",le=\"0.05\"} 2"
            ),
            "{t}"
        );
        assert!(
            t.contains("spindle_http_request_duration_seconds_count{route=\"/v1/servers/{server}\"} 2"),
            "{t}"
        );
        assert!(!t.contains("route=\"/v1/servers\","), "{t}");
    }
}
