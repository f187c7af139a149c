//! What Switchboard knows of Redis's commands: their ACL categories and where their first key
//! is, from the table Redis itself gives (`commands.txt`), so that `@write` means here what
//! it means to Redis's ACLs.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Redis's ACL categories, in the order of [`Categories`]' bits.
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// A set of ACL categories, one bit per entry of [`CATEGORIES`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Categories(u32);

impl Categories {
    /// The category named `name` (without the `@`), if Redis has one by that name.
    pub fn named(name: &str) -> Option<Categories> {
        CATEGORIES
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .map(|i| Categories(1 << i))
    }

    /// Whether every category of `other` is in `self`.
    pub fn contains(self, other: Categories) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One command of the table.
#[derive(Debug, Clone, Copy)]
struct Info {
    /// The argument holding the first key (the command name is argument 0); 0 for none.
    first_key: usize,
    /// The keys' places depend on the arguments (EVAL's numkeys, XREAD's STREAMS, ...).
    movable: bool,
    categories: Categories,
}

static TABLE: LazyLock<HashMap<String, Info>> =
    LazyLock::new(|| parse(include_str!("commands.txt")));

fn parse(text: &str) -> HashMap<String, Info> {
    let mut table = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split(' ');
        let (Some(name), Some(first_key), Some(movable)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mut categories = Categories::default();
        for c in fields.next().unwrap_or("").split(',') {
            if let Some(bit) = Categories::named(c) {
                categories.0 |= bit.0;
            }
        }
        table.insert(
            name.to_string(),
            Info {
                first_key: first_key.parse().unwrap_or(0),
                movable: movable == "movable",
                categories,
            },
        );
    }
    table
}

/// The table's entry for a command given its arguments: the subcommand's own entry where it
/// has one (`CONFIG SET`), else the command's.
fn info(args: &[&[u8]]) -> Option<Info> {
    let name = String::from_utf8_lossy(args.first()?).to_ascii_lowercase();
    if let Some(sub) = args.get(1) {
        let full = format!(
            "{name}|{}",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        );
        if let Some(info) = TABLE.get(&full) {
            return Some(*info);
        }
    }
    TABLE.get(&name).copied()
}

/// The ACL categories of the command `args` (empty for a command Redis 7.0 does not know,
/// a module's, say).
pub fn categories(args: &[&[u8]]) -> Categories {
    info(args).map(|i| i.categories).unwrap_or_default()
}

/// The command's first key, if it has one.
pub fn first_key<'a>(args: &[&'a [u8]]) -> Option<&'a [u8]> {
    let info = info(args)?;
    let at = if info.movable {
        movable_first_key(args)?
    } else {
        info.first_key
    };
    if at == 0 {
        return None;
    }
    args.get(at).copied()
}

/// Where the first key is for commands whose keys move with their arguments.
fn movable_first_key(args: &[&[u8]]) -> Option<usize> {
    let name = String::from_utf8_lossy(args.first()?).to_ascii_lowercase();
    let after_count = |count_at: usize| {
        let n: usize = std::str::from_utf8(args.get(count_at)?)
            .ok()?
            .parse()
            .ok()?;
        (n > 0).then_some(count_at + 1)
    };
    match name.as_str() {
        // EVAL script numkeys key ...; LMPOP numkeys key ...; ZUNION numkeys key ...
        "eval" | "eval_ro" | "evalsha" | "evalsha_ro" | "fcall" | "fcall_ro" => after_count(2),
        "lmpop" | "zmpop" | "sintercard" | "zintercard" | "zdiff" | "zinter" | "zunion" => {
            after_count(1)
        }
        // BLMPOP timeout numkeys key ...
        "blmpop" | "bzmpop" => after_count(2),
        "xread" | "xreadgroup" => args
            .iter()
            .position(|a| a.eq_ignore_ascii_case(b"streams"))
            .map(|i| i + 1),
        // MIGRATE host port key|"" db timeout ... [KEYS key ...]
        "migrate" => match args.get(3) {
            Some(key) if !key.is_empty() => Some(3),
            _ => args
                .iter()
                .position(|a| a.eq_ignore_ascii_case(b"keys"))
                .map(|i| i + 1),
        },
        // The rest (SORT, GEORADIUS, ZUNIONSTORE, ...) keep their first key in place.
        _ => info(args).map(|i| i.first_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<&[u8]> {
        line.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn categories_come_from_the_table() {
        let write = Categories::named("write").expect("write");
        let read = Categories::named("READ").expect("read");
        assert!(categories(&args("SET k v")).contains(write));
        assert!(categories(&args("get k")).contains(read));
        assert!(!categories(&args("GET k")).contains(write));
        assert!(
            categories(&args("CONFIG SET maxmemory 1"))
                .contains(Categories::named("admin").expect("admin"))
        );
        assert_eq!(categories(&args("JSON.SET k $ 1")), Categories::default());
        assert!(Categories::named("nope").is_none());
    }

    #[test]
    fn first_keys() {
        let table = [
            ("GET orders:1", Some("orders:1")),
            ("SET orders:1 v", Some("orders:1")),
            ("PING", None),
            ("OBJECT ENCODING orders:1", Some("orders:1")),
            ("EVAL return 2 orders:1 orders:2 a", Some("orders:1")),
            ("EVAL return 0 a", None),
            ("XREAD COUNT 1 STREAMS s1 s2 0 0", Some("s1")),
            ("BLMPOP 0 1 l1 LEFT", Some("l1")),
            ("ZUNION 2 z1 z2", Some("z1")),
            ("MIGRATE h 1 \"\" 0 5 KEYS k1 k2", Some("k1")),
            ("MIGRATE h 1 k0 0 5", Some("k0")),
            ("ZUNIONSTORE dst 2 a b", Some("dst")),
        ];
        for (line, want) in table {
            let mut a = args(line);
            if line.contains("\"\"") {
                a[3] = b"";
            }
            assert_eq!(first_key(&a), want.map(str::as_bytes), "{line}");
        }
    }
}
