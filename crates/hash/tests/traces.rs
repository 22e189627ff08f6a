//! Replays key placements captured from nutcracker 0.5.0
//! (`scripts/capture-traces` → `test-data/placement/*.tsv`) through
//! `Router`, without nutcracker: every key must land on the server
//! nutcracker put it on.

use std::path::{Path, PathBuf};

use rustcracker_hash::{Distribution, HashFunction, Router};

struct Trace {
    hash: HashFunction,
    distribution: Distribution,
    hash_tag: Option<[u8; 2]>,
    /// (name, weight, live) in nutcracker's sorted order.
    servers: Vec<(String, u32, bool)>,
    /// (key, server name).
    keys: Vec<(Vec<u8>, String)>,
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex key"))
        .collect()
}

fn parse(path: &Path) -> Trace {
    let text = std::fs::read_to_string(path).expect("trace is readable");
    let mut hash = None;
    let mut distribution = None;
    let mut hash_tag = None;
    let mut servers = Vec::new();
    let mut keys = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "hash" => hash = HashFunction::from_name(f[1]),
            "distribution" => distribution = Distribution::from_name(f[1]),
            "hash_tag" if f[1] != "-" => {
                let b = f[1].as_bytes();
                assert_eq!(b.len(), 2, "hash_tag in {}", path.display());
                hash_tag = Some([b[0], b[1]]);
            }
            "hash_tag" => {}
            "server" => {
                assert_eq!(f[1].parse::<usize>().ok(), Some(servers.len()));
                servers.push((f[2].to_string(), f[3].parse().expect("weight"), f[4] == "1"));
            }
            "key" => keys.push((unhex(f[1]), f[2].to_string())),
            other => panic!("{}: unknown line kind {other:?}", path.display()),
        }
    }
    Trace {
        hash: hash.expect("hash line"),
        distribution: distribution.expect("distribution line"),
        hash_tag,
        servers,
        keys,
    }
}

fn trace_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/placement");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("test-data/placement exists (scripts/capture-traces)")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
        .collect();
    files.sort();
    files
}

#[test]
fn nutcracker_traces_replay_exactly() {
    let files = trace_files();
    // 12 hashes × 2 distributions × 5 scenarios, minus crc32-ketama-ejected.
    assert!(files.len() >= 119, "only {} trace files", files.len());
    let mut seen_hashes = std::collections::HashSet::new();
    let mut failures = Vec::new();
    let mut checked = 0usize;
    for path in &files {
        let t = parse(path);
        seen_hashes.insert(t.hash);
        let names: Vec<(&[u8], u32)> = t
            .servers
            .iter()
            .map(|(n, w, _)| (n.as_bytes(), *w))
            .collect();
        let mut router = Router::new(t.hash, t.hash_tag, t.distribution, &names);
        let live: Vec<bool> = t.servers.iter().map(|s| s.2).collect();
        router.set_live(&live);
        assert!(
            t.keys.len() >= 150,
            "{}: {} keys",
            path.display(),
            t.keys.len()
        );
        for (key, want) in &t.keys {
            checked += 1;
            let got = router.route(key).map(|i| t.servers[i].0.as_str());
            if got != Some(want.as_str()) {
                failures.push(format!(
                    "{}: key {:02x?} → {got:?}, nutcracker: {want}",
                    path.file_name()
                        .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                    key
                ));
            }
        }
    }
    assert_eq!(seen_hashes.len(), 12, "every hash function has traces");
    assert!(
        failures.is_empty(),
        "{} of {checked} keys misplaced:\n{}",
        failures.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
