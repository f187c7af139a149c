//! Reading RON rules from files and directories into a validated [`RuleSet`].

use std::path::{Path, PathBuf};

use ron::extensions::Extensions;

use super::error::{Problem, RulesError};
use super::locate::{self, List};
use super::model::{Fault, Route, RulesFile};
use super::validate::{self, Policy, Subject};
use crate::store::FileRules;

/// How strict loading is.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Accept `listen` addresses with port 0. Off for files users write; on for rules built by
    /// tests, which must not pick fixed ports.
    pub allow_ephemeral_listen: bool,
}

/// One rules source: a name to report problems against, and its text.
struct Source {
    path: PathBuf,
    text: String,
}

pub(crate) fn ron_options() -> ron::Options {
    // Lets `kind: Latency(ms: 200)` stand for the newtype variant `Latency(Latency { ms })`,
    // and `when: (path: "/x")` for `when: Some((path: "/x"))`.
    ron::Options::default()
        .with_default_extension(Extensions::UNWRAP_VARIANT_NEWTYPES | Extensions::IMPLICIT_SOME)
}

/// Parses one rules text; `path` is only used to name the file in the error.
pub fn parse_source(path: &Path, text: &str) -> Result<RulesFile, Problem> {
    ron_options().from_str(text).map_err(|e| Problem {
        file: path.to_path_buf(),
        line: e.span.start.line,
        col: e.span.start.col,
        message: e.code.to_string(),
    })
}

/// Loads every `*.ron` file directly inside `dir` (not its subdirectories, which hold drills,
/// nor hidden entries such as a ConfigMap's `..data`), merged into one rule set.
pub fn load_dir(dir: &Path, options: LoadOptions) -> Result<FileRules, RulesError> {
    let sources = read_dir_sources(dir)?;
    build(&sources, options)
}

/// Loads files and directories together, as `switchboard check` does.
pub fn load_paths(paths: &[PathBuf], options: LoadOptions) -> Result<FileRules, RulesError> {
    let mut sources = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| RulesError::Io {
            path: path.clone(),
            reason: source,
        })?;
        if meta.is_dir() {
            sources.extend(read_dir_sources(path)?);
        } else {
            sources.push(read_source(path)?);
        }
    }
    build(&sources, options)
}

/// Builds a rule set from in-memory texts, each with the name to report it under.
pub fn load_texts(
    texts: &[(PathBuf, String)],
    options: LoadOptions,
) -> Result<FileRules, RulesError> {
    let sources: Vec<Source> = texts
        .iter()
        .map(|(path, text)| Source {
            path: path.clone(),
            text: text.clone(),
        })
        .collect();
    build(&sources, options)
}

fn read_source(path: &Path) -> Result<Source, RulesError> {
    let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
        path: path.to_path_buf(),
        reason: source,
    })?;
    Ok(Source {
        path: path.to_path_buf(),
        text,
    })
}

fn read_dir_sources(dir: &Path) -> Result<Vec<Source>, RulesError> {
    let io = |source| RulesError::Io {
        path: dir.to_path_buf(),
        reason: source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        // `is_file` follows symlinks, which a ConfigMap's files are.
        if hidden || path.extension().is_none_or(|e| e != "ron") {
            continue;
        }
        if path.is_file() {
            paths.push(path);
        } else {
            // A directory, a socket or a dangling symlink named like a rules file is most likely
            // a mistake (a ConfigMap key mounted wrongly, a broken link): say so.
            tracing::warn!(path = %path.display(), "skipping a *.ron entry that is not a regular file");
        }
    }
    paths.sort();
    paths.iter().map(|p| read_source(p)).collect()
}

