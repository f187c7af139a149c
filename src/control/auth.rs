//! Who may call the control endpoint.

use std::net::SocketAddr;

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use super::ApiError;

/// The token policy of one control endpoint.
#[derive(Debug, Clone)]
pub struct Auth {
    token: Option<Vec<u8>>,
}

/// Why a control endpoint may not start as configured.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Anyone who can reach a non-loopback address could switch faults on.
    #[error(
        "the control endpoint would listen on {0}, which is not a loopback address; give a token \
         with --token-file or SWITCHBOARD_TOKEN, bind it to 127.0.0.1, or (on a private network \
         only) pass --insecure-no-token"
    )]
    TokenRequired(SocketAddr),
    /// An empty token would let anyone in.
    #[error("the control token is empty")]
    EmptyToken,
}

impl Auth {
    /// The policy for a control endpoint bound to `addr`: loopback needs no token, anything
    /// else must have one. A given token is always enforced.
    pub fn for_bind(addr: SocketAddr, token: Option<String>) -> Result<Self, AuthError> {
        let token = token.map(|t| t.trim().to_string());
        match token {
            Some(t) if t.is_empty() => Err(AuthError::EmptyToken),
            Some(t) => Ok(Auth {
                token: Some(t.into_bytes()),
            }),
            None if addr.ip().is_loopback() => Ok(Auth { token: None }),
            None => Err(AuthError::TokenRequired(addr)),
        }
    }

    /// No token required, wherever the endpoint listens: for a private network (a
    /// docker-compose project) where Toxiproxy's clients, which send no token, must reach it.
    pub fn open() -> Self {
        Auth { token: None }
    }

    /// Whether calls must carry a token.
    pub fn requires_token(&self) -> bool {
        self.token.is_some()
    }

    /// Checks `Authorization: Bearer <token>` when a token is set.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        match given {
            Some(given) if constant_time_eq(given.trim().as_bytes(), expected) => Ok(()),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// The credentials of a `Bearer` authorization; the scheme is case-insensitive (RFC 9110
/// §11.1), so `bearer` and `BEARER` are the same.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credentials)
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right. (The length is not secret.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let lo: SocketAddr = "127.0.0.1:8474".parse().expect("addr");
        let any: SocketAddr = "0.0.0.0:8474".parse().expect("addr");
        assert!(Auth::for_bind(lo, None).is_ok());
        assert!(matches!(
            Auth::for_bind(any, None),
            Err(AuthError::TokenRequired(_))
        ));
        assert!(matches!(
            Auth::for_bind(any, Some(" ".into())),
            Err(AuthError::EmptyToken)
        ));
        let auth = Auth::for_bind(any, Some("s3cret\n".into())).expect("token");
        let mut headers = HeaderMap::new();
        assert!(auth.check(&headers).is_err());
        headers.insert(AUTHORIZATION, "Bearer wrong!".parse().expect("header"));
        assert!(auth.check(&headers).is_err());
        headers.insert(AUTHORIZATION, "Bearer s3cret".parse().expect("header"));
        assert!(auth.check(&headers).is_ok());
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            let value = format!("{scheme} s3cret");
            headers.insert(AUTHORIZATION, value.parse().expect("header"));
            assert!(auth.check(&headers).is_ok(), "{scheme}");
        }
        headers.insert(AUTHORIZATION, "Basic s3cret".parse().expect("header"));
        assert!(auth.check(&headers).is_err());
    }
}
