//! One handler per [`Action`]: check the input, call the plug-in, update the stored records
//! from what it returned, answer with a view.

use crate::jobs::{progress_of, Finish, NewJob};
use crate::service::{args, q, Inner};
use crate::store::{self, ElementRow, Kind, ServerRow};
use crate::sync::merge_ss;
use crate::views::{element_view, into_element_view, job_view, server_view};
use crate::{Action, AddServer, CreateLun, Reply, RequestContext, ServiceError, UpdateServer};
use serde_json::{json, Map, Value};
use spindle_api::names::{name_fault, normalize_iscsi_name};
use spindle_api::{ExceptionKind, Method, StorageType};
use std::collections::HashMap;
use std::sync::Arc;

/// Which elements a `{lun}` / `{snap}` may designate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// LUNs and clones.
    Lun,
    /// Snapshots.
    Snap,
}

impl Want {
    fn accepts(self, k: Kind) -> bool {
        match self {
            Want::Lun => k != Kind::Snapshot,
            Want::Snap => k == Kind::Snapshot,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Want::Lun => "LUN",
            Want::Snap => "snapshot",
        }
    }
}

// ---- input checks (no plug-in is called before these pass) ----

fn check_name(key: &str, value: &str) -> Result<(), ServiceError> {
    if value.is_empty() {
        return Err(ServiceError::bad(
            ExceptionKind::MissingKeyEx,
            key,
            format!("{key} is empty; a name is required"),
        ));
    }
    match name_fault(value, &[]) {
        None => Ok(()),
        Some(why) => Err(ServiceError::bad(
            ExceptionKind::ValueFormatEx,
            key,
            format!("{key} {} {why}", q(value)),
        )),
    }
}

fn check_size(key: &str, size: i64) -> Result<(), ServiceError> {
    if size > 0 {
        Ok(())
    } else {
        Err(ServiceError::bad(
            ExceptionKind::InvalidValueEx,
            key,
            format!("{key} must be a positive number of bytes, not {size}"),
        ))
    }
}

/// The unit the built-in arrays (Linux and simulated) round every size up to. A resize to a
/// size that rounds up to the element's current size changes nothing there.
const ALLOCATION_UNIT: i64 = 1 << 20;

/// Refuses a resize of `e` to `size` that would drop data: one below its current size (the
/// plug-in's last record of it), unless the arrays' rounding up to whole MiB brings it back to
/// that size. The allowance applies only when the current size is a whole number of MiB: one
/// that is not comes from an array allocating in other units, whose rounding spindle cannot
/// know, so any smaller size counts as a shrink there. A record without a size is refused
/// too: spindle cannot tell whether the resize shrinks it.
fn check_not_shrunk(e: &ElementRow, size: i64) -> Result<(), ServiceError> {
    let kind = if e.kind == Kind::Clone { "clone" } else { "LUN" };
    let what = format!("{kind} {}", q(&e.name));
    let Some(current) = e.record.get("size").and_then(Value::as_i64) else {
        return Err(ServiceError::bad(
            ExceptionKind::InvalidValueEx,
            "allow_shrink",
            format!(
                "the record of {what} has no size, so size {size} may shrink it and drop its data; set allow_shrink to resize it anyway"
            ),
        ));
    };
    let rounded = size
        .checked_add(ALLOCATION_UNIT - 1)
        .map(|s| s / ALLOCATION_UNIT * ALLOCATION_UNIT);
    let same_after_rounding = current % ALLOCATION_UNIT == 0 && rounded == Some(current);
    if size >= current || same_after_rounding {
        return Ok(());
    }
    Err(ServiceError::bad(
        ExceptionKind::InvalidValueEx,
        "allow_shrink",
        format!(
            "size {size} is smaller than the {current} bytes of {what}: shrinking it drops the data past its new end; set allow_shrink to shrink it on purpose"
        ),
    ))
}

fn qos_text(key: &str, qos: &Value) -> Result<String, ServiceError> {
    match qos {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::String(_) => Err(ServiceError::bad(
            ExceptionKind::MissingKeyEx,
            key,
            format!("{key} is empty; name one of the values GET .../qos lists"),
        )),
        other => Err(ServiceError::bad(
            ExceptionKind::ValueFormatEx,
            key,
            format!("{key} must be a string (a value GET .../qos lists), not {other}"),
        )),
    }
}

fn storage_type_of(srv: &ServerRow) -> Option<StorageType> {
    srv.ss
        .get("storage_type")
        .and_then(Value::as_str)
        .and_then(StorageType::parse)
}

