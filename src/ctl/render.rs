//! Human-readable renderings of API answers.

use serde_json::Value;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A fault kind in the rules-file notation, so that it can be pasted into a rules file:
/// `Latency(ms: 100, jitter_ms: 0)`, `Abort(status: 503, body: "", headers: {})`.
pub fn kind(v: &Value) -> String {
    let Ok(kind) = serde_json::from_value::<crate::faults::FaultKind>(v.clone()) else {
        return text(v);
    };
    let options = ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES);
    match options.to_string(&kind) {
        Ok(compact) => spaced(&compact),
        Err(_) => text(v),
    }
}

/// Compact RON with a space after every `:` and `,` outside strings, as people write it.
fn spaced(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    for c in compact.chars() {
        out.push(c);
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ':' || c == ',' {
            out.push(' ');
        }
    }
    out
}

/// Left-aligned columns, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

const ROUTE_HEADERS: &[&str] = &[
    "ROUTE",
    "LISTEN",
    "UPSTREAM",
    "OPEN",
    "TOTAL",
    "BYTES_UP",
    "BYTES_DOWN",
    "FAILED",
    "SOURCE",
];

fn route_row(r: &Value) -> Vec<String> {
    let s = &r["stats"];
    vec![
        text(&r["name"]),
        text(&r["bound"]),
        text(&r["upstream"]),
        text(&s["open"]),
        text(&s["total"]),
        text(&s["bytes_upstream"]),
        text(&s["bytes_downstream"]),
        text(&s["failed"]),
        text(&r["source"]),
    ]
}

fn rows(list: &Value, row: fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    list.as_array().into_iter().flatten().map(row).collect()
}

/// `ctl list`.
pub fn list(routes: &Value, faults: &Value) -> String {
    format!(
        "{}\n{}",
        table(ROUTE_HEADERS, &rows(routes, route_row)),
        table(FAULT_HEADERS, &rows(faults, fault_row))
    )
}

