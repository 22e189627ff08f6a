//! The getopt_long-compatible parser.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// Default `-c`: upstream nutcracker's, relative to the working directory.
pub const DEFAULT_CONF_FILE: &str = "conf/nutcracker.yml";
/// Default `-v` (NOTICE).
pub const DEFAULT_LOG_LEVEL: u8 = crate::logging::LOG_NOTICE;
/// Default `-s`.
pub const DEFAULT_STATS_PORT: u16 = 22222;
/// Default `-a`.
pub const DEFAULT_STATS_ADDR: &str = "0.0.0.0";
/// Default `-i`, in milliseconds.
pub const DEFAULT_STATS_INTERVAL_MS: u64 = 30_000;
/// Default `-m`, in bytes.
pub const DEFAULT_MBUF_SIZE: usize = 16_384;
/// Smallest accepted `-m`.
pub const MBUF_MIN_SIZE: usize = 512;
/// Largest accepted `-m`.
pub const MBUF_MAX_SIZE: usize = 16_777_216;
/// Default `--threads`.
pub const DEFAULT_THREADS: usize = 1;
/// Largest accepted `--threads`.
pub const MAX_THREADS: usize = 1024;
/// Default `--coalesce`, in microseconds.
pub const DEFAULT_COALESCE_US: u64 = crate::proxy::DEFAULT_COALESCE_US;
/// Largest accepted `--coalesce`, in microseconds.
pub const MAX_COALESCE_US: u64 = 1000;
/// Default and largest `--combine-gets`: keys per combined memcache `get` line.
pub const MAX_COMBINE_GETS: usize = crate::proxy::MAX_COMBINED_KEYS;

/// Everything the command line sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-h`: version block and usage.
    pub show_help: bool,
    /// `-V` (also set by `-h` and `-D`): print the version block and exit.
    pub show_version: bool,
    /// `-t`: validate the configuration and exit.
    pub test_conf: bool,
    /// `-d`: run as a daemon.
    pub daemonize: bool,
    /// `-D`: print the stats descriptions.
    pub describe_stats: bool,
    /// `-v`, clamped to 0..=11.
    pub log_level: u8,
    /// `-o`; `None` is stderr.
    pub log_file: Option<PathBuf>,
    /// `-c`.
    pub conf_file: PathBuf,
    /// `-s`.
    pub stats_port: u16,
    /// `-a`.
    pub stats_addr: String,
    /// `-i`, milliseconds.
    pub stats_interval_ms: u64,
    /// `-p`; `None` writes no pid file.
    pub pid_file: Option<PathBuf>,
    /// `-m`, bytes.
    pub mbuf_size: usize,
    /// `--threads`.
    pub threads: usize,
    /// `--coalesce`, microseconds.
    pub coalesce_us: u64,
    /// `--combine-gets`: the most keys per combined memcache `get` line (0: off).
    pub combine_gets: usize,
    /// `--route`: print key placement and exit.
    pub route: bool,
    /// `--pool`: limit `--route` to this pool.
    pub pool: Option<String>,
    /// Non-option arguments in order (the keys of `--route`; otherwise
    /// ignored, as nutcracker ignores them).
    pub args: Vec<OsString>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            show_help: false,
            show_version: false,
            test_conf: false,
            daemonize: false,
            describe_stats: false,
            log_level: DEFAULT_LOG_LEVEL,
            log_file: None,
            conf_file: PathBuf::from(DEFAULT_CONF_FILE),
            stats_port: DEFAULT_STATS_PORT,
            stats_addr: DEFAULT_STATS_ADDR.to_owned(),
            stats_interval_ms: DEFAULT_STATS_INTERVAL_MS,
            pid_file: None,
            mbuf_size: DEFAULT_MBUF_SIZE,
            threads: DEFAULT_THREADS,
            coalesce_us: DEFAULT_COALESCE_US,
            combine_gets: MAX_COMBINE_GETS,
            route: false,
            pool: None,
            args: Vec::new(),
        }
    }
}

