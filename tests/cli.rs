//! The command line: usage snapshot, -h/-V/-D streams and exit codes, every
//! option error (differential against Debian's nutcracker 0.5.0), -t verdicts.

mod common;

use std::path::Path;
use std::process::{Command, Output};

const USAGE: &str = include_str!("snapshots/usage.txt");
const DESCRIBE: &str = include_str!("snapshots/describe-stats.txt");

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().expect("binary runs")
}

fn rc(args: &[&str]) -> Output {
    run(&common::rustcracker_bin(), args)
}

fn nutcracker_available() -> bool {
    common::nutcracker_bin().exists()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn version_block() -> String {
    format!(
        "This is rustcracker-{}\nasync event backend: epoll\n\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[test]
fn help_is_version_block_then_usage_on_stderr() {
    for flag in ["-h", "--help", "--he"] {
        let o = rc(&[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}");
        assert!(o.stdout.is_empty(), "{flag}");
        assert_eq!(stderr(&o), format!("{}{USAGE}", version_block()), "{flag}");
    }
}

#[test]
fn usage_mirrors_nutcracker() {
    // Every nutcracker usage line has a counterpart: same flags, same words.
    if !nutcracker_available() {
        return;
    }
    let theirs = stderr(&run(&common::nutcracker_bin(), &["-h"]));
    let ours: Vec<&str> = USAGE.lines().collect();
    for line in theirs.lines().skip(3) {
        let line = line.trim_end_matches('\r');
        let key = line
            .split(':')
            .next()
            .unwrap_or(line)
            .replace("nutcracker", "rustcracker");
        let key = key.trim_end();
        assert!(
            ours.iter()
                .any(|l| l.starts_with(key) || l.trim() == key.trim()),
            "usage lacks a line for {line:?}"
        );
    }
}

#[test]
fn version_on_stderr() {
    for args in [
        &["-V"][..],
        &["--version"],
        &["-V", "extra", "args"],
        &["-dV"],
    ] {
        let o = rc(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(o.stdout.is_empty());
        assert_eq!(stderr(&o), version_block(), "{args:?}");
    }
}

#[test]
fn describe_stats_matches_nutcracker() {
    let o = rc(&["-D"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    assert_eq!(stderr(&o), format!("{}{DESCRIBE}", version_block()));
    assert_eq!(rustcracker::stats::describe(), DESCRIBE);
    if nutcracker_available() {
        let theirs = stderr(&run(&common::nutcracker_bin(), &["-D"]));
        let after_version: String = theirs.split_inclusive('\n').skip(3).collect();
        assert_eq!(after_version, DESCRIBE);
    }
}

/// Argument vectors nutcracker rejects; rustcracker prints the same first
/// line (with its own name), then its usage, and exits 1.
const SAME_ERRORS: &[&[&str]] = &[
    &["-v"],
    &["-v", "x"],
    &["-v", "-1"],
    &["-v", ""],
    &["-v5V"],
    &["--verbose"],
    &["--verbose="],
    &["--verb=x"],
    &["-o"],
    &["--output"],
    &["-c"],
    &["--conf-file"],
    &["-p"],
    &["--pid-file"],
    &["-a"],
    &["--stats-addr"],
    &["-s"],
    &["-s", "abc"],
    &["-s", "1x"],
    &["-s", " 1"],
    &["-s", "+1"],
    &["-s", "0"],
    &["-s", "70000"],
    &["-s", "2147483648"],
    &["--stats-port=65536"],
    &["-i"],
    &["-i", "x"],
    &["--stats-interval", "-1"],
    &["-m"],
    &["-m", "0"],
    &["-m", "-5"],
    &["-m", "abc"],
    &["-m", "100"],
    &["-m", "511"],
    &["-m", "16777217"],
    &["-m", "99999999"],
    &["--mbuf-size=1"],
    &["-x"],
    &["-?"],
    &["-W"],
    &["-:"],
    &["-dx"],
    &["-V", "-x"],
    &["-x", "-V"],
    &["-h", "-s", "0"],
    &["-v", "5", "-s", "0", "-x"],
    &["--help=3"],
    &["--version=1"],
    &["--daemonize=yes"],
    &["--test-conf=1"],
    &["--describe-stats=1"],
];

/// Argument vectors where rustcracker deliberately prints a different
/// (readable) first line: nutcracker prints `invalid option -- '\0'` with a
/// NUL byte for unknown and ambiguous long options, and wraps numbers
/// beyond 32 bits around.
const OWN_ERRORS: &[(&[&str], &str)] = &[
    (&["--foo"], "rustcracker: unrecognized option '--foo'"),
    (&["--foo=1"], "rustcracker: unrecognized option '--foo'"),
    (&["--stats=1"], "rustcracker: option '--stats' is ambiguous"),
    (&["--v=3"], "rustcracker: option '--v' is ambiguous"),
    (&["--d"], "rustcracker: option '--d' is ambiguous"),
    (
        &["-s", "4294967297"],
        "rustcracker: option -s requires a number",
    ),
    (
        &["-s", "99999999999"],
        "rustcracker: option -s requires a number",
    ),
    (
        &["--threads"],
        "rustcracker: option --threads requires a number between 1 and 1024",
    ),
    (
        &["--threads=0"],
        "rustcracker: option --threads requires a number between 1 and 1024",
    ),
    (
        &["--threads=x"],
        "rustcracker: option --threads requires a number between 1 and 1024",
    ),
    (
        &["--threads", "1025"],
        "rustcracker: option --threads requires a number between 1 and 1024",
    ),
    (&["--pool"], "rustcracker: option --pool requires a string"),
    (
        &["--route=x"],
        "rustcracker: option '--route' doesn't allow an argument",
    ),
];

fn assert_option_error(args: &[&str], first_line: &str) {
    let o = rc(args);
    assert_eq!(o.status.code(), Some(1), "{args:?}");
    assert!(o.stdout.is_empty(), "{args:?}");
    assert_eq!(stderr(&o), format!("{first_line}\n{USAGE}"), "{args:?}");
}

#[test]
fn option_errors_match_nutcracker() {
    let nutcracker = nutcracker_available();
    for args in SAME_ERRORS {
        let expected = if nutcracker {
            let theirs = run(&common::nutcracker_bin(), args);
            assert_eq!(theirs.status.code(), Some(1), "nutcracker {args:?}");
            let text = stderr(&theirs);
            let first = text.lines().next().unwrap_or_default().to_owned();
            assert!(
                first.starts_with("nutcracker: "),
                "nutcracker {args:?}: {first:?}"
            );
            first.replacen("nutcracker: ", "rustcracker: ", 1)
        } else {
            continue;
        };
        assert_option_error(args, &expected);
    }
}

#[test]
fn option_errors_of_our_own() {
    for (args, first_line) in OWN_ERRORS {
        assert_option_error(args, first_line);
    }
}

#[test]
fn option_errors_without_oracle() {
    // The texts nutcracker prints, spelled out, so the test means something
    // without the Debian binary too.
    let cases: &[(&[&str], &str)] = &[
        (&["-s"], "option -s requires a number"),
        (
            &["-s", "70000"],
            "option -s value 70000 is not a valid port",
        ),
        (&["-m", "0"], "option -m requires a non-zero number"),
        (
            &["-m", "100"],
            "mbuf chunk size must be between 512 and 16777216 bytes",
        ),
        (&["-o"], "option -o requires a file name"),
        (&["-a"], "option -a requires a string"),
        (&["-x"], "invalid option -- 'x'"),
        (&["--help=3"], "invalid option -- 'h'"),
    ];
    for (args, msg) in cases {
        assert_option_error(args, &format!("rustcracker: {msg}"));
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

fn valid_config() -> String {
    format!(
        "alpha:\n  listen: 127.0.0.1:{}\n  servers:\n    - 127.0.0.1:11211:1\n",
        common::free_port()
    )
}

#[test]
fn test_conf_ok() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(dir.path(), "ok.yml", &valid_config());
    for flag in ["-t", "--test-conf"] {
        let o = rc(&[flag, "-c", &conf]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(o.stdout.is_empty());
        assert_eq!(
            stderr(&o),
            format!("rustcracker: configuration file '{conf}' syntax is ok\n")
        );
    }
    if nutcracker_available() {
        let theirs = run(&common::nutcracker_bin(), &["-t", "-c", &conf]);
        assert_eq!(theirs.status.code(), Some(0));
        assert_eq!(
            stderr(&theirs),
            format!("nutcracker: configuration file '{conf}' syntax is ok\n")
        );
    }
}

#[test]
fn test_conf_invalid_prints_reason_then_verdict_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = [
        "alpha:\n  listen: 127.0.0.1:22121\n  hash: nope\n  servers:\n    - 127.0.0.1:11211:1\n",
        "alpha:\n  listen: 127.0.0.1:22121\n",
        "alpha: [\n",
    ];
    for (i, text) in bad.iter().enumerate() {
        let conf = write(dir.path(), &format!("bad{i}.yml"), text);
        let o = rc(&["-t", "-c", &conf]);
        assert_eq!(o.status.code(), Some(1), "{text:?}: {}", stderr(&o));
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with(&format!("{conf}:")), "{err}");
        assert_eq!(
            lines[1],
            format!("rustcracker: configuration file '{conf}' syntax is invalid")
        );
        if nutcracker_available() {
            let theirs = run(&common::nutcracker_bin(), &["-t", "-c", &conf]);
            assert_eq!(
                theirs.status.code(),
                Some(1),
                "nutcracker agrees {text:?} is invalid"
            );
        }
    }
}

#[test]
fn test_conf_missing_file() {
    let o = rc(&["-t", "-c", "/nonexistent/rustcracker.yml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.ends_with(
            "rustcracker: configuration file '/nonexistent/rustcracker.yml' syntax is invalid\n"
        ),
        "{err}"
    );
}

#[test]
fn version_wins_over_test_conf() {
    let o = rc(&["-t", "-V", "-c", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), version_block());
}

#[test]
fn route_keys_from_args_or_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(dir.path(), "ok.yml", &valid_config());
    let from_args = rc(&["-c", &conf, "--route", "foo", "bar"]);
    assert_eq!(from_args.status.code(), Some(0), "{}", stderr(&from_args));
    assert!(from_args.stderr.is_empty());
    let mut child = Command::new(common::rustcracker_bin())
        .args(["--route", "-c", &conf])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"foo\r\nbar\n")
        .expect("write keys");
    let from_stdin = child.wait_with_output().expect("wait");
    assert_eq!(from_stdin.status.code(), Some(0));
    assert_eq!(from_stdin.stdout, from_args.stdout);
    let text = String::from_utf8_lossy(&from_args.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.starts_with("alpha\tfoo\t"), "{text}");
}

#[test]
fn route_errors_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(dir.path(), "ok.yml", &valid_config());
    let o = rc(&["-c", &conf, "--route", "--pool=nope", "k"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).starts_with("rustcracker: "), "{}", stderr(&o));
    let o = rc(&["-c", "/nonexistent.yml", "--route", "k"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with("syntax is invalid\n"),
        "{}",
        stderr(&o)
    );
}
