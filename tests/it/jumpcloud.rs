//! Integration tests: jumpcloud.
