//! Command-line options of `loadgen`.
//!
//! Hand-parsed (`--name value` or `--name=value`) to keep the tool free of
//! extra dependencies; see [`USAGE`] for the list.

use std::time::Duration;

use crate::workload::Protocol;

/// Help text printed by `-h` / `--help` and on a usage error.
pub const USAGE: &str = "\
loadgen: closed-loop memcache/redis load generator (rustcracker bench)

USAGE: loadgen --target HOST:PORT [options]

  -t, --target HOST:PORT  server or proxy to drive (required)
      --proto P           memcache | redis (default memcache)
  -c, --connections N     concurrent connections (default 50)
  -P, --pipeline N        requests sent per batch on a connection (default 1)
  -k, --keys N            key space size (default 10000)
  -d, --value N           value size in bytes for sets (default 32)
  -r, --ratio G:S         get:set mix (default 9:1)
  -w, --mget N            keys per get (multi-get width, default 1)
      --duration SECS     measured time, fractional allowed (default 5)
  -n, --requests N        stop after N measured requests (duration is then a cap)
      --rate N            open the loop: send N requests per second in all,
                          each connection's batches evenly spaced (default 0:
                          closed loop, next batch as soon as replies are in)
      --warmup SECS       unmeasured time before measuring (default 0)
      --threads N         worker threads, each a current-thread runtime (default 1)
      --timeout-ms N      per-batch reply timeout; on expiry the batch counts
                          as failed and the connection is re-opened (default 2000)
      --prefix S          key prefix (default \"lg:\"); keys are PREFIX + 10 digits
      --prefill           set every key once (pipelined) before the run
      --seed N            workload random seed (default 1)
      --hold              open all connections, report, wait for a line on
                          stdin, send one batch per connection, report, wait
                          for another line, exit (memory-per-connection runs)

Output: one JSON line on stdout. \"errors\" > 0 (and \"ok\": false) marks a
run whose replies were not all well-formed and correct.
";

/// Parsed options.
#[derive(Debug, Clone)]
pub struct Args {
    /// `host:port` to connect to.
    pub target: String,
    /// Wire protocol.
    pub proto: Protocol,
    /// Number of connections.
    pub connections: usize,
    /// Pipeline depth: requests written per batch before reading replies.
    pub pipeline: usize,
    /// Number of distinct keys.
    pub keys: u32,
    /// Value size in bytes.
    pub value: usize,
    /// Get weight of the get:set mix.
    pub gets: u32,
    /// Set weight of the get:set mix.
    pub sets: u32,
    /// Keys per get request.
    pub mget: usize,
    /// Measured duration (a cap when `requests` is set).
    pub duration: Duration,
    /// Stop after this many measured requests.
    pub requests: Option<u64>,
    /// Unmeasured warm-up time.
    pub warmup: Duration,
    /// Worker threads.
    pub threads: usize,
    /// Per-batch reply timeout.
    pub timeout: Duration,
    /// Key prefix.
    pub prefix: String,
    /// Set every key before the run.
    pub prefill: bool,
    /// Workload seed.
    pub seed: u64,
    /// Hold mode (see [`USAGE`]).
    pub hold: bool,
    /// Requests per second over all connections (`None`: closed loop).
    pub rate: Option<u64>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            target: String::new(),
            proto: Protocol::Memcache,
            connections: 50,
            pipeline: 1,
            keys: 10_000,
            value: 32,
            gets: 9,
            sets: 1,
            mget: 1,
            duration: Duration::from_secs(5),
            requests: None,
            warmup: Duration::ZERO,
            threads: 1,
            timeout: Duration::from_millis(2000),
            prefix: "lg:".to_string(),
            prefill: false,
            rate: None,
            seed: 1,
            hold: false,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run with these options.
    Run(Box<Args>),
    /// Print [`USAGE`] and exit successfully.
    Help,
}

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: not a valid number: {v:?}"))
}

fn secs(name: &str, v: &str) -> Result<Duration, String> {
    let f: f64 = num(name, v)?;
    if !(f.is_finite() && f >= 0.0) {
        return Err(format!("{name}: must be a non-negative number of seconds"));
    }
    Ok(Duration::from_secs_f64(f))
}