/// Access-group entries in their normal form: WWNs (`0x` + 16 hex digits) on SAN servers,
/// initiator names on iSCSI servers.
fn check_entries(
    st: Option<StorageType>,
    entries: &[String],
    non_empty: bool,
) -> Result<Vec<String>, ServiceError> {
    if non_empty && entries.is_empty() {
        return Err(ServiceError::bad(
            ExceptionKind::MissingKeyEx,
            "entries",
            "entries is empty; name at least one entry",
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let normal = match st {
            Some(StorageType::Iscsi) => normalize_iscsi_name(e).ok_or_else(|| {
                ServiceError::bad(
                    ExceptionKind::ValueFormatEx,
                    "entries",
                    format!(
                        "entries value {} {}",
                        q(e),
                        spindle_api::names::iscsi_name_rule(e)
                    ),
                )
            })?,
            Some(StorageType::San) => {
                let lower = e.to_ascii_lowercase();
                lower
                    .strip_prefix("0x")
                    .filter(|h| spindle_api::names::all_hex(h, &[16]))
                    .map(|h| format!("0x{h}"))
                    .ok_or_else(|| {
                        ServiceError::bad(
                            ExceptionKind::ValueFormatEx,
                            "entries",
                            format!(
                                "entries value {} is not a WWN written 0x followed by 16 hex digits",
                                q(e)
                            ),
                        )
                    })?
            }
            None => e.clone(),
        };
        if !out.contains(&normal) {
            out.push(normal);
        }
    }
    Ok(out)
}

fn groups_of(srv: &ServerRow) -> Vec<Value> {
    match srv.ss.get("access_grps") {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    }
}

fn group_name(g: &Value) -> &str {
    g.get("grp_name").and_then(Value::as_str).unwrap_or("")
}

fn find_group(srv: &ServerRow, name: &str) -> Option<Value> {
    groups_of(srv).into_iter().find(|g| group_name(g) == name)
}

fn no_group(srv: &ServerRow, key: &str, name: &str) -> ServiceError {
    let known: Vec<String> = groups_of(srv).iter().map(|g| group_name(g).to_string()).collect();
    ServiceError::not_found(
        key,
        format!(
            "no access group named {} on storage server {} (its groups: {})",
            q(name),
            q(&srv.name),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ),
    )
}

/// A given `access_port` must be a TCP port.
fn check_port(s: &crate::ServerSettings) -> Result<(), ServiceError> {
    match s.access_port {
        Some(p) if !(1..=65535).contains(&p) => Err(ServiceError::bad(
            ExceptionKind::InvalidValueEx,
            "access_port",
            format!("access_port must be a TCP port (1 to 65535), not {p}"),
        )),
        _ => Ok(()),
    }
}

fn with_ss(mut ss: Value, key: &str, v: Value) -> Value {
    if let Value::Object(m) = &mut ss {
        m.insert(key.to_string(), v);
    }
    ss
}

fn new_record(se_type: &str, ss_uuid: &str, name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("se_type".into(), json!(se_type));
    m.insert("ss_uuid".into(), json!(ss_uuid));
    m.insert("name".into(), json!(name));
    m
}

/// Refuses (`Conflict`, naming `field`) a group name the server already has.
fn group_name_free(srv: &ServerRow, field: &str, name: &str) -> Result<(), ServiceError> {
    match find_group(srv, name) {
        Some(_) => Err(ServiceError::conflict(
            field,
            format!(
                "storage server {} already has an access group named {}",
                q(&srv.name),
                q(name)
            ),
        )),
        None => Ok(()),
    }
}

/// Arguments of clone / cloneFromSnap: the sources, a `dest_se_record` naming the new clone,
/// and the QoS when one was asked for.
fn clone_args<const N: usize>(
    srv: &ServerRow,
    name: &str,
    qos: Option<String>,
    sources: [(&'static str, Value); N],
) -> Map<String, Value> {
    let mut a = args(&srv.ss, sources);
    a.insert(
        "dest_se_record".into(),
        Value::Object(new_record("SnapCloneType", &srv.uuid, name)),
    );
    if let Some(qos) = qos {
        a.insert("qos".into(), json!(qos));
    }
    a
}

/// The element `key` (a uuid, or a name) designates among `rows` (those whose uuid or name is
/// `key`) that `want` accepts: a uuid first, then a unique name.
fn pick(
    server: &str,
    rows: &[ElementRow],
    key: &str,
    field: &str,
    want: Want,
) -> Result<ElementRow, ServiceError> {
    if let Some(e) = rows.iter().find(|e| e.uuid == key && want.accepts(e.kind)) {
        return Ok(e.clone());
    }
    let named: Vec<&ElementRow> = rows
        .iter()
        .filter(|e| e.name == key && want.accepts(e.kind))
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let hint = match rows.iter().find(|e| !want.accepts(e.kind)) {
                Some(o) => format!(" ({} is a {})", q(key), o.kind.as_str()),
                None => String::new(),
            };
            Err(ServiceError::not_found(
                field,
                format!(
                    "no {} named {} on storage server {}{hint}",
                    want.noun(),
                    q(key),
                    q(server)
                ),
            ))
        }
        many => Err(ServiceError::ambiguous(
            field,
            format!(
                "{} names {} elements on storage server {} (uuids {}); use the uuid",
                q(key),
                many.len(),
                q(server),
                many.iter()
                    .map(|e| e.uuid.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Conflict if one of `rows` is called `name`.
fn name_free(srv: &ServerRow, rows: &[ElementRow], name: &str) -> Result<(), ServiceError> {
    match rows.iter().find(|e| e.name == name) {
        None => Ok(()),
        Some(e) => Err(ServiceError::conflict(
            "name",
            format!(
                "storage server {} already has a {} named {}",
                q(&srv.name),
                e.kind.as_str(),
                q(name)
            ),
        )),
    }
}

impl Inner {
    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        ctx: &RequestContext,
        action: Action,
    ) -> Result<Reply, ServiceError> {
        let id = ctx.call_id.as_str();
        match action {
            Action::ListPlugins => Ok(Reply::Done(self.list_plugins())),
            Action::ListServers => {
                let (servers, counts) = self
                    .store
                    .read(|c| Ok((store::servers(c)?, store::counts(c, None)?)))
                    .await?;
                Ok(Reply::Done(Value::Array(
                    servers
                        .iter()
                        .map(|s| server_view(s, counts.get(&s.name).copied().unwrap_or_default()))
                        .collect(),
                )))
            }
            Action::AddServer(a) => self.add_server(a, id).await,
            Action::UpdateServer(u) => self.update_server(u, id).await,
            Action::ShowServer { server } => Ok(Reply::Done(self.server_view(&server).await?)),
            Action::RefreshServer { server } => {
                self.refresh(&server, id).await?;
                Ok(Reply::Done(self.server_view(&server).await?))
            }
            Action::RemoveServer { server } => self.remove_server(&server).await,
            Action::Capabilities { server } => {
                let srv = self.server(&server).await?;
                let entry = self.plugin(&srv)?;
                let v = self
                    .call(entry, Method::GetCapabilities, args(&srv.ss, []), id)
                    .await?;
                Ok(Reply::Done(v))
            }
            Action::ListLuns { server, refresh } => {
                if refresh {
                    self.refresh(&server, id).await?;
                }
                let rows = self.elements_of(&server).await?;
                Ok(Reply::Done(Value::Array(
                    rows.into_iter()
                        .filter(|e| e.kind != Kind::Snapshot)
                        .map(into_element_view)
                        .collect(),
                )))
            }
            Action::CreateLun(c) => self.create_lun(c, id).await,
            Action::ShowLun { server, lun, refresh } => {
                if !refresh {
                    let (_, e) = self.load_one(&server, &lun, "lun", Want::Lun).await?;
                    return Ok(Reply::Done(element_view(&e)));
                }
                let _g = self.lock(&server).await;
                let (srv, e) = self.load_one(&server, &lun, "lun", Want::Lun).await?;
                let view = self.reread_element(&srv, &e, id).await?;
                Ok(Reply::Done(view))
            }
            Action::RemoveLun { server, lun } => {
                self.remove_element(
                    &server,
                    &lun,
                    ("lun", Want::Lun),
                    (Method::Remove, "se_record"),
                    id,
                )
                .await
            }
            Action::ResizeLun {
                server,
                lun,
                size,
                allow_shrink,
            } => {
                check_size("size", size)?;
                let _g = self.lock(&server).await;
                let (srv, mut e) = self.load_one(&server, &lun, "lun", Want::Lun).await?;
                let entry = self.plugin(&srv)?;
                // Checked under the server's lock against the record the plug-in is sent, so
                // a resize racing this one cannot turn a grow into an unasked shrink.
                if !allow_shrink {
                    check_not_shrunk(&e, size)?;
                    // The stored record may be stale (the LUN grown through another
                    // registration of the array, or by hand): a "grow" between the stored
                    // and the real size would shrink it. The array's own record decides;
                    // an array that cannot say is judged by the stored one.
                    let info = args(&srv.ss, [("se_record", e.record.clone())]);
                    if let Ok(rec) = self.call(entry, Method::GetInfo, info, id).await {
                        let fresh = ElementRow::new(&e.server, rec, Vec::new());
                        if fresh.uuid == e.uuid {
                            check_not_shrunk(&fresh, size)?;
                            e.record = fresh.record;
                        }
                    }
                }
                let v = self
                    .call(
                        entry,
                        Method::Resize,
                        args(
                            &srv.ss,
                            [("se_record", e.record.clone()), ("new_size", json!(size))],
                        ),
                        id,
                    )
                    .await?;
                self.replaced_or_job(&srv, Method::Resize, &e, v, id).await
            }
            Action::Online { server, lun } => self.state_change(&server, &lun, Method::Online, id).await,
            Action::Offline { server, lun } => self.state_change(&server, &lun, Method::Offline, id).await,
            Action::Present { server, lun, groups } => {
                self.presentation(&server, &lun, groups, Method::StartPresent, id)
                    .await
            }
            Action::Unpresent { server, lun, groups } => {
                self.presentation(&server, &lun, groups, Method::StopPresent, id)
                    .await
            }
            Action::SetQos { server, lun, qos } => {
                let qos = qos_text("qos", &qos)?;
                let _g = self.lock(&server).await;
                let (srv, e) = self.load_one(&server, &lun, "lun", Want::Lun).await?;
                let entry = self.plugin(&srv)?;
                self.call(
                    entry,
                    Method::SetQos,
                    args(&srv.ss, [("se_record", e.record.clone()), ("qos", json!(qos))]),
                    id,
                )
                .await?;
                Ok(Reply::Done(self.reread_element(&srv, &e, id).await?))
            }
            Action::Clone {
                server,
                lun,
                name,
                qos,
            } => {
                check_name("name", &name)?;
                let qos = qos.as_ref().map(|v| qos_text("qos", v)).transpose()?;
                let _g = self.lock(&server).await;
                let (srv, origin) = self.load_new(&server, &name, &lun, "lun", Want::Lun).await?;
                let entry = self.plugin(&srv)?;
                let a = clone_args(&srv, &name, qos, [("se_record", origin.record.clone())]);
                let v = self.call(entry, Method::Clone, a, id).await?;
                let parents = vec![(origin.uuid.clone(), origin.name.clone())];
                self.inserted_or_job(&srv, Method::Clone, &name, v, parents, id)
                    .await
            }
            Action::Split { server, lun } => self.split(&server, &lun, id).await,
            Action::ListSnapshots { server, lun } => {
                let only = match &lun {
                    Some(l) => Some(self.find(&server, l, "lun", Want::Lun).await?.uuid),
                    None => None,
                };
                let rows = self.elements_of(&server).await?;
                Ok(Reply::Done(Value::Array(
                    rows.into_iter()
                        .filter(|e| e.kind == Kind::Snapshot)
                        .filter(|e| only.as_ref().is_none_or(|u| e.parent_uuids.contains(u)))
                        .map(into_element_view)
                        .collect(),
                )))
            }
            Action::CreateSnapshot { server, lun, name } => {
                check_name("name", &name)?;
                let _g = self.lock(&server).await;
                let (srv, origin) = self.load_new(&server, &name, &lun, "lun", Want::Lun).await?;
                let entry = self.plugin(&srv)?;
                let v = self
                    .call(
                        entry,
                        Method::CreateSnap,
                        args(
                            &srv.ss,
                            [
                                ("se_record", origin.record.clone()),
                                (
                                    "snap_se_record",
                                    Value::Object(new_record("SnapType", &srv.uuid, &name)),
                                ),
                            ],
                        ),
                        id,
                    )
                    .await?;
                let parents = vec![(origin.uuid.clone(), origin.name.clone())];
                self.inserted_or_job(&srv, Method::CreateSnap, &name, v, parents, id)
                    .await
            }
            Action::CreateMultiSnapshot { server, luns, name } => {
                check_name("name", &name)?;
                if luns.is_empty() {
                    return Err(ServiceError::bad(
                        ExceptionKind::MissingKeyEx,
                        "luns",
                        "luns is empty; name the LUNs to snapshot together",
                    ));
                }
                let _g = self.lock(&server).await;
                let mut keys = vec![name.clone()];
                keys.extend(luns.iter().cloned());
                let (srv, found) = self.load(&server, keys).await?;
                name_free(&srv, &found[0], &name)?;
                let mut origins: Vec<ElementRow> = Vec::new();
                for (l, rows) in luns.iter().zip(&found[1..]) {
                    let e = pick(&server, rows, l, "luns", Want::Lun)?;
                    if origins.iter().any(|o| o.uuid == e.uuid) {
                        return Err(ServiceError::bad(
                            ExceptionKind::InvalidValueEx,
                            "luns",
                            format!("luns names {} twice", q(&e.name)),
                        ));
                    }
                    origins.push(e);
                }
                let entry = self.plugin(&srv)?;
                let v = self
                    .call(
                        entry,
                        Method::CreateMultiSnap,
                        args(
                            &srv.ss,
                            [
                                (
                                    "se_records",
                                    Value::Array(origins.iter().map(|o| o.record.clone()).collect()),
                                ),
                                (
                                    "snap_se_record",
                                    Value::Object(new_record("SnapType", &srv.uuid, &name)),
                                ),
                            ],
                        ),
                        id,
                    )
                    .await?;
                let parents = origins.iter().map(|o| (o.uuid.clone(), o.name.clone())).collect();
                match self
                    .inserted_or_job(&srv, Method::CreateMultiSnap, &name, v, parents, id)
                    .await?
                {
                    Reply::Created(view) => Ok(Reply::Created(Value::Array(vec![view]))),
                    other => Ok(other),
                }
            }
            Action::RemoveSnapshot { server, snap } => {
                self.remove_element(
                    &server,
                    &snap,
                    ("snap", Want::Snap),
                    (Method::SnapRemove, "snap_se_record"),
                    id,
                )
                .await
            }
            Action::RestoreSnapshot { server, snap, lun } => {
                self.restore(&server, &snap, lun.as_deref(), id).await
            }
            Action::CloneSnapshot {
                server,
                snap,
                name,
                qos,
                lun,
            } => {
                check_name("name", &name)?;
                let qos = qos.as_ref().map(|v| qos_text("qos", v)).transpose()?;
                let _g = self.lock(&server).await;
                let (srv, s) = self.load_new(&server, &name, &snap, "snap", Want::Snap).await?;
                let parent = match (lun, s.parent_uuids.as_slice()) {
                    (Some(l), _) => Some(self.snapshot_member(&server, &s, &l).await?),
                    (None, [u]) => {
                        let (sv, u) = (server.clone(), u.clone());
                        self.store.read(move |c| store::element(c, &sv, &u)).await?
                    }
                    (None, []) => None,
                    (None, _) => {
                        return Err(ServiceError::bad(
                            ExceptionKind::MissingKeyEx,
                            "lun",
                            format!(
                                "snapshot {} covers several LUNs ({}): name the one to clone in lun",
                                q(&s.name),
                                s.parent_names.join(", ")
                            ),
                        ))
                    }
                };
                let Some(parent) = parent else {
                    return Err(ServiceError::bad(
                        ExceptionKind::InvalidValueEx,
                        "snap",
                        format!(
                            "spindle does not know which LUN snapshot {} was taken of (the plug-in did not report it, or the LUN is gone); refresh the storage server",
                            q(&s.name)
                        ),
                    ));
                };
                let entry = self.plugin(&srv)?;
                let a = clone_args(
                    &srv,
                    &name,
                    qos,
                    [
                        ("se_record", parent.record.clone()),
                        ("snap_se_record", s.record.clone()),
                    ],
                );
                let v = self.call(entry, Method::CloneFromSnap, a, id).await?;
                let parents = vec![(s.uuid.clone(), s.name.clone())];
                self.inserted_or_job(&srv, Method::CloneFromSnap, &name, v, parents, id)
                    .await
            }
            Action::ListGroups { server } => {
                let srv = self.server(&server).await?;
                Ok(Reply::Done(Value::Array(groups_of(&srv))))
            }
            Action::CreateGroup {
                server,
                name,
                entries,
            } => {
                check_name("name", &name)?;
                let _g = self.lock(&server).await;
                let srv = self.server(&server).await?;
                let entries = check_entries(storage_type_of(&srv), &entries, false)?;
                group_name_free(&srv, "name", &name)?;
                let entry = self.plugin(&srv)?;
                let list = self
                    .call(
                        entry,
                        Method::CreateAccessGroups,
                        args(
                            &srv.ss,
                            [("access_grps", json!([{"grp_name": name, "grp_entries": entries}]))],
                        ),
                        id,
                    )
                    .await?;
                let created = list
                    .as_array()
                    .and_then(|a| a.iter().find(|g| group_name(g) == name).cloned())
                    .unwrap_or_else(|| json!({"grp_name": name, "grp_entries": entries}));
                self.store_groups(&srv, list, None).await?;
                Ok(Reply::Created(created))
            }
            Action::RemoveGroup { server, group } => {
                let _g = self.lock(&server).await;
                let srv = self.server(&server).await?;
                let g = find_group(&srv, &group).ok_or_else(|| no_group(&srv, "group", &group))?;
                let entry = self.plugin(&srv)?;
                let list = self
                    .call(
                        entry,
                        Method::RemoveAccessGroups,
                        args(&srv.ss, [("access_grps", json!([g]))]),
                        id,
                    )
                    .await?;
                self.store_groups(&srv, list, None).await?;
                Ok(Reply::Nothing)
            }
            Action::RenameGroup {
                server,
                group,
                new_name,
            } => {
                check_name("new_name", &new_name)?;
                let _g = self.lock(&server).await;
                let srv = self.server(&server).await?;
                find_group(&srv, &group).ok_or_else(|| no_group(&srv, "group", &group))?;
                if group != new_name {
                    group_name_free(&srv, "new_name", &new_name)?;
                }
                let entry = self.plugin(&srv)?;
                let list = self
                    .call(
                        entry,
                        Method::RenameAccessGroup,
                        args(
                            &srv.ss,
                            [
                                ("access_grp_name", json!(group)),
                                ("new_access_grp_name", json!(new_name)),
                            ],
                        ),
                        id,
                    )
                    .await?;
                let renamed = list
                    .as_array()
                    .and_then(|a| a.iter().find(|g| group_name(g) == new_name).cloned())
                    .unwrap_or(Value::Null);
                self.store_groups(&srv, list, Some((group, new_name))).await?;
                Ok(Reply::Done(renamed))
            }
            Action::AddGroupEntries {
                server,
                group,
                entries,
            } => {
                self.group_entries(&server, &group, &entries, Method::AddToAccessGroup, id)
                    .await
            }
            Action::RemoveGroupEntries {
                server,
                group,
                entries,
            } => {
                self.group_entries(&server, &group, &entries, Method::RemoveFromAccessGroup, id)
                    .await
            }
            Action::ListQos { server } => {
                let srv = self.server(&server).await?;
                let entry = self.plugin(&srv)?;
                Ok(Reply::Done(
                    self.call(entry, Method::GetQosList, args(&srv.ss, []), id)
                        .await?,
                ))
            }
            Action::ListJobs { running_only } => {
                let jobs = self.store.read(move |c| store::jobs(c, running_only)).await?;
                Ok(Reply::Done(Value::Array(jobs.iter().map(job_view).collect())))
            }
            Action::ShowJob { id: job } => {
                let j = job.clone();
                let row = self
                    .store
                    .read(move |c| store::job(c, &j))
                    .await?
                    .ok_or_else(|| ServiceError::not_found("id", format!("no job with id {}", q(&job))))?;
                Ok(Reply::Done(job_view(&row)))
            }
            Action::ListAudit { limit } => {
                let limit = limit.min(10_000);
                Ok(Reply::Done(Value::Array(
                    self.store.read(move |c| store::audit(c, limit)).await?,
                )))
            }
        }
    }

    fn list_plugins(&self) -> Value {
        Value::Array(
            self.config
                .manager
                .plugins()
                .iter()
                .map(|p| {
                    json!({
                        "class": p.id.class,
                        "version": p.id.version.to_string(),
                        "abilities": p.metadata.plugin_ability.to_value(),
                        "ss_extra_info_help": p.metadata.ss_extra_info_help,
                        "storage_types": p.metadata.storage_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }

    async fn server_view(&self, name: &str) -> Result<Value, ServiceError> {
        let n = name.to_string();
        let (srv, counts) = self
            .store
            .read(move |c| {
                let srv = store::server(c, &n)?;
                let counts = store::counts(c, Some(&n))?;
                Ok((srv, counts.get(&n).copied().unwrap_or_default()))
            })
            .await?;
        let srv = srv.ok_or_else(|| {
            ServiceError::not_found("server", format!("no storage server named {}", q(name)))
        })?;
        Ok(server_view(&srv, counts))
    }

    async fn elements_of(&self, server: &str) -> Result<Vec<ElementRow>, ServiceError> {
        let n = server.to_string();
        let (found, rows) = self
            .store
            .read(move |c| Ok((store::server(c, &n)?.is_some(), store::elements(c, &n)?)))
            .await?;
        if !found {
            return Err(ServiceError::not_found(
                "server",
                format!("no storage server named {}", q(server)),
            ));
        }
        Ok(rows)
    }

    /// remove / snapRemove: one element (`field` names it in errors), then its stored record.
    async fn remove_element(
        &self,
        server: &str,
        key: &str,
        (field, want): (&'static str, Want),
        (method, param): (Method, &'static str),
        id: &str,
    ) -> Result<Reply, ServiceError> {
        let _g = self.lock(server).await;
        let (srv, e) = self.load_one(server, key, field, want).await?;
        let entry = self.plugin(&srv)?;
        self.call(entry, method, args(&srv.ss, [(param, e.record.clone())]), id)
            .await?;
        self.store
            .write(move |tx| store::delete_element(tx, &e.server, &e.uuid))
            .await?;
        Ok(Reply::Nothing)
    }

    /// The server and, for each key, the elements whose uuid or name it is: one store read.
    async fn load(
        &self,
        server: &str,
        keys: Vec<String>,
    ) -> Result<(ServerRow, Vec<Vec<ElementRow>>), ServiceError> {
        let n = server.to_string();
        let (srv, rows) = self
            .store
            .read(move |c| {
                let Some(srv) = store::server(c, &n)? else {
                    return Ok((None, Vec::new()));
                };
                let rows = keys
                    .iter()
                    .map(|k| store::elements_named(c, &n, k))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((Some(srv), rows))
            })
            .await?;
        let srv = srv.ok_or_else(|| {
            ServiceError::not_found("server", format!("no storage server named {}", q(server)))
        })?;
        Ok((srv, rows))
    }

    /// The server and the element `key` designates.
    pub(crate) async fn load_one(
        &self,
        server: &str,
        key: &str,
        field: &str,
        want: Want,
    ) -> Result<(ServerRow, ElementRow), ServiceError> {
        let (srv, rows) = self.load(server, vec![key.to_string()]).await?;
        let e = pick(server, &rows[0], key, field, want)?;
        Ok((srv, e))
    }

    /// The server, after checking that no element is called `name`, and the element `key`
    /// designates.
    async fn load_new(
        &self,
        server: &str,
        name: &str,
        key: &str,
        field: &str,
        want: Want,
    ) -> Result<(ServerRow, ElementRow), ServiceError> {
        let (srv, rows) = self.load(server, vec![name.to_string(), key.to_string()]).await?;
        name_free(&srv, &rows[0], name)?;
        let e = pick(server, &rows[1], key, field, want)?;
        Ok((srv, e))
    }

    /// The element `key` designates.
    async fn find(
        &self,
        server: &str,
        key: &str,
        field: &str,
        want: Want,
    ) -> Result<ElementRow, ServiceError> {
        Ok(self.load_one(server, key, field, want).await?.1)
    }

    /// getInfo(se) and store the answer (parents kept); the element's view.
    pub(crate) async fn reread_element(
        &self,
        srv: &ServerRow,
        e: &ElementRow,
        call_id: &str,
    ) -> Result<Value, ServiceError> {
        let entry = self.plugin(srv)?;
        let rec = self
            .call(
                entry,
                Method::GetInfo,
                args(&srv.ss, [("se_record", e.record.clone())]),
                call_id,
            )
            .await?;
        self.replace(e, rec).await
    }

    /// Stores `rec` in place of `e` (parents kept); the new view.
    async fn replace(&self, e: &ElementRow, rec: Value) -> Result<Value, ServiceError> {
        let mut row = ElementRow::new(&e.server, rec, Vec::new());
        row.parent = e.parent.clone();
        row.parent_uuids = e.parent_uuids.clone();
        row.parent_names = e.parent_names.clone();
        let view = element_view(&row);
        let old = e.uuid.clone();
        self.store
            .write(move |tx| {
                if old != row.uuid {
                    store::delete_element(tx, &row.server, &old)?;
                }
                store::upsert_element(tx, &row)
            })
            .await?;
        Ok(view)
    }

    /// After an operation that makes an element: a job if it went asynchronous, else the new
    /// element stored and its view (201).
    async fn inserted_or_job(
        self: &Arc<Self>,
        srv: &ServerRow,
        method: Method,
        name: &str,
        v: Value,
        parents: Vec<(String, String)>,
        call_id: &str,
    ) -> Result<Reply, ServiceError> {
        if progress_of(&v).is_some() {
            let job = NewJob {
                srv,
                method,
                target: name.to_string(),
                target_uuid: None,
                call_id,
                finish: Finish::Insert,
                parents,
            };
            return Ok(Reply::Job(self.start_job(job, v).await?));
        }
        let row = ElementRow::new(&srv.name, v, parents);
        let view = element_view(&row);
        self.store
            .write(move |tx| store::upsert_element(tx, &row))
            .await?;
        Ok(Reply::Created(view))
    }

    /// After an operation that changes an element and returns it: a job if it went
    /// asynchronous, else the element replaced and its view.
    async fn replaced_or_job(
        self: &Arc<Self>,
        srv: &ServerRow,
        method: Method,
        e: &ElementRow,
        v: Value,
        call_id: &str,
    ) -> Result<Reply, ServiceError> {
        if progress_of(&v).is_some() {
            let job = NewJob {
                srv,
                method,
                target: e.name.clone(),
                target_uuid: Some(e.uuid.clone()),
                call_id,
                finish: Finish::Replace,
                parents: Vec::new(),
            };
            return Ok(Reply::Job(self.start_job(job, v).await?));
        }
        Ok(Reply::Done(self.replace(e, v).await?))
    }

    async fn add_server(self: &Arc<Self>, a: AddServer, call_id: &str) -> Result<Reply, ServiceError> {
        check_name("name", &a.name)?;
        check_port(&a.settings)?;
        // Held from the check that the embedded array has no registration to the insert of
        // this one: parallel requests under other names would each find none (the name lock
        // below keeps only one name apart). No server name holds a control character.
        let _embedded = if a.embedded {
            Some(self.lock("\u{0}embedded").await)
        } else {
            None
        };
        let (plugin_ref, mut ss) = if a.embedded {
            // CHAP is the administrator's choice for the array's data path, not a setting of
            // where the array is: it is the one thing an embedded registration may add.
            let data_path = ["chap", "username", "passwd"];
            let given = a.settings.entries();
            let other = (a.plugin.as_ref().map(|_| "plugin"))
                .or(a.storage_type.as_ref().map(|_| "storage_type"))
                .or_else(|| given.iter().map(|(k, _)| *k).find(|k| !data_path.contains(k)));
            if let Some(k) = other {
                return Err(ServiceError::bad(
                    ExceptionKind::ValueFormatEx,
                    k,
                    format!("\"embedded\": true takes every field but name and the data path's CHAP (chap, username, passwd) from the embedded array; leave {k} out"),
                ));
            }
            let emb = self.config.embedded.as_ref().ok_or_else(|| {
                ServiceError::bad(
                    ExceptionKind::InvalidValueEx,
                    "embedded",
                    "this spindle runs without an embedded array",
                )
            })?;
            // One array, one registration: two records of it would drift apart.
            let (plugin, ss) = (emb.plugin.clone(), emb.ss_record.clone());
            let servers = self.store.read(store::servers).await?;
            if let Some(other) = servers.iter().find(|s| self.is_embedded(&s.plugin, &s.ss)) {
                return Err(ServiceError::bad(
                    ExceptionKind::InvalidValueEx,
                    "embedded",
                    format!(
                        "the embedded array is already registered as storage server {}; one array has one registration",
                        q(&other.name)
                    ),
                ));
            }
            let ss = given.into_iter().fold(ss, |ss, (k, v)| with_ss(ss, k, v));
            (plugin, ss)
        } else {
            let plugin = a.plugin.clone().filter(|p| !p.is_empty()).ok_or_else(|| {
                ServiceError::bad(
                    ExceptionKind::MissingKeyEx,
                    "plugin",
                    format!(
                        "plugin is required (one of {})",
                        self.config
                            .manager
                            .plugins()
                            .iter()
                            .map(|p| p.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            let mut m: Map<String, Value> = a
                .settings
                .entries()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            if let Some(t) = &a.storage_type {
                m.insert("storage_type".into(), Value::String(t.clone()));
            }
            (plugin, Value::Object(m))
        };
        let entry = self
            .config
            .manager
            .resolve(&plugin_ref)
            .map_err(|e| ServiceError::bad(ExceptionKind::InvalidValueEx, "plugin", e.to_string()))?;
        if !ss.is_object() {
            return Err(ServiceError::internal(
                "the embedded array's ss_record is not a dictionary",
            ));
        }
        let types = &entry.metadata.storage_types;
        match ss.get("storage_type").and_then(Value::as_str) {
            None if types.len() == 1 => {
                ss = with_ss(ss, "storage_type", json!(types[0].as_str()));
            }
            None => {
                return Err(ServiceError::bad(
                    ExceptionKind::MissingKeyEx,
                    "storage_type",
                    format!(
                        "storage_type is required: {} serves {}",
                        entry.id,
                        types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" and ")
                    ),
                ))
            }
            Some(t) => match StorageType::parse(t) {
                Some(st) if types.contains(&st) => {}
                Some(_) => {
                    return Err(ServiceError::bad(
                        ExceptionKind::InvalidValueEx,
                        "storage_type",
                        format!(
                            "{} does not serve {t}; it serves {}",
                            entry.id,
                            types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
                None => {
                    return Err(ServiceError::bad(
                        ExceptionKind::ValueFormatEx,
                        "storage_type",
                        format!("storage_type {} is neither SANStorage nor iSCSIStorage", q(t)),
                    ))
                }
            },
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        ss = with_ss(ss, "name", json!(a.name));
        ss = with_ss(ss, "uuid", json!(uuid));
        let _g = self.lock(&a.name).await;
        let taken = |name: &str| {
            ServiceError::conflict(
                "name",
                format!("a storage server named {} is already registered", q(name)),
            )
        };
        if self.server(&a.name).await.is_ok() {
            return Err(taken(&a.name));
        }
        tracing::info!(plugin = %entry.id, ss_record = %crate::service::redacted_ss(&ss), "registering a storage server");
        self.call(entry, Method::Validate, args(&ss, []), call_id).await?;
        let snap = self
            .read_server(entry, &a.name, &ss, call_id, &HashMap::new())
            .await?;
        let ss = merge_ss(&ss, &snap.ss);
        let now = crate::time::now();
        let row = ServerRow {
            name: a.name.clone(),
            uuid,
            plugin: entry.id.to_string(),
            ss,
            created_at: now.clone(),
            refreshed_at: Some(now),
            last_error: None,
        };
        let mut counts = [0i64; 3];
        for e in &snap.elements {
            counts[match e.kind {
                Kind::Lun => 0,
                Kind::Clone => 1,
                Kind::Snapshot => 2,
            }] += 1;
        }
        let view = server_view(&row, counts);
        let elements = snap.elements;
        let inserted = self
            .store
            .write(move |tx| {
                if store::server(tx, &row.name)?.is_some() {
                    return Ok(false);
                }
                store::insert_server(tx, &row)?;
                for e in &elements {
                    store::upsert_element(tx, e)?;
                }
                Ok(true)
            })
            .await?;
        if !inserted {
            return Err(taken(&a.name));
        }
        Ok(Reply::Created(view))
    }

    /// Replaces the settings given, once the plug-in has validated the new record (a record it
    /// refuses changes nothing), then re-reads the server with it.
    async fn update_server(&self, u: UpdateServer, call_id: &str) -> Result<Reply, ServiceError> {
        check_port(&u.settings)?;
        let given = u.settings.entries();
        if given.is_empty() {
            return Err(ServiceError::bad(
                ExceptionKind::MissingKeyEx,
                "settings",
                "no setting to change: give at least one of admin_host, admin_user, admin_passwd, access_host, access_port, username, passwd, chap, extra_info",
            ));
        }
        let _g = self.lock(&u.server).await;
        let mut srv = self.server(&u.server).await?;
        let entry = self.plugin(&srv)?;
        // The embedded array's location and exports are spindle serve's flags: changed here,
        // they would be undone at its next start.
        if !u.from_embedded_flags && self.is_embedded(&srv.plugin, &srv.ss) {
            let managed = |k: &str| crate::service::EMBEDDED_SETTINGS.contains(&k) || k == "admin_passwd";
            if let Some((k, _)) = u.settings.entries().into_iter().find(|(k, _)| managed(k)) {
                let why = if k.starts_with("admin") {
                    format!("its {k} is fixed (the array runs on this host, as root)")
                } else {
                    format!("its {k} comes from spindle serve's flags (--portal, --tgt-control, --split-rate-mib); restart spindle serve with other flags to change it")
                };
                return Err(ServiceError::bad(
                    ExceptionKind::InvalidValueEx,
                    k,
                    format!(
                        "storage server {} is the embedded array: {why} (only chap, username and passwd are set here)",
                        q(&srv.name)
                    ),
                ));
            }
        }
        let mut ss = given
            .into_iter()
            .fold(srv.ss.clone(), |ss, (k, v)| with_ss(ss, k, v));
        if crate::service::drops_chap_secret(&u.settings) {
            if let Value::Object(m) = &mut ss {
                m.remove("passwd");
            }
        }
        tracing::info!(server = %srv.name, ss_record = %crate::service::redacted_ss(&ss), "changing a storage server's settings");
        self.call(entry, Method::Validate, args(&ss, []), call_id).await?;
        // Kept as soon as the array accepted it (validate may have applied it, e.g. CHAP), even
        // if the re-read below fails: the record must match the array.
        let (name, kept) = (srv.name.clone(), ss.clone());
        self.store
            .write(move |tx| store::update_ss(tx, &name, &kept))
            .await?;
        self.wipe_old_secrets(&srv.name).await;
        self.config.manager.cache().clear(&srv.uuid);
        srv.ss = ss;
        self.refresh_held(&srv, call_id).await?;
        Ok(Reply::Done(self.server_view(&srv.name).await?))
    }

    async fn remove_server(&self, name: &str) -> Result<Reply, ServiceError> {
        let _g = self.lock(name).await;
        let srv = self.server(name).await?;
        let error = ServiceError::not_found(
            "server",
            format!(
                "storage server {} was removed while the job ran; spindle stopped following it",
                q(name)
            ),
        );
        let (n, at) = (name.to_string(), crate::time::now());
        let failed = self
            .store
            .write(move |tx| {
                let failed = store::fail_jobs_of(tx, &n, &error.body(""), &at)?;
                store::delete_server(tx, &n)?;
                Ok(failed)
            })
            .await?;
        if failed > 0 {
            tracing::warn!(
                jobs = failed,
                "running jobs of the removed storage server were failed"
            );
            self.metrics.job_moved(
                Some(crate::metrics::JobState::Running),
                crate::metrics::JobState::Failed,
                i64::try_from(failed).unwrap_or(0),
            );
        }
        self.wipe_old_secrets(name).await;
        self.config.manager.cache().clear(&srv.uuid);
        Ok(Reply::Nothing)
    }

    /// After a write that replaced or removed a server's secrets: the write-ahead log, which
    /// still holds the rows as they were, is checkpointed and truncated. The change itself is
    /// made either way; a log that could not be truncated now is at the next such write.
    async fn wipe_old_secrets(&self, server: &str) {
        if let Err(e) = self.store.checkpoint_truncate().await {
            tracing::warn!(server, error = %e, "replaced secrets may stay in the database's write-ahead log until its next checkpoint");
        }
    }

    async fn create_lun(self: &Arc<Self>, c: CreateLun, call_id: &str) -> Result<Reply, ServiceError> {
        check_name("name", &c.name)?;
        check_size("size", c.size)?;
        let qos = c.qos.as_ref().map(|v| qos_text("qos", v)).transpose()?;
        if let Some(v) = &c.vol_group {
            check_name("vol_group", v)?;
        }
        let _g = self.lock(&c.server).await;
        let (srv, named) = self.load(&c.server, vec![c.name.clone()]).await?;
        let pools: Vec<String> = match srv.ss.get("vol_groups") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|g| g.get("vol_name").and_then(Value::as_str).map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let pool = match (&c.vol_group, pools.as_slice()) {
            (Some(v), []) => Some(v.clone()),
            (Some(v), known) if known.contains(v) => Some(v.clone()),
            (Some(v), known) => {
                return Err(ServiceError::bad(
                    ExceptionKind::InvalidValueEx,
                    "vol_group",
                    format!(
                        "storage server {} has no pool named {} (its pools: {})",
                        q(&srv.name),
                        q(v),
                        known.join(", ")
                    ),
                ))
            }
            (None, [one]) => Some(one.clone()),
            (None, []) => None,
            (None, many) => {
                return Err(ServiceError::bad(
                    ExceptionKind::MissingKeyEx,
                    "vol_group",
                    format!(
                        "storage server {} has several pools ({}); name one in vol_group",
                        q(&srv.name),
                        many.join(", ")
                    ),
                ))
            }
        };
        name_free(&srv, &named[0], &c.name)?;
        let mut se = new_record("LUNType", &srv.uuid, &c.name);
        se.insert("size".into(), json!(c.size));
        if let Some(p) = pool {
            se.insert("vol_group_name".into(), json!(p));
        }
        let mut a = args(
            &srv.ss,
            [
                ("se_record", Value::Object(se)),
                ("thin_provision", json!(c.thin)),
            ],
        );
        if let Some(qos) = qos {
            a.insert("qos".into(), json!(qos));
        }
        let entry = self.plugin(&srv)?;
        let v = self.call(entry, Method::Create, a, call_id).await?;
        self.inserted_or_job(&srv, Method::Create, &c.name, v, Vec::new(), call_id)
            .await
    }

    /// online / offline (they return nothing): call, then getInfo(se).
    async fn state_change(
        &self,
        server: &str,
        lun: &str,
        method: Method,
        call_id: &str,
    ) -> Result<Reply, ServiceError> {
        let _g = self.lock(server).await;
        let (srv, e) = self.load_one(server, lun, "lun", Want::Lun).await?;
        let entry = self.plugin(&srv)?;
        self.call(
            entry,
            method,
            args(&srv.ss, [("se_record", e.record.clone())]),
            call_id,
        )
        .await?;
        Ok(Reply::Done(self.reread_element(&srv, &e, call_id).await?))
    }

    /// startPresent / stopPresent.
    async fn presentation(
        &self,
        server: &str,
        lun: &str,
        groups: Vec<String>,
        method: Method,
        call_id: &str,
    ) -> Result<Reply, ServiceError> {
        if groups.is_empty() {
            return Err(ServiceError::bad(
                ExceptionKind::MissingKeyEx,
                "groups",
                "groups is empty; name at least one access group",
            ));
        }
        let _g = self.lock(server).await;
        let (srv, e) = self.load_one(server, lun, "lun", Want::Lun).await?;
        for g in &groups {
            if find_group(&srv, g).is_none() {
                return Err(no_group(&srv, "groups", g));
            }
        }
        let entry = self.plugin(&srv)?;
        let v = self
            .call(
                entry,
                method,
                args(
                    &srv.ss,
                    [
                        ("se_record", e.record.clone()),
                        ("access_grp_names", json!(groups)),
                    ],
                ),
                call_id,
            )
            .await?;
        Ok(Reply::Done(self.replace(&e, v).await?))
    }

    async fn split(self: &Arc<Self>, server: &str, lun: &str, call_id: &str) -> Result<Reply, ServiceError> {
        let _g = self.lock(server).await;
        let (srv, e) = self.load_one(server, lun, "lun", Want::Lun).await?;
        if e.kind != Kind::Clone {
            return Err(ServiceError::bad(
                ExceptionKind::InvalidValueEx,
                "lun",
                format!(
                    "{} is a {}, not a clone; only clones can be split",
                    q(&e.name),
                    e.kind.as_str()
                ),
            ));
        }
        let entry = self.plugin(&srv)?;
        let v = self
            .call(
                entry,
                Method::SplitClone,
                args(&srv.ss, [("se_record", e.record.clone())]),
                call_id,
            )
            .await?;
        if progress_of(&v).is_some() {
            let job = NewJob {
                srv: &srv,
                method: Method::SplitClone,
                target: e.name.clone(),
                target_uuid: Some(e.uuid.clone()),
                call_id,
                finish: Finish::Replace,
                parents: Vec::new(),
            };
            return Ok(Reply::Job(self.start_job(job, v).await?));
        }
        let view = self.reread_element(&srv, &e, call_id).await?;
        let job = self
            .finished_job(
                &srv,
                Method::SplitClone,
                &e.name,
                Some(e.uuid.clone()),
                call_id,
                view,
            )
            .await?;
        Ok(Reply::Job(job))
    }

    /// The LUN `lun` (a name or uuid) of `server`, which snapshot `s` must have been taken of
    /// (when spindle knows what it covers).
    async fn snapshot_member(
        &self,
        server: &str,
        s: &ElementRow,
        lun: &str,
    ) -> Result<ElementRow, ServiceError> {
        let e = self.find(server, lun, "lun", Want::Lun).await?;
        if !s.parent_uuids.is_empty() && !s.parent_uuids.contains(&e.uuid) {
            return Err(ServiceError::bad(
                ExceptionKind::InvalidValueEx,
                "lun",
                format!("snapshot {} was not taken of {}", q(&s.name), q(&e.name)),
            ));
        }
        Ok(e)
    }

    async fn restore(
        &self,
        server: &str,
        snap: &str,
        lun: Option<&str>,
        call_id: &str,
    ) -> Result<Reply, ServiceError> {
        let _g = self.lock(server).await;
        let (srv, s) = self.load_one(server, snap, "snap", Want::Snap).await?;
        let target = match lun {
            Some(l) => Some(self.snapshot_member(server, &s, l).await?),
            None => None,
        };
        let entry = self.plugin(&srv)?;
        let mut a = args(&srv.ss, [("snap_se_record", s.record.clone())]);
        if let Some(e) = &target {
            a.insert("se_record".into(), e.record.clone());
        }
        self.call(entry, Method::SnapRestore, a, call_id).await?;
        // Re-read what was restored: the element named, else every parent of the snapshot.
        let restored: Vec<ElementRow> = match target {
            Some(e) => vec![e],
            None => {
                let mut out = Vec::new();
                for u in &s.parent_uuids {
                    let (sv, u) = (server.to_string(), u.clone());
                    if let Some(e) = self.store.read(move |c| store::element(c, &sv, &u)).await? {
                        out.push(e);
                    }
                }
                out
            }
        };
        if restored.is_empty() {
            // The plug-in did not say what the snapshot covers: re-read everything.
            self.refresh_held(&srv, call_id).await?;
            return Ok(Reply::Nothing);
        }
        let mut first = None;
        for e in &restored {
            let v = self.reread_element(&srv, e, call_id).await?;
            first.get_or_insert(v);
        }
        Ok(first.map(Reply::Done).unwrap_or(Reply::Nothing))
    }

    /// Stores the access-group list a group call returned (and, after a rename, the new name
    /// in the elements presented to the group).
    async fn store_groups(
        &self,
        srv: &ServerRow,
        list: Value,
        renamed: Option<(String, String)>,
    ) -> Result<(), ServiceError> {
        let name = srv.name.clone();
        let ss = with_ss(srv.ss.clone(), "access_grps", list);
        let elements = match &renamed {
            Some(_) => self.elements_of(&srv.name).await?,
            None => Vec::new(),
        };
        self.store
            .write(move |tx| {
                store::update_ss(tx, &name, &ss)?;
                if let Some((old, new)) = renamed {
                    for mut e in elements {
                        let Some(Value::Array(names)) = e.record.get_mut("access_grp_names") else {
                            continue;
                        };
                        let mut changed = false;
                        for n in names.iter_mut() {
                            if n.as_str() == Some(old.as_str()) {
                                *n = Value::String(new.clone());
                                changed = true;
                            }
                        }
                        if changed {
                            store::upsert_element(tx, &e)?;
                        }
                    }
                }
                Ok(())
            })
            .await
    }

    /// addToAccessGroup / removeFromAccessGroup: the group returned replaces the stored one.
    async fn group_entries(
        &self,
        server: &str,
        group: &str,
        entries: &[String],
        method: Method,
        call_id: &str,
    ) -> Result<Reply, ServiceError> {
        let _g = self.lock(server).await;
        let srv = self.server(server).await?;
        let entries = check_entries(storage_type_of(&srv), entries, true)?;
        find_group(&srv, group).ok_or_else(|| no_group(&srv, "group", group))?;
        let entry = self.plugin(&srv)?;
        let g = self
            .call(
                entry,
                method,
                args(
                    &srv.ss,
                    [("access_grp_name", json!(group)), ("grp_entries", json!(entries))],
                ),
                call_id,
            )
            .await?;
        let list: Vec<Value> = groups_of(&srv)
            .into_iter()
            .map(|old| if group_name(&old) == group { g.clone() } else { old })
            .collect();
        self.store_groups(&srv, Value::Array(list), None).await?;
        Ok(Reply::Done(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = ALLOCATION_UNIT;

    fn lun(record: Value) -> ElementRow {
        ElementRow::new("sim", record, Vec::new())
    }

    fn refused_key(r: Result<(), ServiceError>) -> Option<String> {
        r.err().and_then(|e| e.key().map(str::to_string))
    }

    #[test]
    fn only_a_size_that_drops_data_is_a_shrink() {
        let e = lun(json!({"se_type": "LUNType", "uuid": "u1", "name": "db1", "size": 4 * MIB}));
        assert!(check_not_shrunk(&e, 4 * MIB).is_ok(), "same size");
        assert!(check_not_shrunk(&e, 5 * MIB).is_ok(), "grow");
        assert!(check_not_shrunk(&e, i64::MAX).is_ok(), "grow to the largest size");
        // Rounded up to whole MiB, these are the LUN's own size: nothing is lost.
        assert!(check_not_shrunk(&e, 4 * MIB - 1).is_ok());
        assert!(check_not_shrunk(&e, 3 * MIB + 1).is_ok());
        // One MiB less is one MiB of data gone.
        let err = check_not_shrunk(&e, 3 * MIB).expect_err("shrink");
        assert_eq!(err.key(), Some("allow_shrink"));
        assert_eq!(err.code(), "bad_request");
        assert_eq!(err.exception(), Some(ExceptionKind::InvalidValueEx));
        let m = err.message();
        assert!(
            m.contains("size 3145728") && m.contains("4194304 bytes") && m.contains("LUN 'db1'"),
            "{m}"
        );
        assert_eq!(
            refused_key(check_not_shrunk(&e, 1)).as_deref(),
            Some("allow_shrink")
        );
    }

    #[test]
    fn a_size_not_in_whole_mib_is_compared_exactly() {
        // An array allocating in 512-byte sectors: spindle does not know its rounding, so
        // anything below its size may drop data.
        let e = lun(json!({"se_type": "SnapCloneType", "uuid": "u2", "name": "c1", "size": 4 * MIB + 512}));
        assert!(check_not_shrunk(&e, 4 * MIB + 512).is_ok());
        let err = check_not_shrunk(&e, 4 * MIB + 1).expect_err("shrink by 511 bytes");
        assert!(err.message().contains("clone 'c1'"), "{err}");
    }

    #[test]
    fn a_record_without_a_size_needs_the_decision() {
        let e = lun(json!({"se_type": "LUNType", "uuid": "u3", "name": "db3"}));
        let err = check_not_shrunk(&e, 4 * MIB).expect_err("size unknown");
        assert_eq!(err.key(), Some("allow_shrink"));
        assert!(err.message().contains("has no size"), "{err}");
    }
}
