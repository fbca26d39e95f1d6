//! The enrollment engine (placeholder).
