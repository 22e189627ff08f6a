//! The redis data plane, wire level: one table of (request bytes → reply
//! bytes) run against several topologies over real redis-server, and
//! differentially against nutcracker 0.5.0.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::conn::{Conn, Target};
use common::{resp, show, Flavor, Proxy, Redis, RedisUnix};

/// The pool password of the `redis_auth` topologies.
const PASSWORD: &str = "sekret";

/// Which pools a case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pools {
    /// Every pool; in pools with `redis_auth` the connection authenticates first.
    Any,
    /// Only pools without `redis_auth`.
    Open,
    /// Only pools with `redis_auth`, starting unauthenticated.
    Auth,
}

/// One table row.
struct Case {
    name: String,
    request: Vec<u8>,
    /// Expected reply; `<num>` matches a run of digits, `<line>` the rest of a
    /// line, `<bulk>` one bulk string, `<any>` anything (shortest first).
    reply: Vec<u8>,
    /// nutcracker 0.5.0 answers differently on purpose (COMPATIBILITY.md).
    fixed: bool,
    pools: Pools,
}

impl Case {
    fn fixed(mut self) -> Case {
        self.fixed = true;
        self
    }

    fn only(mut self, pools: Pools) -> Case {
        self.pools = pools;
        self
    }
}

fn case(name: &str, request: Vec<u8>, reply: &[u8]) -> Case {
    Case {
        name: name.to_string(),
        request,
        reply: reply.to_vec(),
        fixed: false,
        pools: Pools::Any,
    }
}

/// Commands separated by `;`, arguments by spaces, as multi-bulk requests.
fn s(commands: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for command in commands.split(';') {
        let args: Vec<&[u8]> = command.split_whitespace().map(str::as_bytes).collect();
        out.extend_from_slice(&resp(&args));
    }
    out
}

