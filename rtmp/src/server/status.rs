//! `onStatus` messages the session layer cannot produce by itself.
//!
//! Refusals must reach the peer as `onStatus` with level `error` and a NetStream code (encoders
//! show that code to the user). The connection is closed right after, so a standalone serializer
//! sending a full (type 0) chunk header cannot desynchronise header compression.

use std::collections::HashMap;

use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::messages::RtmpMessage;
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;

use crate::error::RtmpError;

/// Serializes `onStatus(level, code, description)` on `stream_id`, chunked at `chunk_size`.
pub(crate) fn on_status(
    stream_id: u32,
    chunk_size: u32,
    level: &str,
    code: &str,
    description: &str,
) -> Result<Vec<u8>, RtmpError> {
    let mut info = HashMap::new();
    info.insert(
        "level".to_string(),
        Amf0Value::Utf8String(level.to_string()),
    );
    info.insert("code".to_string(), Amf0Value::Utf8String(code.to_string()));
    info.insert(
        "description".to_string(),
        Amf0Value::Utf8String(description.to_string()),
    );
    let message = RtmpMessage::Amf0Command {
        command_name: "onStatus".to_string(),
        transaction_id: 0.0,
        command_object: Amf0Value::Null,
        additional_arguments: vec![Amf0Value::Object(info)],
    };
    let protocol = |e: &dyn std::fmt::Display| RtmpError::Protocol(e.to_string());
    let payload = message
        .into_message_payload(RtmpTimestamp::new(0), stream_id)
        .map_err(|e| protocol(&e))?;
    let mut serializer = ChunkSerializer::new();
    serializer
        .set_max_chunk_size(chunk_size, RtmpTimestamp::new(0))
        .map_err(|e| protocol(&e))?;
    let packet = serializer
        .serialize(&payload, true, false)
        .map_err(|e| protocol(&e))?;
    Ok(packet.bytes)
}
