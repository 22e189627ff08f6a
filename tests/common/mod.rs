//! Test harness: real memcached, redis-server, nutcracker and rustcracker
//! processes on loopback ports picked at run time. Every process is killed
//! when its guard drops.
#![allow(dead_code)]

pub mod conn;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// The rustcracker binary cargo built for this test run.
pub fn rustcracker_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rustcracker"))
}

/// Debian's nutcracker 0.5.0, the oracle.
pub fn nutcracker_bin() -> PathBuf {
    PathBuf::from("/usr/sbin/nutcracker")
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// The tests' ports: below Linux's ephemeral range (from 32768), so outgoing connections never
/// take them, and below the profiling rig's (`bench/rig`, from 31100), so the suite and the rig
/// never pick the same port.
const TEST_PORTS: std::ops::Range<u16> = 20000..31000;

/// A loopback TCP port that was free a moment ago, from [`TEST_PORTS`], spread by process id
/// so parallel test binaries rarely collide.
///
/// Free means no TCP socket in the kernel's tables (`/proc/net/tcp`, `tcp6`) uses it. The test
/// deliberately opens no socket of its own to find out: a listener bound here for a moment is
/// copied into any child another test thread forks meanwhile, and lives there until that
/// child's exec closes it. A proxy started on the port then failed with "Address already in
/// use", or a client connected into the copy's backlog and was reset when it closed (the
/// suite's rare failure in sessions 14 and 15).
pub fn free_port() -> u16 {
    if NEXT_PORT.load(Ordering::Relaxed) == 0 {
        let seed = TEST_PORTS.start + (std::process::id() % 1000) as u16 * 10;
        let _ = NEXT_PORT.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    loop {
        let mut port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        if port >= TEST_PORTS.end {
            NEXT_PORT.store(TEST_PORTS.start, Ordering::Relaxed);
            port = TEST_PORTS.start;
        }
        if !ports_in_use().contains(&port) {
            return port;
        }
    }
}

/// The local ports of every TCP socket the kernel lists (IPv4 and IPv6, any state).
fn ports_in_use() -> std::collections::HashSet<u16> {
    let mut ports = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        // Columns: sl local_address(ADDR:PORT, hex) …
        for line in text.lines().skip(1) {
            let local = line.split_whitespace().nth(1).unwrap_or_default();
            if let Some(Ok(port)) = local.rsplit(':').next().map(|p| u16::from_str_radix(p, 16)) {
                ports.insert(port);
            }
        }
    }
    ports
}

/// A loopback port bound but not listening: connections to it are refused,
/// and no other process can take it while the guard lives. (A listener dropped at once
/// would not do: a copy forked into another test's child may accept for a moment.)
pub struct DeadPort {
    pub port: u16,
    _socket: socket2::Socket,
}

pub fn dead_port() -> DeadPort {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    DeadPort {
        port,
        _socket: socket,
    }
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16) {
    if let Err(why) = wait_listening(port, || None) {
        panic!("127.0.0.1:{port}: {why}");
    }
}

/// Polls `port` for up to 10 s until it accepts connections; stops early with what `gone`
/// says when the listener can no longer come (its process exited).
fn wait_listening(port: u16, mut gone: impl FnMut() -> Option<String>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(why) = gone() {
            return Err(why);
        }
        if Instant::now() >= deadline {
            return Err("nothing listens after 10 s".to_string());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a server on a free port and makes sure it is the one listening
/// there: a server that lost the race for its port exits, and another port is
/// tried.
pub fn spawn_on_free_port(what: &str, mut command: impl FnMut(u16) -> Command) -> (u16, Child) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = command(port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut up = false;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                break;
            }
            // The child's own listening socket, not another test's server that took the port
            // first (a child that lost the race may take a while to exit; two backends of one
            // test on one port once put every key on the first).
            if listens_on(child.id(), port) {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if up {
            return (port, child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("{what} did not start on any of 5 ports");
}

/// Whether process `pid` holds the socket listening on TCP `port` of 127.0.0.1: the inode of
/// that socket in `/proc/net/tcp` is one of the process's open files.
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let local = format!("0100007F:{port:04X}");
    // Columns: sl local_address rem_address st … inode (the tenth).
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
            .then(|| fields.get(9).map(|i| format!("socket:[{i}]")))
            .flatten()
    });
    let (Some(inode), Ok(fds)) = (inode, std::fs::read_dir(format!("/proc/{pid}/fd"))) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == inode.as_str())
    })
}

