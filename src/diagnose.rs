//! Pure diagnosis: aggregates and host settings in, findings out.

use serde::Serialize;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// One finding, with the numbers behind it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Diagnosis {
    /// Stable identifier: `port-pressure`, `close-wait`, `tw-buckets`, ...
    pub kind: &'static str,
    pub severity: Severity,
    /// One or two plain sentences with the numbers.
    pub message: String,
    /// The numbers behind the message, for machines.
    pub data: serde_json::Value,
}
