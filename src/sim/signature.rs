//! System-context authentication as JumpCloud documents it (v1 spec info text,
//! TheJumpCloud/SystemContextAPI README):
//! `Authorization: Signature keyId="system/<systemKey>",headers="request-line date",algorithm="rsa-sha256",signature="<base64>"`
//! over `"<METHOD> <request-target> HTTP/1.1\ndate: <Date>"`, RSA PKCS#1 v1.5 with SHA-256,
//! checked against the key the system registered, with the `Date` header no further than the
//! allowed skew from the server clock.

use std::time::{Duration, SystemTime};

use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine as _;

/// The parts of a `Signature` authorization header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignatureHeader {
    pub system_id: String,
    pub headers: String,
    pub algorithm: String,
    pub signature: Vec<u8>,
}

/// Parses `Signature keyId="system/...",headers="...",algorithm="...",signature="..."`.
/// `None` when it is not a signature header at all; `Err` when it is a malformed one.
pub(crate) fn parse(value: &str) -> Option<Result<SignatureHeader, String>> {
    let rest = value.strip_prefix("Signature ")?;
    let mut key_id = None;
    let mut headers = None;
    let mut algorithm = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Some(Err(format!("malformed parameter {part:?}")));
        };
        let v = v.trim().trim_matches('"').to_owned();
        match k.trim() {
            "keyId" => key_id = Some(v),
            "headers" => headers = Some(v),
            "algorithm" => algorithm = Some(v),
            "signature" => signature = Some(v),
            _ => {}
        }
    }
    let result = (|| {
        let key_id = key_id.ok_or("keyId missing")?;
        let system_id = key_id
            .strip_prefix("system/")
            .ok_or("keyId must be system/<systemKey>")?
            .to_owned();
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature.ok_or("signature missing")?)
            .map_err(|_| "signature is not base64")?;
        Ok(SignatureHeader {
            system_id,
            headers: headers.unwrap_or_default(),
            algorithm: algorithm.unwrap_or_default(),
            signature,
        })
    })();
    Some(result.map_err(|e: &str| e.to_owned()))
}

/// What of a request the signature covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub date: Option<&'a str>,
}

/// Checks a parsed header against the request and the registered public key (PKCS#1 DER).
/// The signed request line is the HTTP request-target, query string included, and nothing
/// else: JumpCloud's own system-context client signs `"<METHOD> <path?query> HTTP/1.1"`
/// (jumpcloud-ADMU `Invoke-SystemContextAPI.ps1`), as does its Mac command "Remove System From
/// Command" (`POST /api/v2/systems/<id>/associations?targets=command`, TheJumpCloud/support
/// Commands Gallery). A signature over the path alone does not verify for a request with a
/// query.
pub(crate) fn verify(
    sig: &SignatureHeader,
    public_key: &[u8],
    req: &Signed<'_>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), String> {
    if sig.algorithm != "rsa-sha256" {
        return Err(format!("algorithm {:?} is not rsa-sha256", sig.algorithm));
    }
    if sig.headers != "request-line date" {
        return Err(format!(
            "headers {:?} is not \"request-line date\"",
            sig.headers
        ));
    }
    let Signed {
        method,
        path,
        query,
        date,
    } = *req;
    let date = date.ok_or("Date header missing")?;
    let when = httpdate::parse_http_date(date).map_err(|_| "Date header is not an HTTP-date")?;
    let skew = now
        .duration_since(when)
        .or_else(|_| when.duration_since(now))
        .unwrap_or(Duration::MAX);
    if skew > max_skew {
        return Err(format!(
            "Date is {}s away from the server clock (limit {}s)",
            skew.as_secs(),
            max_skew.as_secs()
        ));
    }
    let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key);
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let signed = format!("{method} {target} HTTP/1.1\ndate: {date}");
    key.verify(signed.as_bytes(), &sig.signature)
        .map_err(|_| "signature does not verify with the system's registered key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_header() {
        let h = parse(r#"Signature keyId="system/5f0c",headers="request-line date",algorithm="rsa-sha256",signature="AAEC""#)
            .unwrap()
            .unwrap();
        assert_eq!(h.system_id, "5f0c");
        assert_eq!(h.signature, vec![0, 1, 2]);
        assert!(parse("Bearer x").is_none());
        assert!(parse(r#"Signature keyId="user/1",signature="AA==""#)
            .unwrap()
            .is_err());
    }
}