/// Commands given argument by argument (arguments with spaces or binary bytes).
fn m(commands: &[&[&[u8]]]) -> Vec<u8> {
    commands.iter().flat_map(|c| resp(c)).collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `-ERR unknown command '<name>', with args beginning with: '<a>' … ` (redis 7.0).
fn unknown(name: &str, args: &[&str]) -> Vec<u8> {
    let mut out = format!("-ERR unknown command '{name}', with args beginning with: ");
    for a in args {
        out.push_str(&format!("'{a}' "));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn arity(name: &str) -> Vec<u8> {
    format!("-ERR wrong number of arguments for '{name}' command\r\n").into_bytes()
}

const NOAUTH: &[u8] = b"-NOAUTH Authentication required\r\n";
const WRONGTYPE: &[u8] = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

/// A DUMP of the string "hello" from redis 7.0 (RDB version 10).
const DUMP_HELLO: &[u8] = b"\x00\x05hello\x0a\x00cr\xdfve4 \n";
/// `return redis.call('get', KEYS[1])` and its SHA1.
const GET_SCRIPT: &str = "return redis.call('get', KEYS[1])";
const GET_SCRIPT_SHA: &str = "4e6d8fc8bb01276962cce5371fa795a7763657ae";

fn cases() -> Vec<Case> {
    let mut t = vec![
        // connection, answered by the proxy
        case("PING", s("PING"), b"+PONG\r\n"),
        case("ping lower case", s("ping;pInG"), b"+PONG\r\n+PONG\r\n"),
        case("PING in a pipeline keeps its place", s("SET k v;PING;GET k;PING"), b"+OK\r\n+PONG\r\n$1\r\nv\r\n+PONG\r\n"),
        case("PING with a message", s("PING hello"), b"$5\r\nhello\r\n").fixed(),
        case("ECHO answered locally", s("ECHO hi;ECHO"), &cat(&[b"$2\r\nhi\r\n", &arity("echo")])).fixed(),
        case("PING with two arguments", s("PING a b;PING"), &cat(&[&arity("ping"), b"+PONG\r\n"])).fixed(),
        case("QUIT", s("SET k v;QUIT;GET k"), b"+OK\r\n+OK\r\n").fixed(),
        case("QUIT after a read", s("GET nokey;QUIT"), b"$-1\r\n+OK\r\n").fixed(),
        case("AUTH without redis_auth", s("AUTH x;PING"), b"-ERR Client sent AUTH, but no password is set\r\n+PONG\r\n").only(Pools::Open),
        case("AUTH user pass without redis_auth", s("AUTH u x;PING"), b"-ERR Client sent AUTH, but no password is set\r\n+PONG\r\n").only(Pools::Open).fixed(),
        case("AUTH with three arguments", s("AUTH a b c;PING"), b"-ERR syntax error\r\n+PONG\r\n").only(Pools::Open).fixed(),
        case("AUTH without arguments", s("AUTH;PING"), &cat(&[&arity("auth"), b"+PONG\r\n"])).only(Pools::Open).fixed(),
        // AUTH flows in a pool with redis_auth (spec §6.4)
        case(
            "AUTH sequence",
            s("PING;GET a;AUTH bad;GET a;AUTH sekret;SET a v;GET a;PING;AUTH bad;GET a"),
            &cat(&[NOAUTH, NOAUTH, b"-ERR invalid password\r\n", NOAUTH, b"+OK\r\n+OK\r\n$1\r\nv\r\n+PONG\r\n-ERR invalid password\r\n", NOAUTH]),
        ).only(Pools::Auth),
        case("NOAUTH for split commands", s("MGET a b c;DEL a b;MSET a 1 b 2"), &cat(&[NOAUTH, NOAUTH, NOAUTH])).only(Pools::Auth),
        case("AUTH then split commands", s("AUTH sekret;MSET a 1 b 2 c 3;MGET a b c x;DEL a b c x"), b"+OK\r\n+OK\r\n*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$-1\r\n:3\r\n").only(Pools::Auth),
        case("AUTH twice", s("AUTH sekret;AUTH sekret;PING"), b"+OK\r\n+OK\r\n+PONG\r\n").only(Pools::Auth),
        case("AUTH with a user name", s("AUTH default sekret;PING"), b"+OK\r\n+PONG\r\n").only(Pools::Auth).fixed(),
        case("QUIT before AUTH", s("QUIT;PING"), b"+OK\r\n").only(Pools::Auth).fixed(),
        // strings
        case("SET GET", s("SET k v;GET k"), b"+OK\r\n$1\r\nv\r\n"),
        case("GET miss", s("GET nokey"), b"$-1\r\n"),
        case("SET EX and TTL", s("SET k v EX 100;TTL k"), b"+OK\r\n:<num>\r\n"),
        case("SET PX and PTTL", s("SET k v PX 100000;PTTL k"), b"+OK\r\n:<num>\r\n"),
        case("SET NX on a hit", s("SET k v;SET k w NX;GET k"), b"+OK\r\n$-1\r\n$1\r\nv\r\n"),
        case("SET XX on a miss", s("SET k v XX;GET k"), b"$-1\r\n$-1\r\n"),
        case("SET GET option", s("SET k v;SET k w GET;GET k"), b"+OK\r\n$1\r\nv\r\n$1\r\nw\r\n"),
        case("SET KEEPTTL", s("SET k v EX 100;SET k w KEEPTTL;TTL k"), b"+OK\r\n+OK\r\n:<num>\r\n"),
        case("SET syntax error passed through", s("SET k v BOGUS"), b"-ERR syntax error\r\n"),
        case("SETNX", s("SETNX k v;SETNX k w;GET k"), b":1\r\n:0\r\n$1\r\nv\r\n"),
        case("SETEX", s("SETEX k 100 v;TTL k;GET k"), b"+OK\r\n:<num>\r\n$1\r\nv\r\n"),
        case("PSETEX", s("PSETEX k 100000 v;GET k"), b"+OK\r\n$1\r\nv\r\n"),
        case("GETSET", s("SET k v;GETSET k w;GET k"), b"+OK\r\n$1\r\nv\r\n$1\r\nw\r\n"),
        case("GETDEL", s("SET k v;GETDEL k;GET k;GETDEL k"), b"+OK\r\n$1\r\nv\r\n$-1\r\n$-1\r\n"),
        case("GETEX EX", s("SET k v;GETEX k EX 100;TTL k"), b"+OK\r\n$1\r\nv\r\n:<num>\r\n"),
        case("GETEX PERSIST", s("SET k v EX 100;GETEX k PERSIST;TTL k"), b"+OK\r\n$1\r\nv\r\n:-1\r\n"),
        case("APPEND STRLEN", s("APPEND k ab;APPEND k cd;STRLEN k;STRLEN nokey"), b":2\r\n:4\r\n:4\r\n:0\r\n"),
        case("GETRANGE", s("SET k hello;GETRANGE k 1 3"), b"+OK\r\n$3\r\nell\r\n"),
        case("SETRANGE", s("SET k hello;SETRANGE k 1 ipp;GET k"), b"+OK\r\n:5\r\n$5\r\nhippo\r\n"),
        case("INCR DECR", s("INCR n;INCR n;DECR n;DECR m"), b":1\r\n:2\r\n:1\r\n:-1\r\n"),
        case("INCRBY DECRBY", s("INCRBY n 10;DECRBY n 3"), b":10\r\n:7\r\n"),
        case("INCRBYFLOAT", s("SET n 1;INCRBYFLOAT n 1.5"), b"+OK\r\n$3\r\n2.5\r\n"),
        case("INCR not an integer", s("SET n x;INCR n"), b"+OK\r\n-ERR value is not an integer or out of range\r\n"),
        case("SETBIT GETBIT", s("SETBIT b 7 1;GETBIT b 7;GETBIT b 100"), b":0\r\n:1\r\n:0\r\n"),
        case("BITCOUNT", s("SET b foobar;BITCOUNT b;BITCOUNT b 1 1"), b"+OK\r\n:26\r\n:6\r\n"),
        case("BITPOS bit", m(&[&[b"SET", b"b", b"\xff\xf0\x00"], &[b"BITPOS", b"b", b"0"]]), b"+OK\r\n:12\r\n"),
        case("BITFIELD", s("BITFIELD bf SET u8 0 200 GET u8 0 INCRBY u8 0 100"), b"*3\r\n:0\r\n:200\r\n:44\r\n"),
        case("wrong type passed through", s("HSET h f v;LPUSH h x"), &cat(&[b":1\r\n", WRONGTYPE])),
        case("empty key", m(&[&[b"SET", b"", b"v"], &[b"GET", b""]]), b"+OK\r\n$1\r\nv\r\n"),
        case("empty value", m(&[&[b"SET", b"k", b""], &[b"GET", b"k"]]), b"+OK\r\n$0\r\n\r\n"),
        case("binary value", m(&[&[b"SET", b"k", b"a\r\nb\x00\xff\r\n"], &[b"GET", b"k"]]), b"+OK\r\n$8\r\na\r\nb\x00\xff\r\n\r\n"),
        case("binary key", m(&[&[b"SET", b"k\r\n\x00\xff", b"v"], &[b"GET", b"k\r\n\x00\xff"]]), b"+OK\r\n$1\r\nv\r\n"),
        case("value that looks like a reply", m(&[&[b"SET", b"k", b"+OK\r\n$-1\r\n"], &[b"GET", b"k"]]), b"+OK\r\n$10\r\n+OK\r\n$-1\r\n\r\n"),
        case("mixed case command", s("sEt k v;gEt k"), b"+OK\r\n$1\r\nv\r\n"),
        case("GET with two keys goes to redis", s("GET a b;PING"), &cat(&[&arity("get"), b"+PONG\r\n"])).fixed(),
        case("GET without a key", s("GET;PING"), &cat(&[&arity("get"), b"+PONG\r\n"])).fixed(),
        // keys
        case("DEL one", s("SET k v;DEL k;GET k"), b"+OK\r\n:1\r\n$-1\r\n"),
        case("DEL miss", s("DEL nokey"), b":0\r\n"),
        case("UNLINK one", s("SET k v;UNLINK k;UNLINK k"), b"+OK\r\n:1\r\n:0\r\n"),
        case("TOUCH one", s("SET k v;TOUCH k;TOUCH nokey"), b"+OK\r\n:1\r\n:0\r\n"),
        case("EXISTS one", s("SET k v;EXISTS k;EXISTS nokey"), b"+OK\r\n:1\r\n:0\r\n"),
        case("EXPIRE TTL", s("SET k v;EXPIRE k 100;TTL k;TTL nokey"), b"+OK\r\n:1\r\n:<num>\r\n:-2\r\n"),
        case("TTL without expiry", s("SET k v;TTL k;PTTL k"), b"+OK\r\n:-1\r\n:-1\r\n"),
        case("EXPIREAT", s("SET k v;EXPIREAT k 4102444800;TTL k"), b"+OK\r\n:1\r\n:<num>\r\n"),
        case("EXPIREAT in the past", s("SET k v;EXPIREAT k 1;GET k"), b"+OK\r\n:1\r\n$-1\r\n"),
        case("PEXPIRE PTTL", s("SET k v;PEXPIRE k 100000;PTTL k"), b"+OK\r\n:1\r\n:<num>\r\n"),
        case("PEXPIREAT", s("SET k v;PEXPIREAT k 4102444800000;PTTL k"), b"+OK\r\n:1\r\n:<num>\r\n"),
        case("PERSIST", s("SET k v EX 100;PERSIST k;TTL k;PERSIST k"), b"+OK\r\n:1\r\n:-1\r\n:0\r\n"),
        case("EXPIRE with NX (redis 7)", s("SET k v;EXPIRE k 100 NX;EXPIRE k 100 NX"), b"+OK\r\n:1\r\n:0\r\n").fixed(),
        case("TYPE", s("SET s v;LPUSH l x;HSET h f v;SADD t m;ZADD z 1 m;TYPE s;TYPE l;TYPE h;TYPE t;TYPE z;TYPE nokey"),
            b"+OK\r\n:1\r\n:1\r\n:1\r\n:1\r\n+string\r\n+list\r\n+hash\r\n+set\r\n+zset\r\n+none\r\n"),
        case("DUMP", s("SET k hello;DUMP k;DUMP nokey"), &cat(&[b"+OK\r\n$17\r\n", DUMP_HELLO, b"\r\n$-1\r\n"])),
        case("RESTORE", m(&[&[b"RESTORE", b"k", b"0", DUMP_HELLO], &[b"GET", b"k"]]), b"+OK\r\n$5\r\nhello\r\n"),
        case("RESTORE onto a key", m(&[&[b"SET", b"k", b"v"], &[b"RESTORE", b"k", b"0", DUMP_HELLO]]), b"+OK\r\n-BUSYKEY Target key name already exists.\r\n"),
        case("SORT", s("RPUSH l 3 1 2;SORT l;SORT l DESC LIMIT 0 2"), b":3\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n"),
        case("SORT ALPHA STORE", s("RPUSH {t}l b c a;SORT {t}l ALPHA STORE {t}d;LRANGE {t}d 0 -1"), b":3\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        case("COPY", s("SET {t}a v;COPY {t}a {t}b;GET {t}b;COPY {t}a {t}b"), b"+OK\r\n:1\r\n$1\r\nv\r\n:0\r\n"),
        case("COPY REPLACE", s("SET {t}a v;SET {t}b w;COPY {t}a {t}b REPLACE;GET {t}b"), b"+OK\r\n+OK\r\n:1\r\n$1\r\nv\r\n"),
        // hashes
        case("HSET HGET", s("HSET h f v g w;HGET h f;HGET h nofield;HGET nokey f"), b":2\r\n$1\r\nv\r\n$-1\r\n$-1\r\n"),
        case("HGETALL", s("HSET h f v g w;HGETALL h;HGETALL nokey"), b":2\r\n*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n*0\r\n"),
        case("HMSET HMGET", s("HMSET h a 1 b 2;HMGET h a x b"), b"+OK\r\n*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"),
        case("HDEL HEXISTS", s("HSET h a 1 b 2;HDEL h a x;HEXISTS h a;HEXISTS h b"), b":2\r\n:1\r\n:0\r\n:1\r\n"),
        case("HINCRBY", s("HINCRBY h n 5;HINCRBY h n -2"), b":5\r\n:3\r\n"),
        case("HINCRBYFLOAT", s("HINCRBYFLOAT h n 1.25"), b"$4\r\n1.25\r\n"),
        case("HKEYS HVALS HLEN", s("HSET h a 1 b 2;HKEYS h;HVALS h;HLEN h"), b":2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n:2\r\n"),
        case("HSETNX", s("HSETNX h f v;HSETNX h f w;HGET h f"), b":1\r\n:0\r\n$1\r\nv\r\n"),
        case("HSTRLEN", s("HSET h f hello;HSTRLEN h f;HSTRLEN h x"), b":1\r\n:5\r\n:0\r\n"),
        case("HRANDFIELD", s("HSET h f v;HRANDFIELD h;HRANDFIELD h 1 WITHVALUES;HRANDFIELD nokey"), b":1\r\n$1\r\nf\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n$-1\r\n"),
        case("HSCAN", s("HSET h f v g w;HSCAN h 0"), b":2\r\n*2\r\n$1\r\n0\r\n*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n"),
        case("HGET arity passed through", s("HGET h f x"), &arity("hget")).fixed(),
        // lists
        case("LPUSH RPUSH LRANGE", s("LPUSH l b a;RPUSH l c;LRANGE l 0 -1"), b":2\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        case("LPOP RPOP", s("RPUSH l a b c;LPOP l;RPOP l;RPOP nokey"), b":3\r\n$1\r\na\r\n$1\r\nc\r\n$-1\r\n"),
        case("LPOP count", s("RPUSH l a b c;LPOP l 2;RPOP l 5"), b":3\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$1\r\nc\r\n"),
        case("LINDEX LLEN", s("RPUSH l a b;LINDEX l 1;LINDEX l 5;LLEN l;LLEN nokey"), b":2\r\n$1\r\nb\r\n$-1\r\n:2\r\n:0\r\n"),
        case("LINSERT", s("RPUSH l a c;LINSERT l BEFORE c b;LRANGE l 0 -1"), b":2\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        case("LMOVE", s("RPUSH {t}a 1 2;LMOVE {t}a {t}b LEFT RIGHT;LRANGE {t}b 0 -1"), b":2\r\n$1\r\n1\r\n*1\r\n$1\r\n1\r\n"),
        case("LPOS", s("RPUSH l a b c b;LPOS l b;LPOS l b RANK 2;LPOS l b COUNT 0;LPOS l z"), b":4\r\n:1\r\n:3\r\n*2\r\n:1\r\n:3\r\n$-1\r\n"),
        case("LPUSHX RPUSHX", s("LPUSHX l a;RPUSH l b;LPUSHX l a;RPUSHX l c;LRANGE l 0 -1"), b":0\r\n:1\r\n:2\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        case("LREM", s("RPUSH l a b a;LREM l 0 a;LLEN l"), b":3\r\n:2\r\n:1\r\n"),
        case("LSET", s("RPUSH l a;LSET l 0 b;LINDEX l 0;LSET l 5 c"), b":1\r\n+OK\r\n$1\r\nb\r\n-ERR index out of range\r\n"),
        case("LTRIM", s("RPUSH l a b c;LTRIM l 1 1;LRANGE l 0 -1"), b":3\r\n+OK\r\n*1\r\n$1\r\nb\r\n"),
        case("RPOPLPUSH", s("RPUSH {t}a 1 2;RPOPLPUSH {t}a {t}b;LRANGE {t}b 0 -1"), b":2\r\n$1\r\n2\r\n*1\r\n$1\r\n2\r\n"),
        case("LRANGE miss", s("LRANGE nokey 0 -1"), b"*0\r\n"),
        // sets (integer members: ordered replies)
        case("SADD SCARD SMEMBERS", s("SADD t 3 1 2 1;SCARD t;SMEMBERS t"), b":3\r\n:3\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"),
        case("SISMEMBER SMISMEMBER", s("SADD t 1 2;SISMEMBER t 1;SISMEMBER t 5;SMISMEMBER t 1 5 2"), b":2\r\n:1\r\n:0\r\n*3\r\n:1\r\n:0\r\n:1\r\n"),
        case("SDIFF SINTER SUNION", s("SADD {t}a 1 2 3;SADD {t}b 2 3 4;SDIFF {t}a {t}b;SINTER {t}a {t}b;SUNION {t}a {t}b"),
            b":3\r\n:3\r\n*1\r\n$1\r\n1\r\n*2\r\n$1\r\n2\r\n$1\r\n3\r\n*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n"),
        case("SDIFFSTORE SINTERSTORE SUNIONSTORE", s("SADD {t}a 1 2 3;SADD {t}b 2 3 4;SDIFFSTORE {t}d {t}a {t}b;SINTERSTORE {t}i {t}a {t}b;SUNIONSTORE {t}u {t}a {t}b;SMEMBERS {t}i"),
            b":3\r\n:3\r\n:1\r\n:2\r\n:4\r\n*2\r\n$1\r\n2\r\n$1\r\n3\r\n"),
        case("SMOVE", s("SADD {t}a 1;SMOVE {t}a {t}b 1;SMEMBERS {t}b;SCARD {t}a"), b":1\r\n:1\r\n*1\r\n$1\r\n1\r\n:0\r\n"),
        case("SPOP SRANDMEMBER", s("SADD t 7;SRANDMEMBER t;SRANDMEMBER t 5;SPOP t;SPOP t"), b":1\r\n$1\r\n7\r\n*1\r\n$1\r\n7\r\n$1\r\n7\r\n$-1\r\n"),
        case("SREM", s("SADD t 1 2;SREM t 1 9;SMEMBERS t"), b":2\r\n:1\r\n*1\r\n$1\r\n2\r\n"),
        case("SSCAN", s("SADD t 1 2;SSCAN t 0"), b":2\r\n*2\r\n$1\r\n0\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n"),
        // sorted sets
        case("ZADD ZCARD ZSCORE", s("ZADD z 1 a 2 b;ZCARD z;ZSCORE z b;ZSCORE z x"), b":2\r\n:2\r\n$1\r\n2\r\n$-1\r\n"),
        case("ZCOUNT ZLEXCOUNT", s("ZADD z 0 a 0 b 0 c;ZCOUNT z 0 0;ZLEXCOUNT z [a [b"), b":3\r\n:3\r\n:2\r\n"),
        case("ZINCRBY", s("ZINCRBY z 2.5 m;ZINCRBY z 1 m"), b"$3\r\n2.5\r\n$3\r\n3.5\r\n"),
        case("ZMSCORE", s("ZADD z 1 a 2 b;ZMSCORE z a x b"), b":2\r\n*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"),
        case("ZPOPMAX ZPOPMIN", s("ZADD z 1 a 2 b 3 c;ZPOPMAX z;ZPOPMIN z 5"), b":3\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
        case("ZRANDMEMBER", s("ZADD z 1 a;ZRANDMEMBER z;ZRANDMEMBER z 1 WITHSCORES"), b":1\r\n$1\r\na\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"),
        case("ZRANGE", s("ZADD z 1 a 2 b 3 c;ZRANGE z 0 -1;ZRANGE z 0 0 WITHSCORES;ZRANGE z (1 +inf BYSCORE LIMIT 0 1"),
            b":3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*1\r\n$1\r\nb\r\n"),
        case("ZRANGEBYLEX ZREVRANGEBYLEX", s("ZADD z 0 a 0 b 0 c;ZRANGEBYLEX z - [b;ZREVRANGEBYLEX z + (a"),
            b":3\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n"),
        case("ZRANGEBYSCORE ZREVRANGEBYSCORE", s("ZADD z 1 a 2 b 3 c;ZRANGEBYSCORE z 2 +inf;ZREVRANGEBYSCORE z 2 -inf WITHSCORES"),
            b":3\r\n*2\r\n$1\r\nb\r\n$1\r\nc\r\n*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\n1\r\n"),
        case("ZRANGESTORE", s("ZADD {t}z 1 a 2 b 3 c;ZRANGESTORE {t}d {t}z 0 1;ZRANGE {t}d 0 -1"), b":3\r\n:2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
        case("ZRANK ZREVRANK", s("ZADD z 1 a 2 b;ZRANK z b;ZREVRANK z b;ZRANK z x"), b":2\r\n:1\r\n:0\r\n$-1\r\n"),
        case("ZRANK WITHSCORE (redis 7.2) goes to redis 7.0", s("ZADD z 1 a;ZRANK z a WITHSCORE"), &cat(&[b":1\r\n", &arity("zrank")])).fixed(),
        case("ZREM", s("ZADD z 1 a 2 b;ZREM z a x;ZCARD z"), b":2\r\n:1\r\n:1\r\n"),
        case("ZREMRANGEBYLEX", s("ZADD z 0 a 0 b 0 c;ZREMRANGEBYLEX z [a [b;ZCARD z"), b":3\r\n:2\r\n:1\r\n"),
        case("ZREMRANGEBYRANK", s("ZADD z 1 a 2 b 3 c;ZREMRANGEBYRANK z 0 1;ZCARD z"), b":3\r\n:2\r\n:1\r\n"),
        case("ZREMRANGEBYSCORE", s("ZADD z 1 a 2 b 3 c;ZREMRANGEBYSCORE z 2 3;ZCARD z"), b":3\r\n:2\r\n:1\r\n"),
        case("ZREVRANGE", s("ZADD z 1 a 2 b;ZREVRANGE z 0 -1 WITHSCORES"), b":2\r\n*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\n1\r\n"),
        case("ZSCAN", s("ZADD z 1 a 2 b;ZSCAN z 0"), b":2\r\n*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
        case("ZINTERSTORE ZUNIONSTORE ZDIFFSTORE", s("ZADD {t}a 1 x 2 y;ZADD {t}b 3 y 4 w;ZINTERSTORE {t}i 2 {t}a {t}b;ZUNIONSTORE {t}u 2 {t}a {t}b;ZDIFFSTORE {t}d 2 {t}a {t}b;ZRANGE {t}u 0 -1 WITHSCORES"),
            b":2\r\n:2\r\n:1\r\n:3\r\n:1\r\n*6\r\n$1\r\nx\r\n$1\r\n1\r\n$1\r\nw\r\n$1\r\n4\r\n$1\r\ny\r\n$1\r\n5\r\n"),
        case("ZINTER ZUNION ZDIFF (routed by the first key)", s("ZADD {t}a 1 x 2 y;ZADD {t}b 3 y;ZINTER 2 {t}a {t}b;ZUNION 2 {t}a {t}b WITHSCORES;ZDIFF 2 {t}a {t}b"),
            b":2\r\n:1\r\n*1\r\n$1\r\ny\r\n*4\r\n$1\r\nx\r\n$1\r\n1\r\n$1\r\ny\r\n$1\r\n5\r\n*1\r\n$1\r\nx\r\n").fixed(),
        // hyperloglog
        case("PFADD PFCOUNT", s("PFADD p a b c;PFADD p a;PFCOUNT p"), b":1\r\n:0\r\n:3\r\n"),
        case("PFCOUNT PFMERGE", s("PFADD {t}p a b;PFADD {t}q c;PFCOUNT {t}p {t}q;PFMERGE {t}r {t}p {t}q;PFCOUNT {t}r"), b":1\r\n:1\r\n:3\r\n+OK\r\n:3\r\n"),
        // geo
        case("GEOADD GEODIST", s("GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania;GEODIST g Palermo Catania;GEODIST g Palermo Catania km"),
            b":2\r\n$11\r\n166274.1516\r\n$8\r\n166.2742\r\n"),
        case("GEOHASH GEOPOS", s("GEOADD g 13.361389 38.115556 Palermo;GEOHASH g Palermo;GEOPOS g Palermo nowhere"),
            b":1\r\n*1\r\n$11\r\nsqc8b49rny0\r\n*2\r\n*2\r\n$<num>\r\n13.36<num>\r\n$<num>\r\n38.11<num>\r\n*-1\r\n"),
        case("GEORADIUS GEORADIUSBYMEMBER", s("GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania;GEORADIUS g 15 37 200 km ASC;GEORADIUSBYMEMBER g Palermo 100 km"),
            b":2\r\n*2\r\n$7\r\nCatania\r\n$7\r\nPalermo\r\n*1\r\n$7\r\nPalermo\r\n"),
        case("GEOSEARCH GEOSEARCHSTORE", s("GEOADD {t}g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania;GEOSEARCH {t}g FROMLONLAT 15 37 BYRADIUS 200 km ASC;GEOSEARCHSTORE {t}d {t}g FROMMEMBER Palermo BYBOX 400 400 km;ZCARD {t}d"),
            b":2\r\n*2\r\n$7\r\nCatania\r\n$7\r\nPalermo\r\n:2\r\n:2\r\n"),
        // scripting
        case("EVAL KEYS[1]", m(&[&[b"EVAL", b"return KEYS[1]", b"1", b"kk"]]), b"$2\r\nkk\r\n"),
        case("EVAL keys and args", m(&[&[b"EVAL", b"return {KEYS[1],KEYS[2],ARGV[1]}", b"2", b"{t}a", b"{t}b", b"c"]]), b"*3\r\n$4\r\n{t}a\r\n$4\r\n{t}b\r\n$1\r\nc\r\n"),
        case("EVAL nested reply", m(&[&[b"EVAL", b"return {1,'a',{2,{'b',{}}},redis.call('get',KEYS[1]),{err='E x'}}", b"1", b"k"], &[b"PING"]]),
            b"*5\r\n:1\r\n$1\r\na\r\n*2\r\n:2\r\n*2\r\n$1\r\nb\r\n*0\r\n$-1\r\n-E x\r\n+PONG\r\n"),
        case("EVAL redis.call", m(&[&[b"EVAL", b"redis.call('set',KEYS[1],ARGV[1]) return redis.call('get',KEYS[1])", b"1", b"k", b"v"], &[b"GET", b"k"]]), b"$1\r\nv\r\n$1\r\nv\r\n"),
        case("EVAL status and error", m(&[&[b"EVAL", b"return redis.status_reply('FINE')", b"1", b"k"], &[b"EVAL", b"return redis.error_reply('MY failure')", b"1", b"k"]]), b"+FINE\r\n-MY failure\r\n"),
        case("EVALSHA", m(&[&[b"EVAL", GET_SCRIPT.as_bytes(), b"1", b"k"], &[b"SET", b"k", b"v"], &[b"EVALSHA", GET_SCRIPT_SHA.as_bytes(), b"1", b"k"]]), b"$-1\r\n+OK\r\n$1\r\nv\r\n"),
        case("EVALSHA unknown", s("EVALSHA 0000000000000000000000000000000000000000 1 k"), b"-NOSCRIPT No matching script. Please use EVAL.\r\n"),
        case("EVAL numkeys 0 to the placeholder server", m(&[&[b"EVAL", b"return 7", b"0"]]), b":7\r\n").fixed(),
        case("EVAL numkeys not a number", m(&[&[b"EVAL", b"return 7", b"x"], &[b"PING"]]), b"-ERR value is not an integer or out of range\r\n+PONG\r\n").fixed(),
        case("EVAL numkeys too large", m(&[&[b"EVAL", b"return 7", b"3", b"a"], &[b"PING"]]), b"-ERR Number of keys can't be greater than number of args\r\n+PONG\r\n").fixed(),
        case("EVAL without numkeys", m(&[&[b"EVAL", b"return 7"], &[b"PING"]]), &cat(&[&arity("eval"), b"+PONG\r\n"])).fixed(),
        // server commands to the placeholder server
        case("COMMAND", s("COMMAND;PING"), b"*<num>\r\n<any>+PONG\r\n"),
        case("COMMAND COUNT", s("COMMAND COUNT"), b":<num>\r\n").fixed(),
        case("LOLWUT", s("LOLWUT"), b"<bulk>"),
        case("LOLWUT VERSION", s("LOLWUT VERSION 5 1 1 1"), b"<bulk>"),
        // fragmentation (spec §6.3, §6.8)
        case("MSET MGET across servers", s("MSET a 1 b 2 c 3 d 4;MGET a b c d zz"), b"+OK\r\n*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$-1\r\n"),
        case("DEL across servers", s("MSET a 1 b 2 c 3 d 4;DEL a b zz;MGET a b c"), b"+OK\r\n:2\r\n*3\r\n$-1\r\n$-1\r\n$1\r\n3\r\n"),
        case("TOUCH UNLINK across servers", s("MSET a 1 b 2 c 3 d 4;TOUCH c d nokey;UNLINK c d"), b"+OK\r\n:2\r\n:2\r\n"),
        case("MGET duplicates and misses", s("MSET a 1 b 2;MGET a zz a b a zz"), b"+OK\r\n*6\r\n$1\r\n1\r\n$-1\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n1\r\n$-1\r\n"),
        case("MGET all misses", s("MGET a b c d e f g h"), b"*8\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n"),
        case("MGET one key", s("SET a 1;MGET a"), b"+OK\r\n*1\r\n$1\r\n1\r\n"),
        case("MGET wrong type is a miss", s("SET a 1;LPUSH l x;MGET a l b"), b"+OK\r\n:1\r\n*3\r\n$1\r\n1\r\n$-1\r\n$-1\r\n"),
        case("MGET with an empty key", m(&[&[b"MSET", b"", b"e", b"a", b"1"], &[b"MGET", b"a", b"", b"b"]]), b"+OK\r\n*3\r\n$1\r\n1\r\n$1\r\ne\r\n$-1\r\n"),
        case("MGET of binary values", m(&[&[b"MSET", b"a", b"\r\n", b"b", b"$-1\r\n"], &[b"MGET", b"b", b"a"]]), b"+OK\r\n*2\r\n$5\r\n$-1\r\n\r\n$2\r\n\r\n\r\n"),
        case("MSET one pair", s("MSET a 1;GET a"), b"+OK\r\n$1\r\n1\r\n"),
        case("MSET duplicate keys", s("MSET a 1 b 2 a 3;MGET a b"), b"+OK\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n"),
        case("MSET odd arguments", s("MSET a 1 b;PING"), &cat(&[&arity("mset"), b"+PONG\r\n"])).fixed(),
        case("MGET without keys", s("MGET;PING"), &cat(&[&arity("mget"), b"+PONG\r\n"])).fixed(),
        case("DEL without keys", s("DEL;PING"), &cat(&[&arity("del"), b"+PONG\r\n"])).fixed(),
        case("DEL duplicates", s("MSET a 1 b 2;DEL a a b b zz"), b"+OK\r\n:2\r\n"),
        case("DEL of every type", s("SET a 1;LPUSH b x;HSET c f v;SADD d m;DEL a b c d e"), b"+OK\r\n:1\r\n:1\r\n:1\r\n:4\r\n"),
        case("UNLINK TOUCH misses", s("UNLINK a b c;TOUCH a b c"), b":0\r\n:0\r\n"),
        case("EXISTS across servers, summed", s("MSET a 1 b 2 c 3;EXISTS a b c zz a"), b"+OK\r\n:4\r\n").fixed(),
        case("EXISTS co-located keys", s("MSET {t}a 1 {t}b 2;EXISTS {t}a {t}b {t}c {t}a"), b"+OK\r\n:3\r\n"),
        case("MGET co-located keys", s("MSET {t}a 1 {t}b 2;MGET {t}b {t}x {t}a"), b"+OK\r\n*3\r\n$1\r\n2\r\n$-1\r\n$1\r\n1\r\n"),
        case("split commands in a pipeline", s("MSET a 1 b 2;MGET a b;PING;DEL a b;MGET a b;GET a"),
            b"+OK\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n+PONG\r\n:2\r\n*2\r\n$-1\r\n$-1\r\n$-1\r\n"),
        case("lower-case split commands", s("mset a 1 b 2;mget a b;del a b"), b"+OK\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n:2\r\n"),
        // inline commands (redis accepts them; nutcracker closed)
        case("inline PING", b"PING\r\n".to_vec(), b"+PONG\r\n").fixed(),
        case("inline SET GET", b"SET k v\r\nGET k\r\n".to_vec(), b"+OK\r\n$1\r\nv\r\n").fixed(),
        case("inline with LF only", b"SET k v\nGET k\n".to_vec(), b"+OK\r\n$1\r\nv\r\n").fixed(),
        case("inline with quotes", b"SET k \"a b\"\r\nGET k\r\nSET j 'c d'\r\nGET j\r\n".to_vec(), b"+OK\r\n$3\r\na b\r\n+OK\r\n$3\r\nc d\r\n").fixed(),
        case("inline with escapes", b"SET k \"\\x41\\r\\n\\\"\"\r\nGET k\r\n".to_vec(), b"+OK\r\n$4\r\nA\r\n\"\r\n").fixed(),
        case("inline with extra spaces", b"  SET   k   v  \r\nGET k\r\n".to_vec(), b"+OK\r\n$1\r\nv\r\n").fixed(),
        case("inline empty lines", b"\r\n\n  \r\nPING\r\n".to_vec(), b"+PONG\r\n").fixed(),
        case("inline MSET MGET across servers", b"MSET a 1 b 2 c 3\r\nMGET a b c zz\r\nDEL a b c\r\n".to_vec(), b"+OK\r\n*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$-1\r\n:3\r\n").fixed(),
        // redis 7.0 never answers a raw NUL in an inline line (it waits for a `\n` its strchr
        // cannot see); the proxy splits the line as redis's sdssplitargs does: NUL ends it.
        case("inline raw NUL ends the line's arguments", b"SET k a\x00b\r\nGET k\r\n".to_vec(), b"+OK\r\n$1\r\na\r\n").fixed(),
        case("inline escaped NUL re-encoded", b"SET k \"x\\x00y\"\r\nGET k\r\n".to_vec(), b"+OK\r\n$3\r\nx\x00y\r\n").fixed(),
        case("inline empty quoted key", b"SET \"\" v\r\nGET \"\"\r\n".to_vec(), b"+OK\r\n$1\r\nv\r\n").fixed(),
        case("inline and multi-bulk mixed", cat(&[b"SET k v\r\n", &s("GET k"), b"PING\r\n"]), b"+OK\r\n$1\r\nv\r\n+PONG\r\n").fixed(),
        case("inline unknown command", b"FOO bar\r\nPING\r\n".to_vec(), &cat(&[&unknown("FOO", &["bar"]), b"+PONG\r\n"])).fixed(),
        case("inline unbalanced quotes closes", b"PING\r\nSET k \"v\r\nPING\r\n".to_vec(), b"+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n").fixed(),
        case("inline too big closes", cat(&[b"PING\r\n", &vec![b'a'; 70_000]]), b"+PONG\r\n-ERR Protocol error: too big inline request\r\n").fixed(),
        // malformed multi-bulk: redis's own reply, then close
        case("empty multi-bulk skipped", cat(&[b"*0\r\n*-1\r\n", &s("PING")]), b"+PONG\r\n").fixed(),
        case("bad multi-bulk count", cat(&[&s("PING"), b"*x\r\n", &s("PING")]), b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n").fixed(),
        case("multi-bulk count too big", cat(&[b"*2147483648\r\n", &s("PING")]), b"-ERR Protocol error: invalid multibulk length\r\n").fixed(),
        case("expected dollar", cat(&[&s("SET k v"), b"*1\r\n+PING\r\n", &s("PING")]), b"+OK\r\n-ERR Protocol error: expected '$', got '+'\r\n").fixed(),
        case("bad bulk length", cat(&[b"*1\r\n$x\r\n", &s("PING")]), b"-ERR Protocol error: invalid bulk length\r\n").fixed(),
        case("negative bulk length", cat(&[b"*2\r\n$3\r\nGET\r\n$-1\r\n", &s("PING")]), b"-ERR Protocol error: invalid bulk length\r\n").fixed(),
        case("bulk length too big", cat(&[b"*2\r\n$3\r\nSET\r\n$536870913\r\n", &s("PING")]), b"-ERR Protocol error: invalid bulk length\r\n").fixed(),
        case("too big bulk count string", cat(&[b"*1\r\n$", &vec![b'1'; 70_000]]), b"-ERR Protocol error: too big bulk count string\r\n").fixed(),
        case("earlier replies delivered before a protocol error", cat(&[&s("SET k v;GET k;MGET k a b"), b"*1\r\n$x\r\n"]), b"+OK\r\n$1\r\nv\r\n*3\r\n$1\r\nv\r\n$-1\r\n$-1\r\n-ERR Protocol error: invalid bulk length\r\n").fixed(),
        case("unknown command", s("FOO;PING"), &cat(&[&unknown("FOO", &[]), b"+PONG\r\n"])).fixed(),
        case("unknown command with long arguments", s(&format!("FOO {} b", "a".repeat(200))), &unknown("FOO", &[&"a".repeat(128)])).fixed(),
        case("empty command name", cat(&[b"*1\r\n$0\r\n\r\n", &s("PING")]), &cat(&[&unknown("", &[]), b"+PONG\r\n"])).fixed(),
        case("MOVE unsupported", s("SET k v;MOVE k 1;GET k"), &cat(&[b"+OK\r\n", &unknown("MOVE", &["k", "1"]), b"$1\r\nv\r\n"])).fixed(),
    ];
    // Every unsupported command of spec §6.8: redis's unknown-command reply, in
    // order, connection kept.
    for command in [
        "SELECT 1",
        "KEYS *",
        "FLUSHALL",
        "FLUSHDB",
        "INFO",
        "MSETNX a 1",
        "BITOP AND d a",
        "SCAN 0",
        "BLPOP l 0",
        "BRPOP l 0",
        "BLMOVE a b LEFT LEFT 0",
        "MULTI",
        "EXEC",
        "DISCARD",
        "WATCH k",
        "UNWATCH",
        "SUBSCRIBE c",
        "PSUBSCRIBE c*",
        "UNSUBSCRIBE",
        "PUBLISH c m",
        "PUBSUB CHANNELS",
        "TIME",
        "DBSIZE",
        "RENAME a b",
        "RENAMENX a b",
        "OBJECT ENCODING k",
        "RANDOMKEY",
        "SCRIPT LOAD x",
        "SCRIPT FLUSH",
        "CLIENT LIST",
        "CLIENT SETNAME x",
        "CONFIG GET maxmemory",
        "HELLO 3",
        "XADD s * f v",
        "XRANGE s - +",
        "WAIT 0 0",
        "SLOWLOG GET",
        "SAVE",
        "LASTSAVE",
        "STRALGO LCS KEYS a b",
        "BZPOPMIN z 0",
        "MIGRATE h 1 k 0 0",
        "SINTERCARD 1 a",
        "LMPOP 1 l LEFT",
        "EXPIRETIME k",
        "FCALL f 0",
        "SHUTDOWN",
        "DEBUG SLEEP 0",
        "CLUSTER INFO",
        "READONLY",
        "RESET",
        "MONITOR",
        "SYNC",
        "SLAVEOF NO ONE",
    ] {
        let mut words = command.split_whitespace();
        let name = words.next().unwrap();
        let args: Vec<&str> = words.collect();
        t.push(
            case(
                &format!("unsupported {command}"),
                s(&format!("SET k v;{command};GET k")),
                &cat(&[b"+OK\r\n", &unknown(name, &args), b"$1\r\nv\r\n"]),
            )
            .fixed(),
        );
    }
    // Keys up to the mbuf-derived limit (16335 bytes with the default 16 KiB mbuf).
    let k16335 = "k".repeat(16335);
    let k16336 = "k".repeat(16336);
    t.push(case(
        "16335-byte key",
        s(&format!("SET {k16335} v;GET {k16335}")),
        b"+OK\r\n$1\r\nv\r\n",
    ));
    t.push(
        case(
            "16336-byte key",
            s(&format!("SET {k16336} v;PING")),
            b"-ERR key too long\r\n+PONG\r\n",
        )
        .fixed(),
    );
    t.push(
        case(
            "MGET with a key too long",
            s(&format!("MGET a {k16336};PING")),
            b"-ERR key too long\r\n+PONG\r\n",
        )
        .fixed(),
    );
    t.push(
        case(
            "inline key too long",
            format!("GET {k16336}\r\nPING\r\n").into_bytes(),
            b"-ERR key too long\r\n+PONG\r\n",
        )
        .fixed(),
    );
    // A long value in a pipeline.
    let big = "v".repeat(1_000_000);
    t.push(case(
        "1 MB value",
        s(&format!("SET big {big};GET big;STRLEN big")),
        format!("+OK\r\n$1000000\r\n{big}\r\n:1000000\r\n").as_bytes(),
    ));
    // Many keys across servers with misses in between: replies in request order.
    let mut mset = String::from("MSET");
    let mut mget = String::from("MGET");
    let mut del = String::from("DEL");
    let mut want = b"+OK\r\n*80\r\n".to_vec();
    for i in 0..40 {
        // Varying first bytes: with fnv1a_64, keys differing only at the end cluster on one server.
        mset.push_str(&format!(" {i}key val{i}"));
        mget.push_str(&format!(" {i}key {i}miss"));
        del.push_str(&format!(" {i}miss {i}key"));
        want.extend_from_slice(
            format!("${}\r\nval{i}\r\n$-1\r\n", 3 + i.to_string().len()).as_bytes(),
        );
    }
    want.extend_from_slice(b":40\r\n");
    t.push(case(
        "MGET of 80 keys across servers with misses",
        s(&format!("{mset};{mget};{del}")),
        &want,
    ));
    t
}

/// Pattern tokens.
enum Tok<'a> {
    Lit(&'a [u8]),
    Num,
    Line,
    Bulk,
    Any,
}

fn tokens(pattern: &[u8]) -> Vec<Tok<'_>> {
    type Wildcard = (&'static [u8], fn() -> Tok<'static>);
    const WILDCARDS: [Wildcard; 4] = [
        (b"<num>", || Tok::Num),
        (b"<line>", || Tok::Line),
        (b"<bulk>", || Tok::Bulk),
        (b"<any>", || Tok::Any),
    ];
    let mut out = Vec::new();
    let mut lit = 0;
    let mut i = 0;
    'outer: while i < pattern.len() {
        for (w, tok) in WILDCARDS {
            if pattern[i..].starts_with(w) {
                if lit < i {
                    out.push(Tok::Lit(&pattern[lit..i]));
                }
                out.push(tok());
                i += w.len();
                lit = i;
                continue 'outer;
            }
        }
        i += 1;
    }
    if lit < pattern.len() {
        out.push(Tok::Lit(&pattern[lit..]));
    }
    out
}

/// Whether `got` matches the pattern `want` (see [`Case::reply`]).
fn matches(want: &[u8], got: &[u8]) -> bool {
    fn go(toks: &[Tok], g: &[u8]) -> bool {
        let Some((tok, rest)) = toks.split_first() else {
            return g.is_empty();
        };
        match tok {
            Tok::Lit(l) => g.starts_with(l) && go(rest, &g[l.len()..]),
            Tok::Num => {
                let n = g.iter().take_while(|b| b.is_ascii_digit()).count();
                n > 0 && go(rest, &g[n..])
            }
            Tok::Line => {
                let n = g.iter().take_while(|&&b| b != b'\r').count();
                go(rest, &g[n..])
            }
            Tok::Bulk => {
                if let Some(after) = g.strip_prefix(b"$-1\r\n") {
                    return go(rest, after);
                }
                let Some(body) = g.strip_prefix(b"$") else {
                    return false;
                };
                let n = body.iter().take_while(|b| b.is_ascii_digit()).count();
                let Ok(len) = std::str::from_utf8(&body[..n]).unwrap().parse::<usize>() else {
                    return false;
                };
                let data = &body[n..];
                data.len() >= len + 4
                    && data.starts_with(b"\r\n")
                    && &data[2 + len..4 + len] == b"\r\n"
                    && go(rest, &data[4 + len..])
            }
            Tok::Any => (0..=g.len()).any(|i| go(rest, &g[i..])),
        }
    }
    go(&tokens(want), got)
}

/// A redis-server behind the proxy.
enum Backend {
    Tcp(Redis),
    Unix(RedisUnix),
}

impl Backend {
    fn target(&self) -> Target {
        match self {
            Backend::Tcp(r) => Target::Tcp(r.port),
            Backend::Unix(r) => Target::Unix(r.path.clone()),
        }
    }

    fn server_line(&self, weight: u32) -> String {
        match self {
            Backend::Tcp(r) => format!("   - 127.0.0.1:{}:{weight}\n", r.port),
            Backend::Unix(r) => format!("   - {}:{weight}\n", r.path.display()),
        }
    }

    /// Sends `commands` straight to this redis (after AUTH when it has a
    /// password) and reads `replies` bytes.
    fn direct(&self, password: Option<&str>, commands: &[u8], want: &[u8]) -> Vec<u8> {
        let mut conn = Conn::open(&self.target());
        let mut request = Vec::new();
        let mut expect = Vec::new();
        if let Some(p) = password {
            request.extend_from_slice(&resp(&[b"AUTH", p.as_bytes()]));
            expect.extend_from_slice(b"+OK\r\n");
        }
        request.extend_from_slice(commands);
        expect.extend_from_slice(want);
        conn.send(&request);
        let got = conn.read_until(|got| matches(&expect, got), None);
        got[expect.len() - want.len()..].to_vec()
    }
}

/// Backends plus a proxy in front of them.
struct Topology {
    name: &'static str,
    backends: Vec<Backend>,
    password: Option<&'static str>,
    _proxy: Proxy,
    target: Target,
}

impl Topology {
    fn flush(&self) {
        for b in &self.backends {
            let got = b.direct(self.password, &s("FLUSHALL"), b"+OK\r\n");
            assert_eq!(got, b"+OK\r\n", "[{}] FLUSHALL", self.name);
        }
    }

    fn runs(&self, case: &Case) -> bool {
        match case.pools {
            Pools::Any => true,
            Pools::Open => self.password.is_none(),
            Pools::Auth => self.password.is_some(),
        }
    }
}

struct Spec {
    name: &'static str,
    flavor: Flavor,
    /// Server weights; one TCP backend each.
    weights: &'static [u32],
    /// The first backend on a unix socket, and the proxy listening on one.
    unix: bool,
    /// `redis_auth` (backends get `--requirepass`) and `redis_db`.
    auth: bool,
    db: u32,
    extra: &'static str,
    args: &'static [&'static str],
}

const BASE: Spec = Spec {
    name: "",
    flavor: Flavor::Rustcracker,
    weights: &[1],
    unix: false,
    auth: false,
    db: 0,
    extra: "",
    args: &[],
};

fn topology(spec: &Spec) -> Topology {
    let dir = tempfile::tempdir().unwrap().keep();
    let requirepass: &[&str] = if spec.auth {
        &["--requirepass", PASSWORD]
    } else {
        &[]
    };
    let backends: Vec<Backend> = (0..spec.weights.len())
        .map(|i| {
            if spec.unix && i == 0 {
                Backend::Unix(RedisUnix::start(&dir.join("redis.sock"), requirepass))
            } else {
                Backend::Tcp(Redis::start_with(requirepass))
            }
        })
        .collect();
    let servers: String = backends
        .iter()
        .zip(spec.weights)
        .map(|(b, &w)| b.server_line(w))
        .collect();
    let (listen, target) = if spec.unix {
        let path = dir.join("proxy.sock");
        (format!("{} 0600", path.display()), Target::Unix(path))
    } else {
        let port = common::free_port();
        (format!("127.0.0.1:{port}"), Target::Tcp(port))
    };
    let mut config = format!(
        "pool:\n  listen: {listen}\n  redis: true\n  timeout: 5000\n  hash_tag: \"{{}}\"\n{}",
        spec.extra
    );
    if spec.auth {
        config.push_str(&format!("  redis_auth: {PASSWORD}\n"));
    }
    if spec.db > 0 {
        config.push_str(&format!("  redis_db: {}\n", spec.db));
    }
    config.push_str("  servers:\n");
    config.push_str(&servers);
    let proxy = start_proxy(spec.flavor, &config, &target, spec.args);
    Topology {
        name: spec.name,
        backends,
        password: spec.auth.then_some(PASSWORD),
        _proxy: proxy,
        target,
    }
}

fn start_proxy(flavor: Flavor, config: &str, target: &Target, args: &[&str]) -> Proxy {
    match target {
        Target::Tcp(port) => Proxy::start(flavor, config, *port, args),
        Target::Unix(path) => {
            let dir = tempfile::tempdir().unwrap();
            let conf = dir.path().join("nutcracker.yml");
            std::fs::write(&conf, config).unwrap();
            let stats_port = common::free_port();
            let bin = match flavor {
                Flavor::Nutcracker => common::nutcracker_bin(),
                Flavor::Rustcracker => common::rustcracker_bin(),
            };
            let child = std::process::Command::new(bin)
                .arg("-c")
                .arg(&conf)
                .args(["-a", "127.0.0.1", "-s", &stats_port.to_string()])
                .args(args)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let proxy = Proxy {
                flavor,
                dir,
                stats_port,
                process: common::Process {
                    child,
                    name: "unix proxy".into(),
                },
            };
            common::wait_for_unix(path);
            proxy
        }
    }
}

fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "one server",
            ..BASE
        },
        Spec {
            name: "4 servers ketama",
            weights: &[1, 1, 1, 1],
            extra: "  hash: fnv1a_64\n  distribution: ketama\n",
            ..BASE
        },
        Spec {
            name: "modula with weights",
            weights: &[1, 2, 3],
            extra: "  hash: md5\n  distribution: modula\n",
            ..BASE
        },
        Spec {
            name: "unix listen and unix backend",
            weights: &[1, 1],
            unix: true,
            extra: "  hash: murmur\n",
            ..BASE
        },
        Spec {
            name: "4 servers, 2 workers",
            weights: &[1, 1, 1, 1],
            args: &["--threads", "2"],
            ..BASE
        },
        Spec {
            name: "redis_auth and redis_db 3",
            weights: &[1, 1, 1],
            auth: true,
            db: 3,
            ..BASE
        },
    ]
}

/// Runs `case` on a fresh connection; returns the reply. In pools with
/// `redis_auth`, cases for any pool authenticate first.
fn run_case(topology: &Topology, case: &Case) -> Vec<u8> {
    topology.flush();
    let mut conn = Conn::open(&topology.target);
    if topology.password.is_some() && case.pools == Pools::Any {
        conn.send(&resp(&[b"AUTH", PASSWORD.as_bytes()]));
        let got = conn.read_until(|got| matches(b"+OK\r\n", got), None);
        assert_eq!(got, b"+OK\r\n", "[{}] AUTH", topology.name);
    }
    conn.send(&case.request);
    conn.read_until(
        |got| matches(&case.reply, got),
        Some(Duration::from_millis(20)),
    )
}

#[test]
fn wire_table_against_every_topology() {
    let table = cases();
    assert!(table.len() >= 150, "the table has {} cases", table.len());
    // Topologies run side by side: each has its own backends.
    let handles: Vec<_> = specs()
        .into_iter()
        .map(|spec| {
            std::thread::spawn(move || {
                let topology = topology(&spec);
                let mut failures = Vec::new();
                let mut ran = 0;
                for case in cases().iter().filter(|c| topology.runs(c)) {
                    ran += 1;
                    let got = run_case(&topology, case);
                    if !matches(&case.reply, &got) {
                        failures.push(format!(
                            "[{}] {}: want {} got {}",
                            topology.name,
                            case.name,
                            show(&case.reply),
                            show(&got)
                        ));
                    }
                }
                assert!(ran >= 150, "[{}] ran {ran} cases", topology.name);
                failures
            })
        })
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn same_replies_as_nutcracker_except_documented_fixes() {
    let spec = |name, flavor, auth| Spec {
        name,
        flavor,
        weights: &[1, 1, 1, 1],
        auth,
        extra: "  hash: fnv1a_64\n  distribution: ketama\n",
        ..BASE
    };
    let mut failures = Vec::new();
    let mut compared = 0;
    for auth in [false, true] {
        // Both proxies run the table side by side, each over its own backends.
        let run = |flavor, name| {
            std::thread::spawn(move || {
                let topology = topology(&spec(name, flavor, auth));
                cases()
                    .iter()
                    .filter(|c| !c.fixed && topology.runs(c))
                    // Without a password every case runs; with one, only the AUTH flows.
                    .filter(|c| !auth || c.pools == Pools::Auth)
                    .map(|case| (case.name.clone(), run_case(&topology, case)))
                    .collect::<Vec<_>>()
            })
        };
        let ours = run(Flavor::Rustcracker, "rustcracker");
        let theirs = run(Flavor::Nutcracker, "nutcracker");
        let (ours, theirs) = (ours.join().unwrap(), theirs.join().unwrap());
        let table = cases();
        for ((name, a), (_, b)) in ours.iter().zip(&theirs) {
            compared += 1;
            let case = table.iter().find(|c| &c.name == name).unwrap();
            // TTLs and the like may differ by a tick: compare each to the pattern.
            if !(matches(&case.reply, a) && matches(&case.reply, b)) {
                failures.push(format!(
                    "{}: rustcracker {} nutcracker {}",
                    case.name,
                    show(a),
                    show(b)
                ));
            }
        }
    }
    assert!(compared >= 100, "compared {compared} cases");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `redis_db: 3` writes into db 3 of every backend, over TCP and unix sockets
/// alike, and with `redis_auth` (AUTH goes first).
#[test]
fn redis_db_writes_into_that_db() {
    for spec in [
        Spec {
            name: "auth, db 3",
            weights: &[1, 1, 1],
            auth: true,
            db: 3,
            ..BASE
        },
        Spec {
            name: "unix backend, db 3",
            weights: &[1, 1],
            unix: true,
            db: 3,
            ..BASE
        },
    ] {
        let topology = topology(&spec);
        topology.flush();
        let mut conn = Conn::open(&topology.target);
        let mut request = Vec::new();
        let mut want = Vec::new();
        if spec.auth {
            request.extend_from_slice(&s("AUTH sekret"));
            want.extend_from_slice(b"+OK\r\n");
        }
        let keys: Vec<String> = (0..20).map(|i| format!("dbkey{i}")).collect();
        for k in &keys {
            request.extend_from_slice(&s(&format!("SET {k} in-db-3")));
            want.extend_from_slice(b"+OK\r\n");
        }
        conn.send(&request);
        assert_eq!(
            show(&conn.read_until(|got| matches(&want, got), Some(Duration::from_millis(20)))),
            show(&want),
            "[{}]",
            spec.name
        );
        // Read back straight from the backends: every key in db 3, none in db 0.
        let mut found = 0;
        for b in &topology.backends {
            for k in &keys {
                let got = b.direct(
                    topology.password,
                    &s(&format!("GET {k};SELECT 3;GET {k}")),
                    b"<bulk>+OK\r\n<bulk>",
                );
                if got == b"$-1\r\n+OK\r\n$7\r\nin-db-3\r\n" {
                    found += 1;
                } else {
                    assert_eq!(
                        show(&got),
                        show(b"$-1\r\n+OK\r\n$-1\r\n"),
                        "[{}] {k}",
                        spec.name
                    );
                }
            }
        }
        assert_eq!(found, keys.len(), "[{}] keys found in db 3", spec.name);
    }
}

/// The same stream fed whole, byte by byte, and split at every offset gives the same replies.
#[test]
fn split_anywhere_gives_the_same_replies() {
    let topology = topology(&Spec {
        name: "split",
        weights: &[1, 1],
        ..BASE
    });
    let stream = cat(&[
        &s("SET a 1;MSET b 2 c 3"),
        b"GET a\r\n",
        &m(&[&[b"SET", b"bin", b"x\r\ny"]]),
        &s("MGET a b c d;PING;FOO x;HSET h f v;HGETALL h;DEL a b c d"),
        b"*0\r\nPING\r\n",
        &m(&[&[b"EVAL", b"return {1,{2}}", b"1", b"a"]]),
        &s("GET bin;QUIT"),
    ]);
    let want = cat(&[
        b"+OK\r\n+OK\r\n$1\r\n1\r\n+OK\r\n",
        b"*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$-1\r\n+PONG\r\n",
        &unknown("FOO", &["x"]),
        b":1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n:3\r\n+PONG\r\n*2\r\n:1\r\n*1\r\n:2\r\n$4\r\nx\r\ny\r\n+OK\r\n",
    ]);
    let Target::Tcp(port) = topology.target else {
        unreachable!()
    };
    let feed = |chunks: Vec<&[u8]>| {
        topology.flush();
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        let mut conn = Conn::Tcp(s);
        for c in chunks {
            conn.send(c);
            std::thread::sleep(Duration::from_millis(1));
        }
        conn.read_until(|got| matches(&want, got), Some(Duration::from_millis(20)))
    };
    let whole = feed(vec![&stream]);
    assert_eq!(show(&whole), show(&want), "whole");
    let bytes = feed(stream.chunks(1).collect());
    assert_eq!(show(&bytes), show(&want), "byte by byte");
    for at in 1..stream.len() {
        let (a, b) = stream.split_at(at);
        let got = feed(vec![a, b]);
        assert_eq!(show(&got), show(&want), "split at {at}");
    }
}
