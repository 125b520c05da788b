//! The dashboard: one page (`/` for the pool, `/address/{address}` for a
//! payout address) and its script, style and chart code, compiled into the
//! binary from `pool/assets/` so that it works offline and needs nothing at
//! build or run time beyond this crate.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

/// The page; its script reads the path to know which view to draw.
pub const INDEX_HTML: &str = include_str!("../../assets/index.html");
/// The style sheet.
pub const APP_CSS: &str = include_str!("../../assets/app.css");
/// The page's script: polls the API and fills the views.
pub const APP_JS: &str = include_str!("../../assets/app.js");
/// The SVG line chart the page draws its hashrates with.
pub const CHART_JS: &str = include_str!("../../assets/chart.js");

/// `GET /` and `GET /address/{address}`.
pub async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `GET /assets/app.css`.
pub async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// `GET /assets/app.js`.
pub async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /assets/chart.js`.
pub async fn chart_js() -> Response {
    asset("text/javascript; charset=utf-8", CHART_JS)
}
