//! Reading a drill file, with every problem placed at `file:line:col`.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use super::scenario::{Action, Check, Probe, Scenario, Step};
use crate::rules::{Problem, RulesError};

/// A ramp or flap expands into at most this many changes: the plan is built whole before the
/// drill starts, so a drill posted to the API must not be able to ask for billions.
const MAX_CHANGES: f64 = 10_000.0;

/// Reads and checks a drill file.
pub fn load_file(path: &Path) -> Result<Scenario, RulesError> {
    let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
        path: path.to_path_buf(),
        reason: source,
    })?;
    parse(path, &text)
}

/// Parses and checks a drill text; `path` only names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<Scenario, RulesError> {
    let scenario: Scenario =
        crate::rules::ron_options()
            .from_str(text)
            .map_err(|e| RulesError::Invalid {
                problems: vec![Problem {
                    file: path.to_path_buf(),
                    line: e.span.start.line,
                    col: e.span.start.col,
                    message: e.code.to_string(),
                }],
            })?;
    let problems: Vec<Problem> = check(&scenario)
        .into_iter()
        .map(|(anchor, message)| {
            let (line, col) = anchor.map_or((1, 1), |a| position_of(text, &a));
            Problem {
                file: path.to_path_buf(),
                line,
                col,
                message,
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(scenario)
    } else {
        Err(RulesError::Invalid { problems })
    }
}

/// Problems with a parsed scenario, each with the quoted name it is about (to place it).
pub fn check(scenario: &Scenario) -> Vec<(Option<String>, String)> {
    let mut problems = Vec::new();
    let mut at = |name: &str, message: String| problems.push((Some(format!("{name:?}")), message));
    let mut names = HashSet::new();
    if scenario.probes.is_empty() {
        at(
            &scenario.name,
            "a drill needs at least one probe: its steady state is what it measures".into(),
        );
    }
    for probe in &scenario.probes {
        let name = probe.name.as_str();
        if !names.insert(name) {
            at(name, format!("probe {name:?} is defined twice"));
        }
        for message in probe_problems(probe) {
            at(name, message);
        }
    }
    for abort in &scenario.abort {
        if !names.contains(abort.probe.as_str()) {
            at(
                &abort.probe,
                format!("abort names probe {:?}, which is not defined", abort.probe),
            );
        }
        if !(0.0..=1.0).contains(&abort.below) {
            at(&abort.probe, "abort.below must be within 0.0..=1.0".into());
        }
    }
    if scenario.steps.is_empty() {
        at(
            &scenario.name,
            "a drill needs at least one step: nothing would be injected".into(),
        );
    }
    for (field, value) in durations(scenario) {
        if value > MAX_DURATION {
            at(
                &scenario.name,
                format!(
                    "{field} is {}; a drill's durations are at most {}",
                    humantime::format_duration(value),
                    humantime::format_duration(MAX_DURATION)
                ),
            );
        }
    }
    let mut added = HashSet::new();
    for step in &scenario.steps {
        if let Some((fault, message)) = step_problem(step, &mut added) {
            at(&fault, message);
        }
        if let Some(target) = &step.target
            && !scenario.targets.contains_key(target)
        {
            at(target, unknown_target(scenario, "a step", target));
        }
    }
    for probe in &scenario.probes {
        if let Check::Route {
            target: Some(target),
            ..
        } = &probe.check
            && !scenario.targets.contains_key(target)
        {
            at(
                target,
                unknown_target(scenario, &format!("probe {:?}", probe.name), target),
            );
        }
    }
    for (name, spec) in &scenario.targets {
        if name.is_empty() || name.contains(['@', '/']) {
            at(
                name,
                format!("target name {name:?} must be non-empty, without '@' or '/'"),
            );
        }
        if !(spec.starts_with("http://")
            || spec.starts_with("https://")
            || spec.starts_with("dns:")
            || spec.starts_with("${"))
        {
            at(
                spec,
                format!(
                    "target {name:?} is {spec:?}; give a control URL (http://HOST:PORT, \"${{VAR}}\") or dns:NAME:PORT"
                ),
            );
        }
    }
    // From the steps as written: expanding them could be billions of changes, refused above.
    // A fault on a target is known by its name and as `name@target`.
    let touched: HashSet<String> = scenario
        .steps
        .iter()
        .filter_map(|s| {
            s.action
                .fault()
                .map(|f| (f, super::control::label(s.target.as_deref(), f)))
        })
        .flat_map(|(plain, labelled)| [plain.to_string(), labelled])
        .collect();
    for probe in &scenario.probes {
        for fault in &probe.affected_by {
            if !touched.contains(fault) {
                at(
                    fault,
                    format!(
                        "probe {:?} is affected_by fault {fault:?}, which no step changes",
                        probe.name
                    ),
                );
            }
        }
    }
    problems
}

fn unknown_target(scenario: &Scenario, what: &str, target: &str) -> String {
    let known: Vec<&str> = scenario.targets.keys().map(String::as_str).collect();
    if known.is_empty() {
        format!("{what} names target {target:?}, but the drill has no `targets`")
    } else {
        format!(
            "{what} names target {target:?}; the drill's targets are {}",
            known.join(", ")
        )
    }
}

/// What is wrong with one probe, each as a message naming it.
fn probe_problems(probe: &Probe) -> Vec<String> {
    let name = probe.name.as_str();
    let mut out = Vec::new();
    if probe.interval.is_zero() {
        out.push(format!("probe {name:?}: interval must be above 0"));
    }
    if !(0.0..=1.0).contains(&probe.steady.min_success) {
        out.push(format!(
            "probe {name:?}: steady.min_success must be within 0.0..=1.0"
        ));
    }
    if probe.steady.window < probe.interval {
        out.push(format!(
                "probe {name:?}: steady.window ({:?}) is shorter than the interval ({:?}), so it would hold no sample",
                probe.steady.window, probe.interval
            ),
        );
    }
    if let Some(degraded) = &probe.degraded {
        if !matches!(probe.check, Check::Http { .. }) {
            out.push(format!(
                    "probe {name:?}: a degraded mode is described by HTTP statuses; only Http probes take one"
                ),
            );
        }
        if degraded.status.is_empty() {
            out.push(format!(
                "probe {name:?}: degraded.status needs at least one status"
            ));
        }
        if !(0.0..=1.0).contains(&degraded.min_share) {
            out.push(format!(
                "probe {name:?}: degraded.min_share must be within 0.0..=1.0"
            ));
        }
    }
    if let Check::Route { max_error_rate, .. } = &probe.check
        && !(0.0..=1.0).contains(max_error_rate)
    {
        out.push(format!(
            "probe {name:?}: max_error_rate must be within 0.0..=1.0"
        ));
    }
    if let Check::Http { method, .. } = &probe.check
        && hyper::Method::from_bytes(method.as_bytes()).is_err()
    {
        out.push(format!("probe {name:?}: {method:?} is not an HTTP method"));
    }
    out.extend(durability_problems(probe));
    out
}

/// What is wrong with a probe's `rpo` or its `Durability` check.
fn durability_problems(probe: &Probe) -> Vec<String> {
    use super::scenario::{DurableRead, DurableWrite, IdFrom};
    let name = probe.name.as_str();
    let mut out = Vec::new();
    let Check::Durability { write, read, .. } = &probe.check else {
        if probe.rpo.is_some() {
            out.push(format!(
                "probe {name:?}: rpo is measured by a Durability probe, which writes and reads back; this one does not write"
            ));
        }
        return out;
    };
    let DurableWrite::Http { method, id, .. } = write;
    if hyper::Method::from_bytes(method.as_bytes()).is_err() {
        out.push(format!("probe {name:?}: {method:?} is not an HTTP method"));
    }
    match id {
        IdFrom::Json(pointer) if !pointer.is_empty() && !pointer.starts_with('/') => {
            out.push(format!(
                "probe {name:?}: id: Json({pointer:?}) is not a JSON pointer (they start with /, as in \"/id\")"
            ));
        }
        IdFrom::Regex(pattern) => {
            if let Err(e) = regex::Regex::new(pattern) {
                out.push(format!("probe {name:?}: id: Regex: {e}"));
            }
        }
        IdFrom::Json(_) => {}
    }
    let DurableRead::Http { url, .. } = read;
    if !url.contains("${id}") {
        out.push(format!(
            "probe {name:?}: read url {url:?} has no ${{id}}, so every write would be read back from the same place"
        ));
    }
    if probe.degraded.is_some() {
        out.push(format!(
            "probe {name:?}: a Durability probe takes no degraded mode; its writes either are acknowledged or not"
        ));
    }
    out
}

/// What is wrong with one step, naming its fault; `added` collects the faults added so far.
fn step_problem<'a>(
    step: &'a Step,
    added: &mut HashSet<(Option<&'a str>, &'a str)>,
) -> Option<(String, String)> {
    match &step.action {
        Action::Add(fault) => {
            if !added.insert((step.target.as_deref(), fault.name.as_str())) {
                return Some((
                    fault.name.to_string(),
                    format!("fault {:?} is added twice", fault.name),
                ));
            }
        }
        Action::Ramp {
            fault, over, every, ..
        } => {
            if every.is_zero() || over.is_zero() {
                return Some((
                    fault.to_string(),
                    format!("ramp of {fault:?}: over and every must be above 0"),
                ));
            } else if over.as_secs_f64() / every.as_secs_f64() > MAX_CHANGES {
                return Some((
                    fault.to_string(),
                    format!(
                        "ramp of {fault:?}: more than {MAX_CHANGES} changes; make `every` longer"
                    ),
                ));
            }
        }
        Action::Flap {
            fault,
            on,
            off,
            lasting,
        } => {
            if on.is_zero() || off.is_zero() {
                return Some((
                    fault.to_string(),
                    format!("flap of {fault:?}: on and off must be above 0"),
                ));
            } else if lasting.as_secs_f64() / (*on + *off).as_secs_f64() > MAX_CHANGES {
                return Some((
                    fault.to_string(),
                    format!(
                        "flap of {fault:?}: more than {MAX_CHANGES} cycles; make on or off longer"
                    ),
                ));
            }
        }
        Action::Enable(_) | Action::Disable(_) | Action::Patch { .. } | Action::Hold(_) => {}
    }
    None
}

