//! SIP message framing and header access on top of `rsip`.
//!
//! `rsip` tokenizes the start line and header list; this module adds what a network-facing
//! parser needs around it: size limits, `Content-Length` framing, the mandatory-header check of
//! RFC 3261 §8.2.2 and small accessors that treat header names case-insensitively, compact forms
//! included.

use rsip::message::HasHeaders;
use rsip::{Header, Headers, SipMessage};

/// Largest message accepted from the network; bigger datagrams or TCP frames are refused.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Longest single header line accepted: real headers are far shorter, and a cap keeps a
/// hostile peer from making every later lookup scan megabytes.
pub const MAX_HEADER_LINE: usize = 8 * 1024;

/// Why a message from the network was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// More bytes than [`MAX_MESSAGE`].
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// No empty line ends the header section.
    #[error("no end of headers")]
    NoHeaderEnd,
    /// `Content-Length` is not a number or announces more bytes than were received.
    #[error("bad Content-Length: {0}")]
    BadContentLength(String),
    /// `rsip` refused the start line or a header.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// One header line is longer than [`MAX_HEADER_LINE`].
    #[error("header line of {0} bytes exceeds the limit")]
    HeaderTooLong(usize),
    /// A header every request or response must carry is absent or unreadable.
    #[error("missing or invalid {0} header")]
    MissingHeader(&'static str),
}

/// Compact header forms and their long names: RFC 3261 §7.3.3 and §20, RFC 3265 (`o`, `u`),
/// RFC 3515 (`r`), RFC 3841 (`a`, `j`, `d`), RFC 3892 (`b`), RFC 4028 (`x`), RFC 4474
/// (`y`, `n`).
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("n", "Identity-Info"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// Headers whose comma-separated values are split into one header line each on input
/// (RFC 3261 §7.3.1), so that "the top Via" or "the first Route" means the first value
/// whether the peer wrote `Via: a, b` or two Via lines. Other list headers (Allow, Supported)
/// are read as a whole; challenges and credentials contain commas that are not separators.
const SPLIT_LISTS: &[&str] = &["via", "route", "record-route", "contact"];

/// The long form of a compact header name (`i` → `Call-ID`), any case.
fn long_form(name: &str) -> Option<&'static str> {
    COMPACT
        .iter()
        .find(|(c, _)| name.eq_ignore_ascii_case(c))
        .map(|(_, long)| *long)
}

/// Canonical lower-case long name of a header, expanding compact forms (RFC 3261 §7.3.3).
pub fn canonical_name(name: &str) -> String {
    let name = name.trim();
    match long_form(name) {
        Some(long) => long.to_ascii_lowercase(),
        None => name.to_ascii_lowercase(),
    }
}

/// Splits a header into its (canonical name, value) pair.
pub fn name_value(h: &Header) -> (String, String) {
    let text = h.to_string();
    match text.split_once(':') {
        Some((n, v)) => (canonical_name(n), v.trim().to_string()),
        None => (String::new(), text),
    }
}

/// All values of the header `name` (case-insensitive, compact forms accepted), in order.
pub fn header_values(headers: &Headers, name: &str) -> Vec<String> {
    let want = canonical_name(name);
    headers
        .iter()
        .map(name_value)
        .filter(|(n, _)| *n == want)
        .map(|(_, v)| v)
        .collect()
}

/// First value of the header `name`.
pub fn header_value(headers: &Headers, name: &str) -> Option<String> {
    header_values(headers, name).into_iter().next()
}

