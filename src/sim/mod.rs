//! The simulated JumpCloud tenant and agent (placeholder until the JumpCloud issue lands).
