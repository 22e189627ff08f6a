//! The command table: every command the proxy understands, with the argument layout that
//! decides where its keys are (spec §6.2, with the fixes of compatibility.md).
//!
//! Nutcracker 0.5.0 knows 137 command names. `MOVE` is dropped on purpose (nutcracker parsed it
//! and then closed the connection; we answer it like any unsupported command), which leaves the
//! 136 variants of [`Command`].

use std::sync::LazyLock;

/// How a command's arguments are laid out: where the keys are and how many arguments the proxy
/// needs before it can route the request.
///
/// Nutcracker enforced exact argument counts for many commands (its classes 0/1/2/3, spec §6.2),
/// closing the connection on `EXPIRE k 10 NX` or `ZRANK z m WITHSCORE` although redis accepts
/// them. We check only what routing needs (the key is present, pairs are complete, …) and forward
/// everything else: the backend then answers any remaining arity or syntax error with its own
/// exact text, for whatever redis version it runs. Whenever we do answer locally, the request is
/// one every redis version rejects with the same `wrong number of arguments` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArityClass {
    /// The first argument is the key; the rest is forwarded as is (nutcracker classes 0, 1, 2, 3
    /// and n). At least one argument.
    Key,
    /// The first two arguments are keys (`RPOPLPUSH src dst`, `LMOVE`, `SMOVE`, `COPY`,
    /// `GEOSEARCHSTORE`, `ZRANGESTORE`); routed by the first. At least one argument.
    TwoKeys,
    /// Every argument is a key, sent whole to the first key's server (`SDIFF`, `SINTERSTORE`,
    /// `PFCOUNT`, `PFMERGE`, …). At least one argument.
    AllKeys,
    /// Every argument is a key and the request is split per server (`MGET`, `DEL`, `UNLINK`,
    /// `TOUCH`, `EXISTS`; nutcracker class x). At least one argument.
    MultiKey,
    /// Key/value pairs, split per server (`MSET`; class kv). A positive even number of arguments.
    KeyValue,
    /// `EVAL script numkeys key… arg…` / `EVALSHA`. At least two arguments. Routed by the first
    /// key; when there is no usable key (`numkeys` is 0, not a number, negative or larger than
    /// the number of arguments) the request goes to the `placeholder` server: redis runs
    /// key-less scripts, and rejects the malformed ones itself, with its own text, before
    /// touching any data.
    Eval,
    /// `numkeys key…` (`ZDIFF`, `ZINTER`, `ZUNION`): routed by the first real key, the second
    /// argument (nutcracker hashed the numkeys string instead). At least two arguments.
    NumKeys,
    /// `dest numkeys key…` (`ZDIFFSTORE`, `ZINTERSTORE`, `ZUNIONSTORE`): routed by `dest`.
    /// At least one argument.
    DestNumKeys,
    /// No key, any arguments: sent to the `placeholder` server (`COMMAND`, `LOLWUT`).
    /// Nutcracker accepted only a bare `COMMAND`; every `COMMAND` form is read-only and
    /// server-independent, so we forward them all (`COMMAND COUNT`, `COMMAND INFO get`, …).
    Keyless,
    /// Answered by the proxy itself (`PING`, `ECHO`, `QUIT`, `AUTH`); see [`Command::is_local`].
    Local,
}

/// How the replies of a request split across servers are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fragmentation {
    /// `MGET`: one array, elements in request order.
    Mget,
    /// `DEL`, `UNLINK`, `TOUCH`, `EXISTS`: the integer replies summed. (Nutcracker sent
    /// multi-key `EXISTS` whole to the first key's server; we split and sum it like `DEL`.)
    Sum,
    /// `MSET`: every fragment answers a status; the client gets `+OK`.
    Mset,
}

macro_rules! commands {
    ($($variant:ident $name:literal $class:ident,)*) => {
        /// A command the proxy supports. Names are matched case-insensitively.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Command {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        /// Every command, sorted by name (for the binary search of [`Command::from_name`]).
        pub const ALL: &[Command] = &[$(Command::$variant,)*];

        impl Command {
            /// The command's name in lower case, as redis spells it in its error messages and
            /// as nutcracker writes it in fragment sub-requests (`mget`, `del`, …).
            pub fn name(self) -> &'static str {
                match self {
                    $(Command::$variant => $name,)*
                }
            }

            /// The argument layout of the command.
            pub fn class(self) -> ArityClass {
                match self {
                    $(Command::$variant => ArityClass::$class,)*
                }
            }
        }
    };
}

