//! Integration tests: packaging.
