//! Finds where routes, faults and their fields stand in a RON source, so that validation
//! errors (which serde cannot place) still point at `line:col`.
//!
//! It is a scanner, not a parser: it runs only on text that already parsed, and tracks
//! nesting, strings and comments just well enough to find list elements and `field:` names.

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

const START: Pos = Pos { line: 1, col: 1 };

/// One element of the `routes` or `faults` list.
#[derive(Debug, Default)]
pub struct Element {
    start: Option<Pos>,
    /// Every `name:` inside the element, nested ones included, in order.
    fields: Vec<(String, Pos)>,
}

/// Positions of the elements of the two top-level lists.
#[derive(Debug, Default)]
pub struct Outline {
    routes: Vec<Element>,
    faults: Vec<Element>,
}

/// Which top-level list an element is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Routes,
    Faults,
}

impl Outline {
    /// Where element `index` of `list` starts, or where its `field` is if given and present.
    pub fn find(&self, list: List, index: usize, field: Option<&str>) -> Pos {
        let elements = match list {
            List::Routes => &self.routes,
            List::Faults => &self.faults,
        };
        let Some(element) = elements.get(index) else {
            return START;
        };
        field
            .and_then(|f| element.fields.iter().find(|(name, _)| name == f))
            .map(|(_, pos)| *pos)
            .or(element.start)
            .unwrap_or(START)
    }
}

struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    pos: Pos,
}

impl Scanner<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    fn skip_string(&mut self) {
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    self.bump();
                }
                '"' => return,
                _ => {}
            }
        }
    }

    fn skip_raw_string(&mut self) {
        let mut hashes = 0;
        while self.chars.peek() == Some(&'#') {
            self.bump();
            hashes += 1;
        }
        self.bump(); // the opening quote
        'outer: while let Some(c) = self.bump() {
            if c == '"' {
                for _ in 0..hashes {
                    if self.chars.peek() != Some(&'#') {
                        continue 'outer;
                    }
                    self.bump();
                }
                return;
            }
        }
    }

    fn skip_block_comment(&mut self) {
        let mut depth = 1;
        while let Some(c) = self.bump() {
            match (c, self.chars.peek()) {
                ('*', Some('/')) => {
                    self.bump();
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                ('/', Some('*')) => {
                    self.bump();
                    depth += 1;
                }
                _ => {}
            }
        }
    }
}

/// Scans `src` for the outline of its `routes` and `faults` lists.
pub fn outline(src: &str) -> Outline {
    let mut scanner = Scanner {
        chars: src.chars().peekable(),
        pos: START,
    };
    let mut outline = Outline::default();
    let mut depth = 0usize;
    // The top-level key most recently seen, and the list we are inside, if any.
    let mut key: Option<String> = None;
    let mut current: Option<List> = None;
    let mut want_element = false;
    let mut ident = String::new();
    let mut ident_pos = START;
    let mut pending_ident: Option<(String, Pos)> = None;

    loop {
        let here = scanner.pos;
        let Some(c) = scanner.bump() else { break };
        if c.is_alphanumeric() || c == '_' {
            if ident.is_empty() {
                ident_pos = here;
            }
            ident.push(c);
            if ident == "r" && matches!(scanner.chars.peek(), Some('"') | Some('#')) {
                ident.clear();
                scanner.skip_raw_string();
            }
            continue;
        }
        if !ident.is_empty() {
            pending_ident = Some((std::mem::take(&mut ident), ident_pos));
        }
        if c.is_whitespace() {
            continue;
        }
        if c == '/' && scanner.chars.peek() == Some(&'/') {
            while scanner.bump().is_some_and(|c| c != '\n') {}
            continue;
        }
        if c == '/' && scanner.chars.peek() == Some(&'*') {
            scanner.bump();
            scanner.skip_block_comment();
            continue;
        }
        let token_ident = pending_ident.take();
        if want_element && depth == 2 && c != ']' {
            let start = token_ident.as_ref().map_or(here, |(_, p)| *p);
            push_element(&mut outline, current, start);
            want_element = false;
        }
        match c {
            ':' => {
                if let Some((name, pos)) = token_ident {
                    if depth == 1 {
                        key = Some(name);
                    } else if depth >= 3
                        && let Some(element) = last_element(&mut outline, current)
                    {
                        element.fields.push((name, pos));
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                if c == '[' && depth == 2 {
                    current = match key.as_deref() {
                        Some("routes") => Some(List::Routes),
                        Some("faults") => Some(List::Faults),
                        _ => None,
                    };
                    want_element = true;
                }
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    current = None;
                    want_element = false;
                }
            }
            ',' if depth == 2 => want_element = true,
            '"' => scanner.skip_string(),
            '\'' => {
                // A char literal: skip to its closing quote.
                while let Some(c) = scanner.bump() {
                    if c == '\\' {
                        scanner.bump();
                    } else if c == '\'' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    outline
}

fn push_element(outline: &mut Outline, list: Option<List>, start: Pos) {
    let element = Element {
        start: Some(start),
        fields: Vec::new(),
    };
    match list {
        Some(List::Routes) => outline.routes.push(element),
        Some(List::Faults) => outline.faults.push(element),
        None => {}
    }
}

fn last_element(outline: &mut Outline, list: Option<List>) -> Option<&mut Element> {
    match list? {
        List::Routes => outline.routes.last_mut(),
        List::Faults => outline.faults.last_mut(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"// a comment with faults: [ (
(
  routes: [
    (name: "a", protocol: Tcp, listen: "127.0.0.1:1", upstream: "x:1"),
    /* block (with parens */ (name: "b(", protocol: Tcp,
      listen: "127.0.0.1:2", upstream: "x:2"),
  ],
  faults: [
    (name: "f", route: "a",
     kind: Latency(ms: 10)),
    (
      name: "g",
      route: "b",
      probability: 2.0,
      kind: Slicer(avg_bytes: 0),
    ),
  ],
)"#;

    #[test]
    fn finds_elements_and_fields() {
        let o = outline(SRC);
        let at = |list, i, f| {
            let p = o.find(list, i, f);
            (p.line, p.col)
        };
        assert_eq!(at(List::Routes, 0, None), (4, 5));
        assert_eq!(at(List::Routes, 1, None), (5, 30));
        assert_eq!(at(List::Routes, 1, Some("listen")), (6, 7));
        assert_eq!(at(List::Faults, 0, Some("ms")), (10, 20));
        assert_eq!(at(List::Faults, 1, Some("probability")), (14, 7));
        assert_eq!(at(List::Faults, 1, Some("avg_bytes")), (15, 20));
        assert_eq!(at(List::Faults, 1, Some("nope")), (11, 5));
        assert_eq!(at(List::Faults, 9, None), (1, 1));
    }
}
