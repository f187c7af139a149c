//! A query as faults see it: its name and type, read with hickory-proto, and the `when`
//! conditions of a Dns route (`name` globs, `qtype` lists) checked against it.

use std::str::FromStr;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::rules::Match;

/// One parsed query.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The whole message, to answer from.
    pub message: Message,
    /// The first question's name, lower-case, without the final dot.
    pub name: String,
    /// The first question's type.
    pub qtype: RecordType,
}

impl Asked {
    /// Reads a query; `None` for anything that is not one query with a question (it passes
    /// to the resolver untouched, which answers it as it would without the proxy).
    pub fn parse(bytes: &[u8]) -> Option<Asked> {
        let message = Message::from_vec(bytes).ok()?;
        if message.metadata.message_type != hickory_proto::op::MessageType::Query {
            return None;
        }
        let question = message.queries.first()?;
        let name = question.name().to_ascii().to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name).to_string();
        let qtype = question.query_type();
        Some(Asked {
            message,
            name,
            qtype,
        })
    }

    /// Whether the `name` and `qtype` conditions of `when` hold for this query.
    pub fn matches(&self, when: &Match) -> bool {
        let name_ok = when
            .name
            .as_deref()
            .is_none_or(|glob| name_matches(glob, &self.name));
        let type_ok = when.qtype.is_empty()
            || when.qtype.iter().any(|t| {
                RecordType::from_str(&t.to_ascii_uppercase()).is_ok_and(|t| t == self.qtype)
            });
        name_ok && type_ok
    }
}

/// Whether `name` (lower-case, no final dot) fits `glob`: labels compared in any case, and
/// a `*` label standing for one or more whole labels.
pub fn name_matches(glob: &str, name: &str) -> bool {
    let glob = glob.strip_suffix('.').unwrap_or(glob).to_ascii_lowercase();
    let pattern: Vec<&str> = glob.split('.').collect();
    let labels: Vec<&str> = name.split('.').collect();
    labels_match(&pattern, &labels)
}

fn labels_match(pattern: &[&str], labels: &[&str]) -> bool {
    match (pattern.split_first(), labels.split_first()) {
        (None, None) => true,
        (Some((&"*", rest)), Some(_)) => {
            // One or more labels: try every split that leaves at least one to the star.
            (1..=labels.len()).any(|taken| labels_match(rest, &labels[taken..]))
        }
        (Some((p, rest)), Some((l, more))) => p == l && labels_match(rest, more),
        _ => false,
    }
}

/// Checks the `when` of a fault on a Dns route: the glob and the query types.
pub fn check_match(when: &Match) -> Result<(), String> {
    if let Some(glob) = &when.name {
        let trimmed = glob.strip_suffix('.').unwrap_or(glob);
        if trimmed.is_empty() {
            return Err("name is empty; give a name or a glob such as \"*.shop.internal\"".into());
        }
        if let Some(bad) = trimmed
            .split('.')
            .find(|l| l.is_empty() || (l.contains('*') && *l != "*") || l.len() > 63)
        {
            return Err(format!(
                "name {glob:?}: label {bad:?} is not a DNS label or a whole-label *"
            ));
        }
    }
    for t in &when.qtype {
        if RecordType::from_str(&t.to_ascii_uppercase()).is_err() {
            return Err(format!(
                "qtype {t:?} is not a DNS record type (A, AAAA, CNAME, MX, SRV, TXT, ...)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stands_for_one_or_more_whole_labels() {
        let glob = "*.primary.shop.internal";
        assert!(name_matches(glob, "db.primary.shop.internal"));
        assert!(name_matches(glob, "a.b.primary.shop.internal"));
        assert!(name_matches(
            "*.Primary.Shop.Internal.",
            "db.primary.shop.internal"
        ));
        assert!(!name_matches(glob, "primary.shop.internal"));
        assert!(!name_matches(glob, "db.secondary.shop.internal"));
        assert!(name_matches("db.*.internal", "db.x.y.internal"));
        assert!(name_matches(
            "inventory.shop.internal",
            "inventory.shop.internal"
        ));
        assert!(!name_matches(
            "inventory.shop.internal",
            "x.inventory.shop.internal"
        ));
    }

    #[test]
    fn bad_conditions_are_named() {
        let when = |name: &str, qtype: &[&str]| Match {
            name: Some(name.into()),
            qtype: qtype.iter().map(|t| t.to_string()).collect(),
            ..Match::default()
        };
        assert!(check_match(&when("*.shop.internal", &["A", "aaaa"])).is_ok());
        assert!(
            check_match(&when("db*.shop", &[]))
                .unwrap_err()
                .contains("db*")
        );
        assert!(check_match(&when("a..b", &[])).is_err());
        assert!(
            check_match(&when("x", &["BOGUS"]))
                .unwrap_err()
                .contains("BOGUS")
        );
    }
}
