//! Logging setup (placeholder).
