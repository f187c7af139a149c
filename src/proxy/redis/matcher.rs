//! Which Redis commands a fault's `when` selects: by name or ACL category, and by a glob on
//! the first key.

use super::commands::{self, Categories};
use super::glob;
use crate::rules::Match;

/// What the matcher needs of one command, worked out once per command.
#[derive(Debug)]
pub struct Facts<'a> {
    /// The command's name, upper-cased.
    pub name: String,
    /// Its ACL categories.
    pub categories: Categories,
    /// Its first key, if it has keys.
    pub first_key: Option<&'a [u8]>,
}

impl<'a> Facts<'a> {
    /// The facts of the command `args` (its name first).
    pub fn of(args: &[&'a [u8]]) -> Self {
        Facts {
            name: args
                .first()
                .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
                .unwrap_or_default(),
            categories: commands::categories(args),
            first_key: commands::first_key(args),
        }
    }
}

/// Whether the command described by `facts` meets every condition of `when`.
pub fn matches(when: &Match, facts: &Facts<'_>) -> bool {
    let command = when.command.is_empty()
        || when.command.iter().any(|c| match c.strip_prefix('@') {
            Some(category) => {
                Categories::named(category).is_some_and(|wanted| facts.categories.contains(wanted))
            }
            None => c.eq_ignore_ascii_case(&facts.name),
        });
    let key = match &when.key {
        None => true,
        Some(pattern) => facts
            .first_key
            .is_some_and(|k| glob::matches(pattern.as_bytes(), k)),
    };
    command && key
}

/// Checks a Redis `when` when the rules load: every `@category` must be one Redis has.
pub fn check_match(when: &Match) -> Result<(), String> {
    for c in &when.command {
        if let Some(category) = c.strip_prefix('@') {
            if Categories::named(category).is_none() {
                return Err(format!(
                    "{c:?} is not a Redis ACL category; Redis has @{}",
                    commands::CATEGORIES.join(", @")
                ));
            }
        } else if c.is_empty() || c.contains(char::is_whitespace) {
            return Err(format!("{c:?} is not a Redis command name"));
        }
    }
    if let Some(key) = &when.key
        && key.is_empty()
    {
        return Err("key is empty; use \"*\" for any key".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn when(command: &[&str], key: Option<&str>) -> Match {
        Match {
            command: command.iter().map(|c| c.to_string()).collect(),
            key: key.map(str::to_string),
            ..Match::default()
        }
    }

    #[test]
    fn table() {
        let cases = [
            (
                when(&["SET", "@write"], Some("orders:*")),
                "set orders:1 v",
                true,
            ),
            (
                when(&["SET", "@write"], Some("orders:*")),
                "HSET orders:1 f v",
                true,
            ),
            (
                when(&["SET", "@write"], Some("orders:*")),
                "SET carts:1 v",
                false,
            ),
            (
                when(&["SET", "@write"], Some("orders:*")),
                "GET orders:1",
                false,
            ),
            (when(&["@read"], None), "GET orders:1", true),
            (when(&["@read"], None), "PING", false),
            (when(&["get"], None), "GET x", true),
            (when(&[], Some("*")), "PING", false),
            (when(&[], None), "PING", true),
            (when(&["@transaction"], None), "EXEC", true),
            (when(&["@pubsub"], None), "SUBSCRIBE news", true),
        ];
        for (w, line, want) in cases {
            let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            assert_eq!(matches(&w, &Facts::of(&args)), want, "{w:?} on {line}");
        }
    }

    #[test]
    fn unknown_categories_are_refused() {
        let err = check_match(&when(&["@writes"], None)).expect_err("refused");
        assert!(err.contains("@write, "), "{err}");
        assert!(check_match(&when(&["@WRITE", "json.set"], None)).is_ok());
        assert!(check_match(&when(&["GET X"], None)).is_err());
    }
}
