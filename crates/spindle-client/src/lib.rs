//! spindle HTTP client (being written).