/// Waits until a unix socket at `path` accepts connections.
pub fn wait_for_unix(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("nothing listens on {} after 10 s", path.display());
}

/// A child process killed on drop.
pub struct Process {
    pub child: Child,
    pub name: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real memcached on a loopback port (or unix socket).
pub struct Memcached {
    pub port: u16,
    pub socket: Option<PathBuf>,
    pub process: Process,
}

/// Sends signal `name` (`TERM`, `STOP`, …) to process `pid`; fails the test if kill(1) does.
pub fn kill(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Sends `signal` (`STOP`, `CONT`) to process `pid`. After `STOP`, waits until every one of
/// its threads has stopped: kill(2) returns with the signal pending, and a thread woken by a
/// request at that moment could still answer it.
pub fn signal_and_wait(pid: u32, signal: &str) {
    kill(pid, signal);
    if signal == "STOP" {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < deadline, "process {pid} did not stop");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Whether every thread of process `pid` is stopped (state `T` in `/proc/PID/task/*/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the parenthesised command name, which may hold spaces.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
        })
    })
}

impl Memcached {
    pub fn start() -> Memcached {
        let (port, child) = spawn_on_free_port("memcached (apt-get install memcached)", |port| {
            let mut c = Command::new("memcached");
            c.args(["-u", "root", "-l", "127.0.0.1", "-U", "0", "-t", "1", "-p"])
                .arg(port.to_string());
            c
        });
        Memcached {
            port,
            socket: None,
            process: Process {
                child,
                name: format!("memcached:{port}"),
            },
        }
    }

    /// memcached listening on a unix socket only.
    pub fn start_unix(path: &Path) -> Memcached {
        let child = Command::new("memcached")
            .args(["-u", "root", "-t", "1", "-s"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("memcached is installed");
        wait_for_unix(path);
        Memcached {
            port: 0,
            socket: Some(path.to_path_buf()),
            process: Process {
                child,
                name: format!("memcached:{}", path.display()),
            },
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`STOP`, `CONT`) to this memcached (see [`signal_and_wait`]).
    pub fn signal(&self, signal: &str) {
        signal_and_wait(self.process.child.id(), signal);
    }

    /// Sends raw bytes directly to this memcached and reads until the reply ends with `until`.
    pub fn direct(&self, request: &[u8], until: &[u8]) -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(request).unwrap();
        read_until_suffix(&mut s, until, Duration::from_secs(10))
    }
}

/// A real redis-server on a loopback port, no persistence.
pub struct Redis {
    pub port: u16,
    pub process: Process,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Redis {
        let (port, child) =
            spawn_on_free_port("redis-server (apt-get install redis-server)", |port| {
                let mut c = Command::new("redis-server");
                c.args([
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--port",
                ])
                .arg(port.to_string())
                .args(extra);
                c
            });
        Redis {
            port,
            process: Process {
                child,
                name: format!("redis:{port}"),
            },
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`STOP`, `CONT`) to this redis-server (see [`signal_and_wait`]).
    pub fn signal(&self, signal: &str) {
        signal_and_wait(self.process.child.id(), signal);
    }
}

/// Which proxy binary to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Nutcracker,
    Rustcracker,
}

/// A rustcracker with one memcache pool of one server (`127.0.0.1:server_port`) and a
/// `timeout` of `timeout_ms`; returns it and the pool's port.
pub fn single_server_proxy(server_port: u16, timeout_ms: u32) -> (Proxy, u16) {
    let port = free_port();
    let config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  timeout: {timeout_ms}\n  servers:\n   - 127.0.0.1:{server_port}:1\n"
    );
    (Proxy::start(Flavor::Rustcracker, &config, port, &[]), port)
}

/// Every TCP socket whose local or remote port is `port`, with its process, as `ss` lists
/// them (for a test that lost a port to someone).
fn sockets_on(port: &str) -> String {
    let listing = Command::new("ss").args(["-Htanp"]).output();
    let text = listing.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let wanted = format!(":{port} ");
    text.unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&wanted))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A running proxy with its config in a temporary directory.
pub struct Proxy {
    pub flavor: Flavor,
    pub dir: tempfile::TempDir,
    pub stats_port: u16,
    pub process: Process,
}

impl Proxy {
    /// Writes `config` to a temp dir and starts the proxy with it; waits until
    /// `wait_port` (a pool's listen port) accepts connections.
    pub fn start(flavor: Flavor, config: &str, wait_port: u16, extra_args: &[&str]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("nutcracker.yml");
        std::fs::write(&conf, config).unwrap();
        let stats_port = free_port();
        let bin = match flavor {
            Flavor::Nutcracker => nutcracker_bin(),
            Flavor::Rustcracker => rustcracker_bin(),
        };
        // The proxy's own log lines go to a file, shown if it does not come up (and on the
        // test's stderr when asked for: TEST_PROXY_LOG=1).
        let log = dir.path().join("proxy.log");
        // More of its log for a hunt (TEST_PROXY_VERBOSITY=N: rustcracker's `-v N`).
        let verbosity: Vec<String> = match std::env::var("TEST_PROXY_VERBOSITY") {
            Ok(level) if flavor == Flavor::Rustcracker => vec!["-v".into(), level],
            _ => Vec::new(),
        };
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .args(["-a", "127.0.0.1", "-s"])
            .arg(stats_port.to_string())
            .args(&verbosity)
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_PROXY_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::from(std::fs::File::create(&log).unwrap())
            })
            .spawn()
            .unwrap();
        let mut process = Process {
            child,
            name: format!("{flavor:?}"),
        };
        let exited = || {
            let status = process.child.try_wait().ok().flatten()?;
            Some(format!("it exited: {status}"))
        };
        if let Err(why) = wait_listening(wait_port, exited) {
            panic!(
                "{} is not listening on 127.0.0.1:{wait_port} ({why}); its log ends:\n{}",
                process.name,
                Proxy::log_tail(&log, 20)
            );
        }
        Proxy {
            flavor,
            dir,
            stats_port,
            process,
        }
    }

    /// The last `lines` lines the proxy logged (empty with TEST_PROXY_LOG set), and when it
    /// could not bind an address, who holds it.
    fn log_tail(log: &Path, lines: usize) -> String {
        let logged = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = logged.lines().rev().take(lines).collect();
        let mut out = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        // `bind on pool 'p' to addr '127.0.0.1:PORT' failed: Address already in use`.
        let taken = logged
            .lines()
            .filter(|l| l.contains("Address already in use"));
        for port in taken.filter_map(|l| l.split("127.0.0.1:").nth(1)?.split('\'').next()) {
            out.push_str(&format!(
                "\nsockets on port {port} (ss -tanp):\n{}",
                sockets_on(port)
            ));
        }
        out
    }
}

impl Drop for Proxy {
    /// A test that fails with a proxy running shows how the proxy ended: whether it is still
    /// running, and the last lines it logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let state = match self.process.child.try_wait() {
                Ok(Some(status)) => format!("exited: {status}"),
                _ => "still running".to_string(),
            };
            eprintln!(
                "{:?} proxy ({state}); its log ends:\n{}",
                self.flavor,
                Proxy::log_tail(&self.dir.path().join("proxy.log"), 30)
            );
        }
    }
}

/// A stats port's whole answer, as `nc host port </dev/null` gets it: connect, close the
/// sending side, read everything.
pub fn stats_raw(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Reads from `s` until the bytes read end with `suffix` (or time runs out).
pub fn read_until_suffix(s: &mut TcpStream, suffix: &[u8], timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(suffix) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// Reads whatever arrives until the peer is quiet for `quiet`, or closes
/// (the flag says whether it closed).
pub fn read_quiet(s: &mut TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(quiet)).unwrap();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return (out, false)
            }
            Err(_) => return (out, true),
        }
    }
}

/// A real redis-server listening on a unix socket only (`--port 0`), no persistence.
pub struct RedisUnix {
    pub path: PathBuf,
    pub process: Process,
}

impl RedisUnix {
    pub fn start(path: &Path, extra: &[&str]) -> RedisUnix {
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(path)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        wait_for_unix(path);
        RedisUnix {
            path: path.to_path_buf(),
            process: Process {
                child,
                name: format!("redis:{}", path.display()),
            },
        }
    }
}

/// Encodes one redis command as a RESP multi-bulk request.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends `request` straight to a redis on `port` (over a fresh connection)
/// and reads until the bytes read end with `until`.
pub fn redis_direct(port: u16, request: &[u8], until: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request).unwrap();
    read_until_suffix(&mut s, until, Duration::from_secs(10))
}

/// A client connection to `port` with a small, fixed receive buffer (64 KiB,
/// which also stops the kernel growing it): replies that outgrow it and the
/// proxy's send buffer stay in the proxy until the client reads.
pub fn connect_slow_reader(port: u16) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// Reads until `want_len` bytes arrived (or the peer closes); a read error
/// (30 s without data) fails the test, saying how far it got.
pub fn read_len(s: &mut TcpStream, want_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(want_len);
    let mut buf = vec![0u8; 1 << 16];
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    while out.len() < want_len {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed after {} of {want_len} bytes: {e}", out.len()),
        }
    }
    out
}

/// Bytes for a failure message: CR/LF made visible, long ones cut at 400.
pub fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(400)])
        .replace('\r', "\\r")
        .replace('\n', "\\n");
    if b.len() > 400 {
        format!("{s}... ({} bytes)", b.len())
    } else {
        s
    }
}

/// `count` keys for the combining tests' long lines: every third one of the
/// 40 stored keys `k0` … `k39`, the others misses.
pub fn hits_and_misses(count: usize) -> impl Iterator<Item = String> {
    (0..count).map(|i| {
        if i % 3 == 0 {
            format!("k{}", i % 40)
        } else {
            format!("miss{i}")
        }
    })
}

/// Sends `request` in one write on a new connection to `port` and reads until
/// the connection has been quiet for 300 ms.
pub fn exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request).unwrap();
    read_quiet(&mut s, Duration::from_millis(300)).0
}

/// A differential check: each case (name, request, whether nutcracker
/// answers the same) goes in one write to `proxies[reference]`, whose reply
/// must pass `valid`, and then to every proxy of `proxies` (name, listen
/// port, proxy), which must answer exactly the same bytes.
pub fn assert_same_replies(
    proxies: &[(&str, u16, Proxy)],
    reference: usize,
    cases: Vec<(&str, Vec<u8>, bool)>,
    valid: impl Fn(&[u8]) -> bool,
) {
    for (name, request, nutcracker_agrees) in cases {
        let expected = exchange(proxies[reference].1, &request);
        assert!(valid(&expected), "{name}: {}", show(&expected));
        for (proxy, port, process) in proxies {
            if process.flavor == Flavor::Nutcracker && !nutcracker_agrees {
                continue;
            }
            let mut s = TcpStream::connect(("127.0.0.1", *port)).unwrap();
            s.write_all(&request).unwrap();
            let got = read_len(&mut s, expected.len());
            assert!(
                got == expected,
                "{name}, {proxy}:\n got  {}\n want {}",
                show(&got),
                show(&expected)
            );
        }
    }
}

/// rustcracker combining, rustcracker with `--combine-gets=0` (the reference
/// of [`assert_same_replies`], at index 1) and nutcracker when it is installed,
/// each with `config(listen port)`: (name, listen port, proxy).
pub fn combining_proxies(config: impl Fn(u16) -> String) -> Vec<(&'static str, u16, Proxy)> {
    let mut proxies = Vec::new();
    for (name, flavor, args) in [
        ("combining", Flavor::Rustcracker, &[][..]),
        (
            "not combining",
            Flavor::Rustcracker,
            &["--combine-gets=0"][..],
        ),
        ("nutcracker", Flavor::Nutcracker, &[][..]),
    ] {
        if flavor == Flavor::Nutcracker && !nutcracker_bin().exists() {
            continue;
        }
        let port = free_port();
        let proxy = Proxy::start(flavor, &config(port), port, args);
        proxies.push((name, port, proxy));
    }
    proxies
}
