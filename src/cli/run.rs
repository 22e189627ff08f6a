//! What the binary does with its options: the short-circuit commands
//! (`-h`, `-V`, `-D`, `-t`, `--route`) and the proxy's process life
//! (log, daemon, pid file, proxy, signal loop).

use std::ffi::OsString;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::Path;

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use super::parse::{key_bytes, parse, Options};
use super::text::{usage, version_block};
use super::PROGRAM;
use crate::proxy::{Proxy, ProxyOptions};
use crate::{daemon, log_always, log_error, logging};

/// Runs the program with the arguments after its name; returns the exit status.
pub fn run(args: &[OsString]) -> u8 {
    let opts = match parse(args) {
        Ok(opts) => opts,
        Err(e) => {
            to_stderr(&format!("{PROGRAM}: {e}\n{}", usage()));
            return 1;
        }
    };
    if opts.show_version {
        let mut text = version_block();
        if opts.show_help {
            text.push_str(&usage());
        }
        if opts.describe_stats {
            text.push_str(&crate::stats::describe());
        }
        to_stderr(&text);
        return 0;
    }
    if opts.test_conf {
        return match load_config(&opts.conf_file) {
            Some(_) => {
                let file = opts.conf_file.display();
                to_stderr(&format!(
                    "{PROGRAM}: configuration file '{file}' syntax is ok\n"
                ));
                0
            }
            None => 1,
        };
    }
    if opts.route {
        return route(&opts);
    }
    serve(opts)
}

/// Writes `text` to stderr in one piece; errors are ignored (nowhere to report them).
fn to_stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// Loads the configuration; on error prints the reason (`file:line:col:
/// problem`) and nutcracker's verdict line on stderr.
fn load_config(path: &Path) -> Option<rustcracker_config::Config> {
    match rustcracker_config::load(path) {
        Ok(config) => Some(config),
        Err(e) => {
            let file = path.display();
            to_stderr(&format!(
                "{e}\n{PROGRAM}: configuration file '{file}' syntax is invalid\n"
            ));
            None
        }
    }
}

/// `--route`: keys from the arguments, else one per line from stdin.
fn route(opts: &Options) -> u8 {
    let keys = if opts.args.is_empty() {
        match read_keys(io::stdin().lock()) {
            Ok(keys) => keys,
            Err(e) => {
                to_stderr(&format!("{PROGRAM}: reading keys from stdin failed: {e}\n"));
                return 1;
            }
        }
    } else {
        opts.args.iter().map(|a| key_bytes(a)).collect()
    };
    let Some(config) = load_config(&opts.conf_file) else {
        return 1;
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if let Err(e) = crate::route::run(&config, opts.pool.as_deref(), &keys, &mut out) {
        let _ = out.flush();
        to_stderr(&format!("{PROGRAM}: {e}\n"));
        return 1;
    }
    if let Err(e) = out.flush() {
        to_stderr(&format!("{PROGRAM}: writing to stdout failed: {e}\n"));
        return 1;
    }
    0
}

/// One key per line; the line end (`\n` or `\r\n`) is not part of the key.
fn read_keys(input: impl Read) -> io::Result<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let mut reader = io::BufReader::new(input);
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(keys);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        keys.push(line);
    }
}

/// Starts the proxy and runs the signal loop until SIGINT or SIGTERM.
///
/// Order: config (validated before anything else, so `-d` with an invalid
/// config exits 1), log, daemon, signal handlers, pid file, banner, proxy.
fn serve(opts: Options) -> u8 {
    let Some(config) = load_config(&opts.conf_file) else {
        return 1;
    };
    if let Err(e) = logging::init(opts.log_level, opts.log_file.as_deref()) {
        to_stderr(&format!("{e}\n"));
        return 1;
    }
    daemon::fix_malloc_thresholds();
    // Daemonize while the process still has a single thread.
    if opts.daemonize {
        if let Err(e) = daemon::daemonize() {
            log_error!("{e}");
            return 1;
        }
    }
    let mut signals =
        match Signals::new([SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGINT, SIGTERM]) {
            Ok(signals) => signals,
            Err(e) => {
                log_error!("installing signal handlers failed: {e}");
                return 1;
            }
        };
    let pid_file = opts.pid_file.as_deref();
    if let Some(path) = pid_file {
        if let Err(e) = daemon::write_pid_file(path) {
            log_error!("{e}");
            return finish(pid_file, 1);
        }
    }
    print_banner();
    logging::abort_on_panic();

    let options = ProxyOptions {
        threads: opts.threads,
        mbuf_size: opts.mbuf_size,
        stats_addr: opts.stats_addr.clone(),
        stats_port: opts.stats_port,
        stats_interval_ms: opts.stats_interval_ms,
        coalesce: std::time::Duration::from_micros(opts.coalesce_us),
        combine_gets: opts.combine_gets,
    };
    let proxy = match Proxy::start(config, options) {
        Ok(proxy) => proxy,
        Err(e) => {
            log_error!("{e}");
            return finish(pid_file, 1);
        }
    };

    for signo in signals.forever() {
        let name = signal_name(signo);
        match signo {
            SIGHUP => {
                // Written before reopening, i.e. still to the old file.
                log_always!("signal {signo} ({name}) received, reopening log file");
                logging::reopen();
            }
            SIGTTIN => {
                log_always!("signal {signo} ({name}) received, up logging level");
                if let Some(level) = logging::level_up() {
                    log_always!("up log level to {level}");
                }
            }
            SIGTTOU => {
                log_always!("signal {signo} ({name}) received, down logging level");
                if let Some(level) = logging::level_down() {
                    log_always!("down log level to {level}");
                }
            }
            SIGINT | SIGTERM => {
                log_always!("signal {signo} ({name}) received, exiting");
                break;
            }
            _ => log_always!("signal {signo} ({name}) received"),
        }
    }
    proxy.shutdown();
    finish(pid_file, 0)
}

/// Removes the pid file, logs nutcracker's farewell and returns `status`.
fn finish(pid_file: Option<&Path>, status: u8) -> u8 {
    if let Some(path) = pid_file {
        daemon::remove_pid_file(path);
    }
    log_always!("done, rabbit done");
    status
}

fn print_banner() {
    let pid = std::process::id();
    let version = crate::VERSION;
    match daemon::uname() {
        Some((sys, release, machine)) => log_always!(
            "{PROGRAM}-{version} built for {sys} {release} {machine} started on pid {pid}"
        ),
        None => log_always!("{PROGRAM}-{version} started on pid {pid}"),
    }
    log_always!(
        "run, rabbit run / dig that hole, forget the sun / and when at last the work is done / \
         don't sit down / it's time to dig another one"
    );
}

fn signal_name(signo: i32) -> &'static str {
    match signo {
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGTTIN => "SIGTTIN",
        SIGTTOU => "SIGTTOU",
        SIGUSR1 => "SIGUSR1",
        SIGUSR2 => "SIGUSR2",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_lines() {
        let keys = read_keys(&b"a\r\nb\n\nc"[..]).unwrap();
        assert_eq!(
            keys,
            vec![b"a".to_vec(), b"b".to_vec(), Vec::new(), b"c".to_vec()]
        );
        assert!(read_keys(&b""[..]).unwrap().is_empty());
    }
}
