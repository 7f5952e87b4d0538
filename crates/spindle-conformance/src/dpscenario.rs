//! The data-path checks of what snapshots, clones, restores and splits do to the data a host
//! sees, and of who may see it. They work on LUNs of their own (D1, D2 and what is made from
//! D1), so that the element checks' objects are not disturbed; everything carries the run
//! prefix and is removed at the end of the scenario (and by the clean-up if that fails).

use crate::datapath::{DataPath, LunRef};
use crate::elements::{GROWN, SIZE};
use crate::groups::Groups;
use crate::kit::{brief, same, Failure, Kind, Kit, ObjId};
use serde_json::{json, Value};
use spindle_api::{make_mp_page83_from_raw_page83, Method, OpAbility, OpKey};
use std::sync::Arc;

pub(crate) const SNAPSHOT_FREEZES: &str = "datapath.snapshot_freezes";
pub(crate) const CLONE_DIVERGES: &str = "datapath.clone_diverges";
pub(crate) const RESTORE: &str = "datapath.restore_brings_data_back";
pub(crate) const SPLIT: &str = "datapath.split_keeps_data";
pub(crate) const OUTSIDER: &str = "datapath.outsider_sees_nothing";
pub(crate) const PAGE83: &str = "datapath.page83_stable";

const ALL: [&str; 6] = [SNAPSHOT_FREEZES, CLONE_DIVERGES, RESTORE, SPLIT, OUTSIDER, PAGE83];

/// How the reason of a scenario that could not start begins.
const NOT_STARTED: &str = "the data-path scenario could not start";

/// Where the patterns are written.
const LBA: u64 = 8;
/// How many blocks each pattern spans.
const BLOCKS: u32 = 2;

/// The data path, as the scenario uses it.
struct Dp {
    dp: Arc<dyn DataPath>,
    portal: String,
    init: String,
    /// The patterns written so far, by tag, to name what a LUN holds.
    patterns: Vec<(char, Vec<u8>)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The initiator name for a host in no group: the configured one with "-outsider" appended
/// (an IQN's unique part may hold '-').
pub(crate) fn outsider_of(initiator: &str) -> String {
    format!("{}-outsider", initiator.to_ascii_lowercase())
}

impl Dp {
    /// What `data` is, in words: one of the patterns, zeros, or something else.
    fn describe(&self, data: &[u8]) -> String {
        if let Some((t, _)) = self.patterns.iter().find(|(_, p)| p.as_slice() == data) {
            return format!("pattern {t}");
        }
        if data.iter().all(|&b| b == 0) {
            return "zeros".into();
        }
        format!("{} bytes matching no pattern the kit wrote", data.len())
    }

