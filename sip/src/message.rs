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

/// Canonical lower-case long name of a header, expanding compact forms (RFC 3261 §7.3.3).
pub fn canonical_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "v" => "via".into(),
        "f" => "from".into(),
        "t" => "to".into(),
        "i" => "call-id".into(),
        "m" => "contact".into(),
        "l" => "content-length".into(),
        "c" => "content-type".into(),
        "k" => "supported".into(),
        "s" => "subject".into(),
        "e" => "content-encoding".into(),
        "r" => "refer-to".into(),
        _ => lower,
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
/// `rsip` refused with a 400 carrying the request's own Via/From/To/Call-ID/CSeq.
pub fn raw_header_lines(bytes: &[u8]) -> Vec<(String, String)> {
    let end = find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]);
    text.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (canonical_name(n), v.trim().to_string()))
        .collect()
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
    let mut framed = head.to_vec();
    framed.extend_from_slice(&rest[..body_len]);
    // rsip's tokenizer works on text; a NUL or invalid UTF-8 in the header section is refused
    // here so that every header value we later read is well-formed text.
    if std::str::from_utf8(head).is_err() || head.contains(&0) {
        return Err(ParseError::Malformed("non-text header section".into()));
    }
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
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        603 => "Decline",
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
}
