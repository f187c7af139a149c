//! The `switchboard` binary: argument parsing and hand-off to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::rules::{self, LoadOptions};
use switchboard::telemetry::{LogFormat, init_tracing};
use switchboard::{Config, Switchboard};

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "A chaos-injection proxy")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the rules, bind the routes and serve until SIGINT or SIGTERM.
    Run {
        /// Directory of `*.ron` rule files.
        #[arg(long, env = "SWITCHBOARD_RULES", default_value = "rules")]
        rules: PathBuf,
        /// Address of the control endpoint.
        #[arg(long, env = "SWITCHBOARD_CONTROL", default_value = "127.0.0.1:8474")]
        control: SocketAddr,
        /// Seed for every probabilistic choice; random when absent.
        #[arg(long, env = "SWITCHBOARD_SEED")]
        seed: Option<u64>,
        /// How long open connections may take to finish after a stop signal.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        grace: Duration,
    },
    /// Validate rule files or directories without binding anything.
    Check {
        /// Files and directories, merged as one rule set.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 5s or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?}: unit must be ms, s or m")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = std::env::var("RUST_LOG").ok();
    init_tracing(cli.log_format, filter.as_deref());
    match cli.command {
        Command::Check { paths } => check(&paths),
        Command::Run {
            rules,
            control,
            seed,
            grace,
        } => match run(rules, control, seed, grace) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("switchboard: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check(paths: &[PathBuf]) -> ExitCode {
    match rules::load_paths(paths, LoadOptions::default()) {
        Ok(set) => {
            println!(
                "ok: {} route(s), {} fault(s)",
                set.routes().len(),
                set.faults().len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    rules_dir: PathBuf,
    control: SocketAddr,
    seed: Option<u64>,
    grace: Duration,
) -> anyhow::Result<()> {
    let rules = rules::load_dir(&rules_dir, LoadOptions::default())
        .with_context(|| format!("loading rules from {}", rules_dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let app = Switchboard::start(rules, Config { seed }).await?;
        tracing::info!(seed = app.seed(), %control, "switchboard running");
        wait_for_signal().await?;
        tracing::info!(?grace, "stopping; draining open connections");
        if !app.shutdown(grace).await {
            tracing::warn!("some connections were still open after the grace period");
        }
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