/// Builds a header, using `rsip`'s named variant where it has one.
pub fn header(name: &str, value: impl Into<String>) -> Header {
    use rsip::headers::{self as h, UntypedHeader};
    let v: String = value.into();
    match canonical_name(name).as_str() {
        "via" => Header::Via(h::Via::new(v)),
        "from" => Header::From(h::From::new(v)),
        "to" => Header::To(h::To::new(v)),
        "call-id" => Header::CallId(h::CallId::new(v)),
        "cseq" => Header::CSeq(h::CSeq::new(v)),
        "contact" => Header::Contact(h::Contact::new(v)),
        "max-forwards" => Header::MaxForwards(h::MaxForwards::new(v)),
        "content-type" => Header::ContentType(h::ContentType::new(v)),
        "content-length" => Header::ContentLength(h::ContentLength::new(v)),
        "route" => Header::Route(h::Route::new(v)),
        "record-route" => Header::RecordRoute(h::RecordRoute::new(v)),
        "expires" => Header::Expires(h::Expires::new(v)),
        "authorization" => Header::Authorization(h::Authorization::new(v)),
        "proxy-authorization" => Header::ProxyAuthorization(h::ProxyAuthorization::new(v)),
        "user-agent" => Header::UserAgent(h::UserAgent::new(v)),
        "allow" => Header::Allow(h::Allow::new(v)),
        _ => Header::Other(name.to_string(), v),
    }
}

/// Header lines of a raw message, without relying on `rsip`: used to answer a message that
/// `rsip` refused with a 400 carrying the request's own Via/From/To/Call-ID/CSeq, and to frame
/// TCP. Folded lines are joined and names canonical, as in [`parse`].
pub fn raw_header_lines(bytes: &[u8]) -> Vec<(String, String)> {
    let end = find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]);
    unfold(&text)
        .into_iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (canonical_name(n), v.trim().to_string()))
        })
        .collect()
}

/// The header lines of a header section (start line and terminating empty line excluded),
/// with folding undone (RFC 3261 §7.3.1): a line starting with SP or HT continues the
/// previous one, and the line break with the whitespace around it becomes one space.
fn unfold(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.split("\r\n").skip(1) {
        if line.is_empty() {
            continue;
        }
        let continued = line.trim_start_matches([' ', '\t']);
        match out.last_mut() {
            Some(prev) if continued.len() < line.len() => {
                let keep = prev.trim_end_matches([' ', '\t']).len();
                prev.truncate(keep);
                if !continued.is_empty() {
                    prev.push(' ');
                    prev.push_str(continued);
                }
            }
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// Splits a header value at the commas that separate list elements (RFC 3261 §7.3.1),
/// ignoring commas inside quoted strings and `<...>`; elements are trimmed, empty ones dropped.
pub fn split_commas(value: &str) -> Vec<String> {
    let (mut out, mut cur) = (Vec::new(), String::new());
    let (mut depth, mut quoted, mut escaped) = (0u32, false, false);
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Rewrites a header section (start line to the empty line) into the plain form `rsip` and
/// the accessors expect, accepting the RFC 3261 §7.3 / §25 grammar: folded lines joined,
/// whitespace around the colon dropped, compact names written in their long form, and
/// comma-separated Via/Route/Record-Route/Contact values split into one line each.
/// Lines without a colon are kept as they are, for `rsip` to refuse.
fn normalize_head(head: &str) -> String {
    let start = head.split("\r\n").next().unwrap_or("");
    let mut out = String::with_capacity(head.len() + 16);
    out.push_str(start);
    out.push_str("\r\n");
    for line in unfold(head) {
        let Some((name, value)) = line.split_once(':') else {
            out.push_str(&line);
            out.push_str("\r\n");
            continue;
        };
        let name = name.trim_matches([' ', '\t']);
        let name = long_form(name).unwrap_or(name);
        let value = value.trim_matches([' ', '\t']);
        let values = if SPLIT_LISTS.contains(&canonical_name(name).as_str()) {
            split_commas(value)
        } else {
            vec![value.to_string()]
        };
        for v in values {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&v);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of the first complete message at the start of a TCP stream buffer, if complete.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge(buf.len()));
        }
        return Ok(None);
    };
    let head_len = end + 4;
    let cl = raw_header_lines(&buf[..head_len])
        .into_iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| {
            v.parse::<usize>()
                .map_err(|_| ParseError::BadContentLength(v.clone()))
        })
        .transpose()?
        // RFC 3261 §18.3: over a stream transport Content-Length is mandatory; absent means 0.
        .unwrap_or(0);
    if head_len + cl > MAX_MESSAGE {
        return Err(ParseError::TooLarge(head_len + cl));
    }
    Ok((buf.len() >= head_len + cl).then_some(head_len + cl))
}

/// Parses one message (a whole datagram or one TCP frame) and checks its mandatory headers.
pub fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    let end = find(bytes, b"\r\n\r\n").ok_or(ParseError::NoHeaderEnd)?;
    let head = &bytes[..end + 4];
    let rest = &bytes[end + 4..];
    if let Some(long) = head
        .split(|&b| b == b'\n')
        .map(|l| l.len())
        .find(|&n| n > MAX_HEADER_LINE)
    {
        return Err(ParseError::HeaderTooLong(long));
    }
    let body_len = match raw_header_lines(head)
        .into_iter()
        .find(|(n, _)| n == "content-length")
    {
        Some((_, v)) => {
            let n = v
                .parse::<usize>()
                .map_err(|_| ParseError::BadContentLength(v.clone()))?;
            if n > rest.len() {
                return Err(ParseError::BadContentLength(v));
            }
            n
        }
        None => rest.len(),
    };
    // rsip's tokenizer works on text; a NUL or invalid UTF-8 in the header section is refused
    // here so that every header value we later read is well-formed text.
    let Ok(head_text) = std::str::from_utf8(head) else {
        return Err(ParseError::Malformed("non-text header section".into()));
    };
    if head.contains(&0) {
        return Err(ParseError::Malformed("non-text header section".into()));
    }
    let normalized = normalize_head(head_text);
    if let Some(long) = normalized
        .split("\r\n")
        .map(str::len)
        .find(|&n| n > MAX_HEADER_LINE)
    {
        return Err(ParseError::HeaderTooLong(long));
    }
    let mut framed = normalized.into_bytes();
    framed.extend_from_slice(&rest[..body_len]);
    let msg = SipMessage::try_from(framed.as_slice())
        .map_err(|e| ParseError::Malformed(e.to_string()))?;
    check_mandatory(&msg)?;
    Ok(msg)
}