// Alphabetical by name; a test checks the order.
commands! {
    Append "append" Key,
    Auth "auth" Local,
    Bitcount "bitcount" Key,
    Bitfield "bitfield" Key,
    Bitpos "bitpos" Key,
    Command "command" Keyless,
    Copy "copy" TwoKeys,
    Decr "decr" Key,
    Decrby "decrby" Key,
    Del "del" MultiKey,
    Dump "dump" Key,
    Echo "echo" Local,
    Eval "eval" Eval,
    Evalsha "evalsha" Eval,
    Exists "exists" MultiKey,
    Expire "expire" Key,
    Expireat "expireat" Key,
    Geoadd "geoadd" Key,
    Geodist "geodist" Key,
    Geohash "geohash" Key,
    Geopos "geopos" Key,
    Georadius "georadius" Key,
    Georadiusbymember "georadiusbymember" Key,
    Geosearch "geosearch" Key,
    Geosearchstore "geosearchstore" TwoKeys,
    Get "get" Key,
    Getbit "getbit" Key,
    Getdel "getdel" Key,
    Getex "getex" Key,
    Getrange "getrange" Key,
    Getset "getset" Key,
    Hdel "hdel" Key,
    Hexists "hexists" Key,
    Hget "hget" Key,
    Hgetall "hgetall" Key,
    Hincrby "hincrby" Key,
    Hincrbyfloat "hincrbyfloat" Key,
    Hkeys "hkeys" Key,
    Hlen "hlen" Key,
    Hmget "hmget" Key,
    Hmset "hmset" Key,
    Hrandfield "hrandfield" Key,
    Hscan "hscan" Key,
    Hset "hset" Key,
    Hsetnx "hsetnx" Key,
    Hstrlen "hstrlen" Key,
    Hvals "hvals" Key,
    Incr "incr" Key,
    Incrby "incrby" Key,
    Incrbyfloat "incrbyfloat" Key,
    Lindex "lindex" Key,
    Linsert "linsert" Key,
    Llen "llen" Key,
    Lmove "lmove" TwoKeys,
    Lolwut "lolwut" Keyless,
    Lpop "lpop" Key,
    Lpos "lpos" Key,
    Lpush "lpush" Key,
    Lpushx "lpushx" Key,
    Lrange "lrange" Key,
    Lrem "lrem" Key,
    Lset "lset" Key,
    Ltrim "ltrim" Key,
    Mget "mget" MultiKey,
    Mset "mset" KeyValue,
    Persist "persist" Key,
    Pexpire "pexpire" Key,
    Pexpireat "pexpireat" Key,
    Pfadd "pfadd" Key,
    Pfcount "pfcount" AllKeys,
    Pfmerge "pfmerge" AllKeys,
    Ping "ping" Local,
    Psetex "psetex" Key,
    Pttl "pttl" Key,
    Quit "quit" Local,
    Restore "restore" Key,
    Rpop "rpop" Key,
    Rpoplpush "rpoplpush" TwoKeys,
    Rpush "rpush" Key,
    Rpushx "rpushx" Key,
    Sadd "sadd" Key,
    Scard "scard" Key,
    Sdiff "sdiff" AllKeys,
    Sdiffstore "sdiffstore" AllKeys,
    Set "set" Key,
    Setbit "setbit" Key,
    Setex "setex" Key,
    Setnx "setnx" Key,
    Setrange "setrange" Key,
    Sinter "sinter" AllKeys,
    Sinterstore "sinterstore" AllKeys,
    Sismember "sismember" Key,
    Smembers "smembers" Key,
    Smismember "smismember" Key,
    Smove "smove" TwoKeys,
    Sort "sort" Key,
    Spop "spop" Key,
    Srandmember "srandmember" Key,
    Srem "srem" Key,
    Sscan "sscan" Key,
    Strlen "strlen" Key,
    Sunion "sunion" AllKeys,
    Sunionstore "sunionstore" AllKeys,
    Touch "touch" MultiKey,
    Ttl "ttl" Key,
    Type "type" Key,
    Unlink "unlink" MultiKey,
    Zadd "zadd" Key,
    Zcard "zcard" Key,
    Zcount "zcount" Key,
    Zdiff "zdiff" NumKeys,
    Zdiffstore "zdiffstore" DestNumKeys,
    Zincrby "zincrby" Key,
    Zinter "zinter" NumKeys,
    Zinterstore "zinterstore" DestNumKeys,
    Zlexcount "zlexcount" Key,
    Zmscore "zmscore" Key,
    Zpopmax "zpopmax" Key,
    Zpopmin "zpopmin" Key,
    Zrandmember "zrandmember" Key,
    Zrange "zrange" Key,
    Zrangebylex "zrangebylex" Key,
    Zrangebyscore "zrangebyscore" Key,
    Zrangestore "zrangestore" TwoKeys,
    Zrank "zrank" Key,
    Zrem "zrem" Key,
    Zremrangebylex "zremrangebylex" Key,
    Zremrangebyrank "zremrangebyrank" Key,
    Zremrangebyscore "zremrangebyscore" Key,
    Zrevrange "zrevrange" Key,
    Zrevrangebylex "zrevrangebylex" Key,
    Zrevrangebyscore "zrevrangebyscore" Key,
    Zrevrank "zrevrank" Key,
    Zscan "zscan" Key,
    Zscore "zscore" Key,
    Zunion "zunion" NumKeys,
    Zunionstore "zunionstore" DestNumKeys,
}

