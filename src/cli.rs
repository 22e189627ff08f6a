//! Command-line options, parsed exactly as nutcracker 0.5.0 parses them.
