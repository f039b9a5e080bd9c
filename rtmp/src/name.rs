//! App and stream names as RTMP peers send them: a name, optionally followed by a query string.
//!
//! Encoders and streaming platforms put credentials and options after a `?`:
//! `rtmp://host/live/cam1?token=abc123` makes ffmpeg send the play path `cam1?token=abc123` in
//! `publish`, and OBS with the server `rtmp://host/live?tenant=acme` sends the app
//! `live?tenant=acme` in `connect`. Like nginx-rtmp, SRS and MediaMTX, the server names the
//! stream by what comes before the `?` and hands the parameters to the authorizer, so
//! `live/cam1?token=abc123` goes live as `live`/`cam1` and a player of `live/cam1` finds it.
//!
//! [`StreamName::parse`] is the only place where the server splits such names (`connect`'s app,
//! `publish`'s and `play`'s stream name). It never fails: any string is a name.

use std::fmt;

/// A name split from its query string: `cam1?token=abc123` is `cam1` with `token=abc123`.
///
/// The name is everything before the first `?`, taken verbatim (not percent-decoded, as
/// nginx-rtmp and SRS do), so it matches what the publisher and the players typed. The query
/// is parsed by [`QueryParams::parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamName {
    /// The name without the query (`cam1`); may be empty (`?token=x`).
    pub name: String,
    /// The parameters of the query string (empty without a `?`).
    pub params: QueryParams,
}

impl StreamName {
    /// Splits `raw` at its first `?` into the name and its parameters.
    pub fn parse(raw: &str) -> Self {
        match raw.split_once('?') {
            Some((name, query)) => Self {
                name: name.to_string(),
                params: QueryParams::parse(query),
            },
            None => Self {
                name: raw.to_string(),
                params: QueryParams::default(),
            },
        }
    }

    /// Parses the app of `connect` (`live`, `live?tenant=acme`, `live/?tenant=acme`).
    ///
    /// Same as [`StreamName::parse`], but trailing slashes are dropped from the name: clients
    /// send `live/` for `rtmp://host/live/` and the app is still `live` (`rml_rtmp` already
    /// drops one when there is no query).
    pub fn parse_app(raw: &str) -> Self {
        let mut app = Self::parse(raw);
        let trimmed = app.name.trim_end_matches('/').len();
        app.name.truncate(trimmed);
        app
    }
}

/// Writes the name back with its query, parameters percent-encoded (`cam1?token=abc123`);
/// parsing the output gives the same name and parameters when the name has no `?`.
impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.params.is_empty() {
            write!(f, "?{}", self.params)?;
        }
        Ok(())
    }
}

/// The parameters of a query string, in order, repeated keys kept.
///
/// Parsing rules (`a=1&b=&c&a=2`):
/// - parameters are separated by `&` only (`;` is part of a value, as in nginx-rtmp and Go's
///   `net/url` since 1.17); empty pieces (`&&`, a trailing `&`) are skipped;
/// - a parameter is split at its first `=`; without `=` the value is empty (`c` is `c=`);
/// - keys and values are percent-decoded (`%2F` is `/`); `+` stays `+`, because stream keys and
///   tokens are often base64 and form decoding would turn their `+` into a space. A malformed
///   escape (`%zz`, `%4`) is kept as written, and so is a key or value whose decoded bytes are
///   not UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Parses a query string without its leading `?`. Never fails.
    pub fn parse(query: &str) -> Self {
        let pairs = query
            .split('&')
            .filter(|piece| !piece.is_empty())
            .map(|piece| {
                let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
                (percent_decode(key), percent_decode(value))
            })
            .collect();
        Self { pairs }
    }

    /// The first value of `key` (`Some("")` for `key=` and a bare `key`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order (`a=1&a=2` gives `1`, `2`).
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter, in order, decoded.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Number of parameters (repeated keys counted each time).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Appends a parameter.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((key.into(), value.into()));
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for QueryParams {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            pairs: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Writes `k=v&k2=v2`, every byte outside RFC 3986's unreserved set percent-encoded, so that
/// [`QueryParams::parse`] gives the same parameters back.
impl fmt::Display for QueryParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            percent_encode(f, key)?;
            f.write_str("=")?;
            percent_encode(f, value)?;
        }
        Ok(())
    }
}

fn percent_encode(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            write!(f, "{}", byte as char)?;
        } else {
            write!(f, "%{byte:02X}")?;
        }
    }
    Ok(())
}