/// The longest duration a drill may give anywhere. Longer ones are refused before any
/// arithmetic is done on them (a deadline of `now + 300000000000 years` overflows).
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Every duration in `scenario`, named as its field is written.
fn durations(scenario: &Scenario) -> Vec<(String, Duration)> {
    let mut all = vec![
        ("baseline".to_string(), scenario.baseline),
        ("observe".to_string(), scenario.observe),
    ];
    for p in &scenario.probes {
        let n = &p.name;
        all.push((format!("probe {n:?} interval"), p.interval));
        all.push((format!("probe {n:?} timeout"), p.timeout));
        all.push((format!("probe {n:?} steady.window"), p.steady.window));
        if let Some(d) = p.steady.max_p99 {
            all.push((format!("probe {n:?} steady.max_p99"), d));
        }
        if let Some(d) = p.recover_within {
            all.push((format!("probe {n:?} recover_within"), d));
        }
        if let Some(d) = p.rto {
            all.push((format!("probe {n:?} rto"), d));
        }
        if let Some(d) = p.rpo {
            all.push((format!("probe {n:?} rpo"), d));
        }
    }
    for a in &scenario.abort {
        all.push((format!("abort of {:?} for", a.probe), a.sustained));
    }
    for (i, step) in scenario.steps.iter().enumerate() {
        all.push((format!("steps[{i}].at"), step.at));
        match &step.action {
            Action::Ramp { over, every, .. } => {
                all.push((format!("steps[{i}] ramp over"), *over));
                all.push((format!("steps[{i}] ramp every"), *every));
            }
            Action::Flap {
                on, off, lasting, ..
            } => {
                all.push((format!("steps[{i}] flap on"), *on));
                all.push((format!("steps[{i}] flap off"), *off));
                all.push((format!("steps[{i}] flap for"), *lasting));
            }
            Action::Hold(d) => all.push((format!("steps[{i}] hold"), *d)),
            _ => {}
        }
    }
    all
}

/// The 1-based line and column of the first occurrence of `needle`, or 1:1.
pub(super) fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let Some(offset) = text.find(needle) else {
        return (1, 1);
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
