//! Loader semantics: defaults, ordering, derived names, messages.

use std::path::Path;

use crate::{parse, Config, ConfigError, Distribution, HashFunction, Listen, ServerAddress};

const F: &str = "n.yml";

fn ok(text: &str) -> Config {
    parse(Path::new(F), text).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> ConfigError {
    match parse(Path::new(F), text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

const BASE: &str = "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n";

#[test]
fn defaults() {
    let c = ok(BASE);
    let p = &c.pools[0];
    assert_eq!(p.hash, HashFunction::Fnv1a_64);
    assert_eq!(p.distribution, Distribution::Ketama);
    assert_eq!(p.hash_tag, None);
    assert_eq!(p.timeout_ms, None);
    assert_eq!(p.backlog, 512);
    assert_eq!(p.client_connections, 0);
    assert!(!p.redis && !p.preconnect && !p.auto_eject_hosts && !p.tcpkeepalive && !p.reuseport);
    assert_eq!(p.redis_auth, None);
    assert_eq!(p.redis_db, 0);
    assert_eq!(p.server_connections, 1);
    assert_eq!(p.server_retry_timeout_ms, 30_000);
    assert_eq!(p.server_failure_limit, 2);
    assert!(matches!(p.listen, Listen::Tcp { port: 22121, .. }));
}

#[test]
fn explicit_values() {
    let c = ok(&format!(
        "{BASE}  hash: murmur\n  hash_tag: \"$$\"\n  distribution: random\n  timeout: 0400\n  backlog: 1024\n  \
         client_connections: 7\n  redis: true\n  redis_auth: \"pw d\"\n  redis_db: 3\n  preconnect: true\n  \
         auto_eject_hosts: true\n  server_connections: 4\n  server_retry_timeout: 0\n  \
         server_failure_limit: 9\n  tcpkeepalive: true\n  reuseport: true\n"
    ));
    let p = &c.pools[0];
    assert_eq!(p.hash, HashFunction::Murmur);
    assert_eq!(p.hash_tag, Some(*b"$$"));
    assert_eq!(p.distribution, Distribution::Random);
    assert_eq!(p.timeout_ms, Some(400));
    assert_eq!((p.backlog, p.client_connections, p.redis_db), (1024, 7, 3));
    assert_eq!(p.redis_auth.as_deref(), Some("pw d"));
    assert!(p.redis && p.preconnect && p.auto_eject_hosts && p.tcpkeepalive && p.reuseport);
    assert_eq!(
        (
            p.server_connections,
            p.server_retry_timeout_ms,
            p.server_failure_limit
        ),
        (4, 0, 9)
    );
    assert_eq!(
        ok(&format!("{BASE}  timeout: 0\n")).pools[0].timeout_ms,
        None
    );
}

#[test]
fn pool_and_server_order() {
    let pool = |n: &str, port: u16| {
        format!("{n}:\n  listen: 127.0.0.1:{port}\n  servers:\n   - 127.0.0.1:11211:1\n")
    };
    let c = ok(&(pool("mcsock", 1) + &pool("rd", 2) + &pool("mc", 3)));
    let names: Vec<&str> = c.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["mc", "rd", "mcsock"]);

    let c = ok("p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:21212:2\n   - 127.0.0.1:21211:1\n   \
                - /tmp/x/mcu.sock:1\n   - 127.0.0.1:11211:1 named\n");
    let names: Vec<&str> = c.pools[0].servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "named",
            "127.0.0.1:21211",
            "127.0.0.1:21212",
            "/tmp/x/mcu.sock:"
        ]
    );
    let s = &c.pools[0].servers;
    assert_eq!(s[0].pname, "127.0.0.1:11211:1");
    assert_eq!(s[3].address, ServerAddress::Unix("/tmp/x/mcu.sock".into()));
    assert_eq!((s[1].weight, s[2].weight), (1, 2));
}

