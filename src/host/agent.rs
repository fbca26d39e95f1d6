//! The JumpCloud agent's files under `--root` (placeholder).

/// Parsed `/opt/jc/jcagent.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConf {
    pub system_key: String,
    pub org_id: Option<String>,
}

/// Reads the agent's files.
#[derive(Debug, Clone)]
pub struct AgentFiles;
