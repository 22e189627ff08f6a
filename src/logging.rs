//! nutcracker-style log lines to stderr or a file that SIGHUP reopens.
