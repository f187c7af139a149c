//! The `switchboard` binary: argument parsing and hand-off to the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::app::{AddrRule, RouteReach};
use switchboard::control::{self, Auth, toxiproxy};
use switchboard::ctl::{self, CtlCommand};
use switchboard::drill;
use switchboard::proxy::http::watchdog::ConnTimeouts;
use switchboard::rules::{self, LoadOptions};
use switchboard::telemetry::{EventBus, LogFormat, init_tracing};
use switchboard::{Config, Switchboard};

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "A chaos-injection proxy")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// JSON output: the server's JSON for `ctl` instead of tables, the report's JSON for
    /// `drill` (no progress bar). Goes before or after the subcommand.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the rules, bind the routes and serve until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Validate rule files or directories without binding anything.
    Check {
        /// Files and directories, merged as one rule set.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Talk to a running Switchboard's control endpoint.
    Ctl {
        #[command(flatten)]
        endpoint: Endpoint,
        #[command(flatten)]
        fleet: FleetArgs,
        #[command(subcommand)]
        command: CtlCommand,
    },
    /// Run a game-day drill against a running Switchboard and write its report.
    Drill(DrillCli),
}

/// How `ctl` and `drill` reach a running Switchboard.
#[derive(Debug, clap::Args)]
struct Endpoint {
    /// The control endpoint.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://127.0.0.1:8474")]
    url: String,
    /// Bearer token (or SWITCHBOARD_TOKEN, or --token-file).
    #[arg(long)]
    token: Option<String>,
    /// File holding the bearer token.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// PEM CA file to verify an https:// control endpoint against (default: Mozilla roots).
    #[arg(long)]
    ca: Option<PathBuf>,
}

impl Endpoint {
    /// A client of the endpoint, with the token from wherever it was given.
    fn client(self) -> anyhow::Result<ctl::Client> {
        let token = token(self.token, self.token_file.as_deref())?;
        let ca = self.ca.map(|p| p.to_string_lossy().into_owned());
        Ok(ctl::Client::new(&self.url, token, ca.as_deref())?)
    }
}

/// Many Switchboards at once: the command runs on every target in parallel.
#[derive(Debug, clap::Args)]
struct FleetArgs {
    /// Run on all of these instead of --url: URLs separated by commas, or dns:NAME:PORT for
    /// every address of NAME (a headless Service, a scaled compose service).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        conflicts_with = "targets_file"
    )]
    targets: Vec<String>,
    /// A file of targets, one per line, each optionally followed by its own token.
    #[arg(long, global = true)]
    targets_file: Option<PathBuf>,
    /// How long each target has to answer (default 5s for reset, 10s otherwise); a target
    /// that does not is named and the command exits non-zero.
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
}

impl FleetArgs {
    fn given(&self) -> bool {
        !self.targets.is_empty() || self.targets_file.is_some()
    }
}

/// What `switchboard drill` takes.
#[derive(Debug, clap::Args)]
struct DrillCli {
    /// The drill file (RON), e.g. rules/shop/drills/orders-db-outage.ron.
    file: PathBuf,
    /// The Switchboard whose faults the drill drives.
    #[command(flatten)]
    endpoint: Endpoint,
    /// Where report.json, report.md and report.svg go (default: drill-reports/<file name>).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Let the server run the drill; this process renews its lease, and if it dies the
    /// server rolls the drill back when the lease runs out.
    #[arg(long)]
    on_server: bool,
    /// Print the expanded timeline and inject nothing; no Switchboard is contacted.
    #[arg(long)]
    dry_run: bool,
    /// The lease of a drill run --on-server.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// An earlier report.json: exit 3 if a probe now recovers more than --budget later.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// The slack allowed on each probe's recovery time against --compare.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    budget: Duration,
}

