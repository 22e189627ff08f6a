//! The data plane: workers, listeners, client sessions and server connections.