    fn pattern(&self, tag: char) -> Vec<u8> {
        self.patterns
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    }
}

impl Kit<'_> {
    /// The LUN `o` is seen as, presenting it to `g` first if need be.
    async fn dp_show(&mut self, d: &Dp, o: ObjId, g: &str) -> Result<LunRef, String> {
        let label = self.label(o);
        if !self.objs[o].presented.contains(g) && !self.present(o, &[g.to_string()]).await {
            return Err(format!(
                "{label} could not be presented (see startPresent.returns_groups)"
            ));
        }
        let page83 = self.objs[o]
            .rec
            .get("page83_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let found = self.blocking(|| crate::dpchecks::find(d.dp.as_ref(), &d.portal, &d.init, &page83))?;
        match found {
            (Some(lun), _) => Ok(lun),
            (None, seen) => Err(format!(
                "{label} is presented to {g}, but {} sees no LUN with page 83 id {page83} (it sees: {})",
                d.init,
                if seen.is_empty() {
                    "nothing".to_string()
                } else {
                    seen.join("; ")
                }
            )),
        }
    }

    fn dp_write(&self, d: &Dp, lun: &LunRef, tag: char, what: &str) -> Result<(), String> {
        let data = d.pattern(tag);
        self.blocking(|| d.dp.write_pattern(&d.portal, &d.init, lun, LBA, &data))
            .map_err(|e| format!("writing pattern {tag} to {what} ({lun}): {e}"))
    }

    /// Reads the pattern blocks of `lun`: Ok(None) when they hold `want`, Ok(Some(what they
    /// hold)) otherwise.
    fn dp_expect(&self, d: &Dp, lun: &LunRef, want: char, what: &str) -> Result<Option<String>, String> {
        let data = self
            .blocking(|| d.dp.read_back(&d.portal, &d.init, lun, LBA, BLOCKS))
            .map_err(|e| format!("reading {what} ({lun}): {e}"))?;
        if data == d.pattern(want) {
            Ok(None)
        } else {
            Ok(Some(format!(
                "{what} holds {} instead of pattern {want}",
                d.describe(&data)
            )))
        }
    }

    /// Creates a LUN for the scenario.
    async fn dp_create(&mut self, role: &str, what: &str) -> Result<ObjId, String> {
        let name = self.name(what);
        match self
            .call(Method::Create, vec![("se_record", self.lun_record(&name, SIZE))])
            .await
        {
            Ok(rec) if rec.is_object() => Ok(self.track(role, Kind::Lun, rec)),
            Ok(v) => Err(format!("create of {role} ({name}) returned {}", brief(&v))),
            Err(f) => Err(format!("create of {role} ({name}): {}", f.describe())),
        }
    }

    /// Runs `method` on `o` as its ability says and tracks the element it returns.
    async fn dp_make(
        &mut self,
        method: Method,
        o: ObjId,
        params: Vec<(&'static str, Value)>,
        g: &str,
        role: &str,
        kind: Kind,
    ) -> Result<ObjId, String> {
        let (r, _) = self.governed(method, o, params, Some(g), false).await;
        match r {
            Ok(rec) if rec.is_object() => Ok(self.track(role, kind, rec)),
            Ok(v) => Err(format!("{method} of {} returned {}", self.label(o), brief(&v))),
            Err(f) => Err(format!("{method} of {}: {}", self.label(o), f.describe())),
        }
    }

    /// Stops presenting and removes `o` (the clean-up retries whatever is left).
    async fn dp_drop(&mut self, o: ObjId) {
        if self.objs[o].gone {
            return;
        }
        self.unpresent_all(o).await;
        self.remove_obj(o).await;
    }

    /// The data-path scenario for snapshots, clones, restore, split, an outsider and page 83.
    pub(crate) async fn datapath_scenario(&mut self, groups: &Groups) {
        if self.fallback.is_some() {
            return;
        }
        let (dp, portal, init) = match self.data_path() {
            Ok(x) => x,
            Err(why) => {
                self.skip_all(&ALL, &why);
                return;
            }
        };
        let Some(g) = groups.present_to.clone() else {
            self.skip_all(&ALL, "the kit has no access group holding the initiator");
            return;
        };
        let mut d = Dp {
            dp,
            portal,
            init,
            patterns: Vec::new(),
        };
        let mut made = Vec::new();
        let outcome = self.dp_run(&mut d, &g, &mut made).await;
        if let Err(why) = outcome {
            // A scenario that could not start is skipped (the failure is another check's);
            // a data path that broke down half-way fails what it left unjudged.
            let skip = why.starts_with(NOT_STARTED);
            for id in ALL {
                if !self.results.contains_key(id) {
                    if skip {
                        self.skip(id, why.clone());
                    } else {
                        self.fail(id, why.clone());
                    }
                }
            }
        }
        // Dependants first: clones, then snapshots, then LUNs.
        made.sort_by_key(|&o| match self.objs[o].kind {
            Kind::Clone => 0,
            Kind::Snap => 1,
            Kind::Lun => 2,
        });
        for o in made {
            self.dp_drop(o).await;
        }
    }

    async fn dp_run(&mut self, d: &mut Dp, g: &str, made: &mut Vec<ObjId>) -> Result<(), String> {
        let prelude = |e: String| format!("{NOT_STARTED}: {e}");
        let d1 = self.dp_create("D1", "dlun1").await.map_err(prelude)?;
        made.push(d1);
        let d2 = self.dp_create("D2", "dlun2").await.map_err(prelude)?;
        made.push(d2);
        let lun1 = self.dp_show(d, d1, g).await.map_err(prelude)?;
        let lun2 = self.dp_show(d, d2, g).await.map_err(prelude)?;
        let cap = self
            .blocking(|| d.dp.read_capacity(&d.portal, &d.init, &lun1))
            .map_err(|e| prelude(format!("READ CAPACITY of D1: {e}")))?;
        if cap.block_size == 0 {
            return Err(prelude("READ CAPACITY of D1 reports a block size of 0".into()));
        }
        let bytes = cap.block_size as usize * BLOCKS as usize;
        for tag in ['A', 'B', 'C'] {
            let stamp = format!(
                "spindle-conformance {} {} pattern {tag} ",
                self.run_hex, self.opts.prefix
            );
            d.patterns
                .push((tag, stamp.bytes().cycle().take(bytes).collect()));
        }

        self.dp_outsider(d).await;
        self.dp_page83(d, d1, d2, &lun1, &lun2, g).await;

        // Pattern A, then the snapshot, then pattern B.
        self.dp_write(d, &lun1, 'A', "D1").map_err(prelude)?;
        if let Some(bad) = self.dp_expect(d, &lun1, 'A', "D1").map_err(prelude)? {
            return Err(prelude(format!(
                "pattern A written to D1 did not read back: {bad}"
            )));
        }
        let snap = if self.supported(OpKey::Snapshot) {
            let mut params = vec![("se_record", self.rec(d1))];
            if self.caps.custom_snap_name.is_yes() {
                params.push(("snap_se_record", self.partial("SnapType", &self.name("dsnap1"))));
            }
            match self
                .dp_make(Method::CreateSnap, d1, params, g, "DS1", Kind::Snap)
                .await
            {
                Ok(s) => {
                    made.push(s);
                    Ok(s)
                }
                Err(e) => Err(format!("no snapshot of D1: {e}")),
            }
        } else {
            Err("snapshot is UNSUPPORTED".to_string())
        };
        let lun1 = self.dp_show(d, d1, g).await?;
        self.dp_write(d, &lun1, 'B', "D1")?;
        if let Some(bad) = self.dp_expect(d, &lun1, 'B', "D1")? {
            return Err(format!("pattern B written to D1 did not read back: {bad}"));
        }

        // The snapshot, seen through a clone of it.
        match (&snap, self.supported(OpKey::SnapClone)) {
            (Err(why), _) => self.skip(SNAPSHOT_FREEZES, why.clone()),
            (Ok(_), false) => self.skip(
                SNAPSHOT_FREEZES,
                "snapclone is UNSUPPORTED: the snapshot cannot be presented through a clone",
            ),
            (Ok(s), true) => {
                let s = *s;
                let r = self.dp_snapshot_freezes(d, d1, s, g, made).await;
                if let Err(e) = r {
                    self.fail(SNAPSHOT_FREEZES, e);
                }
            }
        }

        // A clone of D1 (holding B), written to; then split.
        let clone = if self.supported(OpKey::Clone) {
            let mut params = vec![("se_record", self.rec(d1))];
            if self.caps.custom_clone_name.is_yes() {
                params.push((
                    "dest_se_record",
                    self.partial("SnapCloneType", &self.name("dclone1")),
                ));
            }
            match self
                .dp_make(Method::Clone, d1, params, g, "DC1", Kind::Clone)
                .await
            {
                Ok(c) => {
                    made.push(c);
                    match self.dp_clone_diverges(d, d1, c, g).await {
                        Ok(()) => Ok(c),
                        Err(e) => {
                            self.fail(CLONE_DIVERGES, e);
                            Err("the clone did not hold what it should (see datapath.clone_diverges)".into())
                        }
                    }
                }
                Err(e) => {
                    self.fail(CLONE_DIVERGES, e);
                    Err("the kit has no clone of D1 (see datapath.clone_diverges)".to_string())
                }
            }
        } else {
            self.skip(CLONE_DIVERGES, "clone is UNSUPPORTED");
            Err("clone is UNSUPPORTED".to_string())
        };
        match clone {
            Err(why) => self.skip(SPLIT, why),
            Ok(_) if !self.supported(OpKey::SplitClone) => self.skip(SPLIT, "splitclone is UNSUPPORTED"),
            Ok(c) => {
                if let Err(e) = self.dp_split(d, d1, c, g).await {
                    self.fail(SPLIT, e);
                }
            }
        }
        // Clones would stand in the way of a restore; they have been judged.
        for &o in made.iter() {
            if self.objs[o].kind == Kind::Clone {
                self.dp_drop(o).await;
            }
        }

        match snap {
            Err(why) => self.skip(RESTORE, why),
            Ok(s) => {
                if let Err(e) = self.dp_restore(d, d1, s, g).await {
                    self.fail(RESTORE, e);
                }
            }
        }
        Ok(())
    }

    async fn dp_outsider(&mut self, d: &Dp) {
        let outsider = outsider_of(&d.init);
        let ours: Vec<String> = self
            .objs
            .iter()
            .filter(|o| !o.gone)
            .filter_map(|o| o.rec.get("page83_id").and_then(Value::as_str).map(str::to_string))
            .filter(|p| !p.is_empty())
            .collect();
        let r = self.blocking(|| -> Result<Vec<String>, String> {
            let luns =
                d.dp.visible_luns(&d.portal, &outsider)
                    .map_err(|e| format!("listing the LUNs {outsider} sees: {e}"))?;
            let mut hits = Vec::new();
            for lun in luns {
                let page =
                    d.dp.read_vpd_page83(&d.portal, &outsider, &lun)
                        .map_err(|e| format!("VPD page 0x83 of {lun} as {outsider}: {e}"))?;
                if let Ok(id) = make_mp_page83_from_raw_page83(&hex(&page)) {
                    if ours.iter().any(|p| p.eq_ignore_ascii_case(&id)) {
                        hits.push(format!("{lun} ({id})"));
                    }
                }
            }
            Ok(hits)
        });
        match r {
            Ok(hits) if hits.is_empty() => self.pass(
                OUTSIDER,
                format!(
                    "{outsider}, in no access group, sees none of the kit's {} LUNs while they are presented",
                    ours.len()
                ),
            ),
            Ok(hits) => self.fail(
                OUTSIDER,
                format!("{outsider} is in no access group, yet sees {}", hits.join(", ")),
            ),
            Err(e) => self.fail(OUTSIDER, e),
        }
    }

    /// VPD page 0x83 holds the page83_id before and after a resize; two LUNs differ.
    async fn dp_page83(&mut self, d: &Dp, d1: ObjId, d2: ObjId, lun1: &LunRef, lun2: &LunRef, g: &str) {
        let (p1, p2) = (self.page83_of(d1), self.page83_of(d2));
        if p1.eq_ignore_ascii_case(&p2) {
            self.fail(PAGE83, format!("D1 and D2 have the same page83_id {p1}"));
            return;
        }
        if lun1 == lun2 {
            self.fail(PAGE83, format!("D1 and D2 are both seen as {lun1}"));
            return;
        }
        if !self.supported(OpKey::Resize) {
            self.pass(
                PAGE83,
                format!("D1 ({p1}) and D2 ({p2}) are told apart by VPD page 0x83 (resize is UNSUPPORTED: not tried after one)"),
            );
            return;
        }
        let (r, _) = self
            .governed(
                Method::Resize,
                d1,
                vec![("se_record", self.rec(d1)), ("new_size", json!(GROWN))],
                Some(g),
                false,
            )
            .await;
        match r {
            Ok(rec) => {
                if same(&rec, &self.rec(d1)) {
                    self.objs[d1].rec = rec;
                }
            }
            Err(f) => {
                self.skip(
                    PAGE83,
                    format!(
                        "resize of D1 failed, so page 83 could not be read after one: {}",
                        f.describe()
                    ),
                );
                return;
            }
        }
        let p1_after = self.page83_of(d1);
        if !p1_after.eq_ignore_ascii_case(&p1) {
            self.fail(
                PAGE83,
                format!("resize changed D1's page83_id from {p1} to {p1_after}"),
            );
            return;
        }
        match self.dp_show(d, d1, g).await {
            Ok(lun) => self.pass(
                PAGE83,
                format!(
                    "VPD page 0x83 of D1 ({lun}) holds {p1} before and after resize to {GROWN} bytes; D2's ({lun2}) holds {p2}"
                ),
            ),
            Err(e) => self.fail(PAGE83, format!("after resize: {e}")),
        }
    }

    async fn dp_snapshot_freezes(
        &mut self,
        d: &Dp,
        d1: ObjId,
        s: ObjId,
        g: &str,
        made: &mut Vec<ObjId>,
    ) -> Result<(), String> {
        let mut params = vec![("se_record", self.rec(d1)), ("snap_se_record", self.rec(s))];
        if self.caps.custom_clone_name.is_yes() {
            params.push((
                "dest_se_record",
                self.partial("SnapCloneType", &self.name("dsclone1")),
            ));
        }
        let c = self
            .dp_make(Method::CloneFromSnap, d1, params, g, "DC2", Kind::Clone)
            .await?;
        made.push(c);
        let lun = self.dp_show(d, c, g).await?;
        let lun1 = self.dp_show(d, d1, g).await?;
        let mut bad = Vec::new();
        if let Some(b) = self.dp_expect(d, &lun, 'A', "the clone of D1's snapshot")? {
            bad.push(b);
        }
        if let Some(b) = self.dp_expect(d, &lun1, 'B', "D1")? {
            bad.push(b);
        }
        self.verdict(
            SNAPSHOT_FREEZES,
            bad.is_empty(),
            "a clone of the snapshot taken after pattern A holds A, while D1 holds B written since",
            format!(
                "pattern A was written to D1, the snapshot taken, then B written: {}",
                bad.join("; ")
            ),
        );
        Ok(())
    }

    async fn dp_clone_diverges(&mut self, d: &Dp, d1: ObjId, c: ObjId, g: &str) -> Result<(), String> {
        let lun = self.dp_show(d, c, g).await?;
        if let Some(b) = self.dp_expect(d, &lun, 'B', "the new clone of D1")? {
            return Err(format!("D1 held pattern B when it was cloned, but {b}"));
        }
        self.dp_write(d, &lun, 'C', "the clone")?;
        let lun1 = self.dp_show(d, d1, g).await?;
        let mut bad = Vec::new();
        if let Some(b) = self.dp_expect(d, &lun, 'C', "the clone")? {
            bad.push(b);
        }
        if let Some(b) = self.dp_expect(d, &lun1, 'B', "D1")? {
            bad.push(b);
        }
        self.verdict(
            CLONE_DIVERGES,
            bad.is_empty(),
            "the clone of D1 held B; after C was written to it, it reads C and D1 still B",
            format!(
                "after pattern C was written to the clone of D1 (which held B): {}",
                bad.join("; ")
            ),
        );
        Ok(())
    }

    async fn dp_split(&mut self, d: &Dp, d1: ObjId, c: ObjId, g: &str) -> Result<(), String> {
        if !self
            .results
            .get(CLONE_DIVERGES)
            .is_some_and(|a| a.fail.is_empty())
        {
            self.skip(
                SPLIT,
                "the clone did not hold what it should (see datapath.clone_diverges)",
            );
            return Ok(());
        }
        // Made splittable as the plug-in's own isSplittable says: asked presented (unless
        // splitclone is OFFLINE), then unpresented, then unpresented and offline.
        let offline = self.ability(OpKey::SplitClone) == OpAbility::Offline;
        let mut asked = Vec::new();
        let mut ok = false;
        if !offline {
            ok = self.dp_splittable(c, "presented").await?;
            asked.push("presented");
        }
        if !ok {
            let groups: Vec<String> = self.objs[c].presented.iter().cloned().collect();
            if !groups.is_empty() && !self.unpresent(c, &groups).await {
                return Err("the clone could not be unpresented to make it splittable".into());
            }
            ok = self.dp_splittable(c, "unpresented").await?;
            asked.push("unpresented");
        }
        let mut offlined = false;
        if !ok {
            if let Err(f) = self.call(Method::Offline, vec![("se_record", self.rec(c))]).await {
                return Err(format!(
                    "offline of the clone, to make it splittable: {}",
                    f.describe()
                ));
            }
            offlined = true;
            ok = self.dp_splittable(c, "unpresented and offline").await?;
            asked.push("unpresented and offline");
        }
        if !ok {
            let _ = self.call(Method::Online, vec![("se_record", self.rec(c))]).await;
            self.skip(
                SPLIT,
                format!(
                    "isSplittable of the clone of D1 said False {}",
                    asked.join(", then ")
                ),
            );
            return Ok(());
        }
        let when = asked.last().copied().unwrap_or("presented");
        let params = vec![("se_record", self.rec(c))];
        let (r, _) = if when == "presented" || offline {
            self.governed(Method::SplitClone, c, params, Some(g), true).await
        } else {
            // ONLINE, but the plug-in wants the clone unpresented (or offline) to split it.
            self.call_with_progress(Method::SplitClone, params).await
        };
        match r {
            Ok(v) => {
                if same(&v, &self.rec(c)) {
                    self.objs[c].rec = v;
                }
            }
            Err(f @ Failure::Contract { .. }) => {
                self.call_failed(SPLIT, &f, "splitClone of the clone of D1");
                return Ok(());
            }
            Err(f) => {
                return Err(format!(
                    "isSplittable said True with the clone {when}, but splitClone: {}",
                    f.describe()
                ))
            }
        }
        if offlined {
            if let Err(f) = self.call(Method::Online, vec![("se_record", self.rec(c))]).await {
                return Err(format!("online of the clone after the split: {}", f.describe()));
            }
        }
        if let Ok(rec) = self.call(Method::GetInfo, vec![("se_record", self.rec(c))]).await {
            if same(&rec, &self.rec(c)) {
                self.objs[c].rec = rec;
            }
        }
        let lun = self.dp_show(d, c, g).await?;
        let lun1 = self.dp_show(d, d1, g).await?;
        let mut bad = Vec::new();
        if let Some(b) = self.dp_expect(d, &lun, 'C', "the split clone")? {
            bad.push(b);
        }
        if let Some(b) = self.dp_expect(d, &lun1, 'B', "D1")? {
            bad.push(b);
        }
        self.verdict(
            SPLIT,
            bad.is_empty(),
            format!(
                "after splitClone with the clone {when}{} and presenting it again, the clone still reads C and D1 B",
                if offline { " (splitclone is OFFLINE: split offline)" } else { "" }
            ),
            format!("after splitClone of the clone (which read C): {}", bad.join("; ")),
        );
        Ok(())
    }

    async fn dp_splittable(&mut self, c: ObjId, when: &str) -> Result<bool, String> {
        match self
            .call(Method::IsSplittable, vec![("se_record", self.rec(c))])
            .await
        {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(v) => Err(format!(
                "isSplittable with the clone {when} returned {}",
                brief(&v)
            )),
            Err(f) => Err(format!("isSplittable with the clone {when}: {}", f.describe())),
        }
    }

    /// isRestorable, as `when`: Some(true/false), or why it could not be asked.
    async fn dp_restorable(&mut self, d1: ObjId, s: ObjId, when: &str) -> Result<bool, String> {
        match self
            .call(
                Method::IsRestorable,
                vec![("snap_se_record", self.rec(s)), ("se_record", self.rec(d1))],
            )
            .await
        {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(v) => Err(format!("isRestorable {when} returned {}", brief(&v))),
            Err(f) => Err(format!("isRestorable {when}: {}", f.describe())),
        }
    }

    async fn dp_restore(&mut self, d: &Dp, d1: ObjId, s: ObjId, g: &str) -> Result<(), String> {
        let mut asked = Vec::new();
        let mut offline = false;
        let mut ok = self.dp_restorable(d1, s, "with D1 presented").await?;
        asked.push("presented");
        if !ok {
            let groups: Vec<String> = self.objs[d1].presented.iter().cloned().collect();
            if !self.unpresent(d1, &groups).await {
                return Err("D1 could not be unpresented to make it restorable".into());
            }
            ok = self.dp_restorable(d1, s, "with D1 unpresented").await?;
            asked.push("unpresented");
        }
        if !ok {
            if let Err(f) = self
                .call(Method::Offline, vec![("se_record", self.rec(d1))])
                .await
            {
                return Err(format!("offline of D1, to make it restorable: {}", f.describe()));
            }
            offline = true;
            ok = self
                .dp_restorable(d1, s, "with D1 unpresented and offline")
                .await?;
            asked.push("unpresented and offline");
        }
        if !ok {
            let _ = self.call(Method::Online, vec![("se_record", self.rec(d1))]).await;
            self.skip(
                RESTORE,
                format!(
                    "isRestorable of D1 from its snapshot said False {}",
                    asked.join(", then ")
                ),
            );
            return Ok(());
        }
        let when = asked.last().copied().unwrap_or("presented");
        let r = self
            .call(
                Method::SnapRestore,
                vec![("snap_se_record", self.rec(s)), ("se_record", self.rec(d1))],
            )
            .await;
        if offline {
            if let Err(f) = self.call(Method::Online, vec![("se_record", self.rec(d1))]).await {
                return Err(format!("online of D1 after the restore: {}", f.describe()));
            }
        }
        if let Err(f) = r {
            return Err(format!(
                "isRestorable said True with D1 {when}, but snapRestore: {}",
                f.describe()
            ));
        }
        if let Ok(rec) = self
            .call(Method::GetInfo, vec![("se_record", self.rec(d1))])
            .await
        {
            if same(&rec, &self.rec(d1)) {
                self.objs[d1].rec = rec;
            }
        }
        let lun1 = self.dp_show(d, d1, g).await?;
        match self.dp_expect(d, &lun1, 'A', "D1")? {
            None => self.pass(
                RESTORE,
                format!("snapRestore with D1 {when} brought back pattern A, which D1 held at the snapshot"),
            ),
            Some(b) => self.fail(
                RESTORE,
                format!("D1 held A at the snapshot and B after; restored (with D1 {when}) and presented again, {b}"),
            ),
        }
        Ok(())
    }
}
