//! The plug-in cache (`IPlugin.cache`): string values per storage server, with expiry.
//!
//! It lives as long as the hosting process and is shared by every call to the same storage
//! server, whichever plug-in process makes it.

use spindle_api::DEFAULT_CACHE_EXPIRY_SECS;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Entry {
    value: String,
    expires: Instant,
}

/// Hit and miss counts, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// `get` found a live value.
    pub hits: u64,
    /// `get` found nothing (or an expired value).
    pub misses: u64,
}

/// The cache of one hosting process.
#[derive(Debug, Default)]
pub struct Cache {
    servers: Mutex<HashMap<String, HashMap<String, Entry>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, HashMap<String, Entry>>) -> R) -> R {
        // A panic while holding the lock leaves plain data behind; keep using it.
        let mut guard = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// The live value of `key`, or `None`.
    pub fn get(&self, ss_uuid: &str, key: &str) -> Option<String> {
        let now = Instant::now();
        let found = self.with(|s| {
            let entries = s.get_mut(ss_uuid)?;
            match entries.get(key) {
                Some(e) if e.expires > now => Some(e.value.clone()),
                Some(_) => {
                    entries.remove(key);
                    None
                }
                None => None,
            }
        });
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores `value` for `expire_secs` (default 30 s); `None` clears the key.
    pub fn set(&self, ss_uuid: &str, key: &str, value: Option<&str>, expire_secs: Option<u64>) {
        let secs = expire_secs.unwrap_or(DEFAULT_CACHE_EXPIRY_SECS);
        self.with(|s| match value {
            Some(v) => {
                s.entry(ss_uuid.to_string()).or_default().insert(
                    key.to_string(),
                    Entry {
                        value: v.to_string(),
                        expires: Instant::now() + Duration::from_secs(secs),
                    },
                );
            }
            None => {
                if let Some(entries) = s.get_mut(ss_uuid) {
                    entries.remove(key);
                }
            }
        });
    }

    /// Adds `extend_secs` to a live entry's expiry; does nothing for an absent key.
    pub fn extend(&self, ss_uuid: &str, key: &str, extend_secs: u64) {
        self.with(|s| {
            if let Some(e) = s.get_mut(ss_uuid).and_then(|m| m.get_mut(key)) {
                e.expires += Duration::from_secs(extend_secs);
            }
        });
    }

    /// Drops every key of `ss_uuid`.
    pub fn clear(&self, ss_uuid: &str) {
        self.with(|s| {
            s.remove(ss_uuid);
        });
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_clear_and_none_clears() {
        let c = Cache::new();
        c.set("ss1", "k", Some("v"), None);
        c.set("ss2", "k", Some("w"), None);
        assert_eq!(c.get("ss1", "k").as_deref(), Some("v"));
        c.set("ss1", "k", None, None);
        assert_eq!(c.get("ss1", "k"), None);
        assert_eq!(c.get("ss2", "k").as_deref(), Some("w"));
        c.clear("ss2");
        assert_eq!(c.get("ss2", "k"), None);
        assert_eq!(c.stats(), CacheStats { hits: 2, misses: 2 });
    }

    #[test]
    fn expiry_and_extend() {
        let c = Cache::new();
        c.set("ss", "short", Some("v"), Some(0));
        assert_eq!(c.get("ss", "short"), None, "a zero expiry is expired at once");
        c.set("ss", "ext", Some("v"), Some(0));
        c.extend("ss", "ext", 60);
        assert_eq!(c.get("ss", "ext").as_deref(), Some("v"));
    }
}
