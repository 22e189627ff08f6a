//! `cargo run -p rustcracker-config --example check -- FILE...`: loads each
//! file and prints the verdict the way `rustcracker -t` does.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for f in std::env::args().skip(1) {
        match rustcracker_config::load(Path::new(&f)) {
            Ok(c) => {
                for p in &c.pools {
                    let names: Vec<&str> = p.servers.iter().map(|s| s.name.as_str()).collect();
                    eprintln!(
                        "pool {:?} listen {:?} servers {:?}",
                        p.name, p.listen, names
                    );
                }
                eprintln!("rustcracker: configuration file '{f}' syntax is ok");
            }
            Err(e) => {
                eprintln!("{e}");
                eprintln!("rustcracker: configuration file '{f}' syntax is invalid");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}
