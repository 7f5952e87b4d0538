//! Human renderings of the server's views (`--output table`): aligned tables and `key: value`
//! blocks. Every function returns the text, so it can be tested; nothing here decides anything.

use crate::sizes::format_size;
use serde_json::Value;

/// `s` as it may be written to a terminal: control characters (an escape sequence would
/// redraw the screen, hide lines or retitle the window) and characters that show as nothing
/// or turn the line around are written as `\u{..}` escapes. Anything a server, a plug-in or
/// an audit entry reports (names refused with control characters are audited as sent) goes
/// through here before it is printed in a table or a block.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || spindle_api::names::is_invisible_or_bidi(c);
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Aligned columns separated by two spaces; the last column is not padded; no trailing blanks.
/// Cells are made [`terminal_safe`].
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| terminal_safe(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == cells.len() {
                    c.clone()
                } else {
                    let pad = widths[i].saturating_sub(c.chars().count());
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// A scalar for a cell: strings bare, `-` for null or absent, lists joined by commas.
pub fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.is_empty() => "-".into(),
        Some(Value::Array(a)) => a.iter().map(|x| text(Some(x))).collect::<Vec<_>>().join(","),
        Some(other) => other.to_string(),
    }
}

fn field(v: &Value, key: &str) -> String {
    text(v.get(key))
}

/// A server's status: what its plug-in last said, unless the last re-read failed, in which
/// case that status is only as of `refreshed_at` and is not shown as current.
fn server_status(s: &Value, long: bool) -> String {
    let failed = s.get("last_error").is_some_and(|e| !e.is_null());
    match (failed, long) {
        (false, _) => field(s, "status"),
        (true, false) => "REFRESH FAILED".into(),
        (true, true) => format!(
            "unknown: the last refresh failed (it was {} at {})",
            field(s, "status"),
            field(s, "refreshed_at")
        ),
    }
}

/// Every parent of a snapshot or clone (a snapshot of several LUNs has several); servers
/// older than `parents` give only `parent`.
fn parents(v: &Value) -> String {
    match v.get("parents") {
        Some(Value::Array(p)) if !p.is_empty() => text(v.get("parents")),
        _ => field(v, "parent"),
    }
}

/// A size in bytes, for a person (`-` when absent).
fn size(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_i64)
        .map(format_size)
        .unwrap_or_else(|| "-".into())
}

fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => vec![],
        other => vec![other],
    }
}

/// LUNs and clones (`ElementView`s).
pub fn elements(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .into_iter()
        .map(|e| {
            vec![
                field(e, "name"),
                field(e, "kind"),
                size(e, "size"),
                field(e, "vol_group_name"),
                field(e, "state"),
                field(e, "status"),
                field(e, "access_grp_names"),
                parents(e),
                field(e, "page83_id"),
            ]
        })
        .collect();
    render_table(
        &[
            "NAME",
            "KIND",
            "SIZE",
            "POOL",
            "STATE",
            "STATUS",
            "GROUPS",
            "PARENT",
            "PAGE83_ID",
        ],
        &rows,
    )
}

/// Snapshots (`ElementView`s of kind snapshot).
pub fn snapshots(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .into_iter()
        .map(|e| {
            vec![
                field(e, "name"),
                parents(e),
                size(e, "size"),
                field(e, "state"),
                field(e, "status"),
                field(e, "page83_id"),
                field(e, "uuid"),
            ]
        })
        .collect();
    render_table(
        &["NAME", "LUN", "SIZE", "STATE", "STATUS", "PAGE83_ID", "UUID"],
        &rows,
    )
}

fn block(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in pairs {
        let v = terminal_safe(v);
        out.push_str(&format!("{:<width$} {v}\n", format!("{k}:")));
    }
    out
}

fn size_with_bytes(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_i64) {
        Some(b) => format!("{} ({b} bytes)", format_size(b)),
        None => "-".into(),
    }
}

