//! `--route [KEY...]`: prints which server each key goes to,
//! `POOL<TAB>KEY<TAB>SERVER` per pool and key.
//!
//! Placement is computed with every server live, exactly as a freshly
//! started nutcracker would place the keys. With `distribution: random`
//! the server printed is one random pick, as a single request would get.

use std::io::Write;

use rustcracker_config::{Config, Pool};

/// Why `--route` failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// `--pool` named a pool the configuration does not have.
    #[error("no pool named '{name}' in '{file}' (pools: {known})")]
    UnknownPool {
        name: String,
        file: String,
        /// The configured pool names, comma-separated, in config order.
        known: String,
    },
    /// Writing the result failed.
    #[error("writing the routes failed: {0}")]
    Write(#[from] std::io::Error),
}

/// Prints `POOL<TAB>KEY<TAB>SERVER\n` for each pool (in config order, or
/// only `pool`) and each key; `SERVER` is the server's name as the stats
/// JSON shows it. Keys are written as raw bytes.
pub fn run(
    config: &Config,
    pool: Option<&str>,
    keys: &[Vec<u8>],
    out: &mut dyn Write,
) -> Result<(), RouteError> {
    let pools: Vec<&Pool> = match pool {
        None => config.pools.iter().collect(),
        Some(name) => match config.pools.iter().find(|p| p.name == name) {
            Some(p) => vec![p],
            None => {
                return Err(RouteError::UnknownPool {
                    name: name.to_string(),
                    file: config.path.display().to_string(),
                    known: config
                        .pools
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        },
    };
    for p in pools {
        let router = p.router();
        for key in keys {
            let server = router
                .route(key)
                .and_then(|i| p.servers.get(i))
                .map_or("-", |s| s.name.as_str());
            out.write_all(p.name.as_bytes())?;
            out.write_all(b"\t")?;
            out.write_all(key)?;
            out.write_all(b"\t")?;
            out.write_all(server.as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let yaml = "\
beta:
  listen: 127.0.0.1:22122
  hash: fnv1a_64
  distribution: ketama
  servers:
   - 127.0.0.1:21212:1
   - 127.0.0.1:21211:1
alpha:
  listen: 127.0.0.1:22123
  servers:
   - 127.0.0.1:11211:1
";
        rustcracker_config::parse(std::path::Path::new("t.yml"), yaml).expect("valid config")
    }

    #[test]
    fn prints_every_pool_and_key() {
        let keys: Vec<Vec<u8>> = vec![b"foo".to_vec(), b"bar".to_vec(), vec![b'k', 0xff]];
        let mut out = Vec::new();
        run(&config(), None, &keys, &mut out).expect("routes");
        // Pools come in nutcracker's order: shorter names first.
        let want = [
            &b"beta\tfoo\t127.0.0.1:21211\nbeta\tbar\t127.0.0.1:21212\nbeta\tk\xff\t"[..],
            &b"alpha\tfoo\t127.0.0.1\nalpha\tbar\t127.0.0.1\nalpha\tk\xff\t127.0.0.1\n"[..],
        ];
        let text = out;
        assert!(
            text.starts_with(want[0]),
            "{}",
            String::from_utf8_lossy(&text)
        );
        assert!(text.ends_with(want[1]));
    }

    #[test]
    fn one_pool() {
        let mut out = Vec::new();
        run(&config(), Some("alpha"), &[b"x".to_vec()], &mut out).expect("routes");
        assert_eq!(out, b"alpha\tx\t127.0.0.1\n");
    }

    #[test]
    fn unknown_pool() {
        let mut out = Vec::new();
        let err = run(&config(), Some("gamma"), &[b"x".to_vec()], &mut out).unwrap_err();
        assert!(matches!(err, RouteError::UnknownPool { .. }));
        assert_eq!(
            err.to_string(),
            "no pool named 'gamma' in 't.yml' (pools: beta, alpha)"
        );
        assert!(out.is_empty());
    }
}
