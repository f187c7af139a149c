//! What a `Durability` probe finds: every write the app acknowledged during the drill is kept
//! in a ledger and read back once the drill is over. The writes that are gone are the data
//! the failure lost; the time they span is the measured recovery point (RPO).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::{Deserialize, Serialize};

use super::probe::{expand_keeping_id, http_client};
use super::scenario::{Check, DurableRead, IdFrom, Probe, ReadBack, Scenario};

/// One acknowledged write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// When its request was sent, in milliseconds from the start of the drill.
    pub t_ms: f64,
    /// The id the acknowledgement gave.
    pub id: String,
}

/// The acknowledged writes of one probe, in the order they were acknowledged.
#[derive(Debug, Clone, Default)]
pub struct Ledger(Arc<Mutex<Vec<Ack>>>);

impl Ledger {
    /// Records an acknowledged write.
    pub fn record(&self, ack: Ack) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ack);
    }

    /// Every acknowledged write so far, by the time its request was sent.
    pub fn acks(&self) -> Vec<Ack> {
        let mut acks = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        acks.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        acks
    }
}

/// What reading the ledger back found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Durability {
    /// Writes the app acknowledged.
    pub acknowledged: usize,
    /// Acknowledged writes that are gone (read back as 404 or 410).
    pub lost: Vec<Ack>,
    /// The measured RPO: from the first lost write to the last, in milliseconds; 0 when
    /// none was lost.
    pub rpo_ms: f64,
    /// Ids the app acknowledged more than once, with how many times.
    pub duplicates: BTreeMap<String, usize>,
    /// Acknowledged writes whose read-back neither found nor missed them (another status,
    /// or no answer, three times): they are not counted as lost or as kept.
    pub unverified: Vec<Ack>,
}

/// The id an acknowledgement's `body` gives, per `from`.
pub fn extract_id(body: &str, from: &IdFrom) -> Option<String> {
    match from {
        IdFrom::Json(pointer) => {
            let value: serde_json::Value = serde_json::from_str(body).ok()?;
            match value.pointer(pointer)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        }
        IdFrom::Regex(pattern) => {
            let re = regex::Regex::new(pattern).ok()?;
            let found = re.captures(body)?;
            let m = found.get(1).or_else(|| found.get(0))?;
            Some(m.as_str().to_string())
        }
    }
}

/// The span of the lost writes and the ids acknowledged twice, from the ledger and what
/// was found missing.
pub fn summarise(acks: &[Ack], lost: Vec<Ack>, unverified: Vec<Ack>) -> Durability {
    let rpo_ms = match (lost.first(), lost.last()) {
        (Some(first), Some(last)) => last.t_ms - first.t_ms,
        _ => 0.0,
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for ack in acks {
        *seen.entry(ack.id.clone()).or_default() += 1;
    }
    seen.retain(|_, n| *n > 1);
    Durability {
        acknowledged: acks.len(),
        lost,
        rpo_ms,
        duplicates: seen,
        unverified,
    }
}

/// Why the probe failed its RPO, if it did.
pub fn judge(probe: &Probe, found: &Durability) -> Option<String> {
    let objective = probe.rpo?;
    if found.rpo_ms > objective.as_secs_f64() * 1000.0 {
        return Some(format!(
            "missed its RPO: lost {} acknowledged writes spanning {:.0} ms, the objective is {}",
            found.lost.len(),
            found.rpo_ms,
            humantime::format_duration(objective)
        ));
    }
    if !found.unverified.is_empty() {
        return Some(format!(
            "{} acknowledged writes could not be read back, so the RPO is not known",
            found.unverified.len()
        ));
    }
    None
}

/// How one read-back went.
enum Found {
    Kept,
    Lost,
    Unknown,
}

/// Reads every acknowledged write back through `read`.
pub async fn read_back(
    acks: &[Ack],
    read: &DurableRead,
    client: &Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
) -> Durability {
    let DurableRead::Http { url, expect_status } = read;
    let mut lost = Vec::new();
    let mut unverified = Vec::new();
    for ack in acks {
        let target = url.replace("${id}", &ack.id);
        let mut outcome = Found::Unknown;
        for _ in 0..3 {
            outcome = read_one(client, &target, expect_status, timeout).await;
            if !matches!(outcome, Found::Unknown) {
                break;
            }
        }
        match outcome {
            Found::Kept => {}
            Found::Lost => lost.push(ack.clone()),
            Found::Unknown => unverified.push(ack.clone()),
        }
    }
    summarise(acks, lost, unverified)
}

async fn read_one(
    client: &Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    url: &str,
    expect_status: &[u16],
    timeout: Duration,
) -> Found {
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return Found::Unknown;
    };
    let Ok(request) = Request::get(uri)
        .header(hyper::header::USER_AGENT, "switchboard-drill")
        .body(Empty::new())
    else {
        return Found::Unknown;
    };
    let answer = async {
        let response = client.request(request).await.ok()?;
        let status = response.status().as_u16();
        // Drained so the connection can be used again.
        let _ = Limited::new(response.into_body(), 1 << 20).collect().await;
        Some(status)
    };
    match tokio::time::timeout(timeout, answer).await {
        Ok(Some(status)) => {
            let kept = if expect_status.is_empty() {
                (200..300).contains(&status)
            } else {
                expect_status.contains(&status)
            };
            match (kept, status) {
                (true, _) => Found::Kept,
                (false, 404 | 410) => Found::Lost,
                _ => Found::Unknown,
            }
        }
        _ => Found::Unknown,
    }
}

