//! Redis routes: bytes pass as on a TCP route, and faults can act on single commands. The
//! route reads RESP2 and RESP3 both ways (through `redis-protocol`), keeps track of the
//! connection's state (MULTI, subscriptions, HELLO, CLIENT REPLY), and merges the answers it
//! gives in the server's place into the reply stream in the order the commands came.
//!
//! A fault's `when` picks commands by name or ACL category (`command: ["SET", "@write"]`)
//! and by a glob on the first key (`key: "orders:*"`); Error, Nil, Delay and Drop act on
//! them, and every TCP kind acts on the connection as on a TCP route.

mod codec;
mod commands;
mod glob;
mod matcher;
mod replies;
mod session;
mod state;

pub use codec::{CodecError, Command, Reply, ReplyKind, next_command, next_reply};
pub use matcher::check_match;
pub use session::Session;
