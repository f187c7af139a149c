//! Why a drill could not run or could not change a fault.

/// A drill's failure to do something (not a failed hypothesis: that is a verdict).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The drill file did not load.
    #[error(transparent)]
    Scenario(#[from] crate::rules::RulesError),
    /// A probe could not be set up.
    #[error("probe {probe:?}: {message}")]
    Probe {
        /// The probe.
        probe: String,
        /// Why.
        message: String,
    },
    /// The control endpoint refused or could not be reached.
    #[error("{action}: {message}")]
    Control {
        /// What was being done.
        action: String,
        /// Why it failed.
        message: String,
    },
    /// A report could not be written or read.
    #[error("{path}: {message}")]
    Report {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}