/// An option error. Displayed without the `rustcracker: ` prefix; the
/// texts of nutcracker's own options are nutcracker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// `-o`, `-c` or `-p` without its argument.
    #[error("option -{0} requires a file name")]
    RequiresFileName(char),
    /// `-v`, `-s`, `-i` or `-m` without its argument, or `-v`/`-s`/`-i` with
    /// something other than a non-negative decimal number.
    #[error("option -{0} requires a number")]
    RequiresNumber(char),
    /// `-a` without its argument.
    #[error("option -{0} requires a string")]
    RequiresString(char),
    /// `-s` outside 1..=65535.
    #[error("option -s value {0} is not a valid port")]
    InvalidPort(u32),
    /// `-m` not a positive number.
    #[error("option -m requires a non-zero number")]
    MbufNotPositive,
    /// `-m` outside 512..=16777216.
    #[error("mbuf chunk size must be between {MBUF_MIN_SIZE} and {MBUF_MAX_SIZE} bytes")]
    MbufRange,
    /// An unknown short option, or a long option given an argument it does
    /// not take (getopt reports the latter by its short letter).
    #[error("invalid option -- '{}'", char::from(*.0))]
    Invalid(u8),
    /// An unknown long option. (nutcracker prints `invalid option -- '\0'`
    /// with a NUL byte here.)
    #[error("unrecognized option '--{0}'")]
    UnrecognizedLong(String),
    /// A long option prefix matching several options.
    #[error("option '--{0}' is ambiguous")]
    Ambiguous(String),
    /// One of rustcracker's long-only options given an argument it does not take.
    #[error("option '--{0}' doesn't allow an argument")]
    UnexpectedArgument(&'static str),
    /// `--threads` missing or not a number in 1..=1024.
    #[error("option --threads requires a number between 1 and {MAX_THREADS}")]
    Threads,
    /// `--coalesce` missing or not a number in 0..=1000.
    #[error("option --coalesce requires a number of microseconds between 0 and {MAX_COALESCE_US}")]
    Coalesce,
    /// `--combine-gets` missing or not a number in 0..=100.
    #[error("option --combine-gets requires a number of keys between 0 and {MAX_COMBINE_GETS}")]
    CombineGets,
    /// `--pool` without its argument.
    #[error("option --pool requires a string")]
    Pool,
}

/// What an option is, independent of how it was spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    /// One of nutcracker's, by its short letter.
    Short(u8),
    Threads,
    Coalesce,
    CombineGets,
    Route,
    Pool,
}

/// nutcracker's long options, in its table order, with their short letters.
const NUTCRACKER_LONG: &[(&str, bool, u8)] = &[
    ("help", false, b'h'),
    ("version", false, b'V'),
    ("test-conf", false, b't'),
    ("daemonize", false, b'd'),
    ("describe-stats", false, b'D'),
    ("verbose", true, b'v'),
    ("output", true, b'o'),
    ("conf-file", true, b'c'),
    ("stats-port", true, b's'),
    ("stats-interval", true, b'i'),
    ("stats-addr", true, b'a'),
    ("pid-file", true, b'p'),
    ("mbuf-size", true, b'm'),
];

/// rustcracker's long-only options. They are matched after nutcracker's, so
/// every abbreviation nutcracker accepts keeps its meaning.
const OUR_LONG: &[(&str, bool, Opt)] = &[
    ("threads", true, Opt::Threads),
    ("coalesce", true, Opt::Coalesce),
    ("combine-gets", true, Opt::CombineGets),
    ("route", false, Opt::Route),
    ("pool", true, Opt::Pool),
];

/// Short options without / with an argument (nutcracker's `hVtdDv:o:c:s:i:a:p:m:`).
const SHORT_FLAGS: &[u8] = b"hVtdD";
const SHORT_WITH_ARG: &[u8] = b"voc sia pm";

