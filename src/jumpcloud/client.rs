//! The JumpCloud HTTPS client (placeholder until the JumpCloud issue lands).
