//! A minimal HTTP/1.1 request parser and response writer over any `Read`/`Write`.
//!
//! The virtio-serial transport is one long-lived byte stream that the host may drop and resume at
//! any point, so the parser must survive arbitrary input without ever losing its place for good:
//!
//! - requests are read sequentially (pipelining and keep-alive work naturally);
//! - leading empty lines before a request line are skipped (RFC 9112 §2.2);
//! - a malformed head yields a [`Rejection`] (400) after the head has been consumed up to its
//!   blank line, so the next request parses cleanly;
//! - a head longer than [`Limits::max_head`] (16 KiB) yields 431, and a body whose length is
//!   unknown (`Transfer-Encoding`) or absurd yields 501/413; in those cases the reader
//!   **resynchronises**: it drops input up to and including the next blank line;
//! - a body above [`Limits::max_body`] but within [`Limits::max_discard`] is read and dropped
//!   exactly, keeping the stream in step.
//!
//! The reader never allocates more than `max_head` plus one read chunk for a head and `max_body`
//! for a body. Responses always carry `Content-Length`, never chunked encoding.

use std::io::{self, Read, Write};

/// Size limits of the parser.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request head (request line + headers + blank line) accepted.
    pub max_head: usize,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Largest oversized body that is read and dropped exactly; beyond it the reader resyncs.
    pub max_discard: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head: 16 * 1024,
            max_body: 64 * 1024,
            max_discard: 1024 * 1024,
        }
    }
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: connections close unless `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: connections stay open unless `Connection: close`.
    Http11,
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, e.g. `/healthz?x=1`.
    pub target: String,
    /// The protocol version.
    pub version: Version,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (empty without `Content-Length`).
    pub body: Vec<u8>,
}

impl Request {
    /// The path part of the target (without the query).
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(p, _)| p)
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to keep the connection open after this request.
    pub fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("");
        let has = |tok: &str| conn.split(',').any(|t| t.trim().eq_ignore_ascii_case(tok));
        match self.version {
            Version::Http11 => !has("close"),
            Version::Http10 => has("keep-alive"),
        }
    }
}

/// Input that could not be accepted as a request; answer with `status` and carry on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status to answer with (400, 413, 431, 501, 505).
    pub status: u16,
    /// A human-readable reason, lowercase.
    pub message: String,
}

impl Rejection {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// What [`RequestReader::read_next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A complete request.
    Request(Request),
    /// Bad input, already skipped (or to be skipped before the next request).
    Reject(Rejection),
    /// End of stream (a partial request, if any, is dropped).
    Eof,
}

/// Reads requests one after another from a byte stream.
#[derive(Debug)]
pub struct RequestReader<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    limits: Limits,
    /// Resynchronising: drop input through the next blank line. The flag is "at line start".
    resync: Option<bool>,
    /// Bytes of an oversized body still to drop.
    discard: u64,
}

const CHUNK: usize = 4096;

impl<R: Read> RequestReader<R> {
    /// A reader with default [`Limits`].
    pub fn new(inner: R) -> Self {
        Self::with_limits(inner, Limits::default())
    }

