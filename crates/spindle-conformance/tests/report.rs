//! The report's three forms, and `--only`.

mod common;

use common::*;
use spindle_conformance::{CheckResult, Report, Verdict};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

async fn sim_report(only: Option<&str>) -> (Report, Vec<String>) {
    let state = tempfile::tempdir().expect("tempdir");
    let scratch = tempfile::tempdir().expect("tempdir");
    let m = manager(
        vec![Arc::new(spindle_plugin_sim::SimArray)],
        vec![],
        scratch.path(),
    )
    .await;
    let p = plugin(&m, "spindle.sim.SimArray");
    let ss = sim_ss(state.path(), "SANStorage");
    let mut opts = options(ss.clone());
    opts.only = only.map(String::from);
    let report = spindle_conformance::run(&m, p, &opts).await;
    // Every element the array holds, the kit's or not.
    let all = remaining(&m, p, &ss, "").await;
    (report, all)
}

/// Parses `xml` with Python's XML parser; returns (test cases, failures, skipped).
fn parse_junit(xml: &str) -> Option<(usize, usize, usize)> {
    let script = "import sys, xml.dom.minidom as m\n\
d = m.parseString(sys.stdin.buffer.read())\n\
c = d.getElementsByTagName('testcase')\n\
print(len(c), len(d.getElementsByTagName('failure')), len(d.getElementsByTagName('skipped')))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(xml.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    assert!(
        out.status.success(),
        "not well-formed XML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let n: Vec<usize> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    Some((n[0], n[1], n[2]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_forms_agree() {
    let (report, _) = sim_report(None).await;
    let text = report.to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), report.checks.len() + 1);
    for (l, c) in lines.iter().zip(&report.checks) {
        assert!(
            l.starts_with(&format!("{}  {}  — ", c.verdict, c.id)) && l.ends_with(&format!("  [{}]", c.rule)),
            "{l}"
        );
    }
    assert_eq!(
        lines[lines.len() - 1],
        format!(
            "{} passed, {} failed, {} skipped",
            report.passed(),
            report.failures(),
            report.skipped()
        )
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON");
    assert_eq!(json["summary"]["passed"], report.passed());
    assert_eq!(json["checks"].as_array().map(Vec::len), Some(report.checks.len()));
    assert_eq!(json["checks"][0]["verdict"], "pass");
    if let Some((cases, failures, skipped)) = parse_junit(&report.to_junit()) {
        assert_eq!(
            (cases, failures, skipped),
            (report.checks.len(), 0, report.skipped())
        );
    }
}

#[test]
fn junit_survives_hostile_text() {
    let nasty = "a <b> & \"c\" 'd' ]]> \u{0}\u{1b}[31m\u{7} é ✓ \r\n\ttab";
    let report = Report {
        plugin: "evil.<Plugin>@1.0.0-1".into(),
        prefix: "conf-&-".into(),
        checks: vec![
            CheckResult {
                id: "remove.refused_while_presented".into(),
                verdict: Verdict::Fail,
                reason: nasty.into(),
                rule: nasty.into(),
            },
            CheckResult {
                id: "x.y".into(),
                verdict: Verdict::Skip,
                reason: nasty.into(),
                rule: "r".into(),
            },
        ],
        leftovers: vec![nasty.into()],
    };
    if let Some(counts) = parse_junit(&report.to_junit()) {
        assert_eq!(counts, (2, 1, 1));
    }
    let text = report.to_text();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(report.failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_selects_checks_and_a_preamble_run_creates_nothing() {
    let (report, on_array) = sim_report(Some("declarations.*,*.missing_parameters")).await;
    assert!(!report.checks.is_empty());
    for c in &report.checks {
        assert!(
            c.id.starts_with("declarations.") || c.id.ends_with(".missing_parameters"),
            "{} was not selected",
            c.id
        );
        assert_eq!(c.verdict, Verdict::Pass, "{}: {}", c.id, c.reason);
    }
    assert_eq!(report.checks.len(), 5 + spindle_api::METHODS.len());
    assert!(on_array.is_empty(), "the array holds {on_array:?}");
    let (report, _) = sim_report(Some("remove.twice")).await;
    assert_eq!(report.checks.len(), 1);
    assert_eq!(report.checks[0].id, "remove.twice_refused");
    assert_eq!(report.checks[0].verdict, Verdict::Pass);
}