fn check_mandatory(msg: &SipMessage) -> Result<(), ParseError> {
    let headers = msg.headers();
    let via = header_value(headers, "via").ok_or(ParseError::MissingHeader("Via"))?;
    if !via.to_ascii_uppercase().starts_with("SIP/2.0/") {
        return Err(ParseError::MissingHeader("Via"));
    }
    header_value(headers, "from").ok_or(ParseError::MissingHeader("From"))?;
    header_value(headers, "to").ok_or(ParseError::MissingHeader("To"))?;
    let cid = header_value(headers, "call-id").ok_or(ParseError::MissingHeader("Call-ID"))?;
    if cid.is_empty() {
        return Err(ParseError::MissingHeader("Call-ID"));
    }
    let cseq = header_value(headers, "cseq").ok_or(ParseError::MissingHeader("CSeq"))?;
    let (num, method) = parse_cseq(&cseq).ok_or(ParseError::MissingHeader("CSeq"))?;
    if let SipMessage::Request(r) = msg {
        if !method.eq_ignore_ascii_case(&r.method.to_string()) {
            return Err(ParseError::MissingHeader("CSeq"));
        }
    }
    let _ = num;
    Ok(())
}

/// Splits a CSeq value into number and method.
pub fn parse_cseq(v: &str) -> Option<(u32, String)> {
    let mut it = v.split_whitespace();
    let n = it.next()?.parse().ok()?;
    let m = it.next()?.to_string();
    it.next().is_none().then_some((n, m))
}

