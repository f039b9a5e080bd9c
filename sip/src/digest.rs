//! HTTP digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760): MD5, MD5-sess, SHA-256
//! and SHA-256-sess, with and without `qop=auth`.

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// What a user agent answers digest challenges with.
///
/// `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum DigestSecret {
    /// The plain password: HA1 = H(user:realm:password) per challenge (RFC 7616 §3.4.2).
    Password(String),
    /// A precomputed HA1 in lower-case hex (Janus' `ha1_secret`): MD5(user:realm:password),
    /// so it answers only MD5 challenges of that realm; the password never reaches us.
    Ha1(String),
}

impl std::fmt::Debug for DigestSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DigestSecret::Password(_) => "Password(..)",
            DigestSecret::Ha1(_) => "Ha1(..)",
        })
    }
}

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate` digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection realm.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo back.
    pub opaque: Option<String>,
    /// Hash algorithm.
    pub algorithm: Algorithm,
    /// Whether the server offered `qop=auth`.
    pub qop_auth: bool,
    /// The server says the previous nonce was merely stale (credentials were right).
    pub stale: bool,
}

/// Digest hash algorithms we answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256 (RFC 7616 / 8760).
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
}

/// Why a challenge cannot be answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// The scheme is not Digest.
    #[error("unsupported auth scheme")]
    NotDigest,
    /// A required parameter is missing.
    #[error("challenge lacks {0}")]
    Missing(&'static str),
    /// An algorithm we do not implement (e.g. SHA-512-256).
    #[error("unsupported digest algorithm {0}")]
    Algorithm(String),
    /// Only `qop=auth-int` was offered.
    #[error("unsupported qop {0}")]
    Qop(String),
}

/// Splits `k=v, k="v, w"` into pairs, honouring quoted commas.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut parts = Vec::new();
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c)
            }
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            out.push((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ));
        }
    }
    out
}

impl Challenge {
    /// Parses a challenge header value.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let v = value.trim();
        let (scheme, rest) = v
            .split_once(char::is_whitespace)
            .ok_or(DigestError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let p = params(rest);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let algorithm = match get("algorithm").map(|a| a.to_ascii_uppercase()) {
            None => Algorithm::Md5,
            Some(a) if a == "MD5" => Algorithm::Md5,
            Some(a) if a == "MD5-SESS" => Algorithm::Md5Sess,
            Some(a) if a == "SHA-256" => Algorithm::Sha256,
            Some(a) if a == "SHA-256-SESS" => Algorithm::Sha256Sess,
            Some(a) => return Err(DigestError::Algorithm(a)),
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(q) => {
                if q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")) {
                    true
                } else {
                    return Err(DigestError::Qop(q));
                }
            }
        };
        Ok(Self {
            realm: get("realm").ok_or(DigestError::Missing("realm"))?,
            nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => Sha256::digest(data.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

/// Computes the `response` value and returns the full `Authorization` header value.
pub fn authorization(
    ch: &Challenge,
    user: &str,
    secret: &DigestSecret,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let alg = ch.algorithm;
    let mut ha1 = match secret {
        DigestSecret::Password(password) => alg.hash(&format!("{user}:{}:{password}", ch.realm)),
        DigestSecret::Ha1(ha1) => ha1.to_ascii_lowercase(),
    };
    if alg.is_sess() {
        ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", ch.nonce));
    }
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    let nc_s = format!("{nc:08x}");
    let response = if ch.qop_auth {
        alg.hash(&format!("{ha1}:{}:{nc_s}:{cnonce}:auth:{ha2}", ch.nonce))
    } else {
        alg.hash(&format!("{ha1}:{}:{ha2}", ch.nonce))
    };
    let mut h = format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
        ch.realm,
        ch.nonce,
        alg.name()
    );
    if ch.qop_auth || alg.is_sess() {
        h.push_str(&format!(", cnonce=\"{cnonce}\""));
    }
    if ch.qop_auth {
        h.push_str(&format!(", qop=auth, nc={nc_s}"));
    }
    if let Some(o) = &ch.opaque {
        h.push_str(&format!(", opaque=\"{o}\""));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_of(h: &str) -> String {
        params(h.trim_start_matches("Digest "))
            .into_iter()
            .find(|(k, _)| k == "response")
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    #[test]
    fn rfc2617_md5_qop_auth_example() {
        // RFC 2617 §3.5 (method GET, the same computation SIP uses).
        let ch = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let h = authorization(
            &ch,
            "Mufasa",
            &DigestSecret::Password("Circle Of Life".into()),
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        );
        assert_eq!(response_of(&h), "6629fae49393a05397450978507c4ef1");
        // The same answer from the precomputed HA1 (RFC 2617 §3.5: MD5("Mufasa:testrealm@host.com:
        // Circle Of Life")), in either case.
        let ha1 = Algorithm::Md5.hash("Mufasa:testrealm@host.com:Circle Of Life");
        let from_ha1 = authorization(
            &ch,
            "Mufasa",
            &DigestSecret::Ha1(ha1.to_ascii_uppercase()),
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        );
        assert_eq!(response_of(&from_ha1), "6629fae49393a05397450978507c4ef1");
        assert_eq!(format!("{:?}", DigestSecret::Ha1(ha1)), "Ha1(..)");
        assert!(
            h.contains("nc=00000001") && h.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"")
        );
    }

    #[test]
    fn rfc7616_sha256_example() {
        let ch = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        let h = authorization(
            &ch,
            "Mufasa",
            &DigestSecret::Password("Circle of Life".into()),
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        );
        assert_eq!(
            response_of(&h),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn md5_sess_uses_session_key() {
        let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess, qop=auth")
            .unwrap();
        let h = authorization(
            &ch,
            "u",
            &DigestSecret::Password("p".into()),
            "REGISTER",
            "sip:r",
            "c",
            1,
        );
        let a = Algorithm::Md5;
        let ha1 = a.hash(&format!("{}:n:c", a.hash("u:r:p")));
        let expect = a.hash(&format!(
            "{ha1}:n:00000001:c:auth:{}",
            a.hash("REGISTER:sip:r")
        ));
        assert_eq!(response_of(&h), expect);
        assert!(h.contains("algorithm=MD5-sess"));
    }

    #[test]
    fn refuses_unknown_scheme_and_algorithm() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(DigestError::NotDigest)
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", algorithm=SHA-999"),
            Err(DigestError::Algorithm(_))
        ));
        assert_eq!(
            Challenge::parse("Digest nonce=\"y\""),
            Err(DigestError::Missing("realm"))
        );
    }
}
