//! Just enough of PostgreSQL's lexical rules to split a query string into statements and name
//! each one: comments (nested `/* */`), quoted strings (`'…'`, `E'…'`, `$tag$…$tag$`) and
//! quoted identifiers are skipped, so a `;` or a keyword inside them counts for nothing.
//!
//! A statement's keyword is its first word; for `WITH …` it is the main statement's, found
//! after the common table expressions.

/// One statement of a query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Its text, without the `;` that ends it.
    pub text: String,
    /// Where its text starts in the query string.
    pub start: usize,
    /// Its first keyword, upper-cased; for `WITH …`, the main statement's.
    pub keyword: String,
    /// For `COPY`: whether data flows into the table (`COPY … FROM`).
    pub copy_from: bool,
    /// A `WITH` clause holds an INSERT, UPDATE, DELETE or MERGE.
    pub writing_cte: bool,
}

/// A token, as far as naming statements needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Open,
    Close,
    Semicolon,
    Other,
}

/// Splits `sql` into its statements; empty ones (`;;`, comments only) are left out.
pub fn statements(sql: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut lexer = Lexer {
        sql,
        at: 0,
        token_start: 0,
    };
    let mut start = None;
    let mut tokens: Vec<Token<'_>> = Vec::new();
    let mut depth = 0usize;
    loop {
        let before = lexer.at;
        let token = lexer.next();
        let ends = match token {
            None => true,
            Some(Token::Semicolon) => depth == 0,
            Some(_) => false,
        };
        if ends {
            if let Some(s) = start.take() {
                let end = if token.is_none() { sql.len() } else { before };
                out.push(describe(&sql[s..end], s, &tokens));
            }
            tokens.clear();
            depth = 0;
            if token.is_none() {
                return out;
            }
            continue;
        }
        if let Some(t) = token {
            if start.is_none() {
                start = Some(lexer.token_start);
            }
            match t {
                Token::Open => depth += 1,
                Token::Close => depth = depth.saturating_sub(1),
                _ => {}
            }
            tokens.push(t);
        }
    }
}