/// One element, every field: the usual ones first, then whatever else the plug-in returned.
pub fn element_detail(e: &Value) -> String {
    const SHOWN: [&str; 15] = [
        "name",
        "kind",
        "server",
        "uuid",
        "page83_id",
        "size",
        "state",
        "status",
        "vol_group_name",
        "access_grp_names",
        "parent",
        "parents",
        "qos",
        "se_type",
        "ss_uuid",
    ];
    let mut pairs = vec![
        ("name", field(e, "name")),
        ("kind", field(e, "kind")),
        ("server", field(e, "server")),
        ("uuid", field(e, "uuid")),
        ("page83_id", field(e, "page83_id")),
        ("size", size_with_bytes(e, "size")),
        ("state", field(e, "state")),
        ("status", field(e, "status")),
        ("pool", field(e, "vol_group_name")),
        ("groups", field(e, "access_grp_names")),
        ("parent", parents(e)),
        ("qos", field(e, "qos")),
        ("se_type", field(e, "se_type")),
    ];
    let rest: Vec<(String, String)> = match e {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !SHOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), text(Some(v))))
            .collect(),
        _ => vec![],
    };
    pairs.extend(rest.iter().map(|(k, v)| (k.as_str(), v.clone())));
    block(&pairs)
}

/// Storage servers (`ServerView`s).
pub fn servers(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .into_iter()
        .map(|s| {
            let counts = s.get("counts").cloned().unwrap_or(Value::Null);
            vec![
                field(s, "name"),
                field(s, "plugin"),
                field(s, "storage_type"),
                server_status(s, false),
                size(s, "total_sz"),
                size(s, "free_sz"),
                field(&counts, "luns"),
                field(&counts, "clones"),
                field(&counts, "snapshots"),
                field(s, "admin_host"),
            ]
        })
        .collect();
    render_table(
        &[
            "NAME",
            "PLUGIN",
            "TYPE",
            "STATUS",
            "TOTAL",
            "FREE",
            "LUNS",
            "CLONES",
            "SNAPS",
            "ADMIN HOST",
        ],
        &rows,
    )
}

/// One storage server, its pools and access groups.
pub fn server_detail(s: &Value) -> String {
    let counts = s.get("counts").cloned().unwrap_or(Value::Null);
    let access = match (s.get("access_host"), s.get("access_port")) {
        (Some(h), Some(p)) if !h.is_null() && !p.is_null() => {
            format!("{}:{}", text(Some(h)), text(Some(p)))
        }
        (h, _) => text(h),
    };
    let mut pairs = vec![
        ("name", field(s, "name")),
        ("plugin", field(s, "plugin")),
        ("storage type", field(s, "storage_type")),
        ("uuid", field(s, "uuid")),
        ("status", server_status(s, true)),
        ("description", field(s, "storage_desc")),
        ("admin host", field(s, "admin_host")),
        ("admin user", field(s, "admin_user")),
        ("access", access),
        ("chap", field(s, "chap")),
        ("username", field(s, "username")),
        ("extra_info", field(s, "extra_info")),
        ("secrets set", field(s, "secrets_set")),
        ("total", size_with_bytes(s, "total_sz")),
        ("used", size_with_bytes(s, "used_sz")),
        ("free", size_with_bytes(s, "free_sz")),
        ("allocated", size_with_bytes(s, "alloc_sz")),
        (
            "elements",
            ["luns", "clones", "snapshots"]
                .iter()
                .map(|k| {
                    let n = field(&counts, k);
                    let word = match (*k, n.as_str()) {
                        ("luns", "1") => "LUN",
                        ("luns", _) => "LUNs",
                        ("clones", "1") => "clone",
                        ("clones", _) => "clones",
                        (_, "1") => "snapshot",
                        _ => "snapshots",
                    };
                    format!("{n} {word}")
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("refreshed at", field(s, "refreshed_at")),
    ];
    if s.get("last_error").is_some_and(|e| !e.is_null()) {
        pairs.insert(5, ("last error", field(s, "last_error")));
    }
    let mut out = block(&pairs);
    let pools: Vec<Vec<String>> = s
        .get("vol_groups")
        .map(items)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            vec![
                field(p, "vol_name"),
                size(p, "vol_total_sz"),
                size(p, "vol_used_sz"),
                size(p, "vol_free_sz"),
                field(p, "vol_desc"),
            ]
        })
        .collect();
    out.push_str("\nPools:\n");
    if pools.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&indent(&render_table(
            &["NAME", "TOTAL", "USED", "FREE", "DESCRIPTION"],
            &pools,
        )));
    }
    out.push_str("\nAccess groups:\n");
    let grps = s.get("access_grps").unwrap_or(&Value::Null);
    if items(grps).is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&indent(&groups(grps)));
    }
    out
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

