//! Command-line options, parsed exactly as nutcracker 0.5.0 parses them
//! (GNU `getopt_long` with `hVtdDv:o:c:s:i:a:p:m:`), plus rustcracker's
//! long-only `--threads`, `--route` and `--pool`; and what the binary does
//! with them ([`run`]).
//!
//! getopt rules kept: bundling (`-dt`, `-dv5`), attached or separate
//! arguments (`-v5`, `-v 5`, `--verbose=5`, `--verbose 5`), an argument is
//! taken even when it starts with `-`, unambiguous long prefixes
//! (`--verb=5`), argument permutation (non-options anywhere are collected,
//! `--` ends the options), first error wins.

mod parse;
mod run;
mod text;

pub use parse::{parse, CliError, Options};
pub use run::run;
pub use text::{usage, version_block};

/// Program name used in messages.
pub const PROGRAM: &str = "rustcracker";
