//! `switchboard drill`: runs a drill from the terminal against a running Switchboard, with a
//! live progress bar, and writes the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::control::{Control, Controls};
use super::registry::DrillStatus;
use super::report::Report;
use super::runner::{self, Phase, Progress};
use super::{DrillError, compare, load, markdown};
use crate::ctl::Client;
use crate::ctl::fleet::{self, TargetSpec};

/// Exit code when a comparison finds a regression.
pub const EXIT_REGRESSION: u8 = 3;

/// What `switchboard drill` was asked to do.
#[derive(Debug, Clone)]
pub struct DrillArgs {
    /// The drill file.
    pub file: PathBuf,
    /// Where to write report.json, report.md and report.svg.
    pub report_dir: PathBuf,
    /// Print the report's JSON instead of the summary and progress.
    pub json: bool,
    /// Let the server run the drill, holding a lease of this length.
    pub on_server: Option<Duration>,
    /// An earlier report.json to compare with, and the slack allowed on recovery times.
    pub compare: Option<(PathBuf, Duration)>,
}

fn control_error(action: &str) -> impl FnOnce(crate::ctl::CtlError) -> DrillError + '_ {
    move |e| DrillError::Control {
        action: action.to_string(),
        message: e.to_string(),
    }
}

/// Runs the drill and returns the process exit code (see [`Report::exit_code`], and
/// [`EXIT_REGRESSION`]).
pub async fn run(client: Client, args: DrillArgs) -> Result<u8, DrillError> {
    let scenario = load::load_file(&args.file)?;
    let before = args
        .compare
        .as_ref()
        .map(|(path, budget)| Report::read(path).map(|r| (r, *budget)))
        .transpose()?;
    client
        .get("/v1/status")
        .await
        .map_err(control_error("reaching the control endpoint"))?;
    if !scenario.targets.is_empty() && args.on_server.is_some() {
        return Err(DrillError::Control {
            action: "starting the drill on the server".into(),
            message:
                "a drill with targets runs from here, which holds every target; drop --on-server"
                    .into(),
        });
    }
    let targets = targets(&client, &scenario).await?;
    let (stop, stop_rx) = watch::channel(None);
    tokio::spawn(forward_signals(stop));
    let (progress_tx, progress_rx) = watch::channel(initial_progress());
    let bar = (!args.json).then(|| progress_bar(&scenario.name, progress_rx));
    let report = match args.on_server {
        None => {
            let controls = Controls::with_targets(Control::Remote(Box::new(client)), targets);
            runner::run_with(&scenario, &controls, stop_rx, Some(progress_tx)).await?
        }
        Some(lease) => on_server(&client, &scenario, lease, stop_rx, progress_tx).await?,
    };
    // The runner has dropped its end of the progress channel, so the bar clears itself and
    // ends; it must be gone before the report is printed, or a late redraw lands on it.
    if let Some(bar) = bar {
        let _ = bar.await;
    }
    let written = report.write(&args.report_dir)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", markdown::render(&report));
        println!();
        for path in &written {
            println!("wrote {}", path.display());
        }
    }
    let mut code = report.exit_code();
    if let Some((before, budget)) = before {
        let comparisons = compare::compare(&before, &report, budget);
        if args.json {
            eprint!("{}", compare::render(&comparisons));
        } else {
            print!("\n{}", compare::render(&comparisons));
        }
        if comparisons.iter().any(|c| c.regression.is_some()) && code == 0 {
            code = EXIT_REGRESSION;
        }
    }
    Ok(code)
}

/// The drill's targets, each resolved to one Switchboard that answers, with `client`'s
/// token and TLS settings.
async fn targets(
    client: &Client,
    scenario: &super::Scenario,
) -> Result<BTreeMap<String, Control>, DrillError> {
    let mut out = BTreeMap::new();
    for (name, spec) in &scenario.targets {
        let failed = |message: String| DrillError::Control {
            action: format!("reaching target {name:?} ({spec})"),
            message,
        };
        let expanded = super::probe::expand_env(spec).map_err(failed)?;
        let parsed = TargetSpec::parse(&expanded).map_err(|e| failed(e.to_string()))?;
        let found = fleet::resolve(vec![(parsed, None)])
            .await
            .map_err(|e| failed(e.to_string()))?;
        let [target] = found.as_slice() else {
            return Err(failed(format!(
                "{expanded} names {} Switchboards; a drill target is one",
                found.len()
            )));
        };
        let target = client
            .with_base(&target.url)
            .map_err(|e| failed(e.to_string()))?;
        target
            .get("/v1/status")
            .await
            .map_err(|e| failed(e.to_string()))?;
        out.insert(name.clone(), Control::Remote(Box::new(target)));
    }
    Ok(out)
}