/// `ctl list` across a fleet: each target's routes and faults in one table each, led by
/// the target.
pub fn fleet_list(answers: &[(&str, &Value)]) -> String {
    let led = |headers: &[&'static str]| -> Vec<&'static str> {
        std::iter::once("TARGET")
            .chain(headers.iter().copied())
            .collect()
    };
    let mut routes = Vec::new();
    let mut faults = Vec::new();
    for (target, answer) in answers {
        for mut row in rows(&answer["routes"], route_row) {
            row.insert(0, target.to_string());
            routes.push(row);
        }
        for mut row in rows(&answer["faults"], fault_row) {
            row.insert(0, target.to_string());
            faults.push(row);
        }
    }
    format!(
        "{}\n{}",
        table(&led(ROUTE_HEADERS), &routes),
        table(&led(FAULT_HEADERS), &faults)
    )
}

/// `ctl status` across a fleet: a row per target.
pub fn fleet_status(answers: &[(&str, &Value)]) -> String {
    let rows: Vec<Vec<String>> = answers
        .iter()
        .map(|(target, s)| {
            let rejected = s["last_rejected"]
                .as_array()
                .map_or("none".to_string(), |p| format!("{} problem(s)", p.len()));
            let tripped = s["guards"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|g| g["tripped"].is_object())
                .count();
            vec![
                target.to_string(),
                text(&s["version"]),
                format!("{}s", text(&s["uptime_secs"])),
                text(&s["routes"]),
                format!("{} ({} on)", text(&s["faults"]), text(&s["faults_enabled"])),
                text(&s["last_reload"]),
                rejected,
                tripped.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "TARGET",
            "VERSION",
            "UPTIME",
            "ROUTES",
            "FAULTS",
            "LAST_RELOAD",
            "REJECTED",
            "GUARDS_TRIPPED",
        ],
        &rows,
    )
}

/// One fault on one line: `slow on Latency(ms: 100, jitter_ms: 0) until …`.
pub fn fault_summary(f: &Value) -> String {
    let state = if f["enabled"].as_bool() == Some(true) {
        "on"
    } else {
        "off"
    };
    let mut line = format!("{} {state} {}", text(&f["name"]), kind(&f["kind"]));
    if let Some(until) = f["expires_at"].as_str() {
        line.push_str(&format!(" until {until}"));
    }
    line
}

const FAULT_HEADERS: &[&str] = &[
    "FAULT",
    "ROUTE",
    "ENABLED",
    "PROBABILITY",
    "DIRECTION",
    "KIND",
    "SOURCE",
    "EXPIRES",
];

fn fault_row(f: &Value) -> Vec<String> {
    vec![
        text(&f["name"]),
        text(&f["route"]),
        if f["enabled"].as_bool() == Some(true) {
            "on".into()
        } else {
            "off".into()
        },
        text(&f["probability"]),
        text(&f["direction"]),
        kind(&f["kind"]),
        text(&f["source"]),
        text(&f["expires_at"]),
    ]
}

/// One fault as a table.
pub fn fault_line(f: &Value) -> String {
    table(FAULT_HEADERS, &[fault_row(f)])
}

/// `ctl status`.
pub fn status(s: &Value) -> String {
    let mut out = format!(
        "version       {}\nuptime        {}s\nrules dir     {}\nseed          {}\nlast reload   {}\nroutes        {}\nfaults        {} ({} enabled)\n",
        text(&s["version"]),
        text(&s["uptime_secs"]),
        text(&s["rules_dir"]),
        text(&s["seed"]),
        text(&s["last_reload"]),
        text(&s["routes"]),
        text(&s["faults"]),
        text(&s["faults_enabled"]),
    );
    match s["last_rejected"].as_array() {
        Some(problems) => {
            out.push_str("last rejected reload (the rules before it stay in force):\n");
            for p in problems {
                out.push_str(&format!(
                    "  {}:{}:{}: {}\n",
                    text(&p["file"]),
                    text(&p["line"]),
                    text(&p["col"]),
                    text(&p["message"])
                ));
            }
        }
        None => out.push_str("last rejected reload: none\n"),
    }
    for g in s["guards"].as_array().into_iter().flatten() {
        let rate = g["error_rate"]
            .as_f64()
            .map_or("- (no outcomes in the window)".to_string(), |r| {
                format!("{r:.2}")
            });
        out.push_str(&format!(
            "guard {}: error rate {} over {} ({} outcomes; trips above {})\n",
            text(&g["route"]),
            rate,
            text(&g["window"]),
            text(&g["outcomes"]),
            text(&g["max_error_rate"]),
        ));
        if let Some(trip) = g["tripped"].as_object() {
            let lifted: Vec<String> = trip["lifted"]
                .as_array()
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default();
            out.push_str(&format!(
                "  tripped at {} (rate {}): lifted {}\n",
                text(&trip["at"]),
                trip["error_rate"]
                    .as_f64()
                    .map_or(String::new(), |r| format!("{r:.2}")),
                lifted.join(", ")
            ));
        }
    }
    out
}

/// `ctl reset`.
pub fn reset(v: &Value) -> String {
    let names: Vec<String> = v["turned_off"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "no fault was on\n".into()
    } else {
        format!("turned off: {}\n", names.join(", "))
    }
}

/// One event line for `ctl watch`.
pub fn event(e: &Value) -> String {
    let mut details: Vec<String> = e
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "at" | "source" | "type"))
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect()
        })
        .unwrap_or_default();
    details.sort();
    format!(
        "{}  {:<4}  {:<15}  {}",
        text(&e["at"]),
        text(&e["source"]),
        text(&e["type"]),
        details.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_print_as_a_rules_file_writes_them() {
        let cases = [
            (
                serde_json::json!({"Abort": {"status": 503, "body": "a, b: \"c\"", "headers": {}}}),
                r#"Abort(status: 503, body: "a, b: \"c\"", headers: {})"#,
            ),
            (
                serde_json::json!({"Partition": {"mode": "Reset"}}),
                "Partition(mode: Reset)",
            ),
            (
                serde_json::json!({"Latency": {"ms": 100, "jitter_ms": 0}}),
                "Latency(ms: 100, jitter_ms: 0)",
            ),
        ];
        for (json, want) in cases {
            let printed = kind(&json);
            assert_eq!(printed, want);
            // What is printed loads as a rules file's kind.
            let options = ron::Options::default()
                .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES);
            let back: crate::faults::FaultKind = options.from_str(&printed).expect(&printed);
            assert_eq!(serde_json::to_value(&back).expect("json"), json);
        }
    }
}
