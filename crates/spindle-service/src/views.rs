//! The JSON views of `docs/http-api.md`, built from stored rows. Secrets never reach a view.

use crate::store::{ElementRow, JobRow, Kind, ServerRow};
use serde_json::{json, Map, Value};

/// True for an `extra_info` key that holds a secret (`*passw*`, `*secret*`, `*token*`, any
/// case).
pub fn is_secret_extra_key(key: &str) -> bool {
    let k = key.trim().to_ascii_lowercase();
    k.contains("passw") || k.contains("secret") || k.contains("token")
}

/// `extra_info` without its secrets, and the names of the secrets it held
/// (`extra_info.<key>`). Understands `key=value` items separated by `;` or new lines (the
/// form spindle's plug-ins use) and a JSON object; an item that is not `key=value` but
/// mentions a secret is dropped too (listed as `extra_info`).
pub fn scrub_extra_info(extra: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(extra) {
        let kept: Map<String, Value> = map
            .into_iter()
            .filter(|(k, _)| {
                let secret = is_secret_extra_key(k);
                if secret {
                    secrets.push(format!("extra_info.{}", k.trim()));
                }
                !secret
            })
            .collect();
        return (Value::Object(kept).to_string(), secrets);
    }
    let mut kept = Vec::new();
    for item in extra.split([';', '\n']) {
        if item.trim().is_empty() {
            continue;
        }
        let secret = match item.split_once('=') {
            Some((k, _)) => {
                let s = is_secret_extra_key(k);
                if s {
                    secrets.push(format!("extra_info.{}", k.trim()));
                }
                s
            }
            None => {
                let s = is_secret_extra_key(item);
                if s && !secrets.iter().any(|x| x == "extra_info") {
                    secrets.push("extra_info".into());
                }
                s
            }
        };
        if !secret {
            kept.push(item.trim());
        }
    }
    (kept.join(";"), secrets)
}

/// The `ServerView` of a stored server; `counts` is `[luns, clones, snapshots]`.
pub(crate) fn server_view(s: &ServerRow, counts: [i64; 3]) -> Value {
    let ss = &s.ss;
    let get = |k: &str| ss.get(k).cloned().unwrap_or(Value::Null);
    let mut secrets_set = Vec::new();
    for k in ["passwd", "admin_passwd"] {
        if ss.get(k).and_then(Value::as_str).is_some_and(|v| !v.is_empty()) {
            secrets_set.push(k.to_string());
        }
    }
    let extra_info = match ss.get("extra_info") {
        Some(Value::String(e)) => {
            let (kept, secrets) = scrub_extra_info(e);
            secrets_set.extend(secrets);
            Value::String(kept)
        }
        _ => Value::Null,
    };
    // The registration takes the port as a number; the ss_record holds it as a string.
    let access_port = match ss.get("access_port") {
        Some(Value::String(p)) => p
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(p.clone())),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    json!({
        "name": s.name,
        "plugin": s.plugin,
        "storage_type": get("storage_type"),
        "admin_host": get("admin_host"),
        "admin_user": get("admin_user"),
        "access_host": get("access_host"),
        "access_port": access_port,
        "username": get("username"),
        "chap": get("chap"),
        "uuid": s.uuid,
        "status": get("status"),
        "storage_desc": get("storage_desc"),
        "total_sz": get("total_sz"),
        "used_sz": get("used_sz"),
        "free_sz": get("free_sz"),
        "alloc_sz": get("alloc_sz"),
        "vol_groups": ss.get("vol_groups").cloned().unwrap_or_else(|| json!([])),
        "access_grps": ss.get("access_grps").cloned().unwrap_or_else(|| json!([])),
        "extra_info": extra_info,
        "secrets_set": secrets_set,
        "refreshed_at": s.refreshed_at,
        "last_error": s.last_error,
        "counts": {"luns": counts[0], "clones": counts[1], "snapshots": counts[2]},
    })
}