/// Value of `;name=value` parameter in a header value (outside `<...>`), case-insensitive name.
pub fn param(value: &str, name: &str) -> Option<String> {
    let tail = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    tail.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Whether a flag parameter such as `;rport` or `;lr` is present.
pub fn has_param(value: &str, name: &str) -> bool {
    let tail = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    tail.split(';').skip(1).any(|p| {
        p.split('=')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(name)
    })
}

/// The URI inside a name-addr (`"x" <sip:a@b>;tag=1` → `sip:a@b`) or an addr-spec.
pub fn addr_uri(value: &str) -> String {
    if let (Some(a), Some(b)) = (value.find('<'), value.find('>')) {
        if a < b {
            return value[a + 1..b].to_string();
        }
    }
    value.split(';').next().unwrap_or("").trim().to_string()
}

/// The display name of a name-addr (`"Alice Liddell" <sip:a@b>` → `Alice Liddell`,
/// `Bob <sip:b@c>` → `Bob`), unquoted and unescaped (RFC 3261 §25.1 quoted-pair); `None` for
/// an addr-spec or an empty name.
pub fn display_name(value: &str) -> Option<String> {
    let lt = value.find('<')?;
    let head = value[..lt].trim();
    let name = match head.strip_prefix('"') {
        Some(quoted) => {
            let mut out = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '"' => break,
                    c => out.push(c),
                }
            }
            out
        }
        None => head.to_string(),
    };
    let name = name.trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// Branch and sent-by of the top Via.
pub fn top_via_branch(headers: &Headers) -> Option<String> {
    header_value(headers, "via").and_then(|v| param(&v, "branch"))
}

/// Status code of a response as a number.
pub fn status(resp: &rsip::Response) -> u16 {
    resp.status_code.code()
}

/// Standard reason phrase of a status code (RFC 3261 §21), "Unknown" otherwise.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

