//! The configuration reader on arbitrary text: no panic; an error names the file and a position
//! inside the text (or none, for the whole file) with a message on one line; a configuration it
//! accepts has pools with servers whose key placement builds.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match rustcracker_config::parse(Path::new("f.yml"), text) {
        Err(e) => {
            assert!(!e.message.is_empty() && !e.message.contains('\n'), "{e:?}");
            let shown = e.to_string();
            if e.line == 0 {
                assert_eq!(e.column, 0, "{e:?}");
                assert!(shown.starts_with("f.yml: "), "{shown}");
            } else {
                // Lines are 1-based, broken at `\n`, `\r\n` or `\r` as YAML does; one past
                // the last line is where a missing part was due.
                let text = text.replace("\r\n", "\n").replace('\r', "\n");
                let lines = text.split('\n').count();
                assert!(e.line <= lines + 1, "line {} of {lines}: {shown}", e.line);
                assert!(e.column >= 1, "{shown}");
                if let Some(line) = text.split('\n').nth(e.line - 1) {
                    let chars = line.chars().count();
                    assert!(e.column <= chars + 2, "column {} of {chars}: {shown}", e.column);
                }
                assert!(shown.starts_with(&format!("f.yml:{}:{}: ", e.line, e.column)), "{shown}");
            }
        }
        Ok(config) => {
            assert!(!config.pools.is_empty());
            for pool in &config.pools {
                assert!(!pool.servers.is_empty(), "{}", pool.name);
                let _ = pool.router();
            }
        }
    }
});