    /// A reader with explicit limits.
    pub fn with_limits(inner: R, limits: Limits) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            limits,
            resync: None,
            discard: 0,
        }
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads one more chunk into the buffer; returns 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= CHUNK) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; CHUNK];
        loop {
            match self.inner.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops pending oversized-body bytes; false at end of stream.
    fn finish_discard(&mut self) -> io::Result<bool> {
        while self.discard > 0 {
            if self.avail().is_empty() && self.fill()? == 0 {
                return Ok(false);
            }
            let n = usize::try_from(self.discard)
                .unwrap_or(usize::MAX)
                .min(self.avail().len());
            self.pos += n;
            self.discard -= n as u64;
        }
        Ok(true)
    }

    /// Drops input through the next blank line; false at end of stream.
    fn finish_resync(&mut self) -> io::Result<bool> {
        while let Some(mut at_line_start) = self.resync {
            let mut found = None;
            for (i, &b) in self.avail().iter().enumerate() {
                match b {
                    b'\n' if at_line_start => {
                        found = Some(i + 1);
                        break;
                    }
                    b'\n' => at_line_start = true,
                    b'\r' => {}
                    _ => at_line_start = false,
                }
            }
            match found {
                Some(n) => {
                    self.pos += n;
                    self.resync = None;
                }
                None => {
                    self.pos = self.buf.len();
                    self.resync = Some(at_line_start);
                    if self.fill()? == 0 {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Skips CR/LF before a request line; false at end of stream.
    fn skip_empty_lines(&mut self) -> io::Result<bool> {
        loop {
            let skip = self
                .avail()
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            self.pos += skip;
            if !self.avail().is_empty() {
                return Ok(true);
            }
            if self.fill()? == 0 {
                return Ok(false);
            }
        }
    }

    /// Reads the next request, rejection or end of stream.
    ///
    /// I/O errors (including read timeouts) are returned as-is; the caller decides whether the
    /// stream is still usable.
    pub fn read_next(&mut self) -> io::Result<Next> {
        if !self.finish_discard()? || !self.finish_resync()? || !self.skip_empty_lines()? {
            return Ok(Next::Eof);
        }
        let mut scan = HeadScan::default();
        let head_len = loop {
            let window = &self.avail()[..self.avail().len().min(self.limits.max_head)];
            if let Some(end) = scan.find_end(window) {
                break end;
            }
            if self.avail().len() >= self.limits.max_head {
                self.resync = Some(false);
                return Ok(Next::Reject(Rejection::new(
                    431,
                    format!("request head exceeds {} bytes", self.limits.max_head),
                )));
            }
            if self.fill()? == 0 {
                return Ok(Next::Eof);
            }
        };
        let head = parse_head(&self.avail()[..head_len]);
        self.pos += head_len;
        let (mut req, body_len) = match head {
            Ok(h) => h,
            Err(HeadError::Reject(r)) => return Ok(Next::Reject(r)),
            Err(HeadError::RejectAndResync(r)) => {
                self.resync = Some(false);
                return Ok(Next::Reject(r));
            }
        };
        if body_len > self.limits.max_body as u64 {
            if body_len <= self.limits.max_discard {
                self.discard = body_len;
            } else {
                self.resync = Some(false);
            }
            return Ok(Next::Reject(Rejection::new(
                413,
                format!("request body exceeds {} bytes", self.limits.max_body),
            )));
        }
        // Bounded by max_body above.
        let body_len = body_len as usize;
        while self.avail().len() < body_len {
            if self.fill()? == 0 {
                return Ok(Next::Eof);
            }
        }
        req.body = self.avail()[..body_len].to_vec();
        self.pos += body_len;
        Ok(Next::Request(req))
    }
}

/// Incremental search for the end of a head, so that a head arriving byte by byte costs
/// linear, not quadratic, time.
#[derive(Debug, Default)]
struct HeadScan {
    /// Bytes already examined.
    next: usize,
    /// Start of the line being examined.
    line_start: usize,
}

impl HeadScan {
    /// The length of the head (through its blank line) at the start of `buf`, if complete.
    /// `buf` must extend the buffer of the previous call.
    fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        for i in self.next..buf.len() {
            if buf[i] == b'\n' {
                let line = &buf[self.line_start..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() && self.line_start > 0 {
                    return Some(i + 1);
                }
                self.line_start = i + 1;
            }
        }
        self.next = buf.len();
        None
    }
}

enum HeadError {
    /// The head was bad but fully consumed: the stream is in step.
    Reject(Rejection),
    /// The head was understood but its body cannot be delimited: resync.
    RejectAndResync(Rejection),
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

fn bad(msg: &str) -> HeadError {
    HeadError::Reject(Rejection::new(400, msg))
}

/// Parses a complete head (including its blank line) into a request and its body length.
fn parse_head(head: &[u8]) -> Result<(Request, u64), HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| bad("request head is not utf-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if !is_token(method) {
        return Err(bad("malformed method"));
    }
    if !(target.starts_with('/') || target == "*")
        || target.bytes().any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err(bad("malformed request target"));
    }
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        v if v.starts_with("HTTP/") => {
            return Err(HeadError::Reject(Rejection::new(
                505,
                "only HTTP/1.0 and HTTP/1.1 are supported",
            )));
        }
        _ => return Err(bad("malformed http version")),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            return Err(bad("obsolete header line folding"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("malformed header line"))?;
        if !is_token(name) {
            return Err(bad("malformed header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(bad("control character in header value"));
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    let mut body_len: Option<u64> = None;
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("invalid content-length"));
            }
            let n: u64 = value.parse().map_err(|_| bad("invalid content-length"))?;
            if body_len.is_some_and(|m| m != n) {
                return Err(bad("conflicting content-length headers"));
            }
            body_len = Some(n);
        }
    }
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        return Err(HeadError::RejectAndResync(Rejection::new(
            501,
            "transfer-encoding is not supported",
        )));
    }
    Ok((
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            version,
            headers,
            body: Vec::new(),
        },
        body_len.unwrap_or(0),
    ))
}

/// A JSON response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The JSON body.
    pub body: String,
    /// Whether to announce (and perform) closing the connection after this response.
    pub close: bool,
    /// The request's `X-Request-Id`, echoed back (see [`request_id`]).
    pub request_id: Option<String>,
}

impl Response {
    /// A keep-alive JSON response.
    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            body,
            close: false,
            request_id: None,
        }
    }
}

