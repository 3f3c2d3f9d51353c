//! The one error a settings check returns: which field is out of range, and why. The agent's config prefixes
//! the section (`uplink.batch`), so an operator reads the exact key to fix. And [`error_chain`], which spells
//! out an error with its causes for one line of a log or a message.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The key inside its section, e.g. `batch`.
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub why: String,
}

impl SettingError {
    pub fn new(field: &'static str, why: impl Into<String>) -> Self {
        Self { field, why: why.into() }
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.why)
    }
}

impl std::error::Error for SettingError {}

/// An error and its causes, joined with ": " ("error sending request" alone does not tell an operator that the
/// certificate's issuer is unknown).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
