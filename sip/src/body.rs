//! Message bodies: finding the session description in what a peer sent.
//!
//! An INVITE may carry its SDP as one part of a `multipart/mixed` body next to, for
//! example, an `application/isup` part from a PSTN gateway (RFC 5621, RFC 3204), or as one
//! choice of a `multipart/alternative`. The dialog code only deals with SDP, so the SDP part is
//! taken out here (RFC 2046 §5.1 for the multipart syntax) and everything else is ignored.

use std::borrow::Cow;

/// The only body type the offer/answer code reads; sent in `Accept` with a 415 (RFC 3261
/// §21.4.13).
pub const SDP: &str = "application/sdp";

/// Multipart nesting followed before giving up: real bodies nest one level at most.
const MAX_DEPTH: usize = 4;

/// Why no SDP could be taken from a body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// The body is of a type we do not read, or a multipart body has no `application/sdp`
    /// part: the request is answered `415 Unsupported Media Type` with `Accept: application/sdp`.
    #[error("no application/sdp in a {0} body")]
    Unsupported(String),
    /// A multipart body without a boundary parameter or without any delimiter: answered 400.
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
}

/// The SDP in a body of type `content_type` (the header's value; `None` when absent).
///
/// Returns `Ok(None)` for an empty body; the body itself for `application/sdp`, or when no
/// Content-Type was sent (RFC 3261 §20.15 requires one, but lenient peers omit it and an SDP
/// is the only thing an INVITE body can usefully be); and the `application/sdp` part of a
/// `multipart/*` body, nested ones included. In `multipart/alternative` the last SDP part is
/// taken (RFC 2046 §5.1.4: the last alternative is the preferred one), otherwise the first.
///
/// Errors: [`BodyError::Unsupported`] for any other type or a multipart body without SDP;
/// [`BodyError::Malformed`] for a multipart body that cannot be split.
pub fn sdp_of<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<Option<Cow<'a, [u8]>>, BodyError> {
    if body.is_empty() {
        return Ok(None);
    }
    match content_type {
        None => Ok(Some(Cow::Borrowed(body))),
        Some(ct) => find_sdp(ct, body, 0).map(|b| Some(Cow::Borrowed(b))),
    }
}

fn find_sdp<'a>(content_type: &str, body: &'a [u8], depth: usize) -> Result<&'a [u8], BodyError> {
    let (media, params) = media_type(content_type);
    if media == SDP {
        return Ok(body);
    }
    if !media.starts_with("multipart/") || depth >= MAX_DEPTH {
        return Err(BodyError::Unsupported(media));
    }
    let boundary = params
        .iter()
        .find(|(k, _)| k == "boundary")
        .map(|(_, v)| v.clone())
        .filter(|b| !b.is_empty())
        .ok_or(BodyError::Malformed("no boundary"))?;
    let parts = split_parts(body, &boundary).ok_or(BodyError::Malformed("no delimiter"))?;
    let mut found: Vec<&[u8]> = Vec::new();
    for part in parts {
        let (headers, content) = split_part(part);
        // RFC 2046 §5.1: a part without Content-Type is text/plain.
        let ct = headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| v.as_str())
            .unwrap_or("text/plain");
        match find_sdp(ct, content, depth + 1) {
            Ok(sdp) => found.push(sdp),
            Err(e) if required(&headers) => return Err(e),
            Err(_) => {}
        }
    }
    let pick = if media == "multipart/alternative" {
        found.last()
    } else {
        found.first()
    };
    pick.copied().ok_or(BodyError::Unsupported(media))
}

/// Whether a part says it must be understood (`Content-Disposition: ...;handling=required`,
/// RFC 3261 §20.11, RFC 5621 §3.2): one we cannot read then refuses the whole body. RFC 3261
/// makes `required` the default, but gateways commonly send ISUP without any disposition, so
/// only an explicit `handling=required` counts.
fn required(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n == "content-disposition")
        .flat_map(|(_, v)| media_type(v).1)
        .any(|(k, v)| k == "handling" && v.eq_ignore_ascii_case("required"))
}

/// `type/subtype` in lower case and the parameters (names lower case, values unquoted).
fn media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut items = split_semicolons(value).into_iter();
    let media = items
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .replace(' ', "");
    let params = items
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(|v| v.replace("\\\"", "\"").replace("\\\\", "\\"))
                .unwrap_or_else(|| v.to_string());
            Some((k.trim().to_ascii_lowercase(), v))
        })
        .collect();
    (media, params)
}

