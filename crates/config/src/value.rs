//! Scalar value rules shared by the directives: numbers and booleans.

/// The largest value nutcracker can hold without wrapping its C `int`.
pub(crate) const MAX_NUMBER: u64 = i32::MAX as u64;

/// Why a number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Empty, or something other than ASCII digits (nutcracker: "is not a number").
    NotANumber,
    /// Digits only, but above 2147483647: nutcracker 0.5.0 would wrap it at 32
    /// bits (and then accept or reject the wrapped value); rustcracker refuses.
    TooLarge,
}

/// Parses a number the way nutcracker's `nc_atoi` does (ASCII digits only,
/// leading zeros allowed, no sign, no spaces), refusing values that would
/// wrap at 32 bits.
pub(crate) fn number(text: &str) -> Result<u32, NumberError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberError::NotANumber);
    }
    let mut value: u64 = 0;
    for b in text.bytes() {
        value = value * 10 + u64::from(b - b'0');
        if value > MAX_NUMBER {
            return Err(NumberError::TooLarge);
        }
    }
    u32::try_from(value).map_err(|_| NumberError::TooLarge)
}

/// nutcracker's booleans: exactly `true` or `false`.
pub(crate) fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// nutcracker's string order: shorter first, then bytewise.
pub(crate) fn nc_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("0"), Ok(0));
        assert_eq!(number("0400"), Ok(400));
        assert_eq!(number("2147483647"), Ok(2147483647));
        assert_eq!(number("2147483648"), Err(NumberError::TooLarge));
        assert_eq!(
            number("99999999999999999999999"),
            Err(NumberError::TooLarge)
        );
        assert_eq!(number(""), Err(NumberError::NotANumber));
        assert_eq!(number("-1"), Err(NumberError::NotANumber));
        assert_eq!(number("+1"), Err(NumberError::NotANumber));
        assert_eq!(number("1 "), Err(NumberError::NotANumber));
        assert_eq!(number("1s"), Err(NumberError::NotANumber));
    }

    #[test]
    fn ordering() {
        use std::cmp::Ordering::*;
        assert_eq!(nc_cmp("rd", "mc"), Greater);
        assert_eq!(nc_cmp("rd", "mcsock"), Less);
        assert_eq!(nc_cmp("named", "/tmp/x/mcu.sock:"), Less);
        assert_eq!(nc_cmp("a", "a"), Equal);
    }
}