/// Parses the arguments after the program name.
pub fn parse(args: &[OsString]) -> Result<Options, CliError> {
    let mut opts = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        if arg == b"--" {
            opts.args.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, inline) = match long.iter().position(|&b| b == b'=') {
                Some(eq) => (&long[..eq], Some(&long[eq + 1..])),
                None => (long, None),
            };
            let (opt, takes_arg) = lookup_long(name)?;
            let value = if takes_arg {
                match inline {
                    Some(v) => Some(v.to_vec()),
                    None if i < args.len() => {
                        i += 1;
                        Some(args[i - 1].as_bytes().to_vec())
                    }
                    None => return Err(missing_argument(opt)),
                }
            } else {
                if inline.is_some() {
                    return Err(match opt {
                        Opt::Short(c) => CliError::Invalid(c),
                        // The only long-only option without an argument.
                        _ => CliError::UnexpectedArgument("route"),
                    });
                }
                None
            };
            apply(&mut opts, opt, value)?;
            continue;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            // A non-option (including "-" alone): getopt permutes it to the end.
            opts.args.push(args[i - 1].clone());
            continue;
        }
        let mut j = 1;
        while j < arg.len() {
            let c = arg[j];
            j += 1;
            if SHORT_FLAGS.contains(&c) {
                apply(&mut opts, Opt::Short(c), None)?;
            } else if c != b' ' && SHORT_WITH_ARG.contains(&c) {
                let value = if j < arg.len() {
                    arg[j..].to_vec()
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].as_bytes().to_vec()
                } else {
                    return Err(missing_argument(Opt::Short(c)));
                };
                apply(&mut opts, Opt::Short(c), Some(value))?;
                break;
            } else {
                return Err(CliError::Invalid(c));
            }
        }
    }
    Ok(opts)
}

/// Finds a long option by exact name, else by unambiguous prefix
/// (nutcracker's options first).
fn lookup_long(name: &[u8]) -> Result<(Opt, bool), CliError> {
    let theirs: Vec<(&str, bool, Opt)> = NUTCRACKER_LONG
        .iter()
        .map(|&(n, a, c)| (n, a, Opt::Short(c)))
        .collect();
    let tables: [&[(&str, bool, Opt)]; 2] = [&theirs, OUR_LONG];
    for table in tables {
        if let Some(&(_, a, o)) = table.iter().find(|(n, _, _)| n.as_bytes() == name) {
            return Ok((o, a));
        }
    }
    let shown = || String::from_utf8_lossy(name).into_owned();
    for table in tables {
        let mut matches = table
            .iter()
            .filter(|(n, _, _)| n.as_bytes().starts_with(name));
        if let Some(&(_, a, o)) = matches.next() {
            if matches.next().is_some() {
                return Err(CliError::Ambiguous(shown()));
            }
            return Ok((o, a));
        }
    }
    Err(CliError::UnrecognizedLong(shown()))
}

fn missing_argument(opt: Opt) -> CliError {
    match opt {
        Opt::Short(c @ (b'o' | b'c' | b'p')) => CliError::RequiresFileName(char::from(c)),
        Opt::Short(b'a') => CliError::RequiresString('a'),
        Opt::Short(c) => CliError::RequiresNumber(char::from(c)),
        Opt::Threads => CliError::Threads,
        Opt::Coalesce => CliError::Coalesce,
        Opt::CombineGets => CliError::CombineGets,
        Opt::Pool => CliError::Pool,
        Opt::Route => CliError::UnexpectedArgument("route"),
    }
}

/// nutcracker's `nc_atoi`: a non-empty run of decimal digits, else `None`.
/// Values beyond `i32::MAX` (which nutcracker wraps around) are `None` too.
fn atoi(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u32 = 0;
    for &d in s {
        v = v.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    (v <= i32::MAX as u32).then_some(v)
}

fn path(value: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(value))
}

