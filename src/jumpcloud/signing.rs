//! System-context request signing (placeholder until the JumpCloud issue lands).
