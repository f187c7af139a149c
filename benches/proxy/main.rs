//! Switchboard against a direct connection, HAProxy (one thread), nginx (one worker, HTTP
//! only) and socat, in one run on the same upstreams: TCP throughput, 64-byte echo round trip,
//! connection setup rate, HTTP keep-alive requests, what 1,000 loaded faults cost, the
//! accuracy of 50 ms latency and HTTP delay faults, and the memory an idle proxied connection
//! holds. Prints one Markdown table; every figure also as a ratio to direct, since only ratios
//! taken in the same run hold on a noisy machine.
//!
//! `cargo bench --bench proxy`. Uses iperf3, wrk, haproxy, nginx and socat when installed
//! (`apt-get install iperf3 wrk haproxy nginx-light socat`) and says so when one is missing:
//! throughput then comes from a built-in sender, and the HTTP rows are left out without wrk.

mod measure;
mod procs;
mod upstreams;

use std::net::SocketAddr;
use std::time::Duration;

use procs::{LOADED_FAULTS, Listeners, Upstreams, installed, rss_kib};

const THROUGHPUT_SECS: u64 = 5;
const ROUND_TRIPS: usize = 20_000;
const SETUP_SECS: u64 = 3;
const WRK_SECS: u64 = 10;
const LATENCY_SAMPLES: usize = 200;
const IDLE_CONNECTIONS: usize = 10_000;

struct Path<'a> {
    name: &'a str,
    listeners: &'a Listeners,
    pid: Option<u32>,
}