fn apply(opts: &mut Options, opt: Opt, value: Option<Vec<u8>>) -> Result<(), CliError> {
    let value = value.unwrap_or_default();
    match opt {
        Opt::Short(b'h') => {
            opts.show_version = true;
            opts.show_help = true;
        }
        Opt::Short(b'V') => opts.show_version = true,
        Opt::Short(b't') => opts.test_conf = true,
        Opt::Short(b'd') => opts.daemonize = true,
        Opt::Short(b'D') => {
            opts.describe_stats = true;
            opts.show_version = true;
        }
        Opt::Short(b'v') => {
            let v = atoi(&value).ok_or(CliError::RequiresNumber('v'))?;
            opts.log_level = v.min(u32::from(crate::logging::LOG_PVERB)) as u8;
        }
        Opt::Short(b'o') => opts.log_file = Some(path(value)),
        Opt::Short(b'c') => opts.conf_file = path(value),
        Opt::Short(b's') => {
            let v = atoi(&value).ok_or(CliError::RequiresNumber('s'))?;
            opts.stats_port = u16::try_from(v)
                .ok()
                .filter(|&p| p != 0)
                .ok_or(CliError::InvalidPort(v))?;
        }
        Opt::Short(b'i') => {
            opts.stats_interval_ms = u64::from(atoi(&value).ok_or(CliError::RequiresNumber('i'))?);
        }
        Opt::Short(b'a') => opts.stats_addr = String::from_utf8_lossy(&value).into_owned(),
        Opt::Short(b'p') => opts.pid_file = Some(path(value)),
        Opt::Short(b'm') => {
            let v = atoi(&value)
                .filter(|&v| v > 0)
                .ok_or(CliError::MbufNotPositive)? as usize;
            if !(MBUF_MIN_SIZE..=MBUF_MAX_SIZE).contains(&v) {
                return Err(CliError::MbufRange);
            }
            opts.mbuf_size = v;
        }
        Opt::Short(c) => return Err(CliError::Invalid(c)),
        Opt::Threads => {
            let v = atoi(&value).map(|v| v as usize);
            opts.threads = v
                .filter(|v| (1..=MAX_THREADS).contains(v))
                .ok_or(CliError::Threads)?;
        }
        Opt::Coalesce => {
            opts.coalesce_us = atoi(&value)
                .map(u64::from)
                .filter(|v| *v <= MAX_COALESCE_US)
                .ok_or(CliError::Coalesce)?;
        }
        Opt::CombineGets => {
            opts.combine_gets = atoi(&value)
                .map(|v| v as usize)
                .filter(|v| *v <= MAX_COMBINE_GETS)
                .ok_or(CliError::CombineGets)?;
        }
        Opt::Route => opts.route = true,
        Opt::Pool => opts.pool = Some(String::from_utf8_lossy(&value).into_owned()),
    }
    Ok(())
}

