//! Gateway responses: the errors ringway itself produces (API Gateway's response types).
//!
//! The table of types is fixed; the config may override status, headers and body per type,
//! with DEFAULT_4XX / DEFAULT_5XX as fallbacks. Everything is resolved at compile time into
//! one `Resolved` per type; rendering happens only on error paths.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AccessDenied,
    ApiConfigurationError,
    AuthorizerConfigurationError,
    AuthorizerFailure,
    BadRequestParameters,
    BadRequestBody,
    ExpiredToken,
    IntegrationFailure,
    IntegrationTimeout,
    InvalidApiKey,
    InvalidSignature,
    MissingAuthenticationToken,
    QuotaExceeded,
    RequestTooLarge,
    ResourceNotFound,
    Throttled,
    Unauthorized,
    UnsupportedMediaType,
    WafFiltered,
}

pub struct KindInfo {
    pub name: &'static str,
    pub status: u16,
    pub error_type: &'static str,
    pub message: &'static str,
}

/// Order matches `Kind`'s discriminants.
pub const TABLE: [KindInfo; 19] = [
    KindInfo {
        name: "ACCESS_DENIED",
        status: 403,
        error_type: "AccessDeniedException",
        message: "User is not authorized to access this resource",
    },
    KindInfo {
        name: "API_CONFIGURATION_ERROR",
        status: 500,
        error_type: "ApiConfigurationException",
        message: "Internal server error",
    },
    KindInfo {
        name: "AUTHORIZER_CONFIGURATION_ERROR",
        status: 500,
        error_type: "AuthorizerConfigurationException",
        message: "Internal server error",
    },
    KindInfo {
        name: "AUTHORIZER_FAILURE",
        status: 500,
        error_type: "AuthorizerFailureException",
        message: "Internal server error",
    },
    KindInfo { name: "BAD_REQUEST_PARAMETERS", status: 400, error_type: "BadRequestException", message: "Bad request" },
    KindInfo {
        name: "BAD_REQUEST_BODY",
        status: 400,
        error_type: "BadRequestException",
        message: "Invalid request body",
    },
    KindInfo {
        name: "EXPIRED_TOKEN",
        status: 403,
        error_type: "ExpiredTokenException",
        message: "The security token included in the request is expired",
    },
    KindInfo {
        name: "INTEGRATION_FAILURE",
        status: 502,
        error_type: "InternalServerErrorException",
        message: "Internal server error",
    },
    KindInfo {
        name: "INTEGRATION_TIMEOUT",
        status: 504,
        error_type: "InternalServerErrorException",
        message: "Endpoint request timed out",
    },
    KindInfo { name: "INVALID_API_KEY", status: 403, error_type: "ForbiddenException", message: "Forbidden" },
    KindInfo {
        name: "INVALID_SIGNATURE",
        status: 403,
        error_type: "InvalidSignatureException",
        message: "Invalid signature",
    },
    KindInfo {
        name: "MISSING_AUTHENTICATION_TOKEN",
        status: 403,
        error_type: "MissingAuthenticationTokenException",
        message: "Missing Authentication Token",
    },
    KindInfo { name: "QUOTA_EXCEEDED", status: 429, error_type: "LimitExceededException", message: "Limit Exceeded" },
    KindInfo {
        name: "REQUEST_TOO_LARGE",
        status: 413,
        error_type: "RequestTooLargeException",
        message: "Request Too Long",
    },
    KindInfo {
        name: "RESOURCE_NOT_FOUND",
        status: 404,
        error_type: "ResourceNotFoundException",
        message: "Resource not found",
    },
    KindInfo { name: "THROTTLED", status: 429, error_type: "TooManyRequestsException", message: "Too Many Requests" },
    KindInfo { name: "UNAUTHORIZED", status: 401, error_type: "UnauthorizedException", message: "Unauthorized" },
    KindInfo {
        name: "UNSUPPORTED_MEDIA_TYPE",
        status: 415,
        error_type: "BadRequestException",
        message: "Unsupported Media Type",
    },
    KindInfo { name: "WAF_FILTERED", status: 403, error_type: "WafFilteredException", message: "Forbidden" },
];

