//! The simulated array as kept in its state file, and the rules it follows.
//!
//! Model:
//! - **Pools** have a fixed capacity. A thick element reserves its whole size in its pool; a thin
//!   element, a snapshot and an unsplit clone reserve nothing (the simulation writes no data).
//!   `used` is the sum of reservations, `free` = capacity − used, `alloc` the sum of the sizes of
//!   LUNs and clones (what has been provisioned). Sizes are rounded up to whole 1 MiB extents.
//! - **Snapshots** freeze the size of each element they cover ("members"; several for
//!   `createMultiSnap`). A member cannot be removed while a snapshot covers it.
//! - **Clones** are thin and depend on their origin (an element, or a snapshot and one of its
//!   members) until split. A split copies the shared blocks: it takes simulated time, and when it
//!   finishes the clone is an ordinary LUN (thick if what it copied was thick).
//! - **Identity**: every element gets a uuid and an NAA-6 page 83 id made of the array's random
//!   company and vendor ids and a serial number that only ever grows, so no id is reused, even
//!   after the element is removed.

use crate::config::Config;
use crate::names::{self, MAX_NAME_LEN};
use serde::{Deserialize, Serialize};
use spindle_api::{
    make_mp_page83_from_raw_page83, AccessGrp, Field, PluginException, PluginResult, SeRecord, SeState,
    SeType, StorageType, VolGroup,
};
use std::collections::BTreeMap;

/// Version of the state file's layout.
pub const FORMAT: u32 = 1;
/// Allocation unit: sizes are rounded up to whole MiB.
pub const EXTENT: i64 = 1 << 20;
/// Snapshots one element may have.
pub const MAX_SNAPS_PER_ELEMENT: i64 = 256;
/// Dependent (unsplit) clones one element may have.
pub const MAX_CLONES_PER_ELEMENT: i64 = 256;
/// Entries one access group may hold.
pub const MAX_ACCESS_ENTRIES: u32 = 64;
/// Longest simulated split, whatever the size: one hour.
pub const MAX_SPLIT_MS: u64 = 3_600_000;
/// SCSI INQUIRY vendor reported for every element.
pub const VENDOR: &str = "SPINDLE";
/// SCSI INQUIRY product reported for every element.
pub const PRODUCT: &str = "SIMARRAY";
/// Prefix of the `async_handle` of a split.
pub const SPLIT_HANDLE_PREFIX: &str = "sim-split:";
/// Status of the array and of online elements.
pub const STATUS_ONLINE: &str = "ONLINE";
/// Status of offline elements.
pub const STATUS_OFFLINE: &str = "OFFLINE";

/// The service levels: (priority, value, description).
pub const QOS_LEVELS: [(i64, &str, &str); 3] = [
    (0, "high", "simulated high service level (no real I/O is served)"),
    (
        1,
        "normal",
        "simulated normal service level (no real I/O is served)",
    ),
    (2, "low", "simulated low service level (no real I/O is served)"),
];
/// Level given to elements created without one.
pub const DEFAULT_QOS: &str = "normal";

/// A pool (volume group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Name.
    pub name: String,
    /// Capacity in bytes.
    pub capacity: i64,
}

/// An access group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Name.
    pub name: String,
    /// Normalised entries (WWNs or iSCSI initiator names).
    pub entries: Vec<String>,
    /// Modes, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<String>>,
}

/// What a clone shares blocks with until it is split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Serial of the element or snapshot it was cloned from.
    pub serial: u64,
    /// For a clone of a snapshot: serial of the member it is a clone of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<u64>,
}

/// One element covered by a snapshot, with its size when the snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapMember {
    /// Serial of the element.
    pub serial: u64,
    /// Its size at the snapshot.
    pub size: i64,
}

/// A clone split, timed by the wall clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitJob {
    /// Id, the tail of the `async_handle`.
    pub id: String,
    /// When it started (ms since the epoch).
    pub started_ms: u64,
    /// How long it takes.
    pub duration_ms: u64,
    /// Set once it has been settled.
    pub done: bool,
}

impl SplitJob {
    /// True once its time has run out.
    pub fn finished(&self, now: u64) -> bool {
        self.done || now.saturating_sub(self.started_ms) >= self.duration_ms
    }