/// Builds a response to `req` with the given code, copying Via/From/To/Call-ID/CSeq (§8.2.6).
pub fn response_to(req: &rsip::Request, code: u16, to_tag: Option<&str>) -> rsip::Response {
    let mut headers = Headers::default();
    for v in header_values(&req.headers, "via") {
        headers.push(header("Via", v));
    }
    for name in ["From", "Call-ID", "CSeq"] {
        if let Some(v) = header_value(&req.headers, name) {
            headers.push(header(name, v));
        }
    }
    if let Some(to) = header_value(&req.headers, "to") {
        let to = match (to_tag, param(&to, "tag")) {
            (Some(t), None) => format!("{to};tag={t}"),
            _ => to,
        };
        headers.push(header("To", to));
    }
    rsip::Response {
        // rsip prints its own variant names as reason phrases ("BusyHere"); give the RFC's.
        status_code: rsip::StatusCode::Other(code, reason_phrase(code).into()),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// Serializes a message, setting `Content-Length` to the body size.
pub fn to_bytes(msg: &SipMessage) -> Vec<u8> {
    let mut m = msg.clone();
    let len = m.body().len();
    m.headers_mut()
        .retain(|h| name_value(h).0 != "content-length");
    m.headers_mut()
        .push(header("Content-Length", len.to_string()));
    m.to_string().into_bytes()
}

/// A 400 Bad Request built only from raw header lines, for requests `rsip` could not parse.
pub fn raw_bad_request(bytes: &[u8], reason: &str) -> Option<Vec<u8>> {
    if bytes.starts_with(b"SIP/") {
        return None; // never answer a response
    }
    let lines = raw_header_lines(bytes);
    let get = |n: &str| {
        lines
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let vias = get("via");
    if vias.is_empty()
        || get("from").is_empty()
        || get("to").is_empty()
        || get("call-id").is_empty()
        || get("cseq").is_empty()
    {
        return None;
    }
    let clean = |s: &str| {
        s.chars()
            .filter(|c| !c.is_control())
            .take(1024)
            .collect::<String>()
    };
    let mut out = String::from("SIP/2.0 400 Bad Request\r\n");
    for v in vias {
        out.push_str(&format!("Via: {}\r\n", clean(&v)));
    }
    for n in ["from", "to", "call-id", "cseq"] {
        out.push_str(&format!("{}: {}\r\n", n, clean(&get(n)[0])));
    }
    out.push_str(&format!(
        "Warning: 399 bifrons \"{}\"\r\nContent-Length: 0\r\n\r\n",
        clean(reason).replace('"', "'")
    ));
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 4\r\n\r\nv=0\nJUNK";

    #[test]
    fn display_names_of_name_addrs() {
        assert_eq!(
            display_name(r#""Alice \"A\" L" <sip:a@b>;tag=1"#).as_deref(),
            Some(r#"Alice "A" L"#)
        );
        assert_eq!(display_name("Bob <sip:b@c>").as_deref(), Some("Bob"));
        assert_eq!(display_name("<sip:b@c>;tag=x"), None);
        assert_eq!(display_name("sip:b@c"), None);
        assert_eq!(display_name(r#""" <sip:b@c>"#), None);
    }

    #[test]
    fn parses_request_and_frames_body_by_content_length() {
        let m = parse(INVITE.as_bytes()).expect("parse");
        assert_eq!(m.body(), b"v=0\n");
        assert_eq!(top_via_branch(m.headers()).as_deref(), Some("z9hG4bK1"));
    }

    #[test]
    fn refuses_content_length_beyond_datagram() {
        let bad = INVITE.replace("Content-Length: 4", "Content-Length: 400");
        assert!(matches!(
            parse(bad.as_bytes()),
            Err(ParseError::BadContentLength(_))
        ));
    }

    #[test]
    fn refuses_missing_call_id() {
        let bad = INVITE.replace("Call-ID: c1\r\n", "");
        assert_eq!(
            parse(bad.as_bytes()),
            Err(ParseError::MissingHeader("Call-ID"))
        );
        let resp = raw_bad_request(bad.as_bytes(), "x");
        assert!(resp.is_none(), "no 400 possible without Call-ID");
    }

    #[test]
    fn params_and_uris() {
        let v = "\"A\" <sip:a@b;lr>;tag=xyz;expires=30";
        assert_eq!(param(v, "tag").as_deref(), Some("xyz"));
        assert_eq!(param(v, "lr"), None);
        assert_eq!(addr_uri(v), "sip:a@b;lr");
        assert!(has_param("SIP/2.0/UDP h;rport;branch=1", "rport"));
        assert_eq!(parse_cseq("12 INVITE"), Some((12, "INVITE".into())));
        assert_eq!(parse_cseq("x INVITE"), None);
    }

    #[test]
    fn responses_carry_rfc_reason_phrases() {
        let m = parse(INVITE.as_bytes()).expect("parse");
        let SipMessage::Request(req) = m else {
            panic!("request")
        };
        let text = String::from_utf8(to_bytes(&SipMessage::Response(response_to(
            &req,
            486,
            Some("t"),
        ))))
        .unwrap();
        assert!(text.starts_with("SIP/2.0 486 Busy Here\r\n"), "{text}");
        assert!(text.contains("To: <sip:bob@example.com>;tag=t"));
    }

    #[test]
    fn stream_framing_waits_for_body() {
        let m = INVITE.as_bytes();
        assert_eq!(stream_frame_len(&m[..m.len() - 6]).unwrap(), None);
        let full = stream_frame_len(m).unwrap().unwrap();
        assert_eq!(full, m.len() - 4);
    }

    /// A request whose header lines are `lines` (CRLF added), with an optional body.
    fn request_with(lines: &[&str], body: &str) -> String {
        let mut m = String::from("INVITE sip:bob@example.com SIP/2.0\r\n");
        for l in lines {
            m.push_str(l);
            m.push_str("\r\n");
        }
        m.push_str("\r\n");
        m.push_str(body);
        m
    }

    // RFC 3261 §7.3.1: a header value may continue on lines starting with SP or HT; the
    // folding (CRLF plus leading whitespace) is equivalent to a single space.
    #[test]
    fn folded_www_authenticate_is_joined_with_single_spaces() {
        let raw = "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=a\r\nTo: <sip:a@example.com>;tag=r\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"example.com\",\r\n  nonce=\"abc\",\r\n\talgorithm=MD5,\r\n \t qop=\"auth\"\r\nContent-Length: 0\r\n\r\n";
        let m = parse(raw.as_bytes()).expect("folded header parses");
        assert_eq!(
            header_value(m.headers(), "www-authenticate").as_deref(),
            Some("Digest realm=\"example.com\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"")
        );
    }

    #[test]
    fn folding_is_accepted_in_any_header_and_before_the_value() {
        let raw = request_with(
            &[
                "Via: SIP/2.0/UDP 10.0.0.1:5060",
                " ;branch=z9hG4bK1",
                "From:",
                "\t<sip:alice@example.com>;tag=a",
                "To: <sip:bob@example.com>",
                "Call-ID: c1",
                "CSeq: 1",
                "  INVITE",
                "Subject: a long",
                "   subject",
            ],
            "",
        );
        let m = parse(raw.as_bytes()).expect("parse");
        assert_eq!(top_via_branch(m.headers()).as_deref(), Some("z9hG4bK1"));
        assert_eq!(
            header_value(m.headers(), "from").as_deref(),
            Some("<sip:alice@example.com>;tag=a")
        );
        assert_eq!(
            header_value(m.headers(), "subject").as_deref(),
            Some("a long subject")
        );
        // The 400 path and TCP framing read raw lines: they unfold too.
        let lines = raw_header_lines(raw.as_bytes());
        assert!(
            lines.contains(&("cseq".into(), "1 INVITE".into())),
            "{lines:?}"
        );
    }

    // RFC 3261 §7.3.3 and the registry of compact forms (§20, RFC 3265, 3515, 3841, 3892,
    // 4028, 4474).
    #[test]
    fn compact_header_forms_are_understood() {
        let raw = request_with(
            &[
                "v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1",
                "f: <sip:alice@example.com>;tag=a",
                "t: <sip:bob@example.com>",
                "i: c1",
                "CSeq: 1 INVITE",
                "m: <sip:alice@10.0.0.1>",
                "c: application/sdp",
                "k: timer",
                "s: hello",
                "e: gzip",
                "o: refer",
                "u: refer",
                "r: <sip:carol@example.com>",
                "b: <sip:dave@example.com>",
                "x: 1800",
                "a: *;audio",
                "j: *;video",
                "d: proxy",
                "y: abc",
                "n: <https://example.com/cert>",
                "l: 4",
            ],
            "v=0\nJUNK",
        );
        let m = parse(raw.as_bytes()).expect("compact forms parse");
        assert_eq!(m.body(), b"v=0\n", "l: frames the body");
        let h = m.headers();
        for (name, want) in [
            ("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1"),
            ("From", "<sip:alice@example.com>;tag=a"),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", "c1"),
            ("Contact", "<sip:alice@10.0.0.1>"),
            ("Content-Type", "application/sdp"),
            ("Supported", "timer"),
            ("Subject", "hello"),
            ("Content-Encoding", "gzip"),
            ("Event", "refer"),
            ("Allow-Events", "refer"),
            ("Refer-To", "<sip:carol@example.com>"),
            ("Referred-By", "<sip:dave@example.com>"),
            ("Session-Expires", "1800"),
            ("Accept-Contact", "*;audio"),
            ("Reject-Contact", "*;video"),
            ("Request-Disposition", "proxy"),
            ("Identity", "abc"),
            ("Identity-Info", "<https://example.com/cert>"),
        ] {
            assert_eq!(header_value(h, name).as_deref(), Some(want), "{name}");
        }
        assert_eq!(top_via_branch(h).as_deref(), Some("z9hG4bK1"));
    }

    // RFC 3261 §7.3.1: `Via: a, b` is the same as two Via lines, in that order; both forms may
    // be mixed.
    #[test]
    fn comma_separated_values_are_the_same_as_repeated_lines() {
        let raw = request_with(
            &[
                "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1, SIP/2.0/UDP p2.example.com;branch=z9hG4bK2",
                "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK3",
                "From: \"Smith, Alice\" <sip:alice@example.com>;tag=a",
                "To: <sip:bob@example.com>",
                "Call-ID: c1",
                "CSeq: 1 INVITE",
                "Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>",
                "Record-Route: <sip:p3.example.com;lr>, <sip:p4.example.com;lr>",
                "Contact: \"Bob, Jr\" <sip:bob@10.0.0.2>;q=0.5, <sip:bob@10.0.0.3>;q=1",
                "m: <sip:bob@10.0.0.4>",
            ],
            "",
        );
        let m = parse(raw.as_bytes()).expect("parse");
        let h = m.headers();
        assert_eq!(
            header_values(h, "via"),
            [
                "SIP/2.0/UDP p1.example.com;branch=z9hG4bK1",
                "SIP/2.0/UDP p2.example.com;branch=z9hG4bK2",
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK3",
            ]
        );
        assert_eq!(top_via_branch(h).as_deref(), Some("z9hG4bK1"));
        assert_eq!(
            header_values(h, "route"),
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!(
            header_values(h, "record-route"),
            ["<sip:p3.example.com;lr>", "<sip:p4.example.com;lr>"]
        );
        assert_eq!(
            header_values(h, "contact"),
            [
                "\"Bob, Jr\" <sip:bob@10.0.0.2>;q=0.5",
                "<sip:bob@10.0.0.3>;q=1",
                "<sip:bob@10.0.0.4>",
            ]
        );
        // A comma inside a quoted display name is not a separator.
        assert_eq!(
            header_value(h, "from").as_deref(),
            Some("\"Smith, Alice\" <sip:alice@example.com>;tag=a")
        );
        // A response copies every Via, in order (§8.2.6.2).
        let SipMessage::Request(req) = m else {
            panic!("request")
        };
        let resp = response_to(&req, 200, Some("t"));
        assert_eq!(header_values(&resp.headers, "via").len(), 3);
        assert_eq!(top_via_branch(&resp.headers).as_deref(), Some("z9hG4bK1"));
    }

    // RFC 3261 §7.3.1: field names are case-insensitive.
    #[test]
    fn header_names_are_case_insensitive() {
        let raw = request_with(
            &[
                "vIA: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1",
                "FROM: <sip:alice@example.com>;tag=a",
                "to: <sip:bob@example.com>",
                "CALL-id: c1",
                "cseq: 1 INVITE",
                "CONTENT-length: 4",
                "content-TYPE: application/sdp",
            ],
            "v=0\nJUNK",
        );
        let m = parse(raw.as_bytes()).expect("parse");
        assert_eq!(m.body(), b"v=0\n");
        assert_eq!(header_value(m.headers(), "Call-ID").as_deref(), Some("c1"));
        assert_eq!(
            header_value(m.headers(), "Content-Type").as_deref(),
            Some("application/sdp")
        );
    }

    // RFC 3261 §7.3.1 and §25.1: HCOLON is *( SP / HTAB ) ":" SWS, COMMA is SWS "," SWS.
    #[test]
    fn whitespace_around_colons_and_commas_is_allowed() {
        let raw = request_with(
            &[
                "Via  \t:  SIP/2.0/UDP p1.example.com;branch=z9hG4bK1 ,  SIP/2.0/UDP p2.example.com;branch=z9hG4bK2",
                "From\t: <sip:alice@example.com>;tag=a",
                "To :<sip:bob@example.com>",
                "Call-ID:c1",
                "CSeq :   1   INVITE",
                "Contact : <sip:a@10.0.0.1> ,<sip:b@10.0.0.1>",
                "Content-Length :  4",
            ],
            "v=0\nJUNK",
        );
        let m = parse(raw.as_bytes()).expect("parse");
        let h = m.headers();
        assert_eq!(m.body(), b"v=0\n");
        assert_eq!(header_values(h, "via").len(), 2);
        assert_eq!(top_via_branch(h).as_deref(), Some("z9hG4bK1"));
        assert_eq!(header_value(h, "call-id").as_deref(), Some("c1"));
        assert_eq!(
            header_value(h, "to").as_deref(),
            Some("<sip:bob@example.com>")
        );
        assert_eq!(
            header_values(h, "contact"),
            ["<sip:a@10.0.0.1>", "<sip:b@10.0.0.1>"]
        );
        assert_eq!(
            header_value(h, "cseq").and_then(|v| parse_cseq(&v)),
            Some((1, "INVITE".into()))
        );
    }
}
