//! PostgreSQL routes: bytes pass as on a TCP route, and faults can act on single statements
//! and on startup. The route reads the frontend/backend protocol (v3) both ways: the
//! startup packets, the simple and the extended query protocol, and the server's answers,
//! attributed to the messages that asked for them. Authentication, COPY data, notifications
//! and cancel requests pass through untouched.
//!
//! A fault's `when` picks statements by first keyword or category
//! (`statement: ["INSERT", "@write"]`), by a regular expression on the text (`matches`), and by
//! the startup's `database` and `user`; SqlError, Shutdown, Reject, Delay and Drop act on
//! them, and every TCP kind acts on the connection as on a TCP route.

mod backend;
mod decide;
mod frontend;
mod matcher;
mod replies;
mod session;
mod sql;
mod tls;

pub use matcher::check_match;
pub use session::Session;
pub use tls::negotiate;
