//! spindle embedded default (being written).
