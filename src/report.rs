//! An error with all its causes on one line, for messages a person reads (logs, 502 bodies,
//! ctl's output): "cannot connect: tcp connect error: Connection refused (os error 111)".

/// `e` and each of its sources, joined by ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