/// Access groups (`access_grp` dicts).
pub fn groups(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .into_iter()
        .map(|g| {
            vec![
                field(g, "grp_name"),
                field(g, "grp_modes"),
                field(g, "grp_entries"),
            ]
        })
        .collect();
    render_table(&["NAME", "MODES", "ENTRIES"], &rows)
}

/// `qos_vals` dicts.
pub fn qos(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .into_iter()
        .map(|q| vec![field(q, "value"), field(q, "priority"), field(q, "description")])
        .collect();
    render_table(&["VALUE", "PRIORITY", "DESCRIPTION"], &rows)
}

fn percent(j: &Value) -> String {
    match j.get("percent").and_then(Value::as_i64) {
        Some(p) => format!("{p}%"),
        None => "-".into(),
    }
}

/// Jobs (`JobView`s).
pub fn jobs(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .into_iter()
        .map(|j| {
            vec![
                field(j, "id"),
                field(j, "state"),
                percent(j),
                field(j, "method"),
                field(j, "server"),
                field(j, "target"),
                field(j, "created_at"),
                field(j, "finished_at"),
            ]
        })
        .collect();
    render_table(
        &[
            "ID", "STATE", "PERCENT", "METHOD", "SERVER", "TARGET", "CREATED", "FINISHED",
        ],
        &rows,
    )
}

/// One job.
pub fn job_detail(j: &Value) -> String {
    let error = match j.get("error") {
        Some(e) if e.is_object() => format!(
            "{} ({}{})",
            field(e, "message"),
            field(e, "code"),
            e.get("exception")
                .and_then(Value::as_str)
                .map(|x| format!(", {x}"))
                .unwrap_or_default()
        ),
        _ => "-".into(),
    };
    block(&[
        ("job", field(j, "id")),
        ("state", field(j, "state")),
        ("percent", percent(j)),
        ("method", field(j, "method")),
        ("server", field(j, "server")),
        ("target", field(j, "target")),
        ("created at", field(j, "created_at")),
        ("finished at", field(j, "finished_at")),
        ("call id", field(j, "call_id")),
        ("error", error),
    ])
}

/// Audit entries.
pub fn audit(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .into_iter()
        .map(|a| {
            vec![
                field(a, "at"),
                field(a, "action"),
                field(a, "server"),
                field(a, "target"),
                field(a, "outcome"),
                field(a, "exception"),
                field(a, "duration_ms"),
                field(a, "who"),
                field(a, "remote"),
                field(a, "call_id"),
                field(a, "detail"),
            ]
        })
        .collect();
    render_table(
        &[
            "AT",
            "ACTION",
            "SERVER",
            "TARGET",
            "OUTCOME",
            "EXCEPTION",
            "MS",
            "WHO",
            "REMOTE",
            "CALL ID",
            "DETAIL",
        ],
        &rows,
    )
}

