//! Every method through the API's dispatcher with JSON arguments, checking each returned record
//! against the record it was based on (the method table's `update_base`) and `page83_id`
//! wherever the table requires it.

use super::*;
use spindle_api::{dispatch, Method, ReturnKind, METHODS};
use std::collections::BTreeSet;

struct Runner<'a> {
    fx: &'a Fx,
    called: BTreeSet<&'static str>,
}

impl Runner<'_> {
    fn call(&mut self, method: Method, args: Value) -> Value {
        let mut map = obj(args);
        map.insert("ss_record".into(), self.fx.ss.to_value());
        let out = dispatch(&self.fx.p, &self.fx.host, method, &map)
            .unwrap_or_else(|e| panic!("{method} failed: {e}"));
        self.called.insert(method.name());
        let spec = method.spec();
        if let Some(base) = spec.update_base {
            let kind = if base == "ss_record" {
                RecordKind::SsRecord
            } else {
                RecordKind::SeRecord
            };
            match (map.get(base), &out) {
                (Some(Value::Object(g)), Value::Object(r)) => {
                    let v = check_update(kind, g, r);
                    assert!(v.is_empty(), "{method}: {v:?}");
                }
                (Some(Value::Array(gs)), Value::Array(rs)) => {
                    for (g, r) in gs.iter().zip(rs) {
                        let v = check_update(kind, &obj(g.clone()), &obj(r.clone()));
                        assert!(v.is_empty(), "{method}: {v:?}");
                    }
                }
                _ => {}
            }
        }
        if spec.page83_required {
            let records: Vec<&Value> = match &out {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for r in records {
                let p = r.get("page83_id").and_then(Value::as_str).unwrap_or("");
                assert!(!p.is_empty(), "{method} returned a record without page83_id: {r}");
            }
        }
        if spec.returns == ReturnKind::Nothing && method != Method::SplitClone {
            assert_eq!(out, Value::Null, "{method}");
        }
        out
    }
}

fn se(v: &Value) -> Value {
    v.clone()
}