pub const ALL: [Kind; 19] = [
    Kind::AccessDenied,
    Kind::ApiConfigurationError,
    Kind::AuthorizerConfigurationError,
    Kind::AuthorizerFailure,
    Kind::BadRequestParameters,
    Kind::BadRequestBody,
    Kind::ExpiredToken,
    Kind::IntegrationFailure,
    Kind::IntegrationTimeout,
    Kind::InvalidApiKey,
    Kind::InvalidSignature,
    Kind::MissingAuthenticationToken,
    Kind::QuotaExceeded,
    Kind::RequestTooLarge,
    Kind::ResourceNotFound,
    Kind::Throttled,
    Kind::Unauthorized,
    Kind::UnsupportedMediaType,
    Kind::WafFiltered,
];

impl Kind {
    pub fn info(self) -> &'static KindInfo {
        &TABLE[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        ALL.iter().copied().find(|k| k.info().name == name)
    }
}

/// A piece of a gateway response body template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    /// `$context.error.messageString`: the message as a JSON string, quotes included.
    MessageString,
    Message,
    /// `$context.error.validationErrorString`: details of a failed body validation.
    ValidationErrorString,
    ResponseType,
    RequestId,
    Stage,
    HttpMethod,
    ResourcePath,
    Path,
    SourceIp,
    StageVariable(String),
}

/// Compiles `{"message":$context.error.messageString}`-style templates (no VTL, only variables).
pub fn compile_template(t: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = t;
    while let Some(i) = rest.find('$') {
        lit.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let braced = after.starts_with('{');
        let body = if braced { &after[1..] } else { after };
        let len =
            body.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b'_')).unwrap_or(body.len());
        let mut name = &body[..len];
        // A trailing '.' belongs to the text, not the variable ("$context.stage.").
        while let Some(n) = name.strip_suffix('.') {
            name = n;
        }
        if name.is_empty() {
            lit.push('$');
            rest = after;
            continue;
        }
        let piece = match name {
            "context.error.messageString" => Piece::MessageString,
            "context.error.message" => Piece::Message,
            "context.error.validationErrorString" => Piece::ValidationErrorString,
            "context.error.responseType" => Piece::ResponseType,
            "context.requestId" | "context.extendedRequestId" => Piece::RequestId,
            "context.stage" => Piece::Stage,
            "context.httpMethod" => Piece::HttpMethod,
            "context.resourcePath" => Piece::ResourcePath,
            "context.path" => Piece::Path,
            "context.identity.sourceIp" => Piece::SourceIp,
            v => match v.strip_prefix("stageVariables.") {
                Some(s) if !s.is_empty() => Piece::StageVariable(s.to_string()),
                _ => return Err(format!("unknown variable ${v} in gateway response template")),
            },
        };
        let mut consumed = name.len();
        if braced {
            if body.as_bytes().get(name.len()) != Some(&b'}') {
                return Err(format!("unclosed '${{{name}' in gateway response template"));
            }
            consumed += 2;
        }
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        out.push(piece);
        rest = &after[consumed..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

/// A fully resolved response for one type.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub status: u16,
    pub error_type: &'static str,
    pub message: &'static str,
    pub name: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<Piece>,
}

/// What a template may refer to, filled in by the connection on the error path.
pub struct Context<'a> {
    pub request_id: &'a str,
    pub stage: &'a str,
    pub method: &'a str,
    pub resource_path: &'a str,
    pub path: &'a str,
    pub source_ip: &'a str,
    pub stage_variable: &'a dyn Fn(&str) -> Option<&'a str>,
    /// Replaces the type's message when set (e.g. the missing parameters).
    pub message: Option<&'a str>,
    pub validation_error: &'a str,
}

impl Resolved {
    pub fn render_body(&self, ctx: &Context<'_>, out: &mut Vec<u8>) {
        for p in &self.body {
            match p {
                Piece::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Piece::MessageString => json_string(out, ctx.message.unwrap_or(self.message)),
                Piece::Message => out.extend_from_slice(ctx.message.unwrap_or(self.message).as_bytes()),
                Piece::ValidationErrorString => {
                    // Escaped for use inside a JSON string, as templates quote it.
                    let start = out.len();
                    json_string(out, ctx.validation_error);
                    out.remove(start);
                    out.pop();
                }
                Piece::ResponseType => out.extend_from_slice(self.name.as_bytes()),
                Piece::RequestId => out.extend_from_slice(ctx.request_id.as_bytes()),
                Piece::Stage => out.extend_from_slice(ctx.stage.as_bytes()),
                Piece::HttpMethod => out.extend_from_slice(ctx.method.as_bytes()),
                Piece::ResourcePath => out.extend_from_slice(ctx.resource_path.as_bytes()),
                Piece::Path => out.extend_from_slice(ctx.path.as_bytes()),
                Piece::SourceIp => out.extend_from_slice(ctx.source_ip.as_bytes()),
                Piece::StageVariable(n) => {
                    if let Some(v) = (ctx.stage_variable)(n) {
                        out.extend_from_slice(v.as_bytes())
                    }
                }
            }
        }
    }
}