fn describe(text: &str, start: usize, tokens: &[Token<'_>]) -> Statement {
    let mut writing_cte = false;
    let mut main = 0;
    if word_at(tokens, 0).as_deref() == Some("WITH") {
        (main, writing_cte) = after_ctes(tokens);
    }
    let keyword = word_at(tokens, main).unwrap_or_default();
    let copy_from = keyword == "COPY" && copy_direction_is_from(&tokens[main..]);
    Statement {
        text: text.trim_end().to_string(),
        start,
        keyword,
        copy_from,
        writing_cte,
    }
}

fn word_at(tokens: &[Token<'_>], i: usize) -> Option<String> {
    match tokens.get(i) {
        Some(Token::Word(w)) => Some(w.to_ascii_uppercase()),
        _ => None,
    }
}

/// Where the main statement of a `WITH` statement starts, and whether a CTE writes. Each CTE
/// is `name [(columns)] AS [[NOT] MATERIALIZED] ( body )`, separated by commas; the first
/// word at depth 0 after a closing body that is not a comma is the main statement.
fn after_ctes(tokens: &[Token<'_>]) -> (usize, bool) {
    let mut writes = false;
    let mut depth = 0usize;
    let mut i = 1;
    let mut body_start = false;
    while i < tokens.len() {
        match tokens[i] {
            Token::Open => {
                if depth == 0 {
                    // A body follows `AS` or `MATERIALIZED`; a column list follows the name.
                    let prev = word_at(tokens, i.wrapping_sub(1));
                    body_start = matches!(prev.as_deref(), Some("AS" | "MATERIALIZED"));
                } else if depth == 1 && body_start {
                    body_start = false;
                }
                depth += 1;
            }
            Token::Close => depth = depth.saturating_sub(1),
            Token::Word(w) if depth == 1 && body_start => {
                let w = w.to_ascii_uppercase();
                writes |= matches!(w.as_str(), "INSERT" | "UPDATE" | "DELETE" | "MERGE");
                body_start = false;
            }
            Token::Word(w) if depth == 0 => {
                let w = w.to_ascii_uppercase();
                let in_head = matches!(w.as_str(), "RECURSIVE" | "AS" | "NOT" | "MATERIALIZED");
                let after_body = i > 0 && tokens[i - 1] == Token::Close;
                if after_body && !in_head {
                    return (i, writes);
                }
            }
            _ => {}
        }
        i += 1;
    }
    (tokens.len(), writes)
}

/// `COPY table [(columns)] FROM …` or `COPY (query) TO …`: the first FROM or TO at depth 0.
fn copy_direction_is_from(tokens: &[Token<'_>]) -> bool {
    let mut depth = 0usize;
    for t in tokens.iter().skip(1) {
        match t {
            Token::Open => depth += 1,
            Token::Close => depth = depth.saturating_sub(1),
            Token::Word(w) if depth == 0 => {
                if w.eq_ignore_ascii_case("FROM") {
                    return true;
                }
                if w.eq_ignore_ascii_case("TO") {
                    return false;
                }
            }
            _ => {}
        }
    }
    false
}

struct Lexer<'a> {
    sql: &'a str,
    at: usize,
    token_start: usize,
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.sql.as_bytes();
        self.skip_space_and_comments();
        self.token_start = self.at;
        let &b = bytes.get(self.at)?;
        let rest = &bytes[self.at..];
        Some(match b {
            b';' => self.one(Token::Semicolon),
            b'(' => self.one(Token::Open),
            b')' => self.one(Token::Close),
            b'\'' => {
                self.quoted(b'\'', false);
                Token::Other
            }
            b'"' => {
                self.quoted(b'"', false);
                Token::Other
            }
            b'e' | b'E' if rest.get(1) == Some(&b'\'') => {
                self.at += 1;
                self.quoted(b'\'', true);
                Token::Other
            }
            b'$' => {
                if !self.dollar_quoted() {
                    self.at += 1;
                }
                Token::Other
            }
            b if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => {
                let start = self.at;
                while self.at < bytes.len() && is_word_byte(bytes[self.at]) {
                    self.at += 1;
                }
                Token::Word(&self.sql[start..self.at])
            }
            _ => {
                // Numbers, operators, parameters ($1 is handled above as `$` then 1).
                self.at += 1;
                while self.at < bytes.len() && !self.sql.is_char_boundary(self.at) {
                    self.at += 1;
                }
                Token::Other
            }
        })
    }

    fn one(&mut self, token: Token<'a>) -> Token<'a> {
        self.at += 1;
        token
    }

    fn skip_space_and_comments(&mut self) {
        let bytes = self.sql.as_bytes();
        loop {
            while self.at < bytes.len() && bytes[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
            let rest = &bytes[self.at..];
            if rest.starts_with(b"--") {
                while self.at < bytes.len() && bytes[self.at] != b'\n' {
                    self.at += 1;
                }
            } else if rest.starts_with(b"/*") {
                // PostgreSQL's block comments nest.
                let mut depth = 0usize;
                while self.at < bytes.len() {
                    let rest = &bytes[self.at..];
                    if rest.starts_with(b"/*") {
                        depth += 1;
                        self.at += 2;
                    } else if rest.starts_with(b"*/") {
                        depth -= 1;
                        self.at += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        self.at += 1;
                    }
                }
            } else {
                return;
            }
        }
    }

    /// Skips a quoted string or identifier; a doubled quote is one quote, and with
    /// `backslash` (E'…') a backslash escapes the next byte.
    fn quoted(&mut self, quote: u8, backslash: bool) {
        let bytes = self.sql.as_bytes();
        self.at += 1;
        while self.at < bytes.len() {
            let b = bytes[self.at];
            if backslash && b == b'\\' {
                self.at += 2;
                continue;
            }
            self.at += 1;
            if b == quote {
                if bytes.get(self.at) == Some(&quote) {
                    self.at += 1;
                    continue;
                }
                return;
            }
        }
        self.at = bytes.len();
    }

    /// Skips `$tag$ … $tag$`; false when the `$` does not open one (a parameter such as `$1`).
    fn dollar_quoted(&mut self) -> bool {
        let bytes = self.sql.as_bytes();
        let rest = &bytes[self.at + 1..];
        let tag_len = rest
            .iter()
            .position(|&b| b == b'$')
            .filter(|&n| rest[..n].iter().all(|&b| is_word_byte(b)))
            .filter(|&n| n == 0 || !rest[0].is_ascii_digit());
        let Some(n) = tag_len else {
            return false;
        };
        let delimiter = &bytes[self.at..self.at + n + 2];
        let body = self.at + n + 2;
        match find(&bytes[body..], delimiter) {
            Some(end) => self.at = body + end + delimiter.len(),
            None => self.at = bytes.len(),
        }
        true
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(sql: &str) -> Vec<String> {
        statements(sql).into_iter().map(|s| s.keyword).collect()
    }

    #[test]
    fn names_each_statement() {
        let cases: [(&str, &[&str]); 12] = [
            ("insert into t values (1)", &["INSERT"]),
            (
                "  -- note\n /* a /* nested */ comment */ Update t set a = 1",
                &["UPDATE"],
            ),
            (
                "BEGIN; INSERT INTO t VALUES ('a;b'); COMMIT",
                &["BEGIN", "INSERT", "COMMIT"],
            ),
            ("SELECT $$;DELETE$$; delete from t", &["SELECT", "DELETE"]),
            (
                "SELECT $body$ ; $x$ ; $body$ , E'\\';' ;VALUES (1)",
                &["SELECT", "VALUES"],
            ),
            ("select \"a;\"\"b\" from t; ;; ", &["SELECT"]),
            ("WITH x AS (SELECT 1) SELECT * FROM x", &["SELECT"]),
            (
                "with recursive r(n) as (values (1) union select n+1 from r) insert into t select * from r",
                &["INSERT"],
            ),
            (
                "WITH a AS MATERIALIZED (SELECT 1), b AS NOT MATERIALIZED (SELECT 2) DELETE FROM t",
                &["DELETE"],
            ),
            ("SELECT $1::int; select 2", &["SELECT", "SELECT"]),
            ("/* only a comment */ ; -- and another", &[]),
            (
                "CREATE FUNCTION f() RETURNS int AS $$ BEGIN; RETURN 1; END $$ LANGUAGE plpgsql",
                &["CREATE"],
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(keywords(sql), want, "{sql}");
        }
    }

    #[test]
    fn statement_texts_and_offsets() {
        let sql = "BEGIN;  INSERT INTO t VALUES (1) ; COMMIT";
        let s = statements(sql);
        assert_eq!(s[1].text, "INSERT INTO t VALUES (1)");
        assert_eq!(&sql[s[1].start..s[1].start + 6], "INSERT");
        assert_eq!(s[2].text, "COMMIT");
    }

    #[test]
    fn copy_direction_and_writing_ctes() {
        let one = |sql: &str| statements(sql).remove(0);
        assert!(one("COPY orders (id, total) FROM STDIN").copy_from);
        assert!(!one("COPY (SELECT * FROM orders WHERE a IN (SELECT 1)) TO STDOUT").copy_from);
        assert!(
            one("WITH n AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM n").writing_cte
        );
        assert!(!one("WITH n AS (SELECT 1) SELECT * FROM n").writing_cte);
    }

    #[test]
    fn unterminated_input_ends_cleanly() {
        for sql in [
            "SELECT 'open",
            "SELECT $a$ open",
            "SELECT /* open",
            "E'\\",
            "$",
            "\"",
            "é;ü",
        ] {
            let _ = statements(sql);
        }
        assert!(statements("").is_empty());
    }
}