fn main() {
    let dir = std::env::temp_dir().join(format!("switchboard-bench-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let servers = upstreams::start();
    let iperf = upstreams::iperf3_server();
    let up = Upstreams {
        bulk: iperf.as_ref().map_or(servers.sink, |(_, addr)| *addr),
        echo: servers.echo,
        http: servers.http,
    };
    let direct = Listeners {
        bulk: Some(up.bulk),
        echo: Some(up.echo),
        http: Some(up.http),
    };
    let (sb, sb_listeners, faulted) = procs::switchboard(up, &dir);
    let haproxy = procs::haproxy(up, &dir);
    let nginx = procs::nginx(up, &dir);
    let socat = procs::socat(up);
    for (tool, present) in [
        ("iperf3", iperf.is_some()),
        ("wrk", installed("wrk")),
        ("haproxy", haproxy.is_some()),
        ("nginx", nginx.is_some()),
        ("socat", socat.is_some()),
    ] {
        if !present {
            println!(
                "note: {tool} is not installed; its part is left out (apt-get install {tool})"
            );
        }
    }

    let mut paths = vec![Path {
        name: "direct",
        listeners: &direct,
        pid: None,
    }];
    if let Some((proc, listeners)) = &haproxy {
        paths.push(Path {
            name: "HAProxy 1 thread",
            listeners,
            pid: Some(proc.pid()),
        });
    }
    if let Some((proc, listeners)) = &nginx {
        paths.push(Path {
            name: "nginx 1 worker",
            listeners,
            pid: Some(proc.pid()),
        });
    }
    if let Some((_, listeners)) = &socat {
        paths.push(Path {
            name: "socat",
            listeners,
            pid: None,
        });
    }
    paths.push(Path {
        name: "Switchboard",
        listeners: &sb_listeners,
        pid: Some(sb.pid()),
    });

    let mut table = Table::new(paths.iter().map(|p| p.name).collect());

    let tool = if iperf.is_some() {
        "iperf3"
    } else {
        "built-in sender"
    };
    let row: Vec<Option<f64>> = paths
        .iter()
        .map(|p| {
            p.listeners
                .bulk
                .map(|a| measure::throughput(a, THROUGHPUT_SECS, iperf.is_some()))
        })
        .collect();
    table.ratio_row(
        &format!("TCP throughput, Gbit/s ({tool}, {THROUGHPUT_SECS} s, 1 stream)"),
        &row,
        2,
    );

    let trips: Vec<Option<(f64, f64)>> = paths
        .iter()
        .map(|p| {
            p.listeners
                .echo
                .map(|a| measure::echo_round_trips(a, ROUND_TRIPS))
        })
        .collect();
    table.ratio_row(
        "64-byte echo round trip p50, µs",
        &trips.iter().map(|t| t.map(|t| t.0)).collect::<Vec<_>>(),
        1,
    );
    table.ratio_row(
        "64-byte echo round trip p99, µs",
        &trips.iter().map(|t| t.map(|t| t.1)).collect::<Vec<_>>(),
        1,
    );

    let rates: Vec<Option<f64>> = paths
        .iter()
        .map(|p| {
            p.listeners
                .echo
                .map(|a| measure::connection_rate(a, SETUP_SECS))
        })
        .collect();
    table.ratio_row(
        "new connections/s (connect, 64-byte round trip, close)",
        &rates,
        0,
    );

    if installed("wrk") {
        let http: Vec<Option<(f64, f64)>> = paths
            .iter()
            .map(|p| p.listeners.http.and_then(|a| measure::wrk(a, WRK_SECS)))
            .collect();
        table.ratio_row(
            &format!("HTTP keep-alive req/s, 612 B, wrk -t2 -c50 -d{WRK_SECS}s"),
            &http.iter().map(|h| h.map(|h| h.0)).collect::<Vec<_>>(),
            0,
        );
        table.ratio_row(
            "HTTP keep-alive p99, ms",
            &http.iter().map(|h| h.map(|h| h.1)).collect::<Vec<_>>(),
            2,
        );
        // The same load through a route carrying 1,000 faults of which none matches: what
        // looking at rules costs a request, against the plain route in the same run.
        if let (Some((rps, _)), Some(Some((plain, _)))) =
            (measure::wrk(faulted.many_rules, WRK_SECS), http.last())
        {
            table.only_switchboard(
                &format!("HTTP keep-alive req/s, {LOADED_FAULTS} faults loaded, none matching"),
                rps,
                0,
            );
            table.only_switchboard(
                &format!("… ÷ req/s with no fault (same run; the cost of {LOADED_FAULTS} rules)"),
                rps / plain,
                2,
            );
        }
    }

    let (p50, p99) = latency_excess(faulted.latency);
    table.only_switchboard("50 ms latency fault, excess over 50 ms p50, ms", p50, 3);
    table.only_switchboard("50 ms latency fault, excess over 50 ms p99, ms", p99, 3);
    // The same less Switchboard's own no-fault round trip at the same percentile, measured
    // the same way (as many samples, one every 50 ms, on a connection idle in between): what
    // the fault adds beyond what was asked, apart from forwarding itself.
    if let Some(echo) = sb_listeners.echo {
        let (own50, own99) =
            measure::echo_round_trips_every(echo, LATENCY_SAMPLES, Duration::from_millis(50));
        let (own50, own99) = (own50 / 1000.0, own99 / 1000.0);
        table.only_switchboard(
            "50 ms latency fault, excess over 50 ms + no-fault round trip, p50, ms",
            p50 - own50,
            3,
        );
        table.only_switchboard(
            "50 ms latency fault, excess over 50 ms + no-fault round trip, p99, ms",
            p99 - own99,
            3,
        );
    }
    // HTTP: requests one after another on a kept-alive connection, less the 50 ms asked; the
    // no-fault request's own time, measured the same way, is the floor.
    if let Some(web) = sb_listeners.http {
        let (own50, own99) = measure::http_round_trips(web, LATENCY_SAMPLES);
        table.only_switchboard(
            "HTTP request, no fault, p50 / p99 (the floor of the two rows below), ms",
            own50 / 1000.0,
            3,
        );
        table.only_switchboard("… p99, ms", own99 / 1000.0, 3);
        for (name, addr) in [
            ("HTTP Delay(ms: 50)", faulted.delay),
            ("HTTP ResponseDelay(ms: 50)", faulted.response_delay),
        ] {
            let (p50, p99) = measure::http_round_trips(addr, LATENCY_SAMPLES);
            table.only_switchboard(
                &format!("{name}, excess over 50 ms p50, ms"),
                p50 / 1000.0 - 50.0,
                3,
            );
            table.only_switchboard(
                &format!("{name}, excess over 50 ms p99, ms"),
                p99 / 1000.0 - 50.0,
                3,
            );
        }
    }

    let idle = idle_connections();
    let rss: Vec<Option<f64>> = paths
        .iter()
        .map(|p| {
            let (pid, echo) = (p.pid?, p.listeners.echo?);
            Some(idle_rss(pid, idle, |n| measure::open_idle(echo, n)))
        })
        .collect();
    table.plain_row(
        &format!("RSS per idle proxied TCP connection, KiB ({idle} connections)"),
        &rss,
        1,
    );
    let rss: Vec<Option<f64>> = paths
        .iter()
        .map(|p| {
            let (pid, http) = (p.pid?, p.listeners.http?);
            Some(idle_rss(pid, idle, |n| measure::open_idle_http(http, n)))
        })
        .collect();
    table.plain_row(
        &format!("RSS per idle HTTP keep-alive connection, KiB ({idle} connections)"),
        &rss,
        1,
    );

    println!();
    table.print();
    let _ = std::fs::remove_dir_all(&dir);
}

/// How far a 50 ms latency fault overshoots: round trips through a route that delays the
/// way back by 50 ms, less 50 ms. The direct round trip (tens of µs) is left in.
fn latency_excess(slow: SocketAddr) -> (f64, f64) {
    let (p50_us, p99_us) = measure::echo_round_trips(slow, LATENCY_SAMPLES);
    ((p50_us - 50_000.0) / 1000.0, (p99_us - 50_000.0) / 1000.0)
}

/// As many idle connections as the open-file limit allows, up to 10,000: this process holds
/// two descriptors per connection (client and the echo server's side), the proxy two.
fn idle_connections() -> usize {
    IDLE_CONNECTIONS.min(procs::open_file_limit().saturating_sub(500) / 2)
}

/// KiB of the forwarder's resident set per open idle connection, opened by `open`.
fn idle_rss(pid: u32, count: usize, open: impl Fn(usize) -> Vec<std::net::TcpStream>) -> f64 {
    // Warm up: the first connections grow pools and arenas that later ones reuse.
    drop(open(200));
    let before = rss_kib(pid);
    let held = open(count);
    let after = rss_kib(pid);
    drop(held);
    // Let the forwarder close the previous set before the next path is measured.
    std::thread::sleep(Duration::from_millis(500));
    after.saturating_sub(before) as f64 / count as f64
}

/// The result table, Markdown.
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: Vec<&str>) -> Self {
        Table {
            columns: columns.into_iter().map(String::from).collect(),
            rows: Vec::new(),
        }
    }

    /// Values with their ratio to the first (direct) column.
    fn ratio_row(&mut self, name: &str, values: &[Option<f64>], decimals: usize) {
        let direct = values.first().copied().flatten();
        let mut row = vec![name.to_string()];
        for (i, v) in values.iter().enumerate() {
            row.push(match (v, direct) {
                (Some(v), Some(d)) if i > 0 && d > 0.0 => {
                    format!("{} ({:.2}×)", fmt(*v, decimals), v / d)
                }
                (Some(v), _) => fmt(*v, decimals),
                (None, _) => "—".into(),
            });
        }
        println!("{}", row.join(" | "));
        self.rows.push(row);
    }

    fn plain_row(&mut self, name: &str, values: &[Option<f64>], decimals: usize) {
        let mut row = vec![name.to_string()];
        row.extend(
            values
                .iter()
                .map(|v| v.map_or("—".into(), |v| fmt(v, decimals))),
        );
        println!("{}", row.join(" | "));
        self.rows.push(row);
    }

    fn only_switchboard(&mut self, name: &str, value: f64, decimals: usize) {
        let mut values = vec![None; self.columns.len()];
        if let Some(last) = values.last_mut() {
            *last = Some(value);
        }
        self.plain_row(name, &values, decimals);
    }

    fn print(&self) {
        println!("| figure | {} |", self.columns.join(" | "));
        println!("| --- |{}", " --- |".repeat(self.columns.len()));
        for row in &self.rows {
            println!("| {} |", row.join(" | "));
        }
    }
}

fn fmt(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if decimals == 0 && value >= 1000.0 {
        // Thousands separators keep large counts readable.
        let digits: Vec<char> = text.chars().collect();
        let mut out = String::new();
        for (i, c) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(*c);
        }
        out
    } else {
        text
    }
}
