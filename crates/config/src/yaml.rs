//! A reader for the small YAML subset nutcracker accepts.
//!
//! nutcracker reads its configuration with libyaml and then rejects every
//! token outside a tiny whitelist: block mappings, block sequences, scalars
//! (plain, single- and double-quoted, literal and folded) and comments.  This
//! module turns text into the flat event stream libyaml would produce for such
//! a file (mapping/sequence start and end, scalars), each with its position,
//! and rejects, with a position, everything libyaml itself rejects (bad
//! indentation, tabs used as indentation, control characters, ...) as well as
//! everything nutcracker's token whitelist rejects (`%YAML`, `%TAG`, `---`,
//! `...`, flow collections, aliases, anchors and tags).

use std::fmt;

/// A position in the text: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mark {
    pub line: usize,
    pub column: usize,
}

/// What an event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventKind {
    MappingStart,
    MappingEnd,
    SequenceStart,
    SequenceEnd,
    Scalar(String),
}

/// One libyaml-style parse event and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub kind: EventKind,
    pub mark: Mark,
}

/// A YAML syntax error, or a token nutcracker disallows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    /// `None` when the problem concerns the whole file.
    pub mark: Option<Mark>,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

type Result<T> = std::result::Result<T, YamlError>;

/// Where a node starts, which decides what kind of node may appear there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// On a line of its own (below `key:` or `-`): anything goes.
    NextLine,
    /// On the same line as `key:`: only a scalar.
    AfterSimpleValue,
    /// On the same line as `- `, `? ` or an explicit `: `: compact
    /// collections are allowed.
    Compact,
}

/// A scanned scalar that may turn out to be a mapping key.
struct Scanned {
    value: String,
    mark: Mark,
    multiline: bool,
    /// Where libyaml's scanner stopped: a plain scalar also swallows the
    /// blanks and line breaks after it (so a tab there is no error).
    stop: usize,
}

/// Reads `text` and returns the events of its single document.
pub(crate) fn read(text: &str) -> Result<Vec<Event>> {
    let mut reader = Reader::new(text)?;
    reader.document()?;
    Ok(reader.events)
}

struct Reader {
    chars: Vec<char>,
    /// Index of the first character of every line.
    line_starts: Vec<usize>,
    pos: usize,
    events: Vec<Event>,
}