/// The request header whose value is echoed in the response.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// The request's `X-Request-Id` if it is 1–128 visible ASCII characters.
///
/// On the shared virtio-serial stream a host client cannot tell a response to its request from
/// a late response to a predecessor's request, or from a 400 for a predecessor's half-sent
/// bytes; tagging requests with an id and skipping responses without it solves both.
pub fn request_id(req: &Request) -> Option<&str> {
    req.header(REQUEST_ID_HEADER)
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// The reason phrase for the status codes the agent uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes `resp` as one HTTP/1.1 response and flushes.
pub fn write_response<W: Write>(w: &mut W, resp: &Response) -> io::Result<()> {
    let id = resp
        .request_id
        .as_deref()
        .map(|id| format!("{REQUEST_ID_HEADER}: {id}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{id}Connection: {}\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.body.len(),
        if resp.close { "close" } else { "keep-alive" },
    );
    let mut out = Vec::with_capacity(head.len() + resp.body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(resp.body.as_bytes());
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields its input `step` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn all(input: &[u8], step: usize) -> Vec<Next> {
        let mut r = RequestReader::new(Trickle { data: input, step });
        let mut out = Vec::new();
        for _ in 0..100 {
            let n = r.read_next().expect("no io error");
            let eof = n == Next::Eof;
            out.push(n);
            if eof {
                return out;
            }
        }
        panic!("reader did not reach eof");
    }

    fn targets(items: &[Next]) -> Vec<String> {
        items
            .iter()
            .map(|n| match n {
                Next::Request(r) => format!("{} {}", r.method, r.target),
                Next::Reject(r) => r.status.to_string(),
                Next::Eof => "eof".into(),
            })
            .collect()
    }

    fn both_ways(input: &[u8]) -> Vec<String> {
        let whole = targets(&all(input, usize::MAX));
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(targets(&all(input, step)), whole, "step {step}");
        }
        whole
    }

    #[test]
    fn parses_one_request() {
        let items = all(
            b"GET /healthz?x=1 HTTP/1.1\r\nHost: agent\r\nX-A:  b \r\n\r\n",
            usize::MAX,
        );
        let Next::Request(r) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/healthz");
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.header("host"), Some("agent"));
        assert_eq!(r.header("x-a"), Some("b"));
        assert!(r.keep_alive());
        assert_eq!(items[1], Next::Eof);
    }

    #[test]
    fn pipelined_requests_with_bodies_and_partial_reads() {
        let input =
            b"POST /shutdown HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /a HTTP/1.1\r\n\r\n\
                      GET /b HTTP/1.0\n\n";
        assert_eq!(
            both_ways(input),
            vec!["POST /shutdown", "GET /a", "GET /b", "eof"]
        );
        let items = all(input, 1);
        let Next::Request(r) = &items[0] else {
            panic!()
        };
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn leading_blank_lines_are_skipped() {
        assert_eq!(
            both_ways(b"\r\n\n\r\nGET / HTTP/1.1\r\n\r\n"),
            vec!["GET /", "eof"]
        );
    }

    #[test]
    fn garbage_is_rejected_and_stream_resyncs() {
        let input = b"hello there\r\nthis is not http\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n";
        assert_eq!(both_ways(input), vec!["400", "GET /healthz", "eof"]);
        let input = b"\x00\xff\xfe binary\n\nGET /ok HTTP/1.1\n\n";
        assert_eq!(both_ways(input), vec!["400", "GET /ok", "eof"]);
    }

    #[test]
    fn oversized_head_is_431_then_resyncs() {
        let mut input = b"GET /".to_vec();
        input.extend(std::iter::repeat_n(b'a', 20_000));
        input.extend_from_slice(b" HTTP/1.1\r\nX: y\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
        assert_eq!(both_ways(&input), vec!["431", "GET /next", "eof"]);
        // Garbage with no newline at all, then a blank line.
        let mut input = vec![b'z'; 40_000];
        input.extend_from_slice(b"\n\nGET /n2 HTTP/1.1\n\n");
        assert_eq!(both_ways(&input), vec!["431", "GET /n2", "eof"]);
    }

    #[test]
    fn head_just_under_cap_is_accepted() {
        let limits = Limits::default();
        let prefix = b"GET / HTTP/1.1\r\nX: ";
        let suffix = b"\r\n\r\n";
        let fill = limits.max_head - prefix.len() - suffix.len();
        let mut input = prefix.to_vec();
        input.extend(std::iter::repeat_n(b'v', fill));
        input.extend_from_slice(suffix);
        assert_eq!(input.len(), limits.max_head);
        assert_eq!(both_ways(&input), vec!["GET /", "eof"]);
        input.insert(prefix.len(), b'v');
        assert_eq!(both_ways(&input), vec!["431", "eof"]);
    }

    #[test]
    fn oversized_body_is_dropped_exactly() {
        let mut input = b"POST /x HTTP/1.1\r\nContent-Length: 70000\r\n\r\n".to_vec();
        // A body that itself contains blank lines and request-looking text.
        let mut body = b"\r\n\r\nGET /evil HTTP/1.1\r\n\r\n".to_vec();
        body.resize(70_000, b'b');
        input.extend_from_slice(&body);
        input.extend_from_slice(b"GET /after HTTP/1.1\r\n\r\n");
        assert_eq!(both_ways(&input), vec!["413", "GET /after", "eof"]);
    }

    #[test]
    fn absurd_body_length_resyncs_on_blank_line() {
        let input = b"POST /x HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\nsome body\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        assert_eq!(both_ways(input), vec!["413", "GET /b", "eof"]);
    }

    #[test]
    fn chunked_is_501_and_skipped() {
        let input = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        assert_eq!(both_ways(input), vec!["501", "GET /c", "eof"]);
    }

    #[test]
    fn malformed_heads() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET /\r\n\r\n", 400),
            (b"GET  / HTTP/1.1\r\n\r\n", 400),
            (b"GET healthz HTTP/1.1\r\n\r\n", 400),
            (b"G(T / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nBad Name: b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                400,
            ),
        ];
        for (input, status) in cases {
            let mut full = input.to_vec();
            full.extend_from_slice(b"GET /ok HTTP/1.1\r\n\r\n");
            let got = both_ways(&full);
            assert_eq!(
                got,
                vec![status.to_string(), "GET /ok".into(), "eof".into()],
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn eof_mid_request_is_eof() {
        assert_eq!(both_ways(b"GET / HTTP/1.1\r\nHost: x\r\n"), vec!["eof"]);
        assert_eq!(
            both_ways(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
            vec!["eof"]
        );
        assert_eq!(both_ways(b""), vec!["eof"]);
    }

    #[test]
    fn keep_alive_rules() {
        let req = |v, conn: Option<&str>| Request {
            method: "GET".into(),
            target: "/".into(),
            version: v,
            headers: conn
                .map(|c| vec![("Connection".to_owned(), c.to_owned())])
                .unwrap_or_default(),
            body: vec![],
        };
        assert!(req(Version::Http11, None).keep_alive());
        assert!(!req(Version::Http11, Some("Close")).keep_alive());
        assert!(!req(Version::Http10, None).keep_alive());
        assert!(req(Version::Http10, Some("keep-alive")).keep_alive());
    }

    #[test]
    fn io_errors_propagate() {
        struct Fails;
        impl Read for Fails {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(5))
            }
        }
        let mut r = RequestReader::new(Fails);
        assert_eq!(r.read_next().expect_err("eio").raw_os_error(), Some(5));
    }

    #[test]
    fn writes_response() {
        let mut out = Vec::new();
        write_response(&mut out, &Response::json(404, r#"{"error":"x"}"#.into())).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\
             Connection: keep-alive\r\n\r\n{\"error\":\"x\"}"
        );
        let mut out = Vec::new();
        let mut resp = Response::json(202, "{}".into());
        resp.close = true;
        resp.request_id = Some("h-42".into());
        write_response(&mut out, &resp).expect("write");
        let out = String::from_utf8(out).expect("utf8");
        assert!(
            out.contains("\r\nX-Request-Id: h-42\r\nConnection: close\r\n"),
            "{out}"
        );
    }

    #[test]
    fn request_id_is_validated() {
        let req = |v: &str| Request {
            method: "GET".into(),
            target: "/".into(),
            version: Version::Http11,
            headers: vec![("x-request-id".into(), v.into())],
            body: vec![],
        };
        assert_eq!(
            request_id(&req("abc-1")).map(str::to_owned),
            Some("abc-1".into())
        );
        assert_eq!(request_id(&req("")), None);
        assert_eq!(request_id(&req("a b")), None);
        assert_eq!(request_id(&req(&"x".repeat(129))), None);
    }
}