    /// Percent done while running, `None` once finished.
    pub fn progress(&self, now: u64) -> Option<i64> {
        if self.finished(now) {
            return None;
        }
        let elapsed = u128::from(now.saturating_sub(self.started_ms));
        let pct = elapsed * 100 / u128::from(self.duration_ms.max(1));
        Some(i64::try_from(pct.min(99)).unwrap_or(99))
    }
}

/// A LUN, snapshot or clone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    /// Never reused; the tail of the page 83 id.
    pub serial: u64,
    /// uuid.
    pub uuid: String,
    /// Formatted page 83 id.
    pub page83_id: String,
    /// Unique name on the array.
    pub name: String,
    /// LUNType, SnapType or SnapCloneType.
    pub se_type: SeType,
    /// Pool.
    pub pool: String,
    /// Bytes.
    pub size: i64,
    /// Thin provisioned.
    pub thin: bool,
    /// Bytes reserved in the pool.
    pub reserved: i64,
    /// Online (LUNs and clones; snapshots are always online).
    pub online: bool,
    /// QoS value.
    pub qos: String,
    /// Access groups it is presented to.
    pub presented_to: Vec<String>,
    /// When it was created (ms since the epoch).
    pub created_ms: u64,
    /// For an unsplit clone: what it shares blocks with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// For a clone: whether what it would copy on a split is thick.
    #[serde(default)]
    pub split_thick: bool,
    /// The split under way or done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitJob>,
    /// For a snapshot: what it covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<SnapMember>,
}

impl Element {
    /// A split is under way.
    pub fn splitting(&self) -> bool {
        self.split.as_ref().is_some_and(|j| !j.done)
    }

    /// Whether a copy of this element's blocks would be thick.
    pub fn copies_thick(&self) -> bool {
        if self.origin.is_some() {
            self.split_thick
        } else {
            !self.thin
        }
    }

    /// True for snapshots.
    pub fn is_snap(&self) -> bool {
        self.se_type == SeType::Snap
    }

    fn kind_word(&self) -> &'static str {
        match self.se_type {
            SeType::Snap => "snapshot",
            SeType::SnapClone => "clone",
            SeType::Lun | SeType::GhostLun => "LUN",
        }
    }

    /// "LUN \"x\"" for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.kind_word(), names::shown(&self.name))
    }
}

/// The whole array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Layout version.
    pub format: u32,
    /// The array's id.
    pub array_id: String,
    /// 24-bit IEEE company id field of every page 83 id (locally administered).
    pub naa_company_id: u32,
    /// 36-bit vendor-specific field of every page 83 id.
    pub naa_vendor_id: u64,
    /// Next serial number; never decreases.
    pub next_serial: u64,
    /// SANStorage or iSCSIStorage, fixed at creation.
    pub storage_type: StorageType,
    /// When the array was created (ms since the epoch).
    pub created_ms: u64,
    /// Pools.
    pub pools: Vec<Pool>,
    /// Access groups.
    pub access_groups: Vec<Group>,
    /// Elements, in creation order.
    pub elements: Vec<Element>,
}

fn empty(f: &Field<String>) -> bool {
    f.value().is_none_or(|s| s.is_empty())
}

fn text(f: &Field<String>) -> Option<&str> {
    f.value().map(String::as_str).filter(|s| !s.is_empty())
}

