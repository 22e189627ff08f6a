//! The memcached ASCII commands the proxy forwards.

/// A memcached ASCII command recognised by the proxy.
///
/// Everything else (`stats`, `flush_all`, `verbosity`, meta commands, upper-case names, …) is
/// answered locally with `ERROR\r\n` by [`crate::parse_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `get <key>+`
    Get,
    /// `gets <key>+`
    Gets,
    /// `gat <exptime> <key>+` (not supported by nutcracker; supported here on purpose).
    Gat,
    /// `gats <exptime> <key>+` (not supported by nutcracker; supported here on purpose).
    Gats,
    /// `set <key> <flags> <exptime> <bytes> [noreply]` + data block
    Set,
    /// `add <key> <flags> <exptime> <bytes> [noreply]` + data block
    Add,
    /// `replace <key> <flags> <exptime> <bytes> [noreply]` + data block
    Replace,
    /// `append <key> <flags> <exptime> <bytes> [noreply]` + data block
    Append,
    /// `prepend <key> <flags> <exptime> <bytes> [noreply]` + data block
    Prepend,
    /// `cas <key> <flags> <exptime> <bytes> <cas> [noreply]` + data block
    Cas,
    /// `incr <key> <delta> [noreply]`
    Incr,
    /// `decr <key> <delta> [noreply]`
    Decr,
    /// `delete <key> [0] [noreply]`
    Delete,
    /// `touch <key> <exptime> [noreply]`
    Touch,
    /// `version` (memcached ignores any arguments, and so do we)
    Version,
    /// `quit` (memcached ignores any arguments, and so do we)
    Quit,
}

impl Command {
    /// All commands, in declaration order.
    pub const ALL: [Command; 16] = [
        Command::Get,
        Command::Gets,
        Command::Gat,
        Command::Gats,
        Command::Set,
        Command::Add,
        Command::Replace,
        Command::Append,
        Command::Prepend,
        Command::Cas,
        Command::Incr,
        Command::Decr,
        Command::Delete,
        Command::Touch,
        Command::Version,
        Command::Quit,
    ];

    /// Looks a command up by its exact (lower-case) name, as memcached's `strcmp` does.
    pub fn from_name(name: &[u8]) -> Option<Command> {
        Some(match name {
            b"get" => Command::Get,
            b"gets" => Command::Gets,
            b"gat" => Command::Gat,
            b"gats" => Command::Gats,
            b"set" => Command::Set,
            b"add" => Command::Add,
            b"replace" => Command::Replace,
            b"append" => Command::Append,
            b"prepend" => Command::Prepend,
            b"cas" => Command::Cas,
            b"incr" => Command::Incr,
            b"decr" => Command::Decr,
            b"delete" => Command::Delete,
            b"touch" => Command::Touch,
            b"version" => Command::Version,
            b"quit" => Command::Quit,
            _ => return None,
        })
    }

    /// The command's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Command::Get => "get",
            Command::Gets => "gets",
            Command::Gat => "gat",
            Command::Gats => "gats",
            Command::Set => "set",
            Command::Add => "add",
            Command::Replace => "replace",
            Command::Append => "append",
            Command::Prepend => "prepend",
            Command::Cas => "cas",
            Command::Incr => "incr",
            Command::Decr => "decr",
            Command::Delete => "delete",
            Command::Touch => "touch",
            Command::Version => "version",
            Command::Quit => "quit",
        }
    }

    /// `get`, `gets`, `gat`, `gats`: one or more keys, answered by `VALUE` blocks and `END`.
    pub fn is_retrieval(self) -> bool {
        matches!(
            self,
            Command::Get | Command::Gets | Command::Gat | Command::Gats
        )
    }

    /// `gat` and `gats`: retrieval commands whose first argument is an exptime.
    pub fn is_touching_retrieval(self) -> bool {
        matches!(self, Command::Gat | Command::Gats)
    }

    /// Storage commands, followed by a data block: `set add replace append prepend cas`.
    pub fn is_storage(self) -> bool {
        matches!(
            self,
            Command::Set
                | Command::Add
                | Command::Replace
                | Command::Append
                | Command::Prepend
                | Command::Cas
        )
    }

    /// Commands that accept a trailing `noreply`.
    pub fn accepts_noreply(self) -> bool {
        self.is_storage()
            || matches!(
                self,
                Command::Incr | Command::Decr | Command::Delete | Command::Touch
            )
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
