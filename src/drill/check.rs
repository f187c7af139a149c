//! Checking a drill before it runs: `switchboard check` on a drill file (the file itself, and
//! every fault its steps touch against the rules next to it), and `switchboard drill
//! --dry-run` (the expanded timeline, with nothing injected).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::load;
use super::scenario::Scenario;
use super::timeline::{self, Change};
use crate::rules::{Fault, Problem, RulesError};

/// Whether `path` holds a drill rather than rules: it sits in a `drills` directory, or its
/// text has probes.
pub fn is_drill(path: &Path, text: &str) -> bool {
    path.parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "drills")
        || text.contains("probes:")
}

/// Where the rules a drill file runs against live: the directory above `drills/`, or the
/// file's own directory.
pub fn rules_dir_of(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    match dir.file_name() {
        Some(name) if name == "drills" => dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// Checks the drill in `text` (read from `path`) and that every fault a step switches,
/// patches, ramps or flaps is one of `faults` or is added by an earlier step.
pub fn check_against(path: &Path, text: &str, faults: &[Fault]) -> Result<Scenario, RulesError> {
    let scenario = load::parse(path, text)?;
    let mut known: HashSet<&str> = faults.iter().map(|f| f.name.as_str()).collect();
    let plan = timeline::plan(&scenario.steps);
    let mut problems = Vec::new();
    let mut reported = HashSet::new();
    for planned in &plan.changes {
        // A target's faults are in its own rules, which are not here to check against.
        if planned.target.is_some() {
            continue;
        }
        let fault = planned.change.fault();
        if let Change::Create(f) = &planned.change {
            known.insert(f.name.as_str());
            continue;
        }
        if !known.contains(fault) && reported.insert(fault.to_string()) {
            let (line, col) = load::position_of(text, &format!("{fault:?}"));
            problems.push(Problem {
                file: path.to_path_buf(),
                line,
                col,
                message: format!(
                    "the drill changes fault {fault:?}, which is not in the rules next to it ({}) and no earlier step adds",
                    rules_dir_of(path).display()
                ),
            });
        }
    }
    if problems.is_empty() {
        Ok(scenario)
    } else {
        Err(RulesError::Invalid { problems })
    }
}

/// The drill's plan as `--dry-run` prints it: the phases, every timed change, the probes.
pub fn dry_run(scenario: &Scenario) -> String {
    let plan = timeline::plan(&scenario.steps);
    let secs = |d: std::time::Duration| d.as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "drill {} (dry run: nothing is injected)",
        scenario.name
    );
    let _ = writeln!(
        out,
        "  baseline {:.2} s: the steady state is checked",
        secs(scenario.baseline)
    );
    let _ = writeln!(out, "  faults, from the end of the baseline:");
    for planned in &plan.changes {
        let _ = writeln!(
            out,
            "  {:>8.2} s  {}",
            secs(planned.at),
            planned.change.describe()
        );
    }
    let _ = writeln!(
        out,
        "  {:>8.2} s  every fault is lifted; recovery is observed for {:.2} s",
        secs(plan.length),
        secs(scenario.observe)
    );
    let _ = writeln!(out, "  probes:");
    for probe in &scenario.probes {
        let _ = writeln!(
            out,
            "    {} every {:.2} s{}",
            probe.name,
            secs(probe.interval),
            probe
                .recover_within
                .map(|d| format!(", recovers within {:.2} s", secs(d)))
                .unwrap_or_default()
                + &probe
                    .rto
                    .map(|d| format!(", RTO {:.2} s", secs(d)))
                    .unwrap_or_default()
        );
    }
    out
}
