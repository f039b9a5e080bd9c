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

/// Package name of the HTTP transport, as Janus names it: the session's transport in the
/// Admin API's `handle_info` (`session_transport`) and its key in `server_info`.
pub const HTTP_TRANSPORT: &str = "janus.transport.http";
/// Package name of the WebSocket transport, as Janus names it (see [`HTTP_TRANSPORT`]).
pub const WEBSOCKET_TRANSPORT: &str = "janus.transport.websockets";