/// What reading back the ledger of each `Durability` probe that reads back `when` found, by
/// probe (`None` for the others).
pub async fn read_back_all(
    scenario: &Scenario,
    ledgers: &[Option<Ledger>],
    when: ReadBack,
) -> Vec<Option<Durability>> {
    let mut found = Vec::with_capacity(ledgers.len());
    for (probe, ledger) in scenario.probes.iter().zip(ledgers) {
        let (
            Some(ledger),
            Check::Durability {
                read,
                read_back: at,
                ..
            },
        ) = (ledger, &probe.check)
        else {
            found.push(None);
            continue;
        };
        if *at != when {
            found.push(None);
            continue;
        }
        let DurableRead::Http { url, expect_status } = read;
        let read = DurableRead::Http {
            url: expand_keeping_id(url).unwrap_or_else(|_| url.clone()),
            expect_status: expect_status.clone(),
        };
        let Ok(client) = http_client() else {
            found.push(None);
            continue;
        };
        found.push(Some(
            read_back(&ledger.acks(), &read, &client, probe.timeout).await,
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(t_ms: f64, id: &str) -> Ack {
        Ack {
            t_ms,
            id: id.into(),
        }
    }

    #[test]
    fn ids_come_from_a_json_pointer_or_a_regex() {
        let json = r#"{"order": {"id": 42}, "ref": "A-7"}"#;
        assert_eq!(
            extract_id(json, &IdFrom::Json("/order/id".into())).as_deref(),
            Some("42")
        );
        assert_eq!(
            extract_id(json, &IdFrom::Json("/ref".into())).as_deref(),
            Some("A-7")
        );
        assert_eq!(extract_id(json, &IdFrom::Json("/none".into())), None);
        let text = "order 1234 placed";
        assert_eq!(
            extract_id(text, &IdFrom::Regex(r"order (\d+)".into())).as_deref(),
            Some("1234")
        );
        assert_eq!(
            extract_id(text, &IdFrom::Regex(r"\d+".into())).as_deref(),
            Some("1234")
        );
        assert_eq!(extract_id("not json", &IdFrom::Json("/id".into())), None);
    }

    #[test]
    fn the_rpo_is_the_span_of_the_lost_writes_and_duplicates_are_named() {
        let acks = vec![
            ack(0.0, "1"),
            ack(100.0, "2"),
            ack(200.0, "3"),
            ack(900.0, "2"),
        ];
        let found = summarise(&acks, vec![ack(100.0, "2"), ack(200.0, "3")], vec![]);
        assert_eq!(found.acknowledged, 4);
        assert_eq!(found.rpo_ms, 100.0);
        assert_eq!(found.duplicates.get("2"), Some(&2));
        assert_eq!(found.duplicates.len(), 1);
        let none = summarise(&acks[..1], vec![], vec![]);
        assert_eq!(none.rpo_ms, 0.0);
    }
}
