//! A record field that keeps apart "absent", "present but null" and "a value".
//!
//! The guides give these different meanings (for `async_progress`: absent means the call was
//! synchronous, `null` means the asynchronous operation finished, a number means it is under
//! way), so a plain `Option` would lose information on a round trip.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One known key of a record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field<T> {
    /// The key is not in the dictionary.
    #[default]
    Absent,
    /// The key is there with the value `None` / `null`.
    Null,
    /// The key holds a value.
    Value(T),
}

impl<T> Field<T> {
    /// True when the key is not in the dictionary.
    pub fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }

    /// True when the key is absent or null.
    pub fn is_unset(&self) -> bool {
        !matches!(self, Field::Value(_))
    }

    /// The value, if there is one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The value, if there is one, by value.
    pub fn into_value(self) -> Option<T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    /// A mutable reference to the value, if there is one.
    pub fn value_mut(&mut self) -> Option<&mut T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl<T> From<T> for Field<T> {
    fn from(v: T) -> Self {
        Field::Value(v)
    }
}

impl<T> From<Option<T>> for Field<T> {
    fn from(v: Option<T>) -> Self {
        match v {
            Some(v) => Field::Value(v),
            None => Field::Null,
        }
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // Absent fields are skipped by `skip_serializing_if`; reaching here means the
            // caller serialised the field on its own, where null is the only faithful form.
            Field::Absent | Field::Null => serializer.serialize_none(),
            Field::Value(v) => v.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    // Only called when the key is present: `#[serde(default)]` yields `Absent` otherwise.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.into())
    }
}
