//! The seven HTTP methods API Gateway knows, plus `ANY` for route definitions.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Method {
    Get = 0,
    Post = 1,
    Put = 2,
    Delete = 3,
    Patch = 4,
    Head = 5,
    Options = 6,
}

/// Slot index of `ANY` in per-node method tables.
pub const ANY_SLOT: usize = 7;

impl Method {
    pub const ALL: [Method; 7] =
        [Method::Get, Method::Post, Method::Put, Method::Delete, Method::Patch, Method::Head, Method::Options];

    /// Parses a request method token. Case-sensitive, as RFC 9110 section 9.1 says.
    #[inline]
    pub fn from_bytes(b: &[u8]) -> Option<Method> {
        Some(match b {
            b"GET" => Method::Get,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"PATCH" => Method::Patch,
            b"HEAD" => Method::Head,
            b"OPTIONS" => Method::Options,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }

    /// Safe to send twice (RFC 9110 section 9.2.2).
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Patch)
    }
}

/// A route's method: one method or `ANY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMethod {
    One(Method),
    Any,
}

impl RouteMethod {
    pub fn parse(s: &str) -> Option<RouteMethod> {
        if s == "ANY" {
            return Some(RouteMethod::Any);
        }
        Method::from_bytes(s.as_bytes()).map(RouteMethod::One)
    }

    pub fn slot(self) -> usize {
        match self {
            RouteMethod::One(m) => m as usize,
            RouteMethod::Any => ANY_SLOT,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RouteMethod::One(m) => m.as_str(),
            RouteMethod::Any => "ANY",
        }
    }
}
