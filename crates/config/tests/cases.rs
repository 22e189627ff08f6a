//! The shared configuration table run through the loader alone (no binary).

mod table;

use std::path::Path;

use table::{Case, CASES, DIFFERENCES};

fn check(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("nutcracker.yml");
    std::fs::write(&path, case.yaml).map_err(|e| e.to_string())?;
    match (rustcracker_config::load(&path), case.ok) {
        (Ok(_), true) => Ok(()),
        (Ok(_), false) => Err(format!("{}: accepted, expected an error", case.name)),
        (Err(e), true) => Err(format!("{}: rejected: {e}", case.name)),
        (Err(e), false) => {
            let shown = e.to_string();
            // `file:line:column: `, or `file: ` for a problem with the whole file.
            let prefix = match e.line {
                0 => format!("{}: ", path.display()),
                line => format!("{}:{line}:{}: ", path.display(), e.column),
            };
            if !shown.starts_with(&prefix) || e.message.is_empty() {
                return Err(format!("{}: bad error format: {shown}", case.name));
            }
            match case.at {
                Some(at) if at != (e.line, e.column) => Err(format!(
                    "{}: error at {}:{}, expected {at:?}: {shown}",
                    case.name, e.line, e.column
                )),
                _ => Ok(()),
            }
        }
    }
}

#[test]
fn table_verdicts_and_positions() {
    let failures: Vec<String> = CASES
        .iter()
        .chain(DIFFERENCES)
        .filter_map(|c| check(c).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(CASES.len() >= 50);
}

#[test]
fn conf_sample_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/nutcracker.yml");
    let cfg = rustcracker_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = cfg.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["redis", "memcache"]);
    let mc = &cfg.pools[1];
    assert_eq!(mc.servers.len(), 4);
    assert_eq!(mc.timeout_ms, Some(400));
    assert_eq!(mc.backlog, 1024);
    assert!(mc.preconnect && mc.auto_eject_hosts && !mc.redis);
    assert_eq!(
        (mc.server_retry_timeout_ms, mc.server_failure_limit),
        (30000, 3)
    );
    let rd = &cfg.pools[0];
    assert!(rd.redis);
    assert_eq!(rd.servers.len(), 2);
}

#[test]
fn missing_file() {
    let e = rustcracker_config::load(Path::new("/nonexistent/nutcracker.yml")).err();
    let e = e.unwrap_or_else(|| panic!("loaded a missing file"));
    assert_eq!((e.line, e.column), (0, 0));
    assert!(e.message.contains("No such file or directory"), "{e}");
    // No position for a file that could not be read: `file: reason`.
    assert_eq!(
        e.to_string(),
        "/nonexistent/nutcracker.yml: failed to open configuration \
         '/nonexistent/nutcracker.yml': No such file or directory"
    );
}

#[test]
fn invalid_utf8_position() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("n.yml");
    std::fs::write(&path, b"p:\n  listen: 127.0.0.1:1\n  hash: md\xff5\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let e = rustcracker_config::load(&path)
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert_eq!((e.line, e.column), (3, 11), "{e}");
}