/// A command name in lower case, zero-padded to 24 bytes, as three big-endian words (longer
/// than any name, so a longer one is not a command).
type Packed = (u64, u64, u64);

fn pack(name: &[u8]) -> Option<Packed> {
    let mut bytes = [0u8; 24];
    bytes.get_mut(..name.len())?;
    for (to, from) in bytes.iter_mut().zip(name) {
        *to = from.to_ascii_lowercase();
    }
    let word = |i: usize| {
        let chunk = bytes.get(i * 8..i * 8 + 8).unwrap_or_default();
        u64::from_be_bytes(chunk.try_into().unwrap_or_default())
    };
    Some((word(0), word(1), word(2)))
}

impl Command {
    /// Looks a command up by name, ignoring ASCII case. `None` for commands the proxy does not
    /// support, including ones redis has (`KEYS`, `SCAN`, `MULTI`, `SELECT`, `MOVE`, …).
    pub fn from_name(name: &[u8]) -> Option<Command> {
        // This runs for every request. A binary search over names packed into words costs
        // ~225 instructions (callgrind); comparing byte slices through a lower-casing iterator
        // cost ~450.
        static PACKED: LazyLock<Box<[Packed]>> = LazyLock::new(|| {
            ALL.iter()
                .filter_map(|c| pack(c.name().as_bytes()))
                .collect()
        });
        let packed = pack(name)?;
        // Zero padding keeps byte order, so `ALL` (sorted by name) is sorted by packed name too.
        let i = PACKED.binary_search(&packed).ok()?;
        // A name with trailing NULs packs like the name without them.
        ALL.get(i).copied().filter(|c| c.name().len() == name.len())
    }

    /// How the replies of a split request merge, for the commands the proxy splits per server.
    pub fn fragmentation(self) -> Option<Fragmentation> {
        match self {
            Command::Mget => Some(Fragmentation::Mget),
            Command::Del | Command::Unlink | Command::Touch | Command::Exists => {
                Some(Fragmentation::Sum)
            }
            Command::Mset => Some(Fragmentation::Mset),
            _ => None,
        }
    }

    /// Answered by the proxy, never forwarded: `PING` (`+PONG`, or the argument echoed),
    /// `QUIT` (`+OK`, then close), `AUTH` (checked against the pool's `redis_auth`).
    pub fn is_local(self) -> bool {
        self.class() == ArityClass::Local
    }

    /// Sent to the `placeholder` server when it carries no usable key (`COMMAND`, `LOLWUT`,
    /// and `EVAL`/`EVALSHA` without keys).
    pub fn is_keyless(self) -> bool {
        self.class() == ArityClass::Keyless
    }
}
