//! The manager's generic versions of the optional methods (`discover`, `start`, `stop`,
//! `refresh`, `updateSERecords`), used when a plug-in does not implement them.
//!
//! They work from the host's side, as the guides' generic versions do: iSCSI discovery and
//! login checks through libiscsi's `iscsi-ls` (Debian package `libiscsi-bin`), a SCSI rescan
//! through sysfs, and device paths from `/dev/disk/by-id`. Secrets never reach a command
//! line: a CHAP secret goes to libiscsi through its environment variable.

use serde_json::{Map, Value};
use spindle_api::{ExceptionKind, Method, PluginException, PluginResult, SeRecord, SsRecord};
use std::path::Path;
use std::time::Duration;

const ISCSI_LS: &str = "iscsi-ls";
const TOOL_DEADLINE: Duration = Duration::from_secs(30);

fn portal(ss: &SsRecord) -> PluginResult<String> {
    let host = ss.access_host.value().filter(|h| !h.is_empty()).ok_or_else(|| {
        PluginException::missing_key("access_host", "iSCSI discovery needs ss_record.access_host")
    })?;
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(PluginException::value_format(
            "access_host",
            format!("access_host '{host}' is not a host name or address"),
        ));
    }
    let port = ss
        .access_port
        .value()
        .filter(|p| !p.is_empty())
        .map(String::as_str)
        .unwrap_or("3260");
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
        return Err(PluginException::value_format(
            "access_port",
            format!("access_port '{port}' is not a TCP port"),
        ));
    }
    Ok(format!("{host}:{port}"))
}

async fn iscsi_ls(ss: &SsRecord, url_tail: &str, failure: ExceptionKind) -> PluginResult<String> {
    let chap = ss.chap.value().copied().unwrap_or(false);
    let user = ss.username.value().filter(|u| !u.is_empty());
    let mut cmd = tokio::process::Command::new(ISCSI_LS);
    let url = match (chap, user) {
        (true, Some(u)) => {
            if u.contains(['@', '%', '/']) {
                return Err(PluginException::value_format(
                    "username",
                    "username may not contain '@', '%' or '/'",
                ));
            }
            cmd.env(
                "LIBISCSI_CHAP_PASSWORD",
                ss.passwd.value().cloned().unwrap_or_default(),
            );
            format!("iscsi://{u}@{}{url_tail}", portal(ss)?)
        }
        (true, None) => {
            return Err(PluginException::missing_key(
                "username",
                "chap is set but ss_record.username is empty",
            ));
        }
        _ => format!("iscsi://{}{url_tail}", portal(ss)?),
    };
    cmd.arg(&url).kill_on_drop(true);
    let out = tokio::time::timeout(TOOL_DEADLINE, cmd.output())
        .await
        .map_err(|_| {
            PluginException::new(
                failure,
                format!("{ISCSI_LS} {url} did not finish within {TOOL_DEADLINE:?}"),
            )
        })?
        .map_err(|e| {
            PluginException::new(
                failure,
                format!("the generic version needs {ISCSI_LS} (Debian package libiscsi-bin): {e}"),
            )
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(PluginException::new(
            failure,
            format!("{ISCSI_LS} {url} failed: {}", err.trim()),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Target names in `iscsi-ls` output (`Target:<iqn> Portal:<addr>`).
pub fn parse_targets(listing: &str) -> Vec<String> {
    let mut targets: Vec<String> = listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Target:"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(String::from)
        .collect();
    targets.dedup();
    targets
}

/// Runs the generic version of `method`.
pub async fn run(method: Method, args: &Map<String, Value>, dev_path_prefix: &str) -> PluginResult<Value> {
    let ss = SsRecord::from_value(args.get("ss_record").unwrap_or(&Value::Null))
        .map_err(|e| PluginException::value_format("ss_record", e.to_string()))?;
    match method {
        Method::Discover => {
            let listing = iscsi_ls(&ss, "", ExceptionKind::TargetDiscoveryEx).await?;
            let mut out = ss.clone();
            out.storage_id = parse_targets(&listing).into();
            Ok(out.to_value())
        }
        Method::Start => {
            // This host has no kernel initiator to hold sessions: the generic start proves that
            // every target in storage_id accepts a login with the record's credentials.
            let targets = ss.storage_id.value().cloned().unwrap_or_default();
            if targets.is_empty() {
                return Err(PluginException::missing_key(
                    "storage_id",
                    "start needs the targets from discover in storage_id",
                ));
            }
            for t in targets {
                if t.contains(['/', '@', '%']) {
                    return Err(PluginException::value_format(
                        "storage_id",
                        format!("'{t}' is not an iSCSI target name"),
                    ));
                }
                iscsi_ls(&ss, &format!("/{t}"), ExceptionKind::LoginFailedEx).await?;
            }
            Ok(Value::Null)
        }
        Method::Stop => {
            // No kernel sessions exist on this host, so there is nothing to tear down.
            Ok(Value::Null)
        }
        Method::Refresh => {
            let hosts = Path::new("/sys/class/scsi_host");
            let Ok(entries) = std::fs::read_dir(hosts) else {
                return Ok(Value::Null);
            };
            for e in entries.flatten() {
                let scan = e.path().join("scan");
                std::fs::write(&scan, "- - -").map_err(|err| {
                    PluginException::new(
                        ExceptionKind::RefreshFailedEx,
                        format!("cannot rescan {}: {err}", scan.display()),
                    )
                })?;
            }
            Ok(Value::Null)
        }
        Method::UpdateSeRecords => {
            let list = args
                .get("se_records")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut out = Vec::with_capacity(list.len());
            for item in list {
                let mut se = SeRecord::from_value(&item).map_err(|e| {
                    PluginException::value_format(e.key().unwrap_or("se_records"), e.to_string())
                })?;
                if let Some(id) = se
                    .page83_id
                    .value()
                    .filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric()))
                {
                    let by_id = Path::new("/dev/disk/by-id").join(format!("scsi-{id}"));
                    let mpath = Path::new("/dev/mapper").join(id);
                    let paths: Vec<String> = if dev_path_prefix.starts_with("/dev/mapper") && mpath.exists() {
                        vec![format!("{dev_path_prefix}{id}")]
                    } else if by_id.exists() {
                        vec![by_id.display().to_string()]
                    } else {
                        Vec::new()
                    };
                    se.path = paths.into();
                }
                out.push(se.to_value());
            }
            Ok(Value::Array(out))
        }
        other => Err(PluginException::no_such_operation(format!(
            "{other} has no generic version"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_from_iscsi_ls_output() {
        let out = "Target:iqn.2026-11.org.example:a Portal:127.0.0.1:3260,1\nTarget:iqn.2026-11.org.example:b Portal:127.0.0.1:3260,1\n";
        assert_eq!(
            parse_targets(out),
            ["iqn.2026-11.org.example:a", "iqn.2026-11.org.example:b"]
        );
    }
}
