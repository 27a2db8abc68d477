//! CORS: preflight answers and the headers on actual responses, per route or per stage.
//!
//! Origins match exactly or by `*`; with credentials, `*` is refused at config time, so a
//! credentialed response always names the one origin that asked.

use crate::http::write::put_u64;

pub struct Cors {
    any_origin: bool,
    origins: Vec<Box<[u8]>>,
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    pub max_age_s: Option<u64>,
    pub credentials: bool,
}

/// API Gateway's "Enable CORS" defaults.
pub const DEFAULT_METHODS: &str = "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS";
pub const DEFAULT_HEADERS: &str = "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token";

impl Cors {
    pub fn new(
        origins: &[String],
        allow_methods: String,
        allow_headers: String,
        expose_headers: String,
        max_age_s: Option<u64>,
        credentials: bool,
    ) -> Result<Cors, String> {
        let any_origin = origins.iter().any(|o| o == "*");
        if any_origin && credentials {
            return Err("allow_credentials cannot be combined with the origin \"*\"; list the origins".into());
        }
        if origins.is_empty() {
            return Err("allow_origins must name at least one origin (or \"*\")".into());
        }
        for o in origins.iter().filter(|o| *o != "*") {
            if !(o.starts_with("http://") || o.starts_with("https://"))
                || o.ends_with('/')
                || o.bytes().any(|b| b <= b' ')
            {
                return Err(format!("origin '{o}' must look like https://host[:port], without a path"));
            }
        }
        Ok(Cors {
            any_origin,
            origins: origins.iter().filter(|o| *o != "*").map(|o| o.as_bytes().into()).collect(),
            allow_methods,
            allow_headers,
            expose_headers,
            max_age_s,
            credentials,
        })
    }

    #[inline]
    pub fn allows(&self, origin: &[u8]) -> bool {
        self.any_origin || self.origins.iter().any(|o| o[..].eq_ignore_ascii_case(origin))
    }

    /// Headers for an actual (non-preflight) response to an allowed `origin`.
    pub fn write_response_headers(&self, origin: &[u8], out: &mut Vec<u8>) {
        self.write_origin(origin, out);
        if !self.expose_headers.is_empty() {
            out.extend_from_slice(b"Access-Control-Expose-Headers: ");
            out.extend_from_slice(self.expose_headers.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Headers for a preflight answer to an allowed `origin`.
    pub fn write_preflight_headers(&self, origin: &[u8], out: &mut Vec<u8>) {
        self.write_origin(origin, out);
        out.extend_from_slice(b"Access-Control-Allow-Methods: ");
        out.extend_from_slice(self.allow_methods.as_bytes());
        out.extend_from_slice(b"\r\nAccess-Control-Allow-Headers: ");
        out.extend_from_slice(self.allow_headers.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(s) = self.max_age_s {
            out.extend_from_slice(b"Access-Control-Max-Age: ");
            put_u64(out, s);
            out.extend_from_slice(b"\r\n");
        }
    }

    fn write_origin(&self, origin: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(b"Access-Control-Allow-Origin: ");
        if self.any_origin {
            out.extend_from_slice(b"*\r\n");
        } else {
            out.extend_from_slice(origin);
            out.extend_from_slice(b"\r\nVary: Origin\r\n");
        }
        if self.credentials {
            out.extend_from_slice(b"Access-Control-Allow-Credentials: true\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], creds: bool) -> Result<Cors, String> {
        let o: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        Cors::new(&o, DEFAULT_METHODS.into(), DEFAULT_HEADERS.into(), String::new(), Some(600), creds)
    }

    #[test]
    fn origin_matching() {
        let c = cors(&["https://a.example", "http://b.example:8080"], false).unwrap();
        assert!(c.allows(b"https://a.example"));
        assert!(c.allows(b"http://b.example:8080"));
        assert!(!c.allows(b"https://a.example.evil"));
        assert!(!c.allows(b"https://evil.example"));
        assert!(cors(&["*"], false).unwrap().allows(b"https://anything"));
    }

    #[test]
    fn credentials_never_with_star() {
        assert!(cors(&["*"], true).is_err());
        assert!(cors(&[], false).is_err());
        assert!(cors(&["https://a.example/"], false).is_err());
        let c = cors(&["https://a.example"], true).unwrap();
        let mut out = Vec::new();
        c.write_response_headers(b"https://a.example", &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("Access-Control-Allow-Origin: https://a.example\r\n"));
        assert!(s.contains("Access-Control-Allow-Credentials: true\r\n"));
        assert!(s.contains("Vary: Origin\r\n"));
    }
}