impl State {
    /// A new empty array shaped by `cfg`, with a fresh random identity.
    pub fn new(cfg: &Config, storage_type: StorageType, now: u64) -> State {
        let id = uuid::Uuid::new_v4();
        let b = uuid::Uuid::new_v4().into_bytes();
        // A locally administered company id (X bit set, M bit clear) cannot collide with a
        // registered vendor's.
        let company =
            (u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])) & !0x01_0000 | 0x02_0000;
        let vendor = b[3..8].iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)) & 0xF_FFFF_FFFF;
        let capacity = cfg.capacity_or_default();
        State {
            format: FORMAT,
            array_id: id.to_string(),
            naa_company_id: company,
            naa_vendor_id: vendor,
            next_serial: 1,
            storage_type,
            created_ms: now,
            pools: cfg
                .pools_or_default()
                .into_iter()
                .map(|name| Pool { name, capacity })
                .collect(),
            access_groups: Vec::new(),
            elements: Vec::new(),
        }
    }

    /// Parses a state file.
    pub fn from_json(bytes: &[u8]) -> Result<State, String> {
        let s: State = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if s.format != FORMAT {
            return Err(format!("layout version {} is not {FORMAT}", s.format));
        }
        Ok(s)
    }

    /// Encodes the state file.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut v = serde_json::to_vec_pretty(self)?;
        v.push(b'\n');
        Ok(v)
    }

    /// Finishes the splits whose time has run out.
    pub fn settle(&mut self, now: u64) {
        for e in &mut self.elements {
            if let Some(job) = e.split.as_mut() {
                if !job.done && job.finished(now) {
                    job.done = true;
                    e.se_type = SeType::Lun;
                    e.origin = None;
                }
            }
        }
    }

    /// Takes the next serial number and builds the page 83 id from it.
    pub fn next_identity(&mut self) -> PluginResult<(u64, String)> {
        let serial = self.next_serial;
        self.next_serial = serial.checked_add(1).ok_or_else(|| {
            PluginException::operation_failed("the simulated array ran out of serial numbers")
        })?;
        let raw = format!(
            "6{:06x}{:09x}{serial:016x}",
            self.naa_company_id & 0xFF_FFFF,
            self.naa_vendor_id & 0xF_FFFF_FFFF
        );
        let page83 = make_mp_page83_from_raw_page83(&raw)
            .map_err(|e| PluginException::operation_failed(format!("page 83 id not formattable: {e}")))?;
        Ok((serial, page83))
    }

    /// The iSCSI target name the array reports through `discover`.
    pub fn target_name(&self) -> String {
        format!("iqn.2000-01.invalid.spindle:sim.{}", self.array_id)
    }

    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// Bytes reserved in `pool`.
    pub fn pool_used(&self, pool: &str) -> i64 {
        self.elements
            .iter()
            .filter(|e| e.pool == pool)
            .fold(0i64, |a, e| a.saturating_add(e.reserved))
    }

    /// Bytes provisioned in `pool` (LUNs and clones).
    pub fn pool_alloc(&self, pool: &str) -> i64 {
        self.elements
            .iter()
            .filter(|e| e.pool == pool && !e.is_snap())
            .fold(0i64, |a, e| a.saturating_add(e.size))
    }

    /// Bytes free in `pool`.
    pub fn pool_free(&self, pool: &str) -> i64 {
        let cap = self.pool(pool).map_or(0, |p| p.capacity);
        cap.saturating_sub(self.pool_used(pool)).max(0)
    }

    /// Totals over all pools: (total, used, alloc).
    pub fn totals(&self) -> (i64, i64, i64) {
        self.pools.iter().fold((0i64, 0i64, 0i64), |(t, u, a), p| {
            (
                t.saturating_add(p.capacity),
                u.saturating_add(self.pool_used(&p.name)),
                a.saturating_add(self.pool_alloc(&p.name)),
            )
        })
    }

    /// The pools as vol_group records.
    pub fn vol_groups(&self) -> Vec<VolGroup> {
        self.pools
            .iter()
            .map(|p| {
                let used = self.pool_used(&p.name);
                VolGroup {
                    vol_name: Field::Value(p.name.clone()),
                    vol_total_sz: Field::Value(p.capacity),
                    vol_used_sz: Field::Value(used),
                    vol_free_sz: Field::Value(p.capacity.saturating_sub(used).max(0)),
                    vol_alloc_sz: Field::Value(self.pool_alloc(&p.name)),
                    vol_desc: Field::Value(format!(
                        "simulated pool of {} bytes (no data is stored)",
                        p.capacity
                    )),
                    extra: Default::default(),
                }
            })
            .collect()
    }

    /// The element with `serial`.
    pub fn index_of_serial(&self, serial: u64) -> Option<usize> {
        self.elements.iter().position(|e| e.serial == serial)
    }

    /// True if an element is called `name`.
    pub fn name_taken(&self, name: &str) -> bool {
        self.elements.iter().any(|e| e.name == name)
    }

    /// Refuses a name some element already has.
    pub fn check_unique(&self, name: &str) -> PluginResult<()> {
        match self.elements.iter().find(|e| e.name == name) {
            Some(e) => Err(PluginException::invalid_value(format!(
                "name {} is already used by {} on the simulated array",
                names::shown(name),
                e.label()
            ))),
            None => Ok(()),
        }
    }

    /// A free name made from `base`, e.g. `lun1-snap7`.
    pub fn generated_name(&self, base: &str, tag: &str, serial: u64) -> String {
        let suffix = format!("-{tag}{serial}");
        let keep = MAX_NAME_LEN.saturating_sub(suffix.chars().count());
        let stem: String = base.chars().take(keep).collect();
        let mut candidate = format!("{stem}{suffix}");
        let mut n = 1u64;
        while self.name_taken(&candidate) {
            candidate = format!("{tag}{serial}-{n}");
            n += 1;
        }
        candidate
    }

    /// Index of the element a record designates, by uuid or page83_id, or by name when it
    /// carries neither. `param` names the record in messages.
    pub fn find(&self, rec: &SeRecord, param: &str) -> PluginResult<usize> {
        let uuid = text(&rec.uuid);
        let page83 = text(&rec.page83_id);
        let name = text(&rec.name);
        let idx = if uuid.is_some() || page83.is_some() {
            self.elements
                .iter()
                .position(|e| uuid == Some(e.uuid.as_str()))
                .or_else(|| {
                    self.elements
                        .iter()
                        .position(|e| page83 == Some(e.page83_id.as_str()))
                })
                .ok_or_else(|| {
                    PluginException::invalid_value(format!(
                        "{param} with uuid {} and page83_id {} designates no element of the simulated array",
                        names::shown(uuid.unwrap_or("")),
                        names::shown(page83.unwrap_or(""))
                    ))
                })?
        } else if let Some(n) = name {
            self.elements.iter().position(|e| e.name == n).ok_or_else(|| {
                PluginException::invalid_value(format!(
                    "{param} name {} designates no element of the simulated array",
                    names::shown(n)
                ))
            })?
        } else {
            return Err(PluginException::missing_key(
                "uuid",
                format!("{param} carries neither uuid, page83_id nor name"),
            ));
        };
        if let Some(n) = name {
            let e = &self.elements[idx];
            if e.name != n {
                return Err(PluginException::invalid_value(format!(
                    "{param} name {} does not match the element its uuid or page83_id designates, {}",
                    names::shown(n),
                    e.label()
                )));
            }
        }
        Ok(idx)
    }

    /// Snapshots covering the element `serial`.
    pub fn snaps_of(&self, serial: u64) -> impl Iterator<Item = &Element> {
        self.elements
            .iter()
            .filter(move |e| e.is_snap() && e.members.iter().any(|m| m.serial == serial))
    }

    /// Unsplit clones made directly from `serial` (an element or a snapshot).
    pub fn direct_clones_of(&self, serial: u64) -> impl Iterator<Item = &Element> {
        self.elements
            .iter()
            .filter(move |e| e.origin.as_ref().is_some_and(|o| o.serial == serial))
    }

    /// Unsplit clones of the element `serial`, made directly or from one of its snapshots.
    pub fn clones_for(&self, serial: u64) -> impl Iterator<Item = &Element> {
        self.elements.iter().filter(move |e| {
            e.origin
                .as_ref()
                .is_some_and(|o| o.serial == serial || o.member == Some(serial))
        })
    }

    /// The access group called `name`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.access_groups.iter().position(|g| g.name == name)
    }

    /// A group as an access_grp record.
    pub fn access_grp(g: &Group) -> AccessGrp {
        AccessGrp {
            grp_name: Field::Value(g.name.clone()),
            grp_entries: Field::Value(g.entries.clone()),
            grp_modes: g.modes.clone().map_or(Field::Absent, Field::Value),
            extra: Default::default(),
        }
    }

    /// Every group as access_grp records.
    pub fn access_grps(&self) -> Vec<AccessGrp> {
        self.access_groups.iter().map(State::access_grp).collect()
    }

    /// Status and state of an element now.
    pub fn status(e: &Element, now: u64) -> (String, SeState) {
        if let Some(p) = e.split.as_ref().and_then(|j| j.progress(now)) {
            return (format!("SPLITTING {p}%"), SeState::BusyCopy);
        }
        if e.online || e.is_snap() {
            (STATUS_ONLINE.to_string(), SeState::Online)
        } else {
            (STATUS_OFFLINE.to_string(), SeState::Offline)
        }
    }

    /// The se_record of element `i`, built on `base` (the record the call was given, so that
    /// its unknown keys and the keys the plug-in may not change survive).
    pub fn record_at(&self, i: usize, base: Option<&SeRecord>, ss_uuid: &str, now: u64) -> SeRecord {
        let e = &self.elements[i];
        let mut r = base.cloned().unwrap_or_default();
        r.se_type = Field::Value(e.se_type);
        if empty(&r.ss_uuid) && !ss_uuid.is_empty() {
            r.ss_uuid = Field::Value(ss_uuid.to_string());
        }
        if empty(&r.name) {
            r.name = Field::Value(e.name.clone());
        }
        let (status, state) = State::status(e, now);
        r.uuid = Field::Value(e.uuid.clone());
        r.page83_id = Field::Value(e.page83_id.clone());
        r.id = Field::Value(e.serial.to_string());
        r.vendor = Field::Value(VENDOR.to_string());
        r.product_id = Field::Value(PRODUCT.to_string());
        r.array_path = Field::Value(format!("{}/{}", e.pool, e.name));
        r.size = Field::Value(e.size);
        r.status = Field::Value(status);
        r.vol_group_name = Field::Value(e.pool.clone());
        r.access_grp_names = Field::Value(e.presented_to.clone());
        r.qos = Field::Value(e.qos.clone());
        r.state = Field::Value(state);
        r.async_handle = Field::Absent;
        r.async_progress = Field::Absent;
        r
    }

    /// Free bytes needed per pool to apply `growth` (element index, new reservation).
    pub fn shortages(&self, growth: &[(usize, i64)]) -> Vec<String> {
        let mut need: BTreeMap<&str, i64> = BTreeMap::new();
        for &(i, new_reserved) in growth {
            let e = &self.elements[i];
            let delta = new_reserved.saturating_sub(e.reserved);
            if delta > 0 {
                let slot = need.entry(e.pool.as_str()).or_insert(0);
                *slot = slot.saturating_add(delta);
            }
        }
        need.into_iter()
            .filter_map(|(pool, delta)| {
                let free = self.pool_free(pool);
                (delta > free).then(|| {
                    format!(
                        "pool {} needs {delta} more bytes but has {free} free",
                        names::shown(pool)
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn cfg() -> Config {
        Config {
            state_dir: PathBuf::from("/nonexistent"),
            capacity: None,
            pools: None,
            split_ms_per_gib: 1000,
        }
    }

    #[test]
    fn identities_are_naa6_and_distinct() {
        let mut s = State::new(&cfg(), StorageType::Iscsi, 0);
        let (a, pa) = s.next_identity().expect("identity");
        let (b, pb) = s.next_identity().expect("identity");
        assert_eq!((a, b), (1, 2));
        assert_ne!(pa, pb);
        for p in [&pa, &pb] {
            assert_eq!(p.len(), 33, "{p}");
            assert!(p.starts_with("36"), "{p}");
        }
        // The company id is locally administered.
        assert_eq!(s.naa_company_id & 0x03_0000, 0x02_0000);
        let other = State::new(&cfg(), StorageType::Iscsi, 0);
        assert_ne!(
            (s.naa_company_id, s.naa_vendor_id),
            (other.naa_company_id, other.naa_vendor_id)
        );
    }

    #[test]
    fn split_progress_follows_the_clock() {
        let j = SplitJob {
            id: "x".into(),
            started_ms: 1000,
            duration_ms: 2000,
            done: false,
        };
        assert_eq!(j.progress(1000), Some(0));
        assert_eq!(j.progress(2000), Some(50));
        assert_eq!(j.progress(2999), Some(99));
        assert_eq!(j.progress(3000), None);
        // A clock that went backwards reads as no progress, not as an error.
        assert_eq!(j.progress(10), Some(0));
    }

    #[test]
    fn generated_names_fit_and_do_not_collide() {
        let s = State::new(&cfg(), StorageType::San, 0);
        let long = "x".repeat(64);
        let n = s.generated_name(&long, "snap", 123);
        assert!(n.chars().count() <= MAX_NAME_LEN);
        assert!(n.ends_with("-snap123"));
        assert!(names::check_name("name", &n).is_ok());
    }

    #[test]
    fn state_round_trips_and_refuses_other_layouts() {
        let s = State::new(&cfg(), StorageType::San, 42);
        let bytes = s.to_json().expect("encodable");
        assert_eq!(State::from_json(&bytes), Ok(s.clone()));
        let mut other = s;
        other.format = 99;
        let bytes = other.to_json().expect("encodable");
        assert!(State::from_json(&bytes).is_err());
        assert!(State::from_json(b"{").is_err());
    }
}