/// Writes `s` as a JSON string literal.
pub fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes())
            }
        }
    }
    out.push(b'"');
}

/// A configured override (already validated), as the compiler hands it over.
#[derive(Debug, Clone, Default)]
pub struct Override {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<Piece>>,
}

/// Resolves every type: its own override, else DEFAULT_4XX / DEFAULT_5XX by class, else built-in.
pub fn resolve_all(
    specific: &[(Kind, Override)],
    default_4xx: Option<&Override>,
    default_5xx: Option<&Override>,
) -> Vec<Resolved> {
    let compact = compile_template("{\"message\":$context.error.messageString}").expect("built-in template");
    // API Gateway writes these bodies with a space after the colon; keep the exact bytes.
    let spaced = compile_template("{\"message\": $context.error.messageString}").expect("built-in template");
    ALL.iter()
        .map(|&kind| {
            let info = kind.info();
            let own = specific.iter().find(|(k, _)| *k == kind).map(|(_, o)| o);
            // REQUEST_TOO_LARGE cannot be customised (API Gateway rule).
            let class = if kind == Kind::RequestTooLarge {
                None
            } else if info.status < 500 {
                default_4xx
            } else {
                default_5xx
            };
            let pick_status = own.and_then(|o| o.status).or(class.and_then(|c| c.status)).unwrap_or(info.status);
            let headers = own.or(class).map(|o| o.headers.clone()).unwrap_or_default();
            let body =
                own.and_then(|o| o.body.clone()).or_else(|| class.and_then(|c| c.body.clone())).unwrap_or_else(|| {
                    let is_spaced = matches!(
                        kind,
                        Kind::ApiConfigurationError
                            | Kind::BadRequestParameters
                            | Kind::BadRequestBody
                            | Kind::IntegrationFailure
                            | Kind::IntegrationTimeout
                    );
                    if is_spaced {
                        spaced.clone()
                    } else {
                        compact.clone()
                    }
                });
            Resolved {
                status: pick_status,
                error_type: info.error_type,
                message: info.message,
                name: info.name,
                headers,
                body,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_render(r: &Resolved) -> String {
        let sv = |_: &str| None;
        let ctx = Context {
            request_id: "rid",
            stage: "test",
            method: "GET",
            resource_path: "/",
            path: "/x",
            source_ip: "127.0.0.1",
            stage_variable: &sv,
            message: None,
            validation_error: "",
        };
        let mut out = Vec::new();
        r.render_body(&ctx, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_is_in_enum_order() {
        for k in ALL {
            assert_eq!(Kind::from_name(k.info().name), Some(k));
        }
    }

    #[test]
    fn default_body_and_fallbacks() {
        let d4 = Override { status: Some(400), headers: vec![("x-a".into(), "1".into())], body: None };
        let own = Override {
            status: Some(404),
            headers: vec![],
            body: Some(
                compile_template("{\"m\":$context.error.messageString,\"id\":\"${context.requestId}\"}").unwrap(),
            ),
        };
        let all = resolve_all(&[(Kind::MissingAuthenticationToken, own)], Some(&d4), None);
        let mat = &all[Kind::MissingAuthenticationToken as usize];
        assert_eq!(mat.status, 404);
        assert_eq!(ctx_render(mat), "{\"m\":\"Missing Authentication Token\",\"id\":\"rid\"}");
        let thr = &all[Kind::Throttled as usize];
        assert_eq!((thr.status, thr.headers.len()), (400, 1));
        assert_eq!(ctx_render(thr), "{\"message\":\"Too Many Requests\"}");
        let big = &all[Kind::RequestTooLarge as usize];
        assert_eq!((big.status, big.headers.len()), (413, 0));
        let to = &all[Kind::IntegrationTimeout as usize];
        assert_eq!(to.status, 504);
        assert_eq!(ctx_render(to), "{\"message\": \"Endpoint request timed out\"}");
    }

    #[test]
    fn template_errors() {
        assert!(compile_template("$context.nope").is_err());
        assert!(compile_template("${context.stage").is_err());
        assert_eq!(compile_template("cost $ 5").unwrap(), vec![Piece::Lit("cost $ 5".into())]);
    }
}