#[test]
fn every_method_through_dispatch_keeps_the_update_rules() {
    let fx = Fx::iscsi();
    let mut r = Runner {
        fx: &fx,
        called: BTreeSet::new(),
    };
    r.call(Method::Validate, json!({}));
    r.call(Method::GetCapabilities, json!({}));
    r.call(Method::GetInfo, json!({}));
    assert_eq!(r.call(Method::GetStorageNames, json!({})), json!([]));
    r.call(Method::Discover, json!({}));
    r.call(Method::Start, json!({}));
    r.call(Method::Stop, json!({}));
    r.call(Method::Refresh, json!({}));
    let qos = r.call(Method::GetQosList, json!({}));
    assert_eq!(qos.as_array().map(Vec::len), Some(3));

    let groups = r.call(
        Method::CreateAccessGroups,
        json!({"access_grps": [{"grp_name": "g1", "grp_entries": ["iqn.2001-04.com.example:h1"]}]}),
    );
    assert_eq!(groups[0]["grp_name"], "g1");
    r.call(
        Method::RenameAccessGroup,
        json!({"access_grp_name": "g1", "new_access_grp_name": "g2"}),
    );
    r.call(
        Method::AddToAccessGroup,
        json!({"access_grp_name": "g2", "grp_entries": ["eui.02004567A425678D"]}),
    );
    let g = r.call(
        Method::RemoveFromAccessGroup,
        json!({"access_grp_name": "g2", "grp_entries": ["eui.02004567A425678D"]}),
    );
    assert_eq!(g["grp_entries"], json!(["iqn.2001-04.com.example:h1"]));

    let req = json!({"se_type": "LUNType", "ss_uuid": SS_UUID, "name": "d1", "size": GIB,
                     "vol_group_name": "pool0", "unknown_key": 7});
    let lun = r.call(
        Method::Create,
        json!({"se_record": req, "thin_provision": false, "qos": "high"}),
    );
    assert_eq!(lun["unknown_key"], 7);
    assert_eq!(lun["qos"], "high");
    let lun2 = r.call(
        Method::Create,
        json!({"se_record": {"se_type": "LUNType", "ss_uuid": SS_UUID, "name": "d2", "size": GIB}}),
    );
    r.call(Method::GetInfo, json!({"se_record": se(&lun)}));
    assert_eq!(
        r.call(Method::GetStatus, json!({"se_record": se(&lun)})),
        "ONLINE"
    );
    r.call(Method::GetStatus, json!({}));
    r.call(Method::List, json!({}));
    r.call(Method::List, json!({"se_type": ["LUNType"]}));
    r.call(
        Method::UpdateSeRecords,
        json!({"se_records": [se(&lun)], "append_allowed": true}),
    );
    r.call(Method::Offline, json!({"se_record": se(&lun)}));
    r.call(Method::Online, json!({"se_record": se(&lun)}));
    let lun = r.call(
        Method::StartPresent,
        json!({"se_record": se(&lun), "access_grp_names": ["g2"]}),
    );
    assert_eq!(
        r.call(Method::GetAccessGroups, json!({"se_record": se(&lun)}))[0]["grp_name"],
        "g2"
    );
    r.call(Method::GetAccessGroups, json!({}));
    let lun = r.call(
        Method::StopPresent,
        json!({"se_record": se(&lun), "access_grp_names": ["g2"]}),
    );
    let lun = r.call(
        Method::Resize,
        json!({"se_record": se(&lun), "new_size": 2 * GIB}),
    );
    assert_eq!(lun["size"], 2 * GIB);
    r.call(Method::SetQos, json!({"se_record": se(&lun), "qos": "low"}));

    assert_eq!(r.call(Method::GetSnapLimits, json!({})), 256);
    assert_eq!(r.call(Method::IsSnapable, json!({"se_record": se(&lun)})), true);
    let snap = r.call(
        Method::CreateSnap,
        json!({"se_record": se(&lun), "snap_se_record": {"se_type": "SnapType", "ss_uuid": SS_UUID, "name": "s1"}}),
    );
    let multi = r.call(
        Method::CreateMultiSnap,
        json!({"se_records": [se(&lun), se(&lun2)], "snap_se_record": {"se_type": "SnapType", "ss_uuid": SS_UUID, "name": "m1"}}),
    );
    assert_eq!(
        r.call(Method::GetCurrentSnaps, json!({"se_record": se(&lun)}))
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        r.call(
            Method::IsRestorable,
            json!({"snap_se_record": se(&snap), "se_record": se(&lun)})
        ),
        true
    );
    r.call(
        Method::SnapRestore,
        json!({"snap_se_record": se(&snap), "se_record": se(&lun)}),
    );

    assert_eq!(
        r.call(Method::GetCloneLimits, json!({"se_record": se(&lun)})),
        256
    );
    assert_eq!(r.call(Method::IsCloneable, json!({"se_record": se(&lun)})), true);
    let clone = r.call(
        Method::Clone,
        json!({"se_record": se(&lun), "dest_se_record": {"se_type": "SnapCloneType", "ss_uuid": SS_UUID, "name": "c1"}}),
    );
    let from_snap = r.call(
        Method::CloneFromSnap,
        json!({"se_record": se(&lun2), "snap_se_record": se(&multi),
               "dest_se_record": {"se_type": "SnapCloneType", "ss_uuid": SS_UUID, "name": "c2"}, "qos": "normal"}),
    );
    assert_eq!(
        r.call(Method::GetCurrentClones, json!({}))
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        r.call(Method::IsSplittable, json!({"se_record": se(&clone)})),
        true
    );
    let mut progress = r.call(Method::SplitClone, json!({"se_record": se(&clone)}));
    assert_eq!(progress["async_progress"], 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !progress["async_progress"].is_null() {
        assert!(std::time::Instant::now() < deadline, "split never finished");
        std::thread::sleep(std::time::Duration::from_millis(50));
        progress = r.call(Method::GetAsyncProgress, json!({"some_record": progress}));
    }
    assert_eq!(progress["se_type"], "LUNType");

    r.call(Method::Remove, json!({"se_record": se(&from_snap)}));
    r.call(Method::SnapRemove, json!({"snap_se_record": se(&snap)}));
    r.call(Method::SnapRemove, json!({"snap_se_record": se(&multi)}));
    r.call(Method::Remove, json!({"se_record": se(&progress)}));
    r.call(Method::Remove, json!({"se_record": se(&lun)}));
    r.call(Method::Remove, json!({"se_record": se(&lun2)}));
    r.call(
        Method::RemoveAccessGroups,
        json!({"access_grps": [{"grp_name": "g2"}]}),
    );
    assert_eq!(r.call(Method::List, json!({})), json!([]));

    let all: BTreeSet<&str> = METHODS.iter().map(|m| m.name).collect();
    let missed: Vec<&&str> = all.difference(&r.called).collect();
    assert!(missed.is_empty(), "methods not exercised: {missed:?}");
}