/// Decodes `%XX` escapes; malformed escapes stay as written, and the text is returned unchanged
/// when the decoded bytes are not UTF-8 (a lossy decode could make two tokens equal).
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(query: &str) -> Vec<(String, String)> {
        QueryParams::parse(query)
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn stream_name_without_query_is_unchanged() {
        let parsed = StreamName::parse("cam1");
        assert_eq!(parsed.name, "cam1");
        assert!(parsed.params.is_empty());
        assert_eq!(parsed.to_string(), "cam1");
    }

    #[test]
    fn stream_name_query_becomes_parameters() {
        let parsed = StreamName::parse("cam1?token=abc123");
        assert_eq!(parsed.name, "cam1");
        assert_eq!(parsed.params.get("token"), Some("abc123"));
        assert_eq!(parsed.params.len(), 1);
        assert_eq!(parsed.to_string(), "cam1?token=abc123");
    }

    #[test]
    fn name_splits_at_the_first_question_mark() {
        let parsed = StreamName::parse("cam1?a=b?c=d");
        assert_eq!(parsed.name, "cam1");
        assert_eq!(params("a=b?c=d"), pairs(&[("a", "b?c=d")]));
        assert_eq!(parsed.params.get("a"), Some("b?c=d"));
    }

    #[test]
    fn empty_query_and_empty_name() {
        let parsed = StreamName::parse("cam1?");
        assert_eq!((parsed.name.as_str(), parsed.params.len()), ("cam1", 0));
        let parsed = StreamName::parse("?token=x");
        assert_eq!(parsed.name, "");
        assert_eq!(parsed.params.get("token"), Some("x"));
        assert_eq!(StreamName::parse(""), StreamName::default());
    }

    #[test]
    fn name_is_taken_verbatim() {
        // Only the query is decoded: the name is what publisher and players both typed.
        let parsed = StreamName::parse("my%20cam/2+x?k=v");
        assert_eq!(parsed.name, "my%20cam/2+x");
    }

    #[test]
    fn repeated_keys_are_kept_in_order() {
        let query = QueryParams::parse("a=1&b=2&a=3");
        assert_eq!(query.get("a"), Some("1"));
        assert_eq!(query.get_all("a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(query.get("c"), None);
    }

    #[test]
    fn empty_values_and_bare_keys() {
        assert_eq!(
            params("empty=&bare&x=1"),
            pairs(&[("empty", ""), ("bare", ""), ("x", "1")])
        );
        assert_eq!(params("=v"), pairs(&[("", "v")]));
        assert_eq!(params("k=a=b"), pairs(&[("k", "a=b")]));
    }

    #[test]
    fn empty_pieces_are_skipped_and_semicolon_is_not_a_separator() {
        assert_eq!(params(""), pairs(&[]));
        assert_eq!(params("&&"), pairs(&[]));
        assert_eq!(params("&a=1&&b=2&"), pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(params("a=1;b=2"), pairs(&[("a", "1;b=2")]));
    }

    #[test]
    fn percent_escapes_are_decoded_plus_is_kept() {
        assert_eq!(
            params("key=s3cr%2Ft%20k&t%C3%A9=%e2%82%ac&b64=ab+c/d=="),
            pairs(&[("key", "s3cr/t k"), ("té", "€"), ("b64", "ab+c/d==")])
        );
        assert_eq!(params("a=%26%3D"), pairs(&[("a", "&=")]));
    }

    #[test]
    fn malformed_escapes_stay_as_written() {
        assert_eq!(
            params("a=%zz&b=%4&c=100%&d=%"),
            pairs(&[("a", "%zz"), ("b", "%4"), ("c", "100%"), ("d", "%")])
        );
        // %FF alone is not UTF-8: the raw text is kept rather than a replacement character.
        assert_eq!(params("t=%FF%FE"), pairs(&[("t", "%FF%FE")]));
    }

    #[test]
    fn app_with_query_and_trailing_slash() {
        let app = StreamName::parse_app("live?tenant=acme");
        assert_eq!(app.name, "live");
        assert_eq!(app.params.get("tenant"), Some("acme"));
        assert_eq!(StreamName::parse_app("live/?x=1").name, "live");
        assert_eq!(StreamName::parse_app("live/").name, "live");
        assert_eq!(StreamName::parse_app("app/inst").name, "app/inst");
        assert_eq!(StreamName::parse_app("live").params.len(), 0);
    }

    #[test]
    fn display_encodes_what_would_not_parse_back() {
        let name = StreamName {
            name: "cam1".into(),
            params: [("to ken", "a&b=c"), ("e", "")].into_iter().collect(),
        };
        assert_eq!(name.to_string(), "cam1?to%20ken=a%26b%3Dc&e=");
        assert_eq!(StreamName::parse(&name.to_string()), name);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(raw in ".*", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = StreamName::parse(&raw);
            let _ = StreamName::parse_app(&raw);
            let lossy = String::from_utf8_lossy(&bytes);
            let _ = StreamName::parse(&lossy);
        }

        #[test]
        fn query_like_input_never_panics(raw in "[a-z%0-9A-F=&?;+/]{0,40}") {
            let parsed = StreamName::parse(&raw);
            prop_assert!(!parsed.name.contains('?'));
        }

        #[test]
        fn params_round_trip(list in proptest::collection::vec((".*", ".*"), 0..6)) {
            let query: QueryParams = list.iter().cloned().collect();
            let text = query.to_string();
            prop_assert_eq!(QueryParams::parse(&text), query);
        }

        #[test]
        fn stream_name_round_trips(
            name in "[^?]*",
            list in proptest::collection::vec((".*", ".*"), 0..6),
        ) {
            let original = StreamName { name, params: list.into_iter().collect() };
            prop_assert_eq!(StreamName::parse(&original.to_string()), original);
        }

        #[test]
        fn reparsing_the_written_form_is_stable(raw in ".*") {
            let once = StreamName::parse(&raw);
            let twice = StreamName::parse(&once.to_string());
            prop_assert_eq!(twice, once);
        }

        #[test]
        fn plain_values_survive_unchanged(key in "[a-zA-Z0-9_.~-]{1,12}", value in "[a-zA-Z0-9_.~+/-]{0,24}") {
            let parsed = StreamName::parse(&format!("cam1?{key}={value}"));
            prop_assert_eq!(parsed.name.as_str(), "cam1");
            prop_assert_eq!(parsed.params.get(&key), Some(value.as_str()));
        }
    }
}