/// The `ElementView` of a stored element: its se_record plus `server`, `kind` and, for
/// snapshots and clones, `parent` (the first parent's name) and `parents` (every parent's
/// name: a snapshot of several LUNs has several).
pub(crate) fn element_view(e: &ElementRow) -> Value {
    into_element_view(e.clone())
}

/// [`element_view`] of a row the caller no longer needs (lists: no copy of each record).
pub(crate) fn into_element_view(e: ElementRow) -> Value {
    let mut m = match e.record {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.remove("async_progress");
    m.remove("async_handle");
    m.insert("server".into(), Value::String(e.server));
    m.insert("kind".into(), Value::String(e.kind.as_str().into()));
    if e.kind != Kind::Lun {
        let parents = if e.parent_names.is_empty() {
            e.parent.iter().cloned().collect()
        } else {
            e.parent_names
        };
        m.insert(
            "parent".into(),
            e.parent.map(Value::String).unwrap_or(Value::Null),
        );
        m.insert("parents".into(), json!(parents));
    }
    Value::Object(m)
}

/// The `JobView` of a job (its async record is never part of it).
pub(crate) fn job_view(j: &JobRow) -> Value {
    json!({
        "id": j.id,
        "server": j.server,
        "method": j.method,
        "target": j.target,
        "state": j.state,
        "percent": j.percent,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
        "finished_at": j.finished_at,
        "call_id": j.call_id,
        "error": j.error,
        "result": j.result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_view_holds_no_secret_and_lists_those_set() {
        let row = ServerRow {
            name: "a".into(),
            uuid: "u".into(),
            plugin: "x@1.0.0-1".into(),
            ss: json!({
                "name": "a", "uuid": "u", "storage_type": "iSCSIStorage",
                "passwd": "PW-one", "admin_passwd": "PW-two", "access_port": "3260",
                "extra_info": "pools=p:/d;chap_password=PW-three;API_TOKEN=PW-four;x=1",
                "access_grps": [{"grp_name": "g", "grp_entries": []}],
            }),
            created_at: "t".into(),
            refreshed_at: None,
            last_error: Some("boom".into()),
        };
        let v = server_view(&row, [1, 2, 3]);
        let text = v.to_string();
        assert!(!text.contains("PW-"), "{text}");
        assert_eq!(
            v["secrets_set"],
            json!([
                "passwd",
                "admin_passwd",
                "extra_info.chap_password",
                "extra_info.API_TOKEN"
            ])
        );
        assert_eq!(v["extra_info"], "pools=p:/d;x=1");
        assert_eq!(v["access_port"], 3260);
        assert_eq!(v["counts"], json!({"luns": 1, "clones": 2, "snapshots": 3}));
        assert_eq!(v["access_grps"][0]["grp_name"], "g");
        assert_eq!(v["last_error"], "boom");
        assert!(
            !format!("{row:?}").contains("PW-"),
            "Debug of a server row hides its record"
        );
        let empty = ServerRow {
            ss: json!({"passwd": ""}),
            ..row
        };
        assert_eq!(server_view(&empty, [0; 3])["secrets_set"], json!([]));
    }

    #[test]
    fn extra_info_secrets_are_removed_and_listed() {
        let (kept, secrets) =
            scrub_extra_info("state_dir=/x; chap_Password=p1;api_token=t;pools=a,b;MySecret=s");
        assert_eq!(kept, "state_dir=/x;pools=a,b");
        assert_eq!(
            secrets,
            [
                "extra_info.chap_Password",
                "extra_info.api_token",
                "extra_info.MySecret"
            ]
        );
        let (kept, secrets) = scrub_extra_info(r#"{"host":"a","passwd":"p"}"#);
        assert_eq!(kept, r#"{"host":"a"}"#);
        assert_eq!(secrets, ["extra_info.passwd"]);
        let (kept, secrets) = scrub_extra_info("secret-in-free-text");
        assert_eq!(kept, "");
        assert_eq!(secrets, ["extra_info"]);
    }
}