fn is_break(c: char) -> bool {
    c == '\n'
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Blank, line break or end of input (`'\0'`).
fn is_blankz(c: char) -> bool {
    is_blank(c) || is_break(c) || c == '\0'
}

fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

impl Reader {
    fn new(text: &str) -> Result<Reader> {
        // Normalise line breaks (\r\n and lone \r) to \n, drop a leading BOM.
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut chars = Vec::with_capacity(text.len());
        let mut it = text.chars().peekable();
        while let Some(c) = it.next() {
            if c == '\r' {
                if it.peek() == Some(&'\n') {
                    it.next();
                }
                chars.push('\n');
            } else {
                chars.push(c);
            }
        }
        let mut line_starts = vec![0];
        for (i, &c) in chars.iter().enumerate() {
            if c == '\n' {
                line_starts.push(i + 1);
            }
        }
        let reader = Reader {
            chars,
            line_starts,
            pos: 0,
            events: Vec::new(),
        };
        if let Some(i) = reader.chars.iter().position(|&c| !printable(c)) {
            return Err(reader.error_at(i, "control characters are not allowed in YAML"));
        }
        Ok(reader)
    }

    // ----- positions -------------------------------------------------------

    fn line_index(&self, idx: usize) -> usize {
        match self.line_starts.binary_search(&idx) {
            Ok(l) => l,
            Err(l) => l - 1,
        }
    }

    /// 0-based column of `idx`.
    fn col_of(&self, idx: usize) -> usize {
        idx - self.line_starts[self.line_index(idx)]
    }

    fn col(&self) -> usize {
        self.col_of(self.pos)
    }

    fn mark_of(&self, idx: usize) -> Mark {
        let l = self.line_index(idx);
        Mark {
            line: l + 1,
            column: idx - self.line_starts[l] + 1,
        }
    }

    fn mark(&self) -> Mark {
        self.mark_of(self.pos)
    }

    fn error_at(&self, idx: usize, message: impl Into<String>) -> YamlError {
        YamlError {
            mark: Some(self.mark_of(idx)),
            message: message.into(),
        }
    }

    fn error(&self, message: impl Into<String>) -> YamlError {
        self.error_at(self.pos, message)
    }

    fn peek_at(&self, k: usize) -> char {
        self.chars.get(self.pos + k).copied().unwrap_or('\0')
    }

    fn cur(&self) -> char {
        self.peek_at(0)
    }

    fn eof(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn emit(&mut self, kind: EventKind, mark: Mark) {
        self.events.push(Event { kind, mark });
    }

    /// True when only spaces precede `pos` on its line.
    fn at_indentation(&self) -> bool {
        let start = self.line_starts[self.line_index(self.pos)];
        self.chars[start..self.pos].iter().all(|&c| c == ' ')
    }

    // ----- whitespace, comments, document markers --------------------------

    fn skip_comment(&mut self) {
        if self.cur() == '#' {
            while !self.eof() && !is_break(self.cur()) {
                self.pos += 1;
            }
        }
    }

    /// Skips blanks and a comment on the current line; `tab_ok` says whether
    /// tabs may separate tokens here (libyaml refuses them after `-`, `?`
    /// and an explicit `:`).  Stops before the line break.
    fn skip_inline(&mut self, tab_ok: bool) -> Result<()> {
        loop {
            match self.cur() {
                ' ' => self.pos += 1,
                '\t' if tab_ok => self.pos += 1,
                '\t' => {
                    return Err(
                        self.error("found a tab character where a separating space is expected")
                    )
                }
                _ => break,
            }
        }
        self.skip_comment();
        Ok(())
    }

    /// Moves to the first character of the next content line (or EOF).  When
    /// the reader is in the middle of a line, the rest of it must be blank or
    /// a comment.  Idempotent when already at the start of content.
    fn skip_to_content(&mut self) -> Result<()> {
        if !self.eof() && !self.at_indentation() {
            self.skip_inline(true)?;
            if !self.eof() && !is_break(self.cur()) {
                return Err(self.error(format!(
                    "unexpected {} after a complete value (did not find expected key)",
                    describe(self.cur())
                )));
            }
        }
        loop {
            while self.cur() == ' ' {
                self.pos += 1;
            }
            if self.cur() == '\t' {
                return Err(self.error(
                    "found a tab character in indentation (YAML allows only spaces there)",
                ));
            }
            self.skip_comment();
            if self.eof() {
                return Ok(());
            }
            if is_break(self.cur()) {
                self.pos += 1;
                continue;
            }
            break;
        }
        if self.col() == 0 {
            self.check_line_start_tokens()?;
        }
        Ok(())
    }

    /// Document markers and directives, which only exist at column 0.
    fn check_line_start_tokens(&self) -> Result<()> {
        let c = self.cur();
        if c == '%' {
            let kind = if self.chars[self.pos..].starts_with(&['%', 'Y', 'A', 'M', 'L']) {
                "version directive (%YAML)"
            } else if self.chars[self.pos..].starts_with(&['%', 'T', 'A', 'G']) {
                "tag directive (%TAG)"
            } else {
                "directive"
            };
            return Err(self.error(format!("{kind} is disallowed")));
        }
        if self.is_document_indicator() {
            return Err(self.error(if c == '-' {
                "document start token (---) is disallowed; nutcracker accepts exactly one document without markers"
            } else {
                "document end token (...) is disallowed; nutcracker accepts exactly one document without markers"
            }));
        }
        Ok(())
    }

    fn is_document_indicator(&self) -> bool {
        let c = self.cur();
        (c == '-' || c == '.')
            && self.col() == 0
            && self.peek_at(1) == c
            && self.peek_at(2) == c
            && is_blankz(self.peek_at(3))
    }

    // ----- document ----------------------------------------------------------

    fn document(&mut self) -> Result<()> {
        self.skip_to_content()?;
        if self.eof() {
            return Err(YamlError {
                mark: None,
                message:
                    "must contain only 1 document; found 0 documents (the file has no content)"
                        .into(),
            });
        }
        self.node(-1, Ctx::NextLine)?;
        self.skip_to_content()?;
        if !self.eof() {
            return Err(self.error(format!(
                "unexpected {} after the end of the document (check its indentation)",
                describe(self.cur())
            )));
        }
        Ok(())
    }

    /// Parses the node at the current position; `indent` is libyaml's current
    /// indentation (the column of the innermost block collection, -1 at the
    /// root).
    fn node(&mut self, indent: isize, ctx: Ctx) -> Result<()> {
        let c = self.cur();
        let next = self.peek_at(1);
        let start = self.pos;
        let column = self.col();
        match c {
            '-' if is_blankz(next) => {
                if ctx == Ctx::AfterSimpleValue {
                    return Err(self.error("block sequence entries are not allowed in this context (put the list on the next lines)"));
                }
                self.sequence(column, false)
            }
            '?' | ':' if is_blankz(next) => {
                if ctx == Ctx::AfterSimpleValue {
                    return Err(self.error("mapping values are not allowed in this context"));
                }
                self.mapping(column, None)
            }
            '[' => Err(self.error("flow sequence start token ([) is disallowed; write the list in block style")),
            ']' => Err(self.error("flow sequence end token (]) is disallowed")),
            '{' => Err(self.error("flow mapping start token ({) is disallowed; write the mapping in block style or quote the value")),
            '}' => Err(self.error("flow mapping end token (}) is disallowed")),
            ',' => Err(self.error("flow entry token (,) is disallowed")),
            '*' => Err(self.error("alias token (*) is disallowed")),
            '&' => Err(self.error("anchor token (&) is disallowed")),
            '!' => Err(self.error("tag token (!) is disallowed")),
            '@' | '`' | '%' => Err(self.error(format!(
                "found character '{c}' that cannot start any token (quote the value)"
            ))),
            '|' | '>' => {
                let mark = self.mark();
                let value = self.block_scalar(indent)?;
                self.emit(EventKind::Scalar(value), mark);
                Ok(())
            }
            _ => {
                let scanned = if c == '\'' || c == '"' { self.quoted()? } else { self.plain(indent)? };
                // A scalar followed by ':' on the same line is a mapping key.
                let after = self.pos;
                while is_blank(self.cur()) {
                    self.pos += 1;
                }
                if self.cur() == ':' && is_blankz(self.peek_at(1)) {
                    if ctx == Ctx::AfterSimpleValue {
                        return Err(self.error("mapping values are not allowed in this context (quote the value if it contains \": \")"));
                    }
                    if scanned.multiline {
                        return Err(self.error_at(start, "a mapping key must fit on a single line"));
                    }
                    self.pos = after;
                    self.mapping(column, Some(scanned))
                } else {
                    self.pos = scanned.stop;
                    self.emit(EventKind::Scalar(scanned.value), scanned.mark);
                    Ok(())
                }
            }
        }
    }

    /// A block mapping whose keys are at column `m`.  `first` is its first
    /// key when already scanned (the reader then sits right after it).
    fn mapping(&mut self, m: usize, mut first: Option<Scanned>) -> Result<()> {
        let mark = first
            .as_ref()
            .map(|s| s.mark)
            .unwrap_or_else(|| self.mark());
        self.emit(EventKind::MappingStart, mark);
        let indent = m as isize;
        loop {
            let key = match first.take() {
                Some(k) => Some(k),
                None => {
                    let c = self.cur();
                    let next = self.peek_at(1);
                    if c == '?' && is_blankz(next) {
                        self.explicit_entry()?;
                        None
                    } else if c == ':' && is_blankz(next) {
                        // A value without a key: libyaml reads an empty key.
                        let mark = self.mark();
                        self.emit(EventKind::Scalar(String::new()), mark);
                        self.explicit_value(indent)?;
                        None
                    } else if c == '-' && is_blankz(next) {
                        return Err(self.error(
                            "did not find expected key (a list item is not aligned with its list)",
                        ));
                    } else if c == '\'' || c == '"' {
                        Some(self.quoted()?)
                    } else if matches!(
                        c,
                        '[' | ']' | '{' | '}' | ',' | '*' | '&' | '!' | '|' | '>' | '@' | '`' | '%'
                    ) {
                        // Let node() produce the precise message.
                        self.node(indent, Ctx::AfterSimpleValue)?;
                        return Err(self.error("did not find expected key"));
                    } else {
                        Some(self.plain(indent)?)
                    }
                }
            };
            if let Some(key) = key {
                while is_blank(self.cur()) {
                    self.pos += 1;
                }
                if !(self.cur() == ':' && is_blankz(self.peek_at(1))) {
                    return Err(YamlError {
                        mark: Some(key.mark),
                        message: format!(
                            "could not find expected ':' after \"{}\" (a directive is written \"key: value\")",
                            key.value
                        ),
                    });
                }
                if key.multiline {
                    return Err(YamlError {
                        mark: Some(key.mark),
                        message: "a mapping key must fit on a single line".into(),
                    });
                }
                let colon = self.pos;
                self.pos += 1;
                self.emit(EventKind::Scalar(key.value), key.mark);
                self.simple_value(indent, colon)?;
            }
            self.skip_to_content()?;
            if self.eof() {
                break;
            }
            let c = self.col();
            if c < m {
                break;
            }
            if c > m {
                return Err(self.error(format!(
                    "bad indentation: expected a key at column {} (did not find expected key)",
                    m + 1
                )));
            }
        }
        let end = self.mark();
        self.emit(EventKind::MappingEnd, end);
        Ok(())
    }

    /// The value after `key:`; the reader sits right after the colon.
    fn simple_value(&mut self, indent: isize, colon: usize) -> Result<()> {
        self.skip_inline(true)?;
        if self.eof() || is_break(self.cur()) {
            self.below_value(indent, colon)
        } else {
            self.node(indent, Ctx::AfterSimpleValue)
        }
    }

    /// A value that starts on a following line (or is empty).
    fn below_value(&mut self, indent: isize, indicator: usize) -> Result<()> {
        self.skip_to_content()?;
        if !self.eof() {
            let c = self.col() as isize;
            if c > indent {
                return self.node(indent, Ctx::NextLine);
            }
            if c == indent && self.cur() == '-' && is_blankz(self.peek_at(1)) {
                // An "indentless" sequence: `key:` then `- item` at the key's column.
                return self.sequence(self.col(), true);
            }
        }
        let mark = self.mark_of(indicator + 1);
        self.emit(EventKind::Scalar(String::new()), mark);
        Ok(())
    }

    /// `? key` [`: value`] at the mapping's column.
    fn explicit_entry(&mut self) -> Result<()> {
        let indent = self.col() as isize;
        let q = self.pos;
        self.pos += 1;
        self.skip_inline(false)?;
        if self.eof() || is_break(self.cur()) {
            self.skip_to_content()?;
            if !self.eof() && self.col() as isize > indent {
                self.node(indent, Ctx::NextLine)?;
            } else {
                let mark = self.mark_of(q + 1);
                self.emit(EventKind::Scalar(String::new()), mark);
            }
        } else {
            self.node(indent, Ctx::Compact)?;
        }
        self.skip_to_content()?;
        if !self.eof()
            && self.col() as isize == indent
            && self.cur() == ':'
            && is_blankz(self.peek_at(1))
        {
            self.explicit_value(indent)
        } else {
            let mark = self.mark();
            self.emit(EventKind::Scalar(String::new()), mark);
            Ok(())
        }
    }

    /// `: value` of an explicit entry; the reader sits on the colon.
    fn explicit_value(&mut self, indent: isize) -> Result<()> {
        let colon = self.pos;
        self.pos += 1;
        self.skip_inline(false)?;
        if self.eof() || is_break(self.cur()) {
            self.below_value(indent, colon)
        } else {
            self.node(indent, Ctx::Compact)
        }
    }

    /// A block sequence whose `-` indicators are at column `s`.
    fn sequence(&mut self, s: usize, indentless: bool) -> Result<()> {
        let mark = self.mark();
        self.emit(EventKind::SequenceStart, mark);
        let indent = s as isize;
        loop {
            let dash = self.pos;
            self.pos += 1;
            self.skip_inline(false)?;
            if self.eof() || is_break(self.cur()) {
                self.skip_to_content()?;
                if !self.eof() && self.col() > s {
                    self.node(indent, Ctx::NextLine)?;
                } else {
                    let mark = self.mark_of(dash + 1);
                    self.emit(EventKind::Scalar(String::new()), mark);
                }
            } else {
                self.node(indent, Ctx::Compact)?;
            }
            self.skip_to_content()?;
            if self.eof() {
                break;
            }
            let c = self.col();
            if c < s {
                break;
            }
            let is_entry = self.cur() == '-' && is_blankz(self.peek_at(1));
            if c == s && is_entry {
                continue;
            }
            if c == s && indentless {
                // End of an indentless sequence; the mapping goes on.
                break;
            }
            return Err(self.error(if c == s {
                "did not find expected '-' indicator (a list ends where a key is expected)"
                    .to_string()
            } else {
                format!("bad indentation: expected a list item at column {}", s + 1)
            }));
        }
        let end = self.mark();
        self.emit(EventKind::SequenceEnd, end);
        Ok(())
    }

    // ----- scalars -------------------------------------------------------------

    /// Appends the folded form of the line breaks / whitespace found between
    /// two parts of a multi-line flow or plain scalar.
    fn fold(out: &mut String, whitespace: &str, breaks: usize, leading: bool) {
        if leading {
            if breaks <= 1 {
                out.push(' ');
            } else {
                for _ in 1..breaks {
                    out.push('\n');
                }
            }
        } else {
            out.push_str(whitespace);
        }
    }

    /// A plain scalar; continuation lines must be indented beyond `indent`.
    fn plain(&mut self, indent: isize) -> Result<Scanned> {
        let start = self.pos;
        let mark = self.mark();
        let start_line = mark.line;
        let mut out = String::new();
        let mut end = self.pos;
        let mut whitespace = String::new();
        let mut breaks = 0usize;
        let mut leading = false;
        let mut first = true;
        loop {
            if self.is_document_indicator() || self.cur() == '#' {
                break;
            }
            let mut took = false;
            while !is_blankz(self.cur()) {
                if self.cur() == ':' && is_blankz(self.peek_at(1)) {
                    break;
                }
                if !first && !took {
                    Self::fold(&mut out, &whitespace, breaks, leading);
                }
                took = true;
                out.push(self.cur());
                self.pos += 1;
            }
            if took {
                first = false;
                end = self.pos;
                whitespace.clear();
                breaks = 0;
                leading = false;
            } else if first {
                break;
            }
            if !(is_blank(self.cur()) || is_break(self.cur())) {
                break;
            }
            while is_blank(self.cur()) || is_break(self.cur()) {
                if is_blank(self.cur()) {
                    if leading && (self.col() as isize) <= indent && self.cur() == '\t' {
                        return Err(self.error("found a tab character that violates indentation"));
                    }
                    if !leading {
                        whitespace.push(self.cur());
                    }
                } else {
                    leading = true;
                    breaks += 1;
                }
                self.pos += 1;
            }
            if (self.col() as isize) <= indent {
                break;
            }
        }
        if first {
            return Err(self.error_at(start, "expected a value"));
        }
        let stop = self.pos;
        self.pos = end;
        let end_line = self.mark().line;
        Ok(Scanned {
            value: out,
            mark,
            multiline: end_line != start_line,
            stop,
        })
    }

    /// A single- or double-quoted scalar.
    fn quoted(&mut self) -> Result<Scanned> {
        let mark = self.mark();
        let single = self.cur() == '\'';
        let quote = self.cur();
        self.pos += 1;
        let mut out = String::new();
        loop {
            if self.col() == 0 && self.is_document_indicator() {
                return Err(
                    self.error("found unexpected document indicator inside a quoted scalar")
                );
            }
            if self.eof() {
                return Err(YamlError {
                    mark: Some(mark),
                    message: "found unexpected end of stream while scanning a quoted scalar (missing closing quote)"
                        .into(),
                });
            }
            let mut leading = false;
            let mut escaped_break = false;
            while !is_blankz(self.cur()) {
                let c = self.cur();
                if single && c == '\'' && self.peek_at(1) == '\'' {
                    out.push('\'');
                    self.pos += 2;
                } else if c == quote {
                    break;
                } else if !single && c == '\\' && is_break(self.peek_at(1)) {
                    self.pos += 2;
                    leading = true;
                    escaped_break = true;
                    break;
                } else if !single && c == '\\' {
                    self.escape(&mut out)?;
                } else {
                    out.push(c);
                    self.pos += 1;
                }
            }
            if self.cur() == quote {
                self.pos += 1;
                break;
            }
            let mut whitespace = String::new();
            let mut breaks = 0usize;
            while is_blank(self.cur()) || is_break(self.cur()) {
                if is_blank(self.cur()) {
                    if !leading {
                        whitespace.push(self.cur());
                    }
                } else {
                    if !leading {
                        whitespace.clear();
                        leading = true;
                    }
                    breaks += 1;
                }
                self.pos += 1;
            }
            if escaped_break {
                // An escaped line break joins directly; further breaks stay.
                for _ in 0..breaks {
                    out.push('\n');
                }
            } else if leading {
                Self::fold(&mut out, "", breaks, true);
            } else {
                out.push_str(&whitespace);
            }
        }
        let multiline = self.mark().line != mark.line;
        Ok(Scanned {
            value: out,
            mark,
            multiline,
            stop: self.pos,
        })
    }

    fn escape(&mut self, out: &mut String) -> Result<()> {
        let at = self.pos;
        let e = self.peek_at(1);
        self.pos += 2;
        let simple = match e {
            '0' => Some('\0'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            't' | '\t' => Some('\t'),
            'n' => Some('\n'),
            'v' => Some('\u{b}'),
            'f' => Some('\u{c}'),
            'r' => Some('\r'),
            'e' => Some('\u{1b}'),
            ' ' => Some(' '),
            '"' => Some('"'),
            '/' => Some('/'),
            '\'' => Some('\''),
            '\\' => Some('\\'),
            'N' => Some('\u{85}'),
            '_' => Some('\u{a0}'),
            'L' => Some('\u{2028}'),
            'P' => Some('\u{2029}'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            return Ok(());
        }
        let len = match e {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => {
                return Err(self.error_at(
                    at,
                    format!("found unknown escape character '\\{e}' in a double-quoted scalar"),
                ))
            }
        };
        let mut code = 0u32;
        for _ in 0..len {
            let d = self.cur().to_digit(16).ok_or_else(|| {
                self.error("did not find expected hexdecimal number in an escape sequence")
            })?;
            code = code * 16 + d;
            self.pos += 1;
        }
        let c = char::from_u32(code)
            .ok_or_else(|| self.error_at(at, "found invalid Unicode character escape code"))?;
        out.push(c);
        Ok(())
    }

    /// A literal (`|`) or folded (`>`) block scalar.
    fn block_scalar(&mut self, parent_indent: isize) -> Result<String> {
        let literal = self.cur() == '|';
        self.pos += 1;
        let mut chomping = 0i8;
        let mut increment = 0usize;
        for _ in 0..2 {
            let c = self.cur();
            if (c == '+' || c == '-') && chomping == 0 {
                chomping = if c == '+' { 1 } else { -1 };
                self.pos += 1;
            } else if c.is_ascii_digit() && increment == 0 {
                if c == '0' {
                    return Err(self.error("found an indentation indicator equal to 0"));
                }
                increment = c as usize - '0' as usize;
                self.pos += 1;
            }
        }
        while is_blank(self.cur()) {
            self.pos += 1;
        }
        self.skip_comment();
        if !self.eof() && !is_break(self.cur()) {
            return Err(self.error(
                "did not find expected comment or line break after a block scalar indicator",
            ));
        }
        if !self.eof() {
            self.pos += 1;
        }
        let mut indent = if increment > 0 {
            if parent_indent >= 0 {
                parent_indent as usize + increment
            } else {
                increment
            }
        } else {
            0
        };
        let mut out = String::new();
        let mut trailing = String::new();
        self.block_breaks(&mut indent, &mut trailing, parent_indent)?;
        let mut leading_break = String::new();
        let mut leading_blank = false;
        while self.col() == indent && !self.eof() {
            let trailing_blank = is_blank(self.cur());
            if !literal && leading_break.starts_with('\n') && !leading_blank && !trailing_blank {
                if trailing.is_empty() {
                    out.push(' ');
                }
                leading_break.clear();
            } else {
                out.push_str(&leading_break);
                leading_break.clear();
            }
            out.push_str(&trailing);
            trailing.clear();
            leading_blank = is_blank(self.cur());
            while !self.eof() && !is_break(self.cur()) {
                out.push(self.cur());
                self.pos += 1;
            }
            if self.eof() {
                break;
            }
            self.pos += 1;
            leading_break.push('\n');
            self.block_breaks(&mut indent, &mut trailing, parent_indent)?;
        }
        if chomping != -1 {
            out.push_str(&leading_break);
        }
        if chomping == 1 {
            out.push_str(&trailing);
        }
        // Leave the reader at the start of the line that ended the scalar, so
        // that the caller sees its indentation.
        if !self.eof() {
            self.pos = self.line_starts[self.line_index(self.pos)];
        }
        Ok(out)
    }

    /// Leading empty lines of a block scalar (and the indentation of the next
    /// content line); determines the indentation when not given.
    fn block_breaks(
        &mut self,
        indent: &mut usize,
        breaks: &mut String,
        parent_indent: isize,
    ) -> Result<()> {
        let mut max_indent = 0usize;
        loop {
            while (*indent == 0 || self.col() < *indent) && self.cur() == ' ' {
                self.pos += 1;
            }
            max_indent = max_indent.max(self.col());
            if (*indent == 0 || self.col() < *indent) && self.cur() == '\t' {
                return Err(
                    self.error("found a tab character where an indentation space is expected")
                );
            }
            if !is_break(self.cur()) {
                break;
            }
            self.pos += 1;
            breaks.push('\n');
        }
        if *indent == 0 {
            let min = (parent_indent + 1).max(1) as usize;
            *indent = max_indent.max(min);
            // Re-position: the content line's indentation is consumed up to `indent`.
        }
        Ok(())
    }
}

fn describe(c: char) -> String {
    match c {
        '\0' => "end of file".into(),
        '\t' => "tab character".into(),
        c => format!("character '{c}'"),
    }
}