/// Splits at `;` outside quoted strings.
fn split_semicolons(value: &str) -> Vec<String> {
    let (mut out, mut cur) = (Vec::new(), String::new());
    let (mut quoted, mut escaped) = (false, false);
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// The parts of a multipart body (RFC 2046 §5.1.1): the preamble before the first delimiter
/// and the epilogue after the close delimiter are dropped. A delimiter is `--boundary` at
/// the start of a line, followed by optional whitespace (transport padding); the line break
/// before it belongs to the delimiter. Both CRLF and bare LF line breaks are accepted.
/// `None` when no delimiter is found.
fn split_parts<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<&'a [u8]>> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut parts = Vec::new();
    // Start of the current part's content, once inside the parts.
    let mut open: Option<usize> = None;
    let mut seen = false;
    let mut line_start = 0;
    while line_start <= body.len() {
        let line_end = body[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| line_start + p)
            .unwrap_or(body.len());
        let line = &body[line_start..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(after) = line.strip_prefix(delim) {
            let close = after.starts_with(b"--");
            let rest = if close { &after[2..] } else { after };
            if rest.iter().all(|b| *b == b' ' || *b == b'\t') {
                seen = true;
                if let Some(start) = open {
                    // The line break before the delimiter is part of the delimiter.
                    let mut end = line_start.max(start);
                    if end > start && body[end - 1] == b'\n' {
                        end -= 1;
                        if end > start && body[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    parts.push(&body[start..end]);
                }
                if close {
                    return Some(parts);
                }
                open = Some((line_end + 1).min(body.len()));
            }
        }
        line_start = line_end + 1;
    }
    // No close delimiter: take what followed the last delimiter as the last part.
    if let Some(start) = open {
        if start < body.len() {
            parts.push(&body[start..]);
        }
    }
    seen.then_some(parts)
}

/// Splits a part into its headers (canonical lower-case names, folded lines joined) and its
/// content. A part that starts with an empty line has no headers.
fn split_part(part: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let (head, content) = if part.starts_with(b"\r\n") {
        (&part[..0], &part[2..])
    } else if part.starts_with(b"\n") {
        (&part[..0], &part[1..])
    } else {
        match (
            crate::message::find(part, b"\r\n\r\n"),
            crate::message::find(part, b"\n\n"),
        ) {
            (Some(a), Some(b)) if b < a => (&part[..b], &part[b + 2..]),
            (Some(a), _) => (&part[..a], &part[a + 4..]),
            (None, Some(b)) => (&part[..b], &part[b + 2..]),
            (None, None) => (part, &part[part.len()..]),
        }
    };
    let text = String::from_utf8_lossy(head);
    let mut lines: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some(prev) = lines.last_mut() {
                prev.push(' ');
                prev.push_str(line.trim());
                continue;
            }
        }
        lines.push(line.to_string());
    }
    let headers = lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (crate::message::canonical_name(n), v.trim().to_string()))
        .collect();
    (headers, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP_BODY: &str =
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
    const ISUP: &[u8] = &[
        0x01, 0x00, 0x49, 0x00, 0x00, 0x03, 0x02, 0x00, 0x07, 0x04, 0x10,
    ];

    fn sdp(ct: Option<&str>, body: &[u8]) -> Result<Option<Vec<u8>>, BodyError> {
        sdp_of(ct, body).map(|o| o.map(|c| c.into_owned()))
    }

    /// RFC 5621 §3.1-style body: SDP plus an ISUP IAM from a PSTN gateway (RFC 3204).
    fn sdp_and_isup(boundary: &str, nl: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(
            format!("--{boundary}{nl}Content-Type: application/sdp{nl}{nl}").as_bytes(),
        );
        b.extend_from_slice(SDP_BODY.as_bytes());
        b.extend_from_slice(
            format!("{nl}--{boundary}{nl}Content-Type: application/isup;version=itu-t92+{nl}Content-Disposition: signal;handling=optional{nl}{nl}").as_bytes(),
        );
        b.extend_from_slice(ISUP);
        b.extend_from_slice(format!("{nl}--{boundary}--{nl}").as_bytes());
        b
    }

    #[test]
    fn multipart_mixed_yields_the_sdp_part_next_to_isup() {
        let body = sdp_and_isup("unique-boundary-1", "\r\n");
        assert_eq!(
            sdp(Some("multipart/mixed;boundary=unique-boundary-1"), &body),
            Ok(Some(SDP_BODY.as_bytes().to_vec()))
        );
    }

    #[test]
    fn quoted_boundary_with_spaces_and_separators() {
        let b = "simple boundary;=x";
        let body = sdp_and_isup(b, "\r\n");
        let ct = format!("Multipart/Mixed ; charset=utf-8; BOUNDARY=\"{b}\"");
        assert_eq!(
            sdp(Some(&ct), &body),
            Ok(Some(SDP_BODY.as_bytes().to_vec()))
        );
    }

    #[test]
    fn bare_lf_line_breaks_and_transport_padding() {
        let body = sdp_and_isup("b1", "\n");
        let want = SDP_BODY.as_bytes().to_vec();
        assert_eq!(
            sdp(Some("multipart/mixed;boundary=b1"), &body),
            Ok(Some(want.clone()))
        );
        // Whitespace after a delimiter is transport padding (RFC 2046 §5.1.1).
        let padded = String::from_utf8_lossy(&sdp_and_isup("b1", "\r\n"))
            .replace("--b1\r\n", "--b1  \t\r\n")
            .into_bytes();
        assert_eq!(
            sdp(Some("multipart/mixed;boundary=b1"), &padded),
            Ok(Some(want))
        );
    }

    #[test]
    fn preamble_and_epilogue_are_ignored() {
        let mut body = b"This is a preamble.\r\n--b1 is not it: --b1x\r\n".to_vec();
        body.extend_from_slice(&sdp_and_isup("b1", "\r\n"));
        body.extend_from_slice(
            b"This is an epilogue.\r\n--b1\r\nContent-Type: text/plain\r\n\r\nx",
        );
        assert_eq!(
            sdp(Some("multipart/mixed;boundary=b1"), &body),
            Ok(Some(SDP_BODY.as_bytes().to_vec()))
        );
    }

    #[test]
    fn part_headers_in_any_case_compact_or_folded() {
        for header in [
            "content-type: APPLICATION/SDP",
            "CONTENT-TYPE:application/sdp",
            "Content-Type :\r\n application/sdp",
            "c: application/sdp",
        ] {
            let body = format!(
                "--b\r\nContent-Disposition: session\r\n{header}\r\n\r\n{SDP_BODY}\r\n--b--\r\n"
            );
            assert_eq!(
                sdp(Some("multipart/mixed; boundary=b"), body.as_bytes()),
                Ok(Some(SDP_BODY.as_bytes().to_vec())),
                "{header}"
            );
        }
    }

    #[test]
    fn multipart_alternative_takes_the_last_sdp_choice() {
        let other = SDP_BODY.replace("40000", "40002");
        let body = format!(
            "--alt\r\nContent-Type: text/plain\r\n\r\nhello\r\n--alt\r\nContent-Type: application/sdp\r\n\r\n{SDP_BODY}\r\n--alt\r\nContent-Type: application/sdp\r\n\r\n{other}\r\n--alt--\r\n"
        );
        assert_eq!(
            sdp(Some("multipart/alternative;boundary=alt"), body.as_bytes()),
            Ok(Some(other.into_bytes()))
        );
    }

    #[test]
    fn nested_multipart_is_searched() {
        let inner = String::from_utf8(sdp_and_isup("in", "\r\n")).unwrap();
        let body = format!(
            "--out\r\nContent-Type: multipart/mixed;boundary=in\r\n\r\n{inner}\r\n--out--\r\n"
        );
        assert_eq!(
            sdp(Some("multipart/related;boundary=out"), body.as_bytes()),
            Ok(Some(SDP_BODY.as_bytes().to_vec()))
        );
    }

    #[test]
    fn a_part_we_cannot_read_marked_handling_required_refuses_the_body() {
        let body = sdp_and_isup("b", "\r\n");
        let strict =
            String::from_utf8_lossy(&body).replace("handling=optional", "HANDLING=Required");
        assert_eq!(
            sdp(Some("multipart/mixed;boundary=b"), strict.as_bytes()),
            Err(BodyError::Unsupported("application/isup".into()))
        );
        // Without a disposition the ISUP part is ignored, as gateways expect.
        let bare = String::from_utf8_lossy(&body)
            .replace("Content-Disposition: signal;handling=optional\r\n", "");
        assert_eq!(
            sdp(Some("multipart/mixed;boundary=b"), bare.as_bytes()),
            Ok(Some(SDP_BODY.as_bytes().to_vec()))
        );
    }

    #[test]
    fn a_body_without_sdp_is_unsupported() {
        let body = b"--b\r\nContent-Type: application/isup\r\n\r\n\x01\x02\r\n--b\r\n\r\nno type means text/plain\r\n--b--\r\n";
        assert_eq!(
            sdp(Some("multipart/mixed;boundary=b"), body),
            Err(BodyError::Unsupported("multipart/mixed".into()))
        );
        assert_eq!(
            sdp(Some("application/isup"), ISUP),
            Err(BodyError::Unsupported("application/isup".into()))
        );
    }

    #[test]
    fn plain_sdp_absent_type_empty_body_and_malformed_multipart() {
        let s = SDP_BODY.as_bytes();
        assert_eq!(sdp(Some("application/sdp"), s), Ok(Some(s.to_vec())));
        assert_eq!(
            sdp(Some("Application/SDP; charset=utf-8"), s),
            Ok(Some(s.to_vec()))
        );
        assert_eq!(sdp(None, s), Ok(Some(s.to_vec())));
        assert_eq!(sdp(Some("application/sdp"), b""), Ok(None));
        assert_eq!(
            sdp(Some("multipart/mixed"), s),
            Err(BodyError::Malformed("no boundary"))
        );
        assert_eq!(
            sdp(Some("multipart/mixed;boundary=zz"), s),
            Err(BodyError::Malformed("no delimiter"))
        );
    }
}
