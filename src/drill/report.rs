//! The report of a drill: one serialisable value, written as `report.json` (schema
//! `switchboard.drill.report/1`, documented in the README), `report.md` and `report.svg`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DrillError;
use super::measure::{Measures, Phases, Verdict};
use super::probe::Sample;
use super::scenario::Probe;

/// The schema name written into every report; bumped when a field changes meaning.
pub const SCHEMA: &str = "switchboard.drill.report/1";

/// Everything a drill saw and concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// The drill's name.
    pub drill: String,
    /// The drill's description.
    pub description: String,
    /// The version of the Switchboard that ran the drill.
    pub switchboard_version: String,
    /// The control endpoint the changes went to, or `in-process`.
    pub control: String,
    /// The seed of the Switchboard the faults ran in, when known.
    pub seed: Option<u64>,
    /// When the drill started (RFC 3339).
    pub started_at: String,
    /// How the drill ended.
    pub outcome: Outcome,
    /// Why it ended that way, for anything but `completed`.
    pub reason: Option<String>,
    /// The drill's verdict: `failed` if any probe failed; `None` when nothing was injected.
    pub verdict: Option<Verdict>,
    /// How long the baseline lasted, in milliseconds.
    pub baseline_ms: f64,
    /// When injection started, the faults were lifted and sampling stopped.
    pub phases: Phases,
    /// Every change made and every turn the drill took, in order.
    pub events: Vec<TimelineEvent>,
    /// When each fault was switched on, until it was switched off.
    pub fault_windows: Vec<FaultWindow>,
    /// One entry per probe.
    pub probes: Vec<ProbeReport>,
    /// The other Switchboards the drill acted on, and which of them it lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetReport>,
}

/// A drill target, as the report gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// Its name in the drill file.
    pub name: String,
    /// Its control endpoint.
    pub control: String,
    /// Why the drill lost it, if it did: it stopped answering during the drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
}

/// How a drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The timeline ran to its end and the observation finished.
    Completed,
    /// The baseline did not hold, so nothing was injected.
    Refused,
    /// An abort condition, an interruption, a lost lease or a failed step rolled it back.
    RolledBack,
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// Milliseconds from the start of the drill.
    pub t_ms: f64,
    /// What happened.
    pub what: String,
}

/// A span during which a fault was switched on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The fault: its name, or `name@target` on a drill target.
    pub fault: String,
    /// The drill target it is on; the drill's own Switchboard when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Switched on, in milliseconds from the start of the drill.
    pub from_ms: f64,
    /// Switched off.
    pub to_ms: f64,
}

/// One probe's part of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The probe's name.
    pub name: String,
    /// Its definition, as the drill gave it.
    pub probe: Probe,
    /// Success over the baseline.
    pub baseline_success: f64,
    /// What was measured; absent when nothing was injected.
    pub measures: Option<Measures>,
    /// The verdict on its hypothesis; absent when nothing was injected.
    pub verdict: Option<Verdict>,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// What reading back a `Durability` probe's acknowledged writes found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<super::durability::Durability>,
    /// Every sample, in time order.
    pub samples: Vec<Sample>,
}

impl Report {
    /// Reads a `report.json`.
    pub fn read(path: &Path) -> Result<Report, DrillError> {
        let bad = |message: String| DrillError::Report {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let report: Report = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if report.schema != SCHEMA {
            return Err(bad(format!(
                "schema {:?} is not {SCHEMA:?}, which this version reads",
                report.schema
            )));
        }
        Ok(report)
    }

    /// Writes `report.json`, `report.md` and `report.svg` into `dir`, creating it; returns
    /// the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, DrillError> {
        let fail = |path: &Path, message: String| DrillError::Report {
            path: path.display().to_string(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, e.to_string()))?;
        let json = dir.join("report.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| fail(&json, e.to_string()))?;
        std::fs::write(&json, text + "\n").map_err(|e| fail(&json, e.to_string()))?;
        let md = dir.join("report.md");
        std::fs::write(&md, super::markdown::render(self)).map_err(|e| fail(&md, e.to_string()))?;
        let svg = dir.join("report.svg");
        std::fs::write(&svg, super::chart::render(self)).map_err(|e| fail(&svg, e.to_string()))?;
        Ok(vec![json, md, svg])
    }

    /// The process exit code a CLI run ends with: 0 when every hypothesis held (passed or
    /// degraded as planned), 1 when one failed, 2 when the drill was refused or rolled back.
    pub fn exit_code(&self) -> u8 {
        match (self.outcome, self.verdict) {
            (Outcome::Completed, Some(Verdict::Failed)) => 1,
            (Outcome::Completed, _) => 0,
            _ => 2,
        }
    }
}
