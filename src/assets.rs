//! Files a browser loads from the gateway (GraphiQL and its scripts), compiled into the
//! binary so a self-hoster needs no CDN and no internet access.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset { name: $name, content_type: $type, bytes: include_bytes!(concat!("../assets/graphiql/", $name)) }
    };
}

const JS_TYPE: &str = "text/javascript; charset=utf-8";

static GRAPHIQL: &[Asset] = &[
    asset!("graphiql.min.css", "text/css; charset=utf-8"),
    asset!("graphiql.min.js", JS_TYPE),
    asset!("react.production.min.js", JS_TYPE),
    asset!("react-dom.production.min.js", JS_TYPE),
    asset!("graphql-ws.min.js", JS_TYPE),
    asset!("init.js", JS_TYPE),
];

static INDEX: &str = include_str!("../assets/graphiql/index.html");

/// Scripts and styles only from the gateway; fonts and icons are inlined as data: URLs.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn graphiql_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        INDEX,
    )
        .into_response()
}

/// `GET /assets/graphiql/{file}`.
pub async fn graphiql_asset(Path(file): Path<String>) -> Response {
    match GRAPHIQL.iter().find(|a| a.name == file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
            ],
            asset.bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_only_references_assets_the_gateway_serves() {
        for src in INDEX.split("/assets/graphiql/").skip(1) {
            let name = src.split('"').next().unwrap_or_default();
            assert!(GRAPHIQL.iter().any(|a| a.name == name), "{name} is referenced but not served");
        }
        assert!(!INDEX.contains("https://") && !INDEX.contains("http://"), "the page must not name another host");
    }
}
