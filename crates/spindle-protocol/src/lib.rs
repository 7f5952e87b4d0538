//! The plug-in protocol (see `docs/protocol.md`): one JSON-RPC 2.0 message per line on the
//! child's stdin/stdout. This crate holds only message types and framing; both ends (the
//! manager and the plug-in SDKs, Rust and Python) follow it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spindle_api::{LogLevel, PluginException};

/// The protocol versions this build speaks.
pub const PROTOCOL_VERSIONS: &[u32] = &[1];

/// Longest line either side accepts (a list of many thousand records fits easily).
pub const MAX_LINE_BYTES: usize = 256 * 1024 * 1024;

/// Host → child: the opening handshake.
pub const HELLO: &str = "spindle.hello";
/// Host → child: one plug-in method call.
pub const CALL: &str = "plugin.call";
/// Child → host: `IPlugin.cache.get`.
pub const CACHE_GET: &str = "host.cache.get";
/// Child → host: `IPlugin.cache.set`.
pub const CACHE_SET: &str = "host.cache.set";
/// Child → host: `IPlugin.cache.extend`.
pub const CACHE_EXTEND: &str = "host.cache.extend";
/// Child → host: `IPlugin.cache.clear`.
pub const CACHE_CLEAR: &str = "host.cache.clear";
/// Child → host: `IPlugin.getNamedTemporaryFile()`.
pub const TEMP_FILE: &str = "host.tempfile";
/// Child → host notification: a log record.
pub const LOG: &str = "host.log";
/// Child → host notification: a contract warning the child detected itself (e.g. a Python
/// plug-in printed to stdout).
pub const WARNING: &str = "host.warning";

/// JSON-RPC error code for a plug-in exception.
pub const CODE_PLUGIN_EXCEPTION: i64 = -32000;
/// JSON-RPC error code for a request the receiver does not understand.
pub const CODE_METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC error code for bad parameters.
pub const CODE_INVALID_PARAMS: i64 = -32602;

/// A request id: the host uses numbers, the child strings, so the two never collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// Host-issued.
    Num(u64),
    /// Child-issued.
    Str(String),
}

/// Any message on the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Always "2.0".
    pub jsonrpc: String,
    /// Present on requests and responses, absent on notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    /// Present on requests and notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request / notification parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// A successful response's result (`null` is a result, kept apart from "no result").
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_value"
    )]
    pub result: Option<Value>,
    /// A failed response's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

fn present_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(Some(Value::deserialize(d)?))
}

/// The error object of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// A JSON-RPC code.
    pub code: i64,
    /// For a person.
    pub message: String,
    /// For a plug-in exception: `{"exception", "message", "key"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// How a message reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind<'a> {
    /// A request expecting a response.
    Request(&'a Id, &'a str, &'a Value),
    /// A notification.
    Notification(&'a str, &'a Value),
    /// A response.
    Response(&'a Id, Result<&'a Value, &'a RpcError>),
}

static NULL: Value = Value::Null;

impl Message {
    /// A request.
    pub fn request(id: Id, method: &str, params: Value) -> Self {
        Message {
            jsonrpc: "2.0".into(),
            id: Some(id),
            method: Some(method.into()),
            params: Some(params),
            result: None,
            error: None,
        }
    }

    /// A notification.
    pub fn notification(method: &str, params: Value) -> Self {
        Message {
            jsonrpc: "2.0".into(),
            id: None,
            method: Some(method.into()),
            params: Some(params),
            result: None,
            error: None,
        }
    }

    /// A successful response.
    pub fn response(id: Id, result: Value) -> Self {
        Message {
            jsonrpc: "2.0".into(),
            id: Some(id),
            method: None,
            params: None,
            result: Some(result),
            error: None,
        }
    }

    /// A failed response.
    pub fn error(id: Id, error: RpcError) -> Self {
        Message {
            jsonrpc: "2.0".into(),
            id: Some(id),
            method: None,
            params: None,
            result: None,
            error: Some(error),
        }
    }

    /// Classifies the message; `None` if it is none of the three forms.
    pub fn kind(&self) -> Option<Kind<'_>> {
        if self.jsonrpc != "2.0" {
            return None;
        }
        let params = self.params.as_ref().unwrap_or(&NULL);
        match (&self.id, &self.method, &self.result, &self.error) {
            (Some(id), Some(m), None, None) => Some(Kind::Request(id, m, params)),
            (None, Some(m), None, None) => Some(Kind::Notification(m, params)),
            (Some(id), None, Some(r), None) => Some(Kind::Response(id, Ok(r))),
            (Some(id), None, None, Some(e)) => Some(Kind::Response(id, Err(e))),
            _ => None,
        }
    }

    /// One line, newline included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses one line.
    pub fn from_line(line: &str) -> Result<Self, FrameError> {
        let line = line.trim_end_matches(['\n', '\r']);
        let msg: Message = serde_json::from_str(line).map_err(|e| FrameError::NotJson {
            line: excerpt(line),
            reason: e.to_string(),
        })?;
        if msg.kind().is_none() {
            return Err(FrameError::NotJsonRpc(excerpt(line)));
        }
        Ok(msg)
    }
}

