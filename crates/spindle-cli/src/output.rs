//! Printing: tables for people, JSON for programs.

use clap::ValueEnum;
use serde_json::{json, Value};
use spindle_api::{Method, PluginException, Requirement, METHODS};
use spindle_manager::{Origin, PluginEntry, ProgressEvent, Skipped, Violation};
use std::io::IsTerminal;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// JSON on stdout.
    Json,
}

/// Prints results in the chosen format.
#[derive(Debug)]
pub struct Printer {
    output: Output,
}

fn origin_text(o: &Origin) -> (String, String) {
    match o {
        Origin::BuiltIn => ("built-in".into(), "(compiled into spindle)".into()),
        Origin::Module { dir, runtime, .. } => {
            (format!("{runtime:?}").to_lowercase(), dir.display().to_string())
        }
    }
}

fn table(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", crate::views::render_table(headers, rows));
}

fn entry_json(e: &PluginEntry) -> Value {
    json!({
        "id": e.id.to_string(),
        "class": e.id.class,
        "version": e.id.version.to_string(),
        "kind": e.kind,
        "metadata": e.metadata.to_value(),
        "origin": e.origin,
        "implemented": e.implemented.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "warnings": e.warnings,
    })
}

impl Printer {
    /// A printer for `output`.
    pub fn new(output: Output) -> Self {
        Printer { output }
    }

    /// `spindle plugin list`.
    pub fn plugin_list(&self, plugins: &[PluginEntry], skipped: &[Skipped], notes: &[String]) {
        match self.output {
            Output::Json => println!(
                "{}",
                json!({
                    "plugins": plugins.iter().map(entry_json).collect::<Vec<_>>(),
                    "skipped": skipped,
                    "notes": notes,
                })
            ),
            Output::Table => {
                let rows: Vec<Vec<String>> = plugins
                    .iter()
                    .map(|e| {
                        let (runtime, place) = origin_text(&e.origin);
                        let types: Vec<&str> = e.metadata.storage_types.iter().map(|t| t.as_str()).collect();
                        vec![
                            e.id.class.clone(),
                            e.id.version.to_string(),
                            e.metadata.plugin_name.clone(),
                            types.join(","),
                            runtime,
                            place,
                        ]
                    })
                    .collect();
                table(
                    &["CLASS", "VERSION", "NAME", "STORAGE TYPES", "RUNTIME", "WHERE"],
                    &rows,
                );
                if !skipped.is_empty() {
                    println!();
                    self.skipped_only(skipped);
                }
                if !notes.is_empty() {
                    println!();
                    println!("Warnings ({}):", notes.len());
                    for n in notes {
                        println!("  {n}");
                    }
                }
            }
        }
    }

    /// Skipped modules with their reasons.
    pub fn skipped_only(&self, skipped: &[Skipped]) {
        match self.output {
            Output::Json => println!("{}", json!({ "skipped": skipped })),
            Output::Table => {
                println!("Skipped ({}):", skipped.len());
                for s in skipped {
                    let named = match (&s.class, &s.module) {
                        (Some(c), _) => Some(format!("class {c}")),
                        (None, Some(m)) => Some(format!("module {m}")),
                        (None, None) => None,
                    };
                    let what = match (named, &s.file) {
                        (Some(n), Some(f)) => format!("{} ({n}, file {f})", s.path.display()),
                        (Some(n), None) => format!("{} ({n})", s.path.display()),
                        (None, Some(f)) => format!("{} (file {f})", s.path.display()),
                        (None, None) => s.path.display().to_string(),
                    };
                    println!("  {what}");
                    for line in s.reason.lines() {
                        println!("      {line}");
                    }
                }
            }
        }
    }

    /// `spindle plugin show`.
    pub fn plugin_show(&self, e: &PluginEntry) {
        if self.output == Output::Json {
            println!("{}", entry_json(e));
            return;
        }
        let md = &e.metadata;
        let (runtime, place) = origin_text(&e.origin);
        println!("{}  {}", e.id.class, e.id.version);
        println!("  name:        {}", md.plugin_name);
        println!("  vendor:      {}", md.vendor_name);
        println!("  description: {}", md.plugin_desc);
        let types: Vec<&str> = md.storage_types.iter().map(|t| t.as_str()).collect();
        println!("  storage:     {}", types.join(", "));
        println!("  runtime:     {runtime}");
        println!("  found at:    {place}");
        if let Origin::Module { source: Some(s), .. } = &e.origin {
            println!("  source:      {s}");
        }
        if let Some(h) = &md.ss_extra_info_help {
            println!("  ss_record extra_info: {h}");
        }
        if let Some(h) = &md.se_extra_info_help {
            println!("  se_record extra_info: {h}");
        }
        println!("  abilities:");
        if let Value::Object(m) = md.plugin_ability.to_value() {
            for (k, v) in m {
                println!(
                    "    {k:<22} {}",
                    v.as_str().map(String::from).unwrap_or_else(|| v.to_string())
                );
            }
        }
        println!("  methods:");
        for spec in METHODS {
            let own = e.implements(spec.method);
            let state = match (own, spec.requirement, spec.method.has_generic_fallback()) {
                (true, _, _) => "implemented",
                (false, _, true) => "generic (supplied by spindle)",
                (false, Requirement::RequiredIfAsync, _) if !md.plugin_ability.any_async() => {
                    "not needed (all operations synchronous)"
                }
                (false, _, _) => "MISSING",
            };
            println!("    {:<22} {state}", spec.name);
        }
        if !e.warnings.is_empty() {
            println!("  warnings:");
            for w in &e.warnings {
                println!("    {w}");
            }
        }
        let _ = Method::Validate;
    }

    /// A call's result.
    pub fn value(&self, v: &Value) {
        match self.output {
            Output::Json => println!("{v}"),
            Output::Table => println!(
                "{}",
                serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
            ),
        }
    }

    /// A call's exception (always JSON on stdout, so scripts can read it).
    pub fn exception(&self, e: &PluginException, violations: &[Violation]) {
        let mut out = json!({
            "exception": e.kind.as_str(),
            "message": e.message,
            "key": e.key,
        });
        if !violations.is_empty() {
            out["violations"] = json!(violations
                .iter()
                .map(|v| json!({"rule": v.rule, "statement": v.rule.statement(), "field": v.field, "message": v.message}))
                .collect::<Vec<_>>());
        }
        match self.output {
            Output::Json => println!("{out}"),
            Output::Table => println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default()),
        }
    }
}

/// Shows an asynchronous operation's progress on stderr.
pub fn progress(ev: &ProgressEvent) {
    let tty = std::io::stderr().is_terminal();
    match ev.progress {
        Some(p) if (0..=100).contains(&p) => {
            let filled = (p as usize) / 5;
            let bar = format!("[{}{}] {p:>3}%", "#".repeat(filled), ".".repeat(20 - filled));
            if tty {
                eprint!("\r{} {bar}", ev.method);
            } else {
                eprintln!("{} {bar}", ev.method);
            }
        }
        Some(_) => {
            if tty {
                eprint!("\r{} [ in progress, percentage unknown ]", ev.method);
            } else {
                eprintln!("{} in progress (percentage unknown)", ev.method);
            }
        }
        None => {
            if tty {
                eprintln!("\r{} [####################] done", ev.method);
            } else {
                eprintln!("{} done", ev.method);
            }
        }
    }
}