/// What `switchboard run` takes.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Directory of `*.ron` rule files; watched and reloaded on change.
    #[arg(long, env = "SWITCHBOARD_RULES", default_value = "rules")]
    rules: PathBuf,
    /// Address of the control endpoint (port 0 picks a free one; the log says which).
    #[arg(long, env = "SWITCHBOARD_CONTROL", default_value = "127.0.0.1:8474")]
    control: SocketAddr,
    /// Seed for every probabilistic choice; random when absent.
    #[arg(long, env = "SWITCHBOARD_SEED")]
    seed: Option<u64>,
    /// File holding the control endpoint's bearer token (required off loopback).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Serve the control endpoint without a token even off loopback. Only for a private
    /// network (a docker-compose project) whose Toxiproxy clients send no token.
    #[arg(long, conflicts_with = "token_file")]
    insecure_no_token: bool,
    /// Serve the control endpoint over TLS with this PEM certificate chain (and --control-tls-key).
    #[arg(long, requires = "control_tls_key")]
    control_tls_cert: Option<PathBuf>,
    /// The control endpoint's PEM private key.
    #[arg(long, requires = "control_tls_cert")]
    control_tls_key: Option<PathBuf>,
    /// Append every event to this file as JSON lines.
    #[arg(long)]
    events: Option<PathBuf>,
    /// A Toxiproxy config file (a JSON array of proxies, toxics allowed) to load at start.
    #[arg(long)]
    toxiproxy_config: Option<PathBuf>,
    /// How long open connections may take to finish after a stop signal; those still open
    /// then are reset. A second signal stops at once.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// A name (besides loopback ones) that requests to a loopback control endpoint may carry
    /// in Host; repeat for several. Others are refused, against DNS rebinding.
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// The control endpoint's limit for a request head to arrive.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    control_header_timeout: Duration,
    /// The control endpoint closes connections idle this long.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    control_idle_timeout: Duration,
    /// The most connections the control endpoint serves at once; more get a 503.
    #[arg(long, default_value_t = 256)]
    control_max_connections: usize,
    /// Routes created through the API may only listen inside these ranges (CIDR, optional
    /// port or port range: 127.0.0.0/8, 0.0.0.0/0:20000-29999); repeat or comma-separate.
    /// Default: anywhere.
    #[arg(long, value_delimiter = ',', value_name = "CIDR[:PORTS]")]
    allow_listen: Option<Vec<AddrRule>>,
    /// Routes created through the API may only forward to these ranges (names are resolved
    /// and every address must be inside). Default: anywhere.
    #[arg(long, value_delimiter = ',', value_name = "CIDR[:PORTS]")]
    allow_upstream: Option<Vec<AddrRule>>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A drill's terminal shows its progress bar and summary; its info logs would only
    // interleave with them.
    let default_filter = matches!(cli.command, Command::Drill(_)).then(|| "warn".to_string());
    let filter = std::env::var("RUST_LOG").ok().or(default_filter);
    init_tracing(cli.log_format, filter.as_deref());
    let result = match cli.command {
        Command::Check { paths } => return check(&paths),
        Command::Run(args) => token(None, args.token_file.as_deref()).and_then(|t| run(args, t)),
        Command::Ctl {
            endpoint,
            fleet,
            command,
        } => run_ctl(endpoint, fleet, cli.json, command),
        Command::Drill(args) => {
            return match run_drill(args, cli.json) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("switchboard: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The token from the command line, a file, or `SWITCHBOARD_TOKEN`, in that order.
fn token(given: Option<String>, file: Option<&Path>) -> anyhow::Result<Option<String>> {
    if given.is_some() {
        return Ok(given);
    }
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the token file {}", file.display()))?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(std::env::var("SWITCHBOARD_TOKEN").ok())
}

fn check(paths: &[PathBuf]) -> ExitCode {
    let (rule_paths, drills) = split_checked_paths(paths);
    let mut failed = false;
    if !rule_paths.is_empty() {
        match rules::load_paths(&rule_paths, LoadOptions::default()) {
            Ok(files) => println!(
                "ok: {} route(s), {} fault(s)",
                files.routes.len(),
                files.faults.len()
            ),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    for path in &drills {
        match check_drill(path) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The rule files and directories among `paths`, and the drill files: those given, and those
/// in the `drills/` directory of every rules directory given.
fn split_checked_paths(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut rule_paths = Vec::new();
    let mut drills = Vec::new();
    for path in paths {
        if path.is_dir() {
            rule_paths.push(path.clone());
            if let Ok(entries) = std::fs::read_dir(path.join("drills")) {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "ron") && p.is_file())
                    .collect();
                found.sort();
                drills.extend(found);
            }
            continue;
        }
        match std::fs::read_to_string(path) {
            Ok(text) if drill::check::is_drill(path, &text) => drills.push(path.clone()),
            // Read errors are reported by the rules loader, with the path.
            _ => rule_paths.push(path.clone()),
        }
    }
    (rule_paths, drills)
}

/// Checks one drill file against the rules next to it; the line to print when it is valid.
fn check_drill(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rules_dir = drill::check::rules_dir_of(path);
    let faults = rules::load_dir(&rules_dir, LoadOptions::default())
        .map(|files| files.faults)
        .map_err(|e| {
            format!(
                "{}: the rules next to it ({}) do not load: {e}",
                path.display(),
                rules_dir.display()
            )
        })?;
    let scenario = drill::check::check_against(path, &text, &faults).map_err(|e| e.to_string())?;
    let plan = drill::timeline::plan(&scenario.steps);
    Ok(format!(
        "ok: drill {}: {} probe(s), {} change(s) over {:.2} s",
        scenario.name,
        scenario.probes.len(),
        plan.changes.len(),
        plan.length.as_secs_f64()
    ))
}

fn run(args: RunArgs, token: Option<String>) -> anyhow::Result<()> {
    let RunArgs {
        rules: rules_dir,
        control,
        seed,
        token_file: _,
        insecure_no_token,
        control_tls_cert,
        control_tls_key,
        events,
        toxiproxy_config,
        grace,
        allowed_hosts,
        control_header_timeout,
        control_idle_timeout,
        control_max_connections,
        allow_listen,
        allow_upstream,
    } = args;
    anyhow::ensure!(
        !control_header_timeout.is_zero() && !control_idle_timeout.is_zero(),
        "--control-header-timeout and --control-idle-timeout must be above 0"
    );
    let auth = if insecure_no_token {
        if !control.ip().is_loopback() {
            tracing::warn!(%control, "the control endpoint takes calls from anyone who can reach it (--insecure-no-token)");
        }
        Auth::open()
    } else {
        Auth::for_bind(control, token)?
    };
    let control_tls = match (&control_tls_cert, &control_tls_key) {
        (Some(cert), Some(key)) => Some(
            switchboard::tls::server_config(&cert.to_string_lossy(), &key.to_string_lossy())
                .context("loading the control endpoint's TLS files")?,
        ),
        _ => None,
    };
    let toxiproxy_config = toxiproxy_config
        .map(|path| {
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading the Toxiproxy config {}", path.display()))
                .map(|text| (path, text))
        })
        .transpose()?;
    let files = rules::load_dir(&rules_dir, LoadOptions::default())
        .with_context(|| format!("loading rules from {}", rules_dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let events = match &events {
            Some(path) => EventBus::with_log(path)
                .await
                .with_context(|| format!("opening the event log {}", path.display()))?,
            None => EventBus::new(),
        };
        let listener = tokio::net::TcpListener::bind(control)
            .await
            .with_context(|| format!("binding the control endpoint to {control}"))?;
        let config = Config {
            seed,
            rules_dir: Some(rules_dir),
            events,
            load: LoadOptions::default(),
            reach: RouteReach {
                listen: allow_listen,
                upstream: allow_upstream,
            },
        };
        let app = Switchboard::start(files, config).await?;
        if let Some((path, text)) = &toxiproxy_config {
            let count = toxiproxy::load_config(&app, text)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.error))?;
            tracing::info!(proxies = count, config = %path.display(), "Toxiproxy config loaded");
        }
        let options = control::ControlOptions {
            timeouts: ConnTimeouts {
                header: control_header_timeout,
                idle: control_idle_timeout,
            },
            max_connections: control_max_connections,
            allowed_hosts,
            tls: control_tls,
        };
        let control = control::serve_with(listener, app.clone(), auth, options)
            .context("starting the control endpoint")?;
        // Handlers first: a signal sent as soon as "running" is logged must be caught.
        let mut stop = StopSignals::install()?;
        tracing::info!(seed = app.seed(), "switchboard running");
        stop.next().await;
        tracing::info!(
            ?grace,
            "stopping; draining open connections (a second signal stops at once)"
        );
        tokio::spawn(async move {
            stop.next().await;
            eprintln!("switchboard: second stop signal; exiting now");
            std::process::exit(130);
        });
        let reset = app.shutdown(grace).await;
        if reset > 0 {
            tracing::warn!(
                connections = reset,
                "connections still open after the grace period were reset"
            );
        }
        // The stop reached the control connections too: a request in flight gets its
        // answer, an event stream is cut after a second.
        control.shutdown(CONTROL_GRACE).await;
        Ok(())
    })
}

/// How long control connections get to finish once everything else has stopped.
const CONTROL_GRACE: Duration = Duration::from_secs(1);

fn run_ctl(
    endpoint: Endpoint,
    fleet: FleetArgs,
    json: bool,
    command: CtlCommand,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        if !fleet.given() {
            let client = endpoint.client()?;
            match fleet.deadline {
                None => ctl::run(&client, command, json).await?,
                Some(deadline) => tokio::time::timeout(deadline, ctl::run(&client, command, json))
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "{} did not answer within {}",
                            client.base(),
                            humantime::format_duration(deadline)
                        )
                    })??,
            }
            return Ok(());
        }
        let specs = match &fleet.targets_file {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the targets file {}", file.display()))?;
                ctl::fleet::read_targets_file(&text)
                    .with_context(|| format!("in {}", file.display()))?
            }
            None => fleet
                .targets
                .iter()
                .map(|t| Ok((ctl::fleet::TargetSpec::parse(t)?, None)))
                .collect::<Result<Vec<_>, ctl::CtlError>>()?,
        };
        let targets = ctl::fleet::resolve(specs).await?;
        let token = token(endpoint.token, endpoint.token_file.as_deref())?;
        let ca = endpoint.ca.map(|p| p.to_string_lossy().into_owned());
        let clients = targets
            .into_iter()
            .map(|t| ctl::Client::new(&t.url, t.token.or_else(|| token.clone()), ca.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let deadline = fleet.deadline.unwrap_or(match command {
            CtlCommand::Reset => Duration::from_secs(5),
            _ => ctl::CALL_TIMEOUT,
        });
        ctl::fleet::run(clients, command, json, deadline).await?;
        Ok(())
    })
}

fn run_drill(args: DrillCli, json: bool) -> anyhow::Result<u8> {
    if args.dry_run {
        let scenario = drill::load::load_file(&args.file)?;
        print!("{}", drill::check::dry_run(&scenario));
        return Ok(0);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let client = args.endpoint.client()?;
        let report_dir = args
            .report
            .unwrap_or_else(|| drill::cli::default_report_dir(&args.file));
        let drill_args = drill::cli::DrillArgs {
            file: args.file,
            report_dir,
            json,
            on_server: args.on_server.then_some(args.lease),
            compare: args.compare.map(|path| (path, args.budget)),
        };
        Ok(drill::cli::run(client, drill_args).await?)
    })
}

/// SIGINT and SIGTERM, caught from the moment of `install`.
struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// The next SIGINT or SIGTERM.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