/// Hands the drill to the server, renews its lease and follows it to the end.
async fn on_server(
    client: &Client,
    scenario: &super::Scenario,
    lease: Duration,
    mut stop: watch::Receiver<Option<String>>,
    progress: watch::Sender<Progress>,
) -> Result<Report, DrillError> {
    let body = json!({
        "drill": scenario,
        "lease": humantime::format_duration(lease).to_string(),
    });
    let started = client
        .send("POST", "/v1/drills", Some(body))
        .await
        .map_err(control_error("starting the drill on the server"))?;
    let id = started
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let lease_path = format!("/v1/drills/{id}/lease");
    let renew_every = (lease / 3).max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval(renew_every);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed(), if !stopping => {
                stopping = true;
                client
                    .send("DELETE", &format!("/v1/drills/{id}"), None)
                    .await
                    .map_err(control_error("stopping the drill"))?;
            }
        }
        let value = client
            .send("POST", &lease_path, None)
            .await
            .map_err(control_error("renewing the drill's lease"))?;
        let status: DrillStatus =
            serde_json::from_value(value).map_err(|e| DrillError::Control {
                action: "reading the drill's state".into(),
                message: e.to_string(),
            })?;
        progress.send_replace(status.progress);
        if let Some(error) = status.error {
            return Err(DrillError::Control {
                action: "running the drill on the server".into(),
                message: error,
            });
        }
        if let Some(report) = status.report {
            return Ok(report);
        }
    }
}

/// Ctrl-C and SIGTERM roll the drill back.
async fn forward_signals(stop: watch::Sender<Option<String>>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "SIGTERM will not roll the drill back");
            let _ = tokio::signal::ctrl_c().await;
            stop.send_replace(Some("interrupted (Ctrl-C)".into()));
            return;
        }
    };
    let reason = tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted (Ctrl-C)",
        _ = term.recv() => "interrupted (SIGTERM)",
    };
    stop.send_replace(Some(reason.into()));
}

fn initial_progress() -> Progress {
    Progress {
        phase: Phase::Baseline,
        elapsed_ms: 0,
        total_ms: 0,
        faults_on: Vec::new(),
        probes: Vec::new(),
    }
}

/// Draws the progress on stderr (indicatif draws nothing when stderr is not a terminal), on
/// one line: the message is cut to the terminal's width, as a wrapped line would be only
/// partly cleared.
fn progress_bar(
    name: &str,
    mut progress: watch::Receiver<Progress>,
) -> tokio::task::JoinHandle<()> {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30.cyan/blue} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(name.to_string());
    tokio::spawn(async move {
        while progress.changed().await.is_ok() {
            let p = progress.borrow().clone();
            bar.set_length(p.total_ms.max(1));
            bar.set_position(p.elapsed_ms.min(p.total_ms));
            bar.set_message(describe(&p));
            if p.phase == Phase::Done {
                break;
            }
        }
        bar.finish_and_clear();
    })
}

fn describe(p: &Progress) -> String {
    let phase = match p.phase {
        Phase::Baseline => "baseline",
        Phase::Injecting => "injecting",
        Phase::Restoring => "restoring",
        Phase::Observing => "observing recovery",
        Phase::Done => "done",
    };
    let faults = if p.faults_on.is_empty() {
        "no fault".to_string()
    } else {
        p.faults_on.join(", ")
    };
    let probes: Vec<String> = p
        .probes
        .iter()
        .map(|(name, share)| format!("{name} {:.0}%", share * 100.0))
        .collect();
    format!(
        "{:.0}/{:.0}s {phase} | {faults} | {}",
        p.elapsed_ms as f64 / 1000.0,
        p.total_ms as f64 / 1000.0,
        probes.join("  ")
    )
}

/// The default report directory for a drill file: `drill-reports/<file stem>`.
pub fn default_report_dir(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map_or_else(|| "drill".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("drill-reports").join(stem)
}
