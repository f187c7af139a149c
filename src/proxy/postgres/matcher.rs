//! Which statements a fault's `when` selects: by first keyword or category, by a regular
//! expression on the text, and by the database and user of the connection.

use super::sql::Statement;
use crate::rules::Match;

/// The categories `statement` takes, as `@name`.
const CATEGORIES: [&str; 4] = ["write", "read", "ddl", "transaction"];

/// Statements that define or change schema objects or privileges.
const DDL: [&str; 11] = [
    "CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE", "REFRESH", "REINDEX", "CLUSTER",
    "SECURITY", "IMPORT",
];

/// Statements that only read.
const READ: [&str; 6] = ["SELECT", "VALUES", "TABLE", "SHOW", "FETCH", "EXPLAIN"];

/// Statements that begin, end or mark transactions.
const TRANSACTION: [&str; 8] = [
    "BEGIN",
    "START",
    "COMMIT",
    "END",
    "ROLLBACK",
    "ABORT",
    "SAVEPOINT",
    "RELEASE",
];

/// What the matcher needs of one statement and its connection.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub statement: &'a Statement,
    pub database: &'a str,
    pub user: &'a str,
}

impl Facts<'_> {
    fn in_category(&self, category: &str) -> bool {
        let keyword = self.statement.keyword.as_str();
        match category {
            "ddl" => DDL.contains(&keyword),
            "write" => {
                matches!(
                    keyword,
                    "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "TRUNCATE"
                ) || (keyword == "COPY" && self.statement.copy_from)
                    || self.statement.writing_cte
                    || DDL.contains(&keyword)
            }
            "read" => {
                (READ.contains(&keyword) && !self.statement.writing_cte)
                    || (keyword == "COPY" && !self.statement.copy_from)
            }
            "transaction" => TRANSACTION.contains(&keyword),
            _ => false,
        }
    }
}

/// Whether the statement described by `facts` meets every condition of `when`.
pub fn matches(when: &Match, facts: &Facts<'_>) -> bool {
    let statement = when.statement.is_empty()
        || when.statement.iter().any(|s| match s.strip_prefix('@') {
            Some(category) => facts.in_category(&category.to_ascii_lowercase()),
            None => s.eq_ignore_ascii_case(&facts.statement.keyword),
        });
    statement
        && when
            .matches
            .as_ref()
            .is_none_or(|p| p.is_match(&facts.statement.text))
        && connection_matches(when, facts.database, facts.user)
}

/// Whether the database and user conditions of `when` hold, the only ones that can be
/// decided at startup, before any statement.
pub fn connection_matches(when: &Match, database: &str, user: &str) -> bool {
    when.database.as_ref().is_none_or(|d| d == database)
        && when.user.as_ref().is_none_or(|u| u == user)
}

/// Checks a PostgreSQL `when` when the rules load.
pub fn check_match(when: &Match) -> Result<(), String> {
    for s in &when.statement {
        match s.strip_prefix('@') {
            Some(category) => {
                if !CATEGORIES.contains(&category.to_ascii_lowercase().as_str()) {
                    return Err(format!(
                        "{s:?} is not a statement category; there are @{}",
                        CATEGORIES.join(", @")
                    ));
                }
            }
            None => {
                if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                    return Err(format!(
                        "{s:?} is not a statement's first keyword (such as \"INSERT\")"
                    ));
                }
            }
        }
    }
    for (field, value) in [("database", &when.database), ("user", &when.user)] {
        if value.as_ref().is_some_and(|v| v.is_empty()) {
            return Err(format!("{field} is empty"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::sql;
    use super::*;
    use crate::rules::Pattern;

    fn when(statement: &[&str], pattern: Option<&str>) -> Match {
        Match {
            statement: statement.iter().map(|s| s.to_string()).collect(),
            matches: pattern.map(|p| Pattern::new(p).unwrap()),
            ..Match::default()
        }
    }

    #[test]
    fn table() {
        let cases = [
            (
                when(&["INSERT", "@write"], Some("orders")),
                "insert into orders values (1)",
                true,
            ),
            (when(&["@write"], None), "UPDATE t SET a = 1", true),
            (when(&["@write"], None), "copy t from stdin", true),
            (when(&["@write"], None), "COPY t TO STDOUT", false),
            (when(&["@read"], None), "COPY t TO STDOUT", true),
            (when(&["@write"], None), "create table t (a int)", true),
            (when(&["@ddl"], None), "UPDATE t SET a = 1", false),
            (
                when(&["@write"], None),
                "WITH n AS (DELETE FROM t RETURNING *) SELECT * FROM n",
                true,
            ),
            (
                when(&["@read"], None),
                "WITH n AS (DELETE FROM t RETURNING *) SELECT * FROM n",
                false,
            ),
            (when(&["@write"], None), "SELECT * FROM orders", false),
            (
                when(&["@read"], Some("^SELECT .* FROM orders")),
                "SELECT * FROM orders",
                true,
            ),
            (
                when(&["insert"], Some("orders")),
                "INSERT INTO carts VALUES (1)",
                false,
            ),
            (when(&["@transaction"], None), "begin", true),
            (when(&[], None), "VACUUM", true),
        ];
        for (w, text, want) in cases {
            let statement = sql::statements(text).remove(0);
            let facts = Facts {
                statement: &statement,
                database: "shop",
                user: "app",
            };
            assert_eq!(matches(&w, &facts), want, "{w:?} on {text}");
        }
    }

    #[test]
    fn database_and_user() {
        let w = Match {
            database: Some("shop".into()),
            user: Some("app".into()),
            ..Match::default()
        };
        assert!(connection_matches(&w, "shop", "app"));
        assert!(!connection_matches(&w, "shop", "admin"));
        assert!(!connection_matches(&w, "other", "app"));
    }

    #[test]
    fn unknown_categories_are_refused() {
        let err = check_match(&when(&["@writes"], None)).expect_err("refused");
        assert!(err.contains("@write, @read"), "{err}");
        assert!(check_match(&when(&["@WRITE", "insert"], None)).is_ok());
        assert!(check_match(&when(&["INSERT INTO"], None)).is_err());
    }
}
