//! placeholder until the UI issue lands.
