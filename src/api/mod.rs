//! The Janus API and Admin API, and the transports that carry them (HTTP, WebSocket).
//! Transports only frame and deliver: every request goes through [`router::handle_request`]
//! or [`admin::handle_admin`].

pub mod admin;
mod cors;
pub mod error;
pub mod http;
pub mod janus_json;
pub mod request;
pub mod router;
pub mod server_info;
pub mod websocket;

/// Transport names shown in the Admin API, as Janus names them.
pub const HTTP_TRANSPORT: &str = "janus.transport.http";
pub const WEBSOCKET_TRANSPORT: &str = "janus.transport.websockets";
