//! Daemonizing (double fork) and the pid file.