/// Parses `argv[1..]`.
pub fn parse<I: IntoIterator<Item = String>>(argv: I) -> Result<Command, String> {
    let mut a = Args::default();
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let flag = |n: &str| -> Result<(), String> {
            if inline.is_some() {
                Err(format!("{n} takes no value"))
            } else {
                Ok(())
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--prefill" => {
                flag(&name)?;
                a.prefill = true;
                continue;
            }
            "--hold" => {
                flag(&name)?;
                a.hold = true;
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| format!("{name} requires a value"))?,
        };
        let v = value.as_str();
        match name.as_str() {
            "-t" | "--target" => a.target = value.clone(),
            "--proto" => {
                a.proto = match v {
                    "memcache" | "mc" => Protocol::Memcache,
                    "redis" => Protocol::Redis,
                    _ => return Err(format!("--proto: memcache or redis, not {v:?}")),
                }
            }
            "-c" | "--connections" => a.connections = num(&name, v)?,
            "-P" | "--pipeline" => a.pipeline = num(&name, v)?,
            "-k" | "--keys" => a.keys = num(&name, v)?,
            "-d" | "--value" => a.value = num(&name, v)?,
            "-r" | "--ratio" => {
                let (g, s) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--ratio: expected G:S, not {v:?}"))?;
                a.gets = num(&name, g)?;
                a.sets = num(&name, s)?;
            }
            "-w" | "--mget" => a.mget = num(&name, v)?,
            "--duration" => a.duration = secs(&name, v)?,
            "-n" | "--requests" => a.requests = Some(num(&name, v)?),
            "--warmup" => a.warmup = secs(&name, v)?,
            "--threads" => a.threads = num(&name, v)?,
            "--timeout-ms" => a.timeout = Duration::from_millis(num(&name, v)?),
            "--prefix" => a.prefix = value.clone(),
            "--seed" => a.seed = num(&name, v)?,
            "--rate" => a.rate = Some(num::<u64>(&name, v)?).filter(|&r| r > 0),
            _ => return Err(format!("unknown option {name:?}")),
        }
    }
    validate(&a)?;
    Ok(Command::Run(Box::new(a)))
}

fn validate(a: &Args) -> Result<(), String> {
    if a.target.is_empty() {
        return Err("--target is required".into());
    }
    if a.connections == 0 || a.pipeline == 0 || a.mget == 0 || a.threads == 0 {
        return Err("--connections, --pipeline, --mget and --threads must be >= 1".into());
    }
    if a.keys == 0 || a.keys > 1_000_000_000 {
        return Err("--keys must be in 1..=1000000000".into());
    }
    if a.mget as u64 > u64::from(a.keys) {
        return Err("--mget must not exceed --keys".into());
    }
    if a.gets + a.sets == 0 {
        return Err("--ratio must not be 0:0".into());
    }
    if a.prefix.len() > 32 || a.prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("--prefix: at most 32 printable bytes without spaces".into());
    }
    if a.value > 64 << 20 {
        return Err("--value must be at most 64 MiB".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_all_forms() {
        let Command::Run(a) = p(&[
            "-t",
            "127.0.0.1:1",
            "--proto=redis",
            "-P",
            "16",
            "--ratio",
            "1:0",
            "--duration=0.5",
            "--prefill",
        ])
        .unwrap() else {
            panic!("expected run")
        };
        assert_eq!(a.proto, Protocol::Redis);
        assert_eq!(a.pipeline, 16);
        assert_eq!((a.gets, a.sets), (1, 0));
        assert_eq!(a.duration, Duration::from_millis(500));
        assert!(a.prefill);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(p(&[]).is_err());
        assert!(p(&["-t", "x:1", "-P", "0"]).is_err());
        assert!(p(&["-t", "x:1", "--ratio", "9"]).is_err());
        assert!(p(&["-t", "x:1", "--prefill=1"]).is_err());
        assert!(p(&["-t", "x:1", "--bogus", "1"]).is_err());
        assert!(p(&["-t", "x:1", "-k", "5", "-w", "10"]).is_err());
        assert!(matches!(p(&["--help"]), Ok(Command::Help)));
    }
}