/// The bytes of a `--route` key given as an argument.
pub(crate) fn key_bytes(arg: &OsStr) -> Vec<u8> {
    arg.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, CliError> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn defaults() {
        assert_eq!(p(&[]).unwrap(), Options::default());
    }

    #[test]
    fn bundling_and_attached_arguments() {
        let o = p(&[
            "-dt",
            "-v11",
            "-s",
            "2000",
            "--verbose=3",
            "--conf-file",
            "x.yml",
        ])
        .unwrap();
        assert!(o.daemonize && o.test_conf);
        assert_eq!(o.log_level, 3);
        assert_eq!(o.stats_port, 2000);
        assert_eq!(o.conf_file, PathBuf::from("x.yml"));
        let o = p(&["-Vdv", "7"]).unwrap();
        assert!(o.show_version && o.daemonize);
        assert_eq!(o.log_level, 7);
    }

    #[test]
    fn errors() {
        assert_eq!(p(&["-v5V"]), Err(CliError::RequiresNumber('v')));
        assert_eq!(p(&["-s", "0"]), Err(CliError::InvalidPort(0)));
        assert_eq!(p(&["-s", "70000"]), Err(CliError::InvalidPort(70000)));
        assert_eq!(p(&["-s", "2147483648"]), Err(CliError::RequiresNumber('s')));
        assert_eq!(p(&["-m", "-5"]), Err(CliError::MbufNotPositive));
        assert_eq!(p(&["-m", "100"]), Err(CliError::MbufRange));
        assert_eq!(p(&["-?"]), Err(CliError::Invalid(b'?')));
        assert_eq!(p(&["--help=3"]), Err(CliError::Invalid(b'h')));
        assert_eq!(p(&["--v=3"]), Err(CliError::Ambiguous("v".into())));
        assert_eq!(p(&["--foo"]), Err(CliError::UnrecognizedLong("foo".into())));
        assert_eq!(p(&["-o"]), Err(CliError::RequiresFileName('o')));
        assert_eq!(p(&["--stats-addr"]), Err(CliError::RequiresString('a')));
        assert_eq!(p(&["-s", "0", "-x"]), Err(CliError::InvalidPort(0)));
        assert_eq!(p(&["--threads=0"]), Err(CliError::Threads));
        assert_eq!(
            p(&["--route=1"]),
            Err(CliError::UnexpectedArgument("route"))
        );
    }

    #[test]
    fn long_prefixes_prefer_nutcracker() {
        assert_eq!(p(&["--p", "x"]).unwrap().pid_file, Some(PathBuf::from("x")));
        assert!(p(&["--t"]).unwrap().test_conf);
        assert_eq!(p(&["--po", "a"]).unwrap().pool.as_deref(), Some("a"));
        assert_eq!(p(&["--th=4"]).unwrap().threads, 4);
        assert_eq!(p(&[]).unwrap().coalesce_us, DEFAULT_COALESCE_US);
        assert_eq!(p(&["--coalesce=0"]).unwrap().coalesce_us, 0);
        assert_eq!(p(&["--coalesce", "1000"]).unwrap().coalesce_us, 1000);
        assert_eq!(p(&["--coa=20"]).unwrap().coalesce_us, 20);
        // nutcracker's options keep their abbreviations.
        assert_eq!(p(&["--co=x"]).unwrap().conf_file, PathBuf::from("x"));
        assert_eq!(p(&["--coalesce=1001"]), Err(CliError::Coalesce));
        assert_eq!(p(&["--coalesce=-1"]), Err(CliError::Coalesce));
        assert_eq!(p(&["--coalesce"]), Err(CliError::Coalesce));
        assert_eq!(p(&[]).unwrap().combine_gets, MAX_COMBINE_GETS);
        assert_eq!(p(&["--combine-gets=0"]).unwrap().combine_gets, 0);
        assert_eq!(p(&["--comb", "8"]).unwrap().combine_gets, 8);
        assert_eq!(p(&["--combine-gets=101"]), Err(CliError::CombineGets));
        assert_eq!(p(&["--combine-gets"]), Err(CliError::CombineGets));
        assert_eq!(p(&["--stats-p", "5"]).unwrap().stats_port, 5);
    }

    #[test]
    fn permutation_and_double_dash() {
        let o = p(&["--route", "k1", "-c", "c.yml", "k2", "--", "-V"]).unwrap();
        assert!(o.route && !o.show_version);
        assert_eq!(o.args, vec![OsString::from("k1"), "k2".into(), "-V".into()]);
        assert_eq!(p(&["-", "-V"]).unwrap().args, vec![OsString::from("-")]);
        assert_eq!(p(&["-v", "-5"]), Err(CliError::RequiresNumber('v')));
        assert_eq!(p(&["-v", "12"]).unwrap().log_level, 11);
    }
}
