//! `-t` differential test: every configuration of the shared table is checked
//! by `nutcracker -t -c F` (Debian's 0.5.0, when installed) and
//! `rustcracker -t -c F`, which must give the same verdict (exit code).
//! rustcracker must end with the verdict line and, for bad files, name the
//! problem as `F:LINE:COL: ...`. Deliberate differences (values that would
//! wrap at 32 bits, `reuseport`) are checked for rustcracker's behaviour, and
//! that nutcracker still differs.

#[path = "../crates/config/tests/table/mod.rs"]
mod table;

use std::path::{Path, PathBuf};
use std::process::Command;

use table::{Case, CASES, DIFFERENCES};

fn nutcracker() -> Option<PathBuf> {
    [
        "/usr/sbin/nutcracker",
        "/usr/bin/nutcracker",
        "/usr/local/sbin/nutcracker",
        "/usr/local/bin/nutcracker",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Exit code and stderr of `prog -t -c file`.
fn run_t(prog: &Path, file: &Path) -> (i32, String) {
    let out = Command::new(prog)
        .arg("-t")
        .arg("-c")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", prog.display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks rustcracker's output for one case; `Err` describes the mismatch.
fn check_rustcracker(case: &Case, file: &Path) -> Result<(), String> {
    let (code, stderr) = run_t(Path::new(env!("CARGO_BIN_EXE_rustcracker")), file);
    let f = file.display().to_string();
    let want_code = if case.ok { 0 } else { 1 };
    if code != want_code {
        return Err(format!(
            "{}: rustcracker exit {code}, want {want_code}; stderr:\n{stderr}",
            case.name
        ));
    }
    let verdict = if case.ok { "ok" } else { "invalid" };
    let want_last = format!("rustcracker: configuration file '{f}' syntax is {verdict}");
    let last = stderr.lines().last().unwrap_or_default();
    if last != want_last {
        return Err(format!(
            "{}: last stderr line {last:?}, want {want_last:?}",
            case.name
        ));
    }
    if !case.ok {
        let prefix = format!("{f}:");
        let reason = stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .ok_or_else(|| {
                format!(
                    "{}: no \"{f}:LINE:COL: reason\" line in stderr:\n{stderr}",
                    case.name
                )
            })?;
        // A problem with the whole file (the table's position 0:0) has no
        // position: `FILE: reason`.
        if case.at == Some((0, 0)) {
            return match reason[prefix.len()..].strip_prefix(' ') {
                Some(m) if !m.trim().is_empty() && !m.starts_with(|c: char| c.is_ascii_digit()) => {
                    Ok(())
                }
                _ => Err(format!("{}: want \"{f}: reason\", got {reason}", case.name)),
            };
        }
        let mut parts = reason[prefix.len()..].splitn(3, ':');
        let line: Option<usize> = parts.next().and_then(|s| s.parse().ok());
        let col: Option<usize> = parts.next().and_then(|s| s.parse().ok());
        let (Some(line), Some(col)) = (line, col) else {
            return Err(format!(
                "{}: reason line without LINE:COL: {reason}",
                case.name
            ));
        };
        if parts.next().is_none_or(|m| m.trim().is_empty()) {
            return Err(format!(
                "{}: reason line without a message: {reason}",
                case.name
            ));
        }
        if let Some(at) = case.at {
            if at != (line, col) {
                return Err(format!(
                    "{}: reported at {line}:{col}, want {at:?}: {reason}",
                    case.name
                ));
            }
        }
    }
    Ok(())
}

fn write_case(dir: &Path, case: &Case) -> PathBuf {
    let sub = dir.join(case.name);
    std::fs::create_dir_all(&sub).unwrap_or_else(|e| panic!("{e}"));
    let file = sub.join("nutcracker.yml");
    std::fs::write(&file, case.yaml).unwrap_or_else(|e| panic!("{e}"));
    file
}

#[test]
fn same_verdict_as_nutcracker() {
    assert!(
        CASES.len() >= 50,
        "the table must hold at least 50 configurations"
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let nc = nutcracker();
    if nc.is_none() {
        eprintln!(
            "nutcracker not installed: checking rustcracker against the recorded verdicts only"
        );
    }
    let mut failures = Vec::new();
    for case in CASES {
        let file = write_case(dir.path(), case);
        if let Some(nc) = &nc {
            let (code, _) = run_t(nc, &file);
            let ours = if case.ok { 0 } else { 1 };
            if code != ours {
                failures.push(format!(
                    "{}: nutcracker exit {code}, table says {ours}",
                    case.name
                ));
            }
        }
        if let Err(e) = check_rustcracker(case, &file) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn documented_differences() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let nc = nutcracker();
    let mut failures = Vec::new();
    for case in DIFFERENCES {
        let file = write_case(dir.path(), case);
        if let Some(nc) = &nc {
            let (code, _) = run_t(nc, &file);
            if (code == 0) == case.ok {
                failures.push(format!(
                    "{}: nutcracker now agrees (exit {code}); move it to CASES",
                    case.name
                ));
            }
        }
        if let Err(e) = check_rustcracker(case, &file) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