fn build(sources: &[Source], options: LoadOptions) -> Result<FileRules, RulesError> {
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    for source in sources {
        match parse_source(&source.path, &source.text) {
            Ok(file) => parsed.push((source, file)),
            Err(problem) => problems.push(problem),
        }
    }

    // Flatten, remembering where each item came from.
    let mut routes: Vec<(&Route, usize, usize)> = Vec::new();
    let mut faults: Vec<(&Fault, usize, usize)> = Vec::new();
    for (doc, (_, file)) in parsed.iter().enumerate() {
        routes.extend(file.routes.iter().enumerate().map(|(i, r)| (r, doc, i)));
        faults.extend(file.faults.iter().enumerate().map(|(i, f)| (f, doc, i)));
    }
    let route_refs: Vec<&Route> = routes.iter().map(|(r, _, _)| *r).collect();
    let fault_refs: Vec<&Fault> = faults.iter().map(|(f, _, _)| *f).collect();
    let policy = Policy {
        allow_ephemeral_listen: options.allow_ephemeral_listen,
    };
    let findings = validate::validate(&route_refs, &fault_refs, policy);

    if !findings.is_empty() {
        let outlines: Vec<_> = parsed
            .iter()
            .map(|(s, _)| locate::outline(&s.text))
            .collect();
        for finding in findings {
            let (list, doc, index) = match finding.subject {
                Subject::Route(i) => (List::Routes, routes[i].1, routes[i].2),
                Subject::Fault(i) => (List::Faults, faults[i].1, faults[i].2),
            };
            let pos = outlines[doc].find(list, index, finding.field);
            problems.push(Problem {
                file: parsed[doc].0.path.clone(),
                line: pos.line,
                col: pos.col,
                message: finding.message,
            });
        }
    }
    if !problems.is_empty() {
        return Err(RulesError::Invalid { problems });
    }
    Ok(FileRules {
        routes: route_refs.into_iter().cloned().collect(),
        faults: fault_refs.into_iter().cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<FileRules, RulesError> {
        load_texts(
            &[(PathBuf::from("t.ron"), text.to_string())],
            LoadOptions::default(),
        )
    }

    fn first_problem(text: &str) -> String {
        load(text).expect_err("should be rejected").problems()[0].to_string()
    }

    #[test]
    fn the_documented_example_loads() {
        let rules = load(
            r#"(
  routes: [
    (name: "redis", protocol: Tcp, listen: "127.0.0.1:16379", upstream: "127.0.0.1:6379"),
  ],
  faults: [
    (name: "redis-slow", route: "redis", enabled: true, probability: 1.0, direction: Downstream,
     kind: Latency(ms: 200, jitter_ms: 20)),
    (name: "redis-cut", route: "redis", enabled: false, kind: Partition(mode: Refuse)),
  ],
)"#,
        )
        .expect("valid");
        assert_eq!(rules.routes.len(), 1);
        let cut = rules
            .faults
            .iter()
            .find(|f| f.name == "redis-cut")
            .expect("present");
        assert!(!cut.enabled);
        assert_eq!(cut.probability, 1.0);
    }

    #[test]
    fn errors_carry_file_line_col() {
        let table = [
            (
                "(routes: [(name: \"a\", protocol: Tcp, listen: \"127.0.0.1:1\", upstream: \"h:1\", colour: 1)])",
                "t.ron:1:",
                "colour",
            ),
            (
                "(routes: [(name: \"a\", protocol: Tcp, listen: \"127.0.0.1:1\", upstream: \"h:1\")],\n faults: [(name: \"f\", route: \"a\", kind: Jitter(ms: 1))])",
                "t.ron:2:",
                "Jitter",
            ),
            (
                "(routes: [(name: \"a\", protocol: Tcp, listen: \"127.0.0.1:1\", upstream: \"h:1\")],\n faults: [(name: \"f\", route: \"a\",\n   probability: 1.5, kind: Latency(ms: 1))])",
                "t.ron:3:4:",
                "probability",
            ),
            (
                "(routes: [(name: \"a\", protocol: Tcp, listen: \"127.0.0.1:0\", upstream: \"h:1\")])",
                "t.ron:1:38:",
                "port 0",
            ),
            (
                "(routes: [(name: \"a\", protocol: Tcp, listen: \"127.0.0.1:1\", upstream: \"h:1\")],\n faults: [(name: \"f\", route: \"b\", kind: Latency(ms: 1))])",
                "t.ron:2:23:",
                "not defined",
            ),
            (
                "(routes: [(name: \"a\", protocol: Tcp, listen: \"127.0.0.1:1\", upstream: \"h:1\")],\n faults: [(name: \"f\", route: \"a\", kind: Latency(ms: -5))])",
                "t.ron:2:",
                "",
            ),
        ];
        for (text, place, word) in table {
            let problem = first_problem(text);
            assert!(
                problem.starts_with(place),
                "{problem} should start with {place}"
            );
            assert!(problem.contains(word), "{problem} should mention {word}");
        }
    }

    #[test]
    fn names_are_unique_across_files() {
        let route =
            "(routes: [(name: \"a\", protocol: Tcp, listen: \"127.0.0.1:1\", upstream: \"h:1\")])";
        let other = "(routes: [\n  (name: \"a\", protocol: Tcp, listen: \"127.0.0.1:2\", upstream: \"h:1\")])";
        let err = load_texts(
            &[
                (PathBuf::from("one.ron"), route.into()),
                (PathBuf::from("two.ron"), other.into()),
            ],
            LoadOptions::default(),
        )
        .expect_err("duplicate");
        assert_eq!(err.problems().len(), 1);
        assert!(
            err.problems()[0].to_string().starts_with("two.ron:2:4:"),
            "{err}"
        );
    }
}
