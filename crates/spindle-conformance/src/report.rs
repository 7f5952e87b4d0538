//! The report of a run: one verdict per check, in three forms (text, JSON, JUnit XML).

use serde::Serialize;
use std::fmt;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The plug-in did what the rule asks.
    Pass,
    /// It did not; the reason says what was expected and what happened.
    Fail,
    /// The check could not be made; the reason says why.
    Skip,
}

impl Verdict {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Stable id, `<method or area>.<aspect>`, e.g. `remove.refused_while_presented`.
    pub id: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What was observed; for a failure, what was expected and what happened.
    pub reason: String,
    /// The rule of the guides the check enforces, in one sentence.
    pub rule: String,
}

/// Everything a run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The plug-in, `class@version`.
    pub plugin: String,
    /// The prefix of every object the run created.
    pub prefix: String,
    /// The checks reported (all, or those `--only` selected), in the catalogue's order.
    pub checks: Vec<CheckResult>,
    /// What the run created and could not remove, one description each.
    pub leftovers: Vec<String>,
}

/// Longest reason shown on one line of the text form.
const TEXT_REASON_MAX: usize = 600;

fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 8));
    let mut last_space = false;
    for c in s.chars() {
        let c = if c.is_whitespace() || c.is_control() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        out.push(c);
    }
    let trimmed = out.trim();
    if trimmed.chars().count() > max {
        let cut: String = trimmed.chars().take(max).collect();
        format!("{cut}…")
    } else {
        trimmed.to_string()
    }
}

/// Escapes text for XML 1.0 (element content and attribute values alike); characters XML 1.0
/// cannot hold are replaced by U+FFFD.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || matches!(c as u32, 0xFFFE | 0xFFFF) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

impl Report {
    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.count(Verdict::Pass)
    }

    /// How many checks failed.
    pub fn failures(&self) -> usize {
        self.count(Verdict::Fail)
    }

    /// How many checks were skipped.
    pub fn skipped(&self) -> usize {
        self.count(Verdict::Skip)
    }

    fn count(&self, v: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == v).count()
    }

    /// True when any check failed (the exit status should then be non-zero).
    pub fn failed(&self) -> bool {
        self.failures() > 0
    }

    /// The ids of the failed checks, in report order.
    pub fn failed_ids(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.id.as_str())
            .collect()
    }

    /// The check `id`, if it was reported.
    pub fn check(&self, id: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The closing line: `N passed, M failed, K skipped`.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed(),
            self.failures(),
            self.skipped()
        )
    }

    /// One line per check, `PASS|FAIL|SKIP  id  — reason  [rule]`, then the summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{}  {}  — {}  [{}]\n",
                c.verdict,
                c.id,
                one_line(&c.reason, TEXT_REASON_MAX),
                one_line(&c.rule, TEXT_REASON_MAX)
            ));
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// The report as a JSON document.
    pub fn to_json(&self) -> String {
        let v = serde_json::json!({
            "plugin": self.plugin,
            "prefix": self.prefix,
            "summary": {
                "passed": self.passed(),
                "failed": self.failures(),
                "skipped": self.skipped(),
            },
            "checks": self.checks,
            "leftovers": self.leftovers,
        });
        serde_json::to_string_pretty(&v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The report as JUnit XML: one test suite for the plug-in, one test case per check.
    pub fn to_junit(&self) -> String {
        let (n, f, s) = (self.checks.len(), self.failures(), self.skipped());
        let suite = xml_escape(&self.plugin);
        let mut out = String::new();
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<testsuites name=\"spindle conformance\" tests=\"{n}\" failures=\"{f}\" errors=\"0\" skipped=\"{s}\">\n"
        ));
        out.push_str(&format!(
            "  <testsuite name=\"{suite}\" tests=\"{n}\" failures=\"{f}\" errors=\"0\" skipped=\"{s}\">\n"
        ));
        out.push_str("    <properties>\n");
        out.push_str(&format!(
            "      <property name=\"prefix\" value=\"{}\"/>\n",
            xml_escape(&self.prefix)
        ));
        for (i, l) in self.leftovers.iter().enumerate() {
            out.push_str(&format!(
                "      <property name=\"leftover.{i}\" value=\"{}\"/>\n",
                xml_escape(l)
            ));
        }
        out.push_str("    </properties>\n");
        for c in &self.checks {
            let area = c.id.split_once('.').map_or(c.id.as_str(), |(a, _)| a);
            out.push_str(&format!(
                "    <testcase classname=\"{}.{}\" name=\"{}\">\n",
                suite,
                xml_escape(area),
                xml_escape(&c.id)
            ));
            match c.verdict {
                Verdict::Pass => {}
                Verdict::Fail => out.push_str(&format!(
                    "      <failure type=\"ConformanceFailure\" message=\"{}\">{}&#10;rule: {}</failure>\n",
                    xml_escape(&one_line(&c.reason, 300)),
                    xml_escape(&c.reason),
                    xml_escape(&c.rule)
                )),
                Verdict::Skip => out.push_str(&format!(
                    "      <skipped message=\"{}\"/>\n",
                    xml_escape(&one_line(&c.reason, 300))
                )),
            }
            out.push_str(&format!(
                "      <system-out>{}</system-out>\n",
                xml_escape(&format!("{} — {} [{}]", c.verdict, c.reason, c.rule))
            ));
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            plugin: "a.b.C@1.0.0-1".into(),
            prefix: "conf-abcdef-".into(),
            checks: vec![
                CheckResult {
                    id: "create.page83_id".into(),
                    verdict: Verdict::Pass,
                    reason: "present".into(),
                    rule: "create fills in page83_id".into(),
                },
                CheckResult {
                    id: "remove.refused_while_presented".into(),
                    verdict: Verdict::Fail,
                    reason: "expected <StorageElementBusyEx> & \"refusal\";\nit succeeded\u{1}".into(),
                    rule: "remove refuses".into(),
                },
                CheckResult {
                    id: "snapRemove.twice_refused".into(),
                    verdict: Verdict::Skip,
                    reason: "snapshot is UNSUPPORTED".into(),
                    rule: "r".into(),
                },
            ],
            leftovers: vec!["LUN 'conf-abcdef-lun1'".into()],
        }
    }

    #[test]
    fn text_has_one_line_per_check_and_the_summary() {
        let t = sample().to_text();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1],
            "FAIL  remove.refused_while_presented  — expected <StorageElementBusyEx> & \"refusal\"; it succeeded  [remove refuses]"
        );
        assert_eq!(lines[3], "1 passed, 1 failed, 1 skipped");
        assert!(sample().failed());
    }

    #[test]
    fn junit_escapes() {
        let x = sample().to_junit();
        assert!(x.contains("&lt;StorageElementBusyEx&gt; &amp; &quot;refusal&quot;"));
        assert!(!x.contains('\u{1}'));
        assert!(x.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""));
    }
}
