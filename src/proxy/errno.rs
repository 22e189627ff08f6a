//! The error texts of proxy-generated replies: glibc's `strerror` wording, as
//! nutcracker puts it after `SERVER_ERROR ` / `-ERR `.

use std::io;

/// Why a request failed inside the proxy (an errno, in nutcracker's terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An OS error number (ECONNREFUSED, ETIMEDOUT, …).
    Os(i32),
    /// The server closed the connection with the request outstanding:
    /// nutcracker reports errno 0, i.e. `unknown`.
    Unknown,
}

impl Failure {
    pub const REFUSED: Failure = Failure::Os(libc::ECONNREFUSED);
    pub const TIMED_OUT: Failure = Failure::Os(libc::ETIMEDOUT);
    pub const INVALID: Failure = Failure::Os(libc::EINVAL);

    /// The failure behind an IO error (its errno, or EINVAL for synthetic errors).
    pub fn from_io(e: &io::Error) -> Failure {
        match e.raw_os_error() {
            Some(code) => Failure::Os(code),
            None if e.kind() == io::ErrorKind::UnexpectedEof => Failure::Unknown,
            None => Failure::INVALID,
        }
    }

    /// The message text: glibc's strerror for the errno, `unknown` for errno 0.
    pub fn message(self) -> String {
        match self {
            Failure::Unknown => "unknown".to_string(),
            Failure::Os(code) => crate::logging::strerror(&io::Error::from_raw_os_error(code)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_wording() {
        assert_eq!(Failure::REFUSED.message(), "Connection refused");
        assert_eq!(Failure::TIMED_OUT.message(), "Connection timed out");
        assert_eq!(Failure::INVALID.message(), "Invalid argument");
        assert_eq!(Failure::Os(libc::EHOSTDOWN).message(), "Host is down");
        assert_eq!(
            Failure::Os(libc::ECONNRESET).message(),
            "Connection reset by peer"
        );
        assert_eq!(
            Failure::Os(libc::ENOENT).message(),
            "No such file or directory"
        );
        assert_eq!(Failure::Unknown.message(), "unknown");
    }
}