/// The ability dict.
pub fn abilities(v: &Value) -> String {
    let rows: Vec<Vec<String>> = match v {
        Value::Object(m) => m.iter().map(|(k, x)| vec![k.clone(), text(Some(x))]).collect(),
        _ => vec![],
    };
    render_table(&["ABILITY", "VALUE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_never_pad_the_last() {
        let t = render_table(
            &["NAME", "SIZE", "GROUPS"],
            &[
                vec!["db1".into(), "10.0 GiB".into(), "hosts".into()],
                vec!["a-much-longer-name".into(), "-".into(), "-".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME                SIZE      GROUPS\n\
             db1                 10.0 GiB  hosts\n\
             a-much-longer-name  -         -\n"
        );
        assert!(t.lines().all(|l| !l.ends_with(' ')));
        assert_eq!(render_table(&["A", "B"], &[]), "A  B\n");
    }

    #[test]
    fn what_a_server_reports_cannot_drive_the_terminal() {
        // An audit entry keeps a refused name as it was sent; a plug-in may report anything.
        let v = json!([{
            "at": "t", "action": "lun.create", "server": "sim",
            "target": "a\u{1b}[2J\u{1b}]0;pwned\u{7}b", "outcome": "bad_request",
            "detail": "x\u{202E}gpj.exe"
        }]);
        let t = audit(&v);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert!(t.contains("a\\u{1b}[2J\\u{1b}]0;pwned\\u{7}b"), "{t}");
        assert!(t.contains("x\\u{202e}gpj.exe"), "{t}");
        let d = element_detail(&json!({"name": "vm1\u{200B}", "kind": "lun", "page83_id": "3\r"}));
        assert!(d.contains("vm1\\u{200b}"), "{d}");
        assert!(!d.contains('\r'), "{d:?}");
        // Names as people write them are left alone.
        assert_eq!(terminal_safe("caf\u{e9}-\u{1F642}"), "caf\u{e9}-\u{1F642}");
    }

    #[test]
    fn element_rows_show_human_sizes_groups_and_page83() {
        let v = json!([{
            "name": "db1", "kind": "lun", "size": 10737418240i64, "vol_group_name": "pool0",
            "state": "Online", "status": "OK", "access_grp_names": ["hosts", "backup"],
            "page83_id": "6001405abc", "parent": null, "server": "sim1"
        }, {
            "name": "c1", "kind": "clone", "size": 1610612736i64, "parent": "db1",
            "access_grp_names": []
        }]);
        let t = elements(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("NAME  KIND   SIZE"), "{t}");
        assert!(
            lines[1].contains("10.0 GiB") && lines[1].contains("hosts,backup"),
            "{t}"
        );
        assert!(lines[1].ends_with("6001405abc"), "{t}");
        assert!(lines[2].contains("1.5 GiB") && lines[2].contains(" db1 "), "{t}");
    }

    #[test]
    fn a_single_object_renders_as_one_row() {
        let t = groups(&json!({"grp_name": "hosts", "grp_entries": ["iqn.a", "iqn.b"]}));
        assert_eq!(t, "NAME   MODES  ENTRIES\nhosts  -      iqn.a,iqn.b\n");
    }

    #[test]
    fn details_list_known_fields_then_the_rest() {
        let d = element_detail(&json!({
            "name": "db1", "size": 1073741824, "kind": "lun", "vendor": "SIM", "qos": null
        }));
        assert!(
            d.contains("size:") && d.contains("1.0 GiB (1073741824 bytes)"),
            "{d}"
        );
        assert!(d.lines().last().unwrap_or("").starts_with("vendor:"), "{d}");
        let s = server_detail(&json!({
            "name": "sim1", "total_sz": 1099511627776i64, "counts": {"luns": 2, "clones": 1, "snapshots": 0},
            "vol_groups": [{"vol_name": "pool0", "vol_total_sz": 1099511627776i64}],
            "access_grps": [{"grp_name": "hosts", "grp_entries": []}],
            "secrets_set": ["passwd"]
        }));
        // A failed refresh: the stored status is not shown as current.
        let failed = json!({
            "name": "sim3", "status": "ONLINE", "refreshed_at": "2026-12-07T01:00:00Z",
            "last_error": "pool p0 directory /srv/p0 is not usable", "counts": {}
        });
        let d = server_detail(&failed);
        assert!(
            d.contains("status:")
                && d.contains("unknown: the last refresh failed (it was ONLINE at 2026-12-07T01:00:00Z)"),
            "{d}"
        );
        assert!(
            d.contains("last error:") && d.contains("/srv/p0 is not usable"),
            "{d}"
        );
        let t = servers(&json!([failed]));
        assert!(t.contains("REFRESH FAILED") && !t.contains("ONLINE"), "{t}");
        let empty = server_detail(&json!({"name": "sim2", "vol_groups": [], "access_grps": []}));
        assert!(
            empty.contains("Pools:\n  (none)\n") && empty.contains("Access groups:\n  (none)\n"),
            "{empty}"
        );
        assert!(
            s.contains("1.0 TiB") && s.contains("2 LUNs, 1 clone, 0 snapshots"),
            "{s}"
        );
        assert!(
            s.contains("  pool0") && s.contains("  hosts") && s.contains("passwd"),
            "{s}"
        );
    }

    #[test]
    fn jobs_show_unknown_percent_as_a_dash() {
        let t = jobs(
            &json!([{"id": "j1", "state": "running", "percent": null, "method": "splitClone"},
                             {"id": "j2", "state": "succeeded", "percent": 100}]),
        );
        assert!(t.lines().nth(1).unwrap_or("").contains("running    -  "), "{t}");
        assert!(t.contains("100%"), "{t}");
    }
}
