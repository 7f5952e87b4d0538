//! spindle HTTP transport (being written).
