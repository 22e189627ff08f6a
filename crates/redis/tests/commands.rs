//! The command table.

use rustcracker_redis::{ArityClass, Command, Fragmentation, ALL_COMMANDS};

#[test]
fn table_is_sorted_and_complete() {
    // Nutcracker's 137 names minus MOVE, plus ECHO.
    assert_eq!(ALL_COMMANDS.len(), 137);
    for pair in ALL_COMMANDS.windows(2) {
        assert!(pair[0].name() < pair[1].name(), "{:?}", pair);
    }
    for &c in ALL_COMMANDS {
        assert_eq!(Command::from_name(c.name().as_bytes()), Some(c));
        assert_eq!(
            Command::from_name(c.name().to_uppercase().as_bytes()),
            Some(c)
        );
        assert_eq!(c.name(), c.name().to_lowercase());
    }
}

#[test]
fn unsupported_names() {
    for name in [
        "move",
        "keys",
        "scan",
        "multi",
        "exec",
        "subscribe",
        "select",
        "hello",
        "info",
        "client",
        "config",
        "msetnx",
        "bitop",
        "blpop",
        "rename",
        "xadd",
        "fcall",
        "eval_ro",
        "",
        "g",
        "getx",
        "zzz",
        "get\0",
        &"get".repeat(20),
    ] {
        assert_eq!(Command::from_name(name.as_bytes()), None, "{name}");
    }
}

#[test]
fn names_in_any_case() {
    assert_eq!(Command::from_name(b"gEt"), Some(Command::Get));
    assert_eq!(
        Command::from_name(b"ZrEvRaNgEbYsCoRe"),
        Some(Command::Zrevrangebyscore)
    );
    assert_eq!(
        Command::from_name(b"GEORADIUSBYMEMBER"),
        Some(Command::Georadiusbymember)
    );
}

#[test]
fn classes() {
    assert_eq!(Command::Get.class(), ArityClass::Key);
    assert_eq!(Command::Rpoplpush.class(), ArityClass::TwoKeys);
    assert_eq!(Command::Sdiff.class(), ArityClass::AllKeys);
    assert_eq!(Command::Exists.class(), ArityClass::MultiKey);
    assert_eq!(Command::Mset.class(), ArityClass::KeyValue);
    assert_eq!(Command::Evalsha.class(), ArityClass::Eval);
    assert_eq!(Command::Zunion.class(), ArityClass::NumKeys);
    assert_eq!(Command::Zunionstore.class(), ArityClass::DestNumKeys);
    assert_eq!(Command::Lolwut.class(), ArityClass::Keyless);
    let local: Vec<_> = ALL_COMMANDS.iter().filter(|c| c.is_local()).collect();
    assert_eq!(
        local,
        [
            &Command::Auth,
            &Command::Echo,
            &Command::Ping,
            &Command::Quit
        ]
    );
    let split: Vec<_> = ALL_COMMANDS
        .iter()
        .filter_map(|c| c.fragmentation().map(|f| (*c, f)))
        .collect();
    assert_eq!(
        split,
        [
            (Command::Del, Fragmentation::Sum),
            (Command::Exists, Fragmentation::Sum),
            (Command::Mget, Fragmentation::Mget),
            (Command::Mset, Fragmentation::Mset),
            (Command::Touch, Fragmentation::Sum),
            (Command::Unlink, Fragmentation::Sum),
        ]
    );
    for c in ALL_COMMANDS {
        assert_eq!(
            c.fragmentation().is_some(),
            matches!(c.class(), ArityClass::MultiKey | ArityClass::KeyValue)
        );
    }
}