/// Why a line is not a protocol message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON at all (typically a plug-in printing to stdout).
    #[error("not a protocol message (not JSON: {reason}): {line:?}")]
    NotJson {
        /// The start of the line.
        line: String,
        /// The parser's complaint.
        reason: String,
    },
    /// JSON, but not a JSON-RPC 2.0 request, notification or response.
    #[error("not a JSON-RPC 2.0 message: {0:?}")]
    NotJsonRpc(String),
}

/// The first 200 characters of `s`, for messages.
pub fn excerpt(s: &str) -> String {
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

/// `spindle.hello` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelloParams {
    /// Versions the host speaks.
    pub protocol_versions: Vec<u32>,
    /// The host's name and version.
    pub host: String,
}

/// One plug-in class a child offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassDescriptor {
    /// Fully qualified class name.
    pub class: String,
    /// `storage_array` or `file_system`.
    pub kind: spindle_api::PluginKind,
    /// The class variables as a dictionary (validated by the host).
    pub metadata: Value,
    /// Names of the optional methods (and `getAsyncProgress`) the class implements.
    #[serde(default)]
    pub implemented: Vec<String>,
    /// Where the class is defined (file path), for messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A class the child could not load, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassError {
    /// The class path as declared (or the module, if the module itself failed).
    pub class: String,
    /// The file at fault, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// What is wrong, for the vendor (a traceback when an import failed).
    pub message: String,
}

/// `spindle.hello` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelloResult {
    /// The version chosen from the host's list.
    pub protocol: u32,
    /// The child's runtime, e.g. "rust" or "python 3.11.7".
    pub runtime: String,
    /// The classes offered.
    pub classes: Vec<ClassDescriptor>,
    /// Classes (or the whole module) that could not be loaded.
    #[serde(default)]
    pub errors: Vec<ClassError>,
    /// Problems the child worked around while loading the module (e.g. a vendor package's
    /// `__init__.py` that is not Python 3, ignored); the classes are usable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `plugin.call` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallParams {
    /// Fully qualified class name.
    pub class: String,
    /// The method's wire name.
    pub method: String,
    /// Keyword arguments.
    pub args: Map<String, Value>,
    /// Correlates the child's log records with the host's.
    pub call_id: String,
    /// `IPlugin.dev_path_prefix`.
    pub dev_path_prefix: String,
}

/// `plugin.call` result on success: `{"value": ...}` (a wrapper so that `None` is explicit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallResult {
    /// What the method returned.
    pub value: Value,
}

/// `host.cache.get` / `host.cache.clear` / ... parameters share these names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheParams {
    /// The storage server's uuid.
    pub ss_uuid: String,
    /// The key (absent for clear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// The value for set; `null` clears the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_value: Option<String>,
    /// Expiry for set, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<u64>,
    /// Seconds to add, for extend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_time: Option<u64>,
}

/// `host.tempfile` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TempFileResult {
    /// Absolute path of a new, empty file only this call may use.
    pub path: String,
}

/// `host.log` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogParams {
    /// The level.
    pub level: LogLevel,
    /// The text.
    pub message: String,
}

/// `host.warning` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningParams {
    /// What the child noticed.
    pub message: String,
    /// What kind of breach it is, when the child knows: [`WARNING_STDOUT`] for output the
    /// plug-in wrote to its standard output (kept off the channel by the child).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `host.warning` kind: the plug-in wrote to standard output.
pub const WARNING_STDOUT: &str = "stdout";

/// The error object for a plug-in exception.
pub fn exception_error(e: &PluginException) -> RpcError {
    RpcError {
        code: CODE_PLUGIN_EXCEPTION,
        message: e.to_string(),
        data: serde_json::to_value(e).ok(),
    }
}

/// Reads a plug-in exception back out of an error object.
pub fn error_exception(e: &RpcError) -> Option<PluginException> {
    e.data
        .as_ref()
        .and_then(|d| serde_json::from_value::<PluginException>(d.clone()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_round_trip_and_classify() {
        let req = Message::request(Id::Num(1), CALL, json!({"a": 1}));
        let back = Message::from_line(&req.to_line()).expect("parses");
        assert!(matches!(back.kind(), Some(Kind::Request(Id::Num(1), CALL, _))));
        let resp = Message::response(Id::Str("c1".into()), json!(null));
        assert!(matches!(
            Message::from_line(&resp.to_line()).expect("parses").kind(),
            Some(Kind::Response(_, Ok(_)))
        ));
        assert!(Message::from_line("hello world").is_err());
        assert!(Message::from_line("{\"jsonrpc\":\"2.0\"}").is_err());
    }

    #[test]
    fn exceptions_travel_with_their_key() {
        let e = PluginException::missing_key("size", "size is required");
        let back = error_exception(&exception_error(&e)).expect("decodes");
        assert_eq!(back, e);
    }
}
