//! The server's side: its messages framed and read with `postgres-protocol`, and the few
//! messages the route writes in the server's place (error responses, the answer to an
//! `SSLRequest`).

use bytes::{BufMut, Bytes, BytesMut};
use postgres_protocol::message::backend::{self, Header};

/// The SQLSTATE of "cursor/portal does not exist", which the stand-in statements draw.
const INVALID_CURSOR: &str = "34000";

/// The portal and cursor name of the stand-in statements: a name no client uses, so the
/// server's error about it is known to be the route's own.
pub const STAND_IN: &str = "switchboard: injected fault";

/// The largest message a server sends: a row or a COPY chunk is at most 1 GiB.
const MAX_MESSAGE: usize = 1 << 30;

/// A server message: its tag and its bytes, header included.
#[derive(Debug)]
pub struct Message {
    pub tag: u8,
    pub raw: Bytes,
}

/// Takes the first whole server message off `buf`; an error for bytes that are not one.
pub fn next_message(buf: &mut BytesMut) -> std::io::Result<Option<Message>> {
    let Some(header) = Header::parse(buf)? else {
        return Ok(None);
    };
    let len = header.len() as usize + 1;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a server message {:?} of {len} bytes",
                char::from(header.tag())
            ),
        ));
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(Message {
        tag: header.tag(),
        raw: buf.split_to(len).freeze(),
    }))
}

/// The fields of an error response that tell errors apart.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
}

/// Reads an ErrorResponse's severity, code and message.
pub fn error_fields(raw: &Bytes) -> Option<ErrorFields> {
    let mut buf = BytesMut::from(&raw[..]);
    let Ok(Some(backend::Message::ErrorResponse(body))) = backend::Message::parse(&mut buf) else {
        return None;
    };
    let mut fields = ErrorFields::default();
    let mut iter = body.fields();
    while let Ok(Some(field)) = fallible_iterator::FallibleIterator::next(&mut iter) {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'V' => fields.severity = value,
            b'C' => fields.code = value,
            b'M' => fields.message = value,
            _ => {}
        }
    }
    Some(fields)
}

/// Whether `raw` is the server's error about the stand-in statement, and nothing else.
pub fn is_stand_in_error(raw: &Bytes) -> bool {
    error_fields(raw).is_some_and(|f| f.code == INVALID_CURSOR && f.message.contains(STAND_IN))
}

/// An ErrorResponse as PostgreSQL writes one: severity (localised and not), code, message.
pub fn error_response(severity: &str, code: &str, message: &str) -> Bytes {
    let fields = [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ];
    let len = 4 + fields.iter().map(|(_, v)| 2 + v.len()).sum::<usize>() + 1;
    let mut out = BytesMut::with_capacity(len + 1);
    out.put_u8(b'E');
    out.put_u32(len as u32);
    for (tag, value) in fields {
        out.put_u8(tag);
        out.put_slice(value.as_bytes());
        out.put_u8(0);
    }
    out.put_u8(0);
    out.freeze()
}

/// The answer to an SSLRequest or GSSENCRequest that the route does not take up.
pub const NO_ENCRYPTION: &[u8] = b"N";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_read_back() {
        let raw = error_response(
            "ERROR",
            "25006",
            "cannot execute INSERT in a read-only transaction",
        );
        let mut buf = BytesMut::from(&raw[..]);
        let message = next_message(&mut buf).unwrap().unwrap();
        assert_eq!(message.tag, b'E');
        let fields = error_fields(&message.raw).unwrap();
        assert_eq!(
            (fields.severity.as_str(), fields.code.as_str()),
            ("ERROR", "25006")
        );
        assert!(!is_stand_in_error(&message.raw));
        let ours = error_response(
            "ERROR",
            "34000",
            &format!("portal \"{STAND_IN}\" does not exist"),
        );
        assert!(is_stand_in_error(&ours));
    }
}
