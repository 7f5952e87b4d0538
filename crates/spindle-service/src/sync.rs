//! Reading a storage server's state from its plug-in: at registration, on refresh, and
//! periodically.

use crate::service::{args, Inner};
use crate::store::{self, ElementRow, Kind, ServerRow};
use crate::ServiceError;
use serde_json::{Map, Value};
use spindle_api::{Method, RecordKind, UpdateRule};
use spindle_manager::PluginEntry;
use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument;

/// How long after a change of a server's space its totals are re-read
/// ([`Inner::reread_info_soon`]): changes made meanwhile share the read.
pub(crate) const INFO_REREAD_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// What a storage server looks like now.
pub(crate) struct Snapshot {
    /// The ss_record after getInfo, with the access groups read.
    pub ss: Value,
    pub elements: Vec<ElementRow>,
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// The ss_record a plug-in returned, with every field it may not change taken from `old`
/// (and every field it dropped kept), so that secrets and spindle's own fields survive.
pub(crate) fn merge_ss(old: &Value, new: &Value) -> Value {
    let mut out = match new {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if let Value::Object(o) = old {
        for (k, v) in o {
            let keep_old = match RecordKind::SsRecord.field(k).map(|f| f.rule) {
                Some(UpdateRule::No) => true,
                Some(UpdateRule::OnlyIfEmpty) => !is_empty(v),
                _ => !out.contains_key(k),
            };
            if keep_old {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn uuid_of(r: &Value) -> Option<String> {
    ["uuid", "page83_id", "name"].iter().find_map(|k| {
        r.get(*k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
}

fn name_of(r: &Value) -> String {
    r.get("name").and_then(Value::as_str).unwrap_or("").to_string()
}

fn records(v: Option<Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

impl Inner {
    /// getInfo, list, getCurrentSnaps, getCurrentClones (and, for the parents of snapshots and
    /// clones spindle does not know yet, both per element), getAccessGroups. NoSuchOperationEx from getAccessGroups, getCurrentSnaps and
    /// getCurrentClones is tolerated. `previous` holds parents spindle knew, kept when the
    /// plug-in cannot tell.
    pub(crate) async fn read_server(
        &self,
        entry: &PluginEntry,
        server: &str,
        ss: &Value,
        call_id: &str,
        previous: &HashMap<String, ElementRow>,
    ) -> Result<Snapshot, ServiceError> {
        // A plug-in that implements refresh brings its array up to date first (the Linux
        // array reconciles tgtd to its export state, repairing changes made behind it). One
        // that does not is not asked: the generic refresh rescans this host's SCSI buses,
        // which reading an array's records has no business doing.
        if entry.implements(Method::Refresh) {
            if let Err(e) = self.call(entry, Method::Refresh, args(ss, []), call_id).await {
                tracing::warn!(server, error = %e, "the plug-in's refresh failed; its records are read anyway");
            }
        }
        let info = self.call(entry, Method::GetInfo, args(ss, []), call_id).await?;
        let ss = merge_ss(ss, &info);
        let listed = records(Some(
            self.call(entry, Method::List, args(&ss, []), call_id).await?,
        ));
        let snaps = records(
            self.call_optional(entry, Method::GetCurrentSnaps, args(&ss, []), call_id)
                .await?,
        );
        let clones = self
            .call_optional(entry, Method::GetCurrentClones, args(&ss, []), call_id)
            .await?;
        let clones_known = clones.is_some();
        let mut order: Vec<String> = Vec::new();
        let mut by_uuid: HashMap<String, Value> = HashMap::new();
        for r in listed.into_iter().chain(records(clones)).chain(snaps) {
            if let Some(u) = uuid_of(&r) {
                if !by_uuid.contains_key(&u) {
                    order.push(u.clone());
                }
                by_uuid.insert(u, r);
            }
        }
        // Parents, as the plug-in reports them per element. The API has no call that lists
        // them for the whole array, so this costs a call per element; it is only made when a
        // snapshot or clone appeared whose parents spindle does not know (one made outside
        // spindle, or a server just registered): a snapshot's or clone's parents never change.
        let mut parents: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let kind = |u: &String| Kind::of(&by_uuid[u]);
        let unknown = |u: &String| previous.get(u).is_none_or(|p| p.parent_uuids.is_empty());
        let bases: Vec<String> = order
            .iter()
            .filter(|u| kind(u) != Kind::Snapshot)
            .cloned()
            .collect();
        let snap_ids: Vec<String> = order
            .iter()
            .filter(|u| kind(u) == Kind::Snapshot)
            .cloned()
            .collect();
        if snap_ids.iter().any(unknown) {
            for b in &bases {
                let se = by_uuid[b].clone();
                let Some(found) = self
                    .call_optional(
                        entry,
                        Method::GetCurrentSnaps,
                        args(&ss, [("se_record", se)]),
                        call_id,
                    )
                    .await?
                else {
                    break;
                };
                for s in records(Some(found)) {
                    if let Some(su) = uuid_of(&s) {
                        parents
                            .entry(su)
                            .or_default()
                            .push((b.clone(), name_of(&by_uuid[b])));
                    }
                }
            }
        }
        if clones_known && order.iter().any(|u| kind(u) == Kind::Clone && unknown(u)) {
            // Elements first, then snapshots: a clone of a snapshot names the snapshot.
            'outer: for b in bases.iter().chain(&snap_ids) {
                let se = by_uuid[b].clone();
                let Some(found) = self
                    .call_optional(
                        entry,
                        Method::GetCurrentClones,
                        args(&ss, [("se_record", se)]),
                        call_id,
                    )
                    .await?
                else {
                    break 'outer;
                };
                for c in records(Some(found)) {
                    if let Some(cu) = uuid_of(&c) {
                        parents.insert(cu, vec![(b.clone(), name_of(&by_uuid[b]))]);
                    }
                }
            }
        }
        let groups = self
            .call_optional(entry, Method::GetAccessGroups, args(&ss, []), call_id)
            .await?;
        let mut ss = ss;
        if let Value::Object(m) = &mut ss {
            match groups {
                Some(g) => {
                    m.insert("access_grps".into(), g);
                }
                None => {
                    m.entry("access_grps").or_insert_with(|| Value::Array(Vec::new()));
                }
            }
        }
        let elements = order
            .into_iter()
            .map(|u| {
                let rec = by_uuid.remove(&u).unwrap_or(Value::Null);
                let mut row = ElementRow::new(server, rec, parents.remove(&u).unwrap_or_default());
                // A LUN has no parent (a clone that was split is a LUN now).
                if row.parent_uuids.is_empty() && row.kind != Kind::Lun {
                    if let Some(p) = previous.get(&row.uuid) {
                        row.parent = p.parent.clone();
                        row.parent_uuids = p.parent_uuids.clone();
                        row.parent_names = p.parent_names.clone();
                        // Rows stored before parents' names were kept (schema 3) get them
                        // from the stored rows of those parents.
                        if row.parent_names.is_empty() {
                            let found: Option<Vec<String>> = row
                                .parent_uuids
                                .iter()
                                .map(|u| previous.get(u).map(|p| p.name.clone()))
                                .collect();
                            row.parent_names = found.unwrap_or_default();
                        }
                    }
                }
                row
            })
            .collect();
        Ok(Snapshot { ss, elements })
    }

    /// Re-reads `srv` and replaces its stored records; on failure records the error in
    /// `last_error` and keeps the records. The caller holds the server's lock.
    pub(crate) async fn refresh_held(&self, srv: &ServerRow, call_id: &str) -> Result<(), ServiceError> {
        let entry = self.plugin(srv)?;
        let name = srv.name.clone();
        let previous: HashMap<String, ElementRow> = {
            let n = name.clone();
            self.store
                .read(move |c| store::elements(c, &n))
                .await?
                .into_iter()
                .map(|e| (e.uuid.clone(), e))
                .collect()
        };
        match self.read_server(entry, &name, &srv.ss, call_id, &previous).await {
            Ok(snap) => {
                let at = crate::time::now();
                let found = self
                    .store
                    .write(move |tx| store::replace_all(tx, &name, &snap.ss, &snap.elements, &at))
                    .await?;
                if !found {
                    return Err(ServiceError::not_found(
                        "server",
                        format!("storage server {} was removed", crate::service::q(&srv.name)),
                    ));
                }
                Ok(())
            }
            Err(e) => {
                let text = e.to_string();
                tracing::warn!(server = %name, error = %text, "re-reading the storage server failed; its records are kept");
                self.store
                    .write(move |tx| store::set_last_error(tx, &name, Some(&text)))
                    .await?;
                Err(e)
            }
        }
    }

    /// Takes the server's lock and re-reads it.
    pub(crate) async fn refresh(&self, name: &str, call_id: &str) -> Result<ServerRow, ServiceError> {
        let _g = self.lock(name).await;
        let srv = self.server(name).await?;
        self.refresh_held(&srv, call_id).await?;
        self.server(name).await
    }

    /// Re-reads `server` in a task of its own after a mutation of it failed in a way that
    /// may have changed the array ([`ServiceError::may_have_changed_the_array`]).
    pub(crate) fn refresh_after_failure(self: &Arc<Self>, server: &str, call_id: &str) {
        let (me, server, call_id) = (Arc::clone(self), server.to_string(), format!("{call_id}-refresh"));
        let h = tokio::spawn(async move {
            tracing::info!(server = %server, call_id = %call_id, "re-reading the storage server after a failed change");
            if let Err(e) = me.refresh(&server, &call_id).await {
                tracing::warn!(server = %server, call_id = %call_id, error = %e, "re-reading the storage server after a failed change failed");
            }
        });
        self.track(h);
    }

    /// Re-reads the server record (getInfo: sizes, pools) of `server` in a task of its own,
    /// [`INFO_REREAD_DELAY`] after a change of its space, so that its totals follow the
    /// array without a full refresh; a burst of changes costs one getInfo.
    pub(crate) fn reread_info_soon(self: &Arc<Self>, server: &str, call_id: &str) {
        let fresh = self
            .info_pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(server.to_string());
        if !fresh {
            return;
        }
        let (me, server, call_id) = (Arc::clone(self), server.to_string(), format!("{call_id}-info"));
        let h = tokio::spawn(async move {
            tokio::time::sleep(INFO_REREAD_DELAY).await;
            // Taken off before the read: a change after this point schedules another.
            me.info_pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&server);
            if me.stopping() {
                return;
            }
            if let Err(e) = me.reread_info(&server, &call_id).await {
                tracing::debug!(server = %server, call_id = %call_id, error = %e, "re-reading the storage server's totals failed; the next refresh will");
            }
        });
        self.track(h);
    }

    async fn reread_info(&self, server: &str, call_id: &str) -> Result<(), ServiceError> {
        let _g = self.lock(server).await;
        let srv = self.server(server).await?;
        let entry = self.plugin(&srv)?;
        let info = self
            .call(entry, Method::GetInfo, args(&srv.ss, []), call_id)
            .await?;
        let (name, ss) = (srv.name.clone(), merge_ss(&srv.ss, &info));
        self.store
            .write(move |tx| store::set_ss_record(tx, &name, &ss))
            .await?;
        Ok(())
    }

    /// Re-reads every storage server right away, then every `refresh_interval`.
    pub(crate) async fn refresh_loop(self: Arc<Self>) {
        let mut stop = self.shutdown.subscribe();
        // spindle was down for a while: an array may have changed, or lost its exports (a
        // killed tgtd, a reboot), meanwhile. The embedded array's registrations wait for
        // `Service::adopt_embedded`: re-read with the settings of the previous start, the
        // array would be brought back to those first.
        self.refresh_servers("start", true).await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.refresh_interval) => {}
                _ = stop.changed() => return,
            }
            self.refresh_servers("periodic", false).await;
        }
    }

    /// Re-reads every storage server, one after another (but the embedded array's
    /// registrations with `skip_embedded`); `why` names the refresh in the log.
    async fn refresh_servers(&self, why: &str, skip_embedded: bool) {
        if self.stopping() {
            return;
        }
        let servers = match self.store.read(store::servers).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "{why} refresh: cannot read the storage servers");
                return;
            }
        };
        for s in servers {
            if self.stopping() {
                return;
            }
            if skip_embedded && self.is_embedded(&s.plugin, &s.ss) {
                continue;
            }
            let call_id = format!("refresh-{}", uuid::Uuid::new_v4().simple());
            let span = tracing::info_span!("refresh", call_id = %call_id, server = %s.name);
            let r = self.refresh(&s.name, &call_id).instrument(span).await;
            if let Err(e) = r {
                tracing::warn!(server = %s.name, call_id = %call_id, error = %e, "{why} refresh failed");
            }
        }
    }

    /// Re-reads `server` in a task of its own: the start's refresh of a registration of the
    /// embedded array, once it follows this run's settings (when periodic refreshes are on).
    pub(crate) fn refresh_at_start(self: &Arc<Self>, server: &str) {
        if self.config.refresh_interval.is_zero() {
            return;
        }
        let (me, server) = (Arc::clone(self), server.to_string());
        let call_id = format!("refresh-{}", uuid::Uuid::new_v4().simple());
        let h = tokio::spawn(async move {
            let span = tracing::info_span!("refresh", call_id = %call_id, server = %server);
            if let Err(e) = me.refresh(&server, &call_id).instrument(span).await {
                tracing::warn!(server = %server, call_id = %call_id, error = %e, "start refresh failed");
            }
        });
        self.track(h);
    }
}
