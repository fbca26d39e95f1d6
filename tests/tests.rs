//! prestage's integration tests: one test binary, one module per part.

mod it;
