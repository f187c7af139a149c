//! Property tests of the rules loader: whatever text a file holds, loading it answers (never
//! panics), and every problem points inside the file. CI runs a bounded number of cases; a
//! long run: `PROPTEST_CASES=200000 cargo test --lib proptests`.

use std::path::PathBuf;

use proptest::prelude::*;

use super::{LoadOptions, load_texts};

static EXAMPLES: [&str; 3] = [
    include_str!("../../rules/web.ron"),
    include_str!("../../rules/redis.ron"),
    include_str!("../../rules/shop/shop.ron"),
];

/// Loads `text` as one file; checks every problem is placed within it.
fn load_checked(text: &str) -> Result<(), TestCaseError> {
    let lines = text.lines().count().max(1) + 1;
    if let Err(e) = load_texts(
        &[(PathBuf::from("p.ron"), text.to_string())],
        LoadOptions::default(),
    ) {
        for p in e.problems() {
            prop_assert!(
                p.line <= lines,
                "line {} past the end ({lines}): {p}",
                p.line
            );
            prop_assert!(!p.message.is_empty());
        }
    }
    Ok(())
}

/// One of `examples` with a span replaced by arbitrary text: mostly near-valid input, which
/// reaches deeper into validation than random bytes do. Shared with the drill tests.
pub(crate) fn mutated(examples: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        0..examples.len(),
        any::<prop::sample::Index>(),
        0usize..40,
        ".{0,12}",
    )
        .prop_map(move |(which, at, len, insert)| {
            let text = examples[which];
            let mut start = at.index(text.len().max(1)).min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}{insert}{}", &text[..start], &text[end..])
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        load_checked(&text)?;
    }

    #[test]
    fn mutated_examples_never_panic(text in mutated(&EXAMPLES)) {
        load_checked(&text)?;
    }

    /// Numbers anywhere a number goes: huge, negative, fractional.
    #[test]
    fn any_fault_parameter_is_judged(ms in any::<i128>(), p in any::<f64>(), n in any::<u64>()) {
        let text = format!(
            r#"(routes: [(name: "r", protocol: Tcp, listen: "127.0.0.1:9", upstream: "h:1")],
               faults: [(name: "a", route: "r", probability: {p:?}, kind: Latency(ms: {ms}, jitter_ms: {n})),
                        (name: "b", route: "r", kind: Bandwidth(bytes_per_sec: {ms})),
                        (name: "c", route: "r", kind: Slicer(avg_bytes: {n}, variation_bytes: {ms}, delay_us: {n}))])"#
        );
        load_checked(&text)?;
    }
}