#[test]
fn error_display_and_positions() {
    let e = err(&format!("{BASE}  hash: fnvla_64\n"));
    assert_eq!(
        e.to_string(),
        "n.yml:5:9: directive \"hash\" is not a valid hash; did you mean \"fnv1a_64\"?"
    );
    let e = err(&format!("{BASE}  distribution: ketma\n"));
    assert_eq!((e.line, e.column), (5, 17));
    assert!(e.message.ends_with("did you mean \"ketama\"?"), "{e}");
    let e = err(&format!("{BASE}  auto_eject_host: true\n"));
    assert!(
        e.message
            .contains("is unknown; did you mean \"auto_eject_hosts\"?"),
        "{e}"
    );
    let e = err(&format!("{BASE}  redis: yes\n"));
    assert!(
        e.message
            .contains("is not \"true\" or \"false\"; did you mean \"true\"?"),
        "{e}"
    );
    let e = err(&format!("{BASE}  preconnect: False\n"));
    assert!(e.message.ends_with("did you mean \"false\"?"), "{e}");
    let e = err("");
    assert_eq!((e.line, e.column), (0, 0));
    assert!(e.message.contains("found 0 documents"), "{e}");
}

#[test]
fn numbers_that_would_wrap_are_rejected() {
    for (d, v) in [
        ("timeout", "99999999999"),
        ("backlog", "2147483648"),
        ("redis_db", "4294967296"),
    ] {
        let e = err(&format!("{BASE}  {d}: {v}\n"));
        assert!(e.message.contains("would silently wrap"), "{e}");
    }
    assert_eq!(
        ok(&format!("{BASE}  backlog: 2147483647\n")).pools[0].backlog,
        2147483647
    );
    let e = err("p:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:11211:4294967297\n");
    assert!(e.message.contains("wrap"), "{e}");
}

#[test]
fn cross_pool_rules() {
    let e = err(&format!(
        "{BASE}q:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n"
    ));
    assert_eq!(
        e.message,
        "pools 'p' and 'q' have the same listen address '127.0.0.1:22121'"
    );
    assert_eq!((e.line, e.column), (6, 11));
    // The same address written differently is not a duplicate for nutcracker.
    ok(&format!(
        "{BASE}q:\n  listen: localhost:22121\n  servers:\n   - 127.0.0.1:11211:1\n"
    ));
    let e = err(&format!(
        "{BASE}p:\n  listen: 127.0.0.1:22122\n  servers:\n   - 127.0.0.1:11211:1\n"
    ));
    assert_eq!(e.message, "the file has pools with same name 'p'");
    assert_eq!((e.line, e.column), (5, 1));
}

#[test]
fn yaml_subset() {
    // Folded, literal, quoted and multi-line scalars end up as nutcracker sees them.
    let c = ok("p:\n  listen: \"127.0.0.1:\\\n    22121\"\n  servers:\n   - 127.0.0.1:11211:1\n     named\n  \
                redis: true\n  redis_auth: 'it''s'\n  hash: >-\n    md5\n");
    let p = &c.pools[0];
    assert!(matches!(p.listen, Listen::Tcp { port: 22121, .. }));
    assert_eq!(p.servers[0].name, "named");
    assert_eq!(p.redis_auth.as_deref(), Some("it's"));
    assert_eq!(p.hash, HashFunction::Md5);
    // `|` keeps the trailing newline, which makes the value invalid.
    assert!(err(&format!("{BASE}  hash: |\n    md5\n"))
        .message
        .contains("not a valid hash"));
    // Tabs: fine after `key:`, not as indentation or after `-`.
    ok("p:\n  listen:\t127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n");
    assert_eq!(err("p:\n\tlisten: 127.0.0.1:1\n").line, 2);
    assert_eq!(
        err("p:\n  listen: 127.0.0.1:1\n  servers:\n   -\t127.0.0.1:11211:1\n").line,
        4
    );
}

#[test]
fn a_message_quoting_the_file_stays_on_one_line() {
    // A plain scalar folded over an empty line holds a line break (found by fuzzing).
    let e = err("p:\n  listen: 127.0.0.1:22121\n  serve\n  \n   - 127.0.0.1:11211:1 my server\n");
    assert_eq!((e.line, e.column), (3, 3));
    assert!(!e.to_string().contains('\n'), "{e}");
    assert!(
        e.message
            .contains("after \"serve\\n- 127.0.0.1:11211:1 my server\""),
        "{e}"
    );
    // A double-quoted value with escapes.
    let e = err(&format!("{BASE}  timeout: \"1\\t2\\n3\"\n"));
    assert!(!e.to_string().contains(['\n', '\t']), "{e}");
    assert!(e.message.contains("\"1\\t2\\n3\""), "{e}");
}
