//! The plug-in side of the spindle protocol for Rust plug-ins.
//!
//! ```no_run
//! # use spindle_api::StorageArrayPlugin;
//! # fn my_plugin() -> Box<dyn StorageArrayPlugin> { unimplemented!() }
//! fn main() -> std::process::ExitCode {
//!     spindle_sdk::serve(vec![my_plugin()])
//! }
//! ```
//!
//! `serve` answers the handshake, runs the one call it is sent, and returns when spindle closes
//! stdin. Cache, logger and temporary files reach the host through [`spindle_api::Host`]; a
//! plug-in must never write to stdout itself (that is the protocol channel).

use serde_json::{json, Value};
use spindle_api::{
    dispatch, ExceptionKind, Host, LogLevel, Method, PluginException, PluginKind, PluginResult, Requirement,
    StorageArrayPlugin, METHODS,
};
use spindle_protocol::{
    exception_error, CacheParams, CallParams, ClassDescriptor, HelloParams, HelloResult, Id, Kind, LogParams,
    Message, RpcError, TempFileResult, CACHE_CLEAR, CACHE_EXTEND, CACHE_GET, CACHE_SET, CALL,
    CODE_INVALID_PARAMS, CODE_METHOD_NOT_FOUND, HELLO, LOG, PROTOCOL_VERSIONS, TEMP_FILE,
};
use std::io::{BufRead, BufReader, Stdin, Stdout, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A plug-in class that works on JSON values directly. Most plug-ins implement the typed
/// [`StorageArrayPlugin`] instead (every typed plug-in is a `RawPlugin`); the raw form exists
/// for plug-ins that forward records untouched, and for test plug-ins that must be able to
/// return what the typed API would refuse to express.
pub trait RawPlugin: Send + Sync {
    /// The hello descriptor (class name, class variables as a dict, implemented methods).
    fn descriptor(&self) -> ClassDescriptor;
    /// One call with keyword arguments.
    fn call(
        &self,
        host: &dyn Host,
        method: &str,
        args: &serde_json::Map<String, Value>,
    ) -> PluginResult<Value>;
    /// A raised exception's class name, when it is not one of the guides' (tests only).
    fn raw_exception_name(&self, _e: &PluginException) -> Option<String> {
        None
    }
}

/// Adapts a typed plug-in.
struct Typed(Box<dyn StorageArrayPlugin>);

impl RawPlugin for Typed {
    fn descriptor(&self) -> ClassDescriptor {
        describe(self.0.as_ref())
    }

    fn call(
        &self,
        host: &dyn Host,
        method: &str,
        args: &serde_json::Map<String, Value>,
    ) -> PluginResult<Value> {
        let m = Method::parse(method).ok_or_else(|| {
            PluginException::new(ExceptionKind::NoSuchOperationEx, format!("no method {method}"))
        })?;
        dispatch(self.0.as_ref(), host, m, args)
    }
}

/// The methods a class implements: every required one plus the optional ones it declares.
pub fn implemented_methods(plugin: &dyn StorageArrayPlugin) -> Vec<String> {
    METHODS
        .iter()
        .filter(|m| {
            m.requirement == Requirement::Required || plugin.implemented_optional().contains(&m.method)
        })
        .map(|m| m.name.to_string())
        .collect()
}

/// The hello descriptor of a class.
pub fn describe(plugin: &dyn StorageArrayPlugin) -> ClassDescriptor {
    ClassDescriptor {
        class: plugin.class_name().to_string(),
        kind: PluginKind::StorageArray,
        metadata: plugin.metadata().to_value(),
        implemented: implemented_methods(plugin),
        source: std::env::current_exe().ok().map(|p| p.display().to_string()),
    }
}

struct Channel {
    input: BufReader<Stdin>,
    output: Stdout,
}

impl Channel {
    fn send(&mut self, msg: &Message) -> std::io::Result<()> {
        let mut out = self.output.lock();
        out.write_all(msg.to_line().as_bytes())?;
        out.flush()
    }

    fn recv(&mut self) -> std::io::Result<Option<Message>> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.input.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            if line.trim().is_empty() {
                continue;
            }
            return Message::from_line(&line)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()));
        }
    }
}

/// The host facilities, reached over the channel during one call.
struct ChannelHost<'a> {
    channel: &'a Mutex<Channel>,
    next_id: AtomicU64,
    dev_path_prefix: String,
}

impl ChannelHost<'_> {
    fn request(&self, method: &str, params: Value) -> PluginResult<Value> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let id = Id::Str(format!("c{n}"));
        let lost = |e: std::io::Error| {
            PluginException::operation_failed(format!("the channel to spindle broke during {method}: {e}"))
        };
        let mut ch = self
            .channel
            .lock()
            .map_err(|_| PluginException::operation_failed("the channel to spindle is poisoned"))?;
        ch.send(&Message::request(id.clone(), method, params))
            .map_err(lost)?;
        loop {
            let msg = ch.recv().map_err(lost)?.ok_or_else(|| {
                PluginException::operation_failed(format!("spindle closed the channel during {method}"))
            })?;
            if let Some(Kind::Response(rid, outcome)) = msg.kind() {
                if *rid == id {
                    return match outcome {
                        Ok(v) => Ok(v.clone()),
                        Err(e) => Err(PluginException::operation_failed(format!(
                            "spindle refused {method}: {}",
                            e.message
                        ))),
                    };
                }
            }
        }
    }
}

fn cache_params(ss_uuid: &str) -> CacheParams {
    CacheParams {
        ss_uuid: ss_uuid.to_string(),
        cache_key: None,
        cache_value: None,
        expire_time: None,
        extend_time: None,
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl Host for ChannelHost<'_> {
    fn cache_get(&self, ss_uuid: &str, key: &str) -> PluginResult<Option<String>> {
        let p = CacheParams {
            cache_key: Some(key.into()),
            ..cache_params(ss_uuid)
        };
        Ok(self.request(CACHE_GET, to_value(p))?.as_str().map(String::from))
    }

    fn cache_set(
        &self,
        ss_uuid: &str,
        key: &str,
        value: Option<&str>,
        expire_secs: Option<u64>,
    ) -> PluginResult<()> {
        let p = CacheParams {
            cache_key: Some(key.into()),
            cache_value: value.map(String::from),
            expire_time: expire_secs,
            ..cache_params(ss_uuid)
        };
        self.request(CACHE_SET, to_value(p)).map(drop)
    }

    fn cache_extend(&self, ss_uuid: &str, key: &str, extend_secs: u64) -> PluginResult<()> {
        let p = CacheParams {
            cache_key: Some(key.into()),
            extend_time: Some(extend_secs),
            ..cache_params(ss_uuid)
        };
        self.request(CACHE_EXTEND, to_value(p)).map(drop)
    }

    fn cache_clear(&self, ss_uuid: &str) -> PluginResult<()> {
        self.request(CACHE_CLEAR, to_value(cache_params(ss_uuid)))
            .map(drop)
    }

    fn log(&self, level: LogLevel, message: &str) {
        let p = LogParams {
            level,
            message: message.to_string(),
        };
        if let Ok(mut ch) = self.channel.lock() {
            // A log record that cannot be delivered is not worth failing the call for.
            let _ = ch.send(&Message::notification(LOG, to_value(p)));
        }
    }

    fn temp_file(&self) -> PluginResult<PathBuf> {
        let v = self.request(TEMP_FILE, json!({}))?;
        let r: TempFileResult = serde_json::from_value(v)
            .map_err(|e| PluginException::operation_failed(format!("bad host.tempfile answer: {e}")))?;
        Ok(PathBuf::from(r.path))
    }

    fn dev_path_prefix(&self) -> String {
        self.dev_path_prefix.clone()
    }
}

fn invalid(id: Id, code: i64, message: String) -> Message {
    Message::error(
        id,
        RpcError {
            code,
            message,
            data: None,
        },
    )
}

fn handle_call(plugins: &[Box<dyn RawPlugin>], channel: &Mutex<Channel>, id: Id, params: &Value) -> Message {
    let call: CallParams = match serde_json::from_value(params.clone()) {
        Ok(c) => c,
        Err(e) => {
            return invalid(
                id,
                CODE_INVALID_PARAMS,
                format!("bad plugin.call parameters: {e}"),
            )
        }
    };
    let Some(plugin) = plugins.iter().find(|p| p.descriptor().class == call.class) else {
        let e = PluginException::operation_failed(format!("this program offers no class {}", call.class));
        return Message::error(id, exception_error(&e));
    };
    let host = ChannelHost {
        channel,
        next_id: AtomicU64::new(0),
        dev_path_prefix: call.dev_path_prefix.clone(),
    };
    match plugin.call(&host, &call.method, &call.args) {
        Ok(value) => {
            // Moved in: `json!` would serialize the value anew (a deep copy of, say, a list
            // of thousands of records).
            let mut result = serde_json::Map::with_capacity(1);
            result.insert("value".into(), value);
            Message::response(id, Value::Object(result))
        }
        Err(e) => {
            let mut err = exception_error(&e);
            if let (Some(name), Some(Value::Object(data))) =
                (plugin.raw_exception_name(&e), err.data.as_mut())
            {
                data.insert("exception".into(), Value::String(name));
            }
            Message::error(id, err)
        }
    }
}

/// Serves typed plug-ins on stdin/stdout until stdin closes. Returns the process exit code.
pub fn serve(plugins: Vec<Box<dyn StorageArrayPlugin>>) -> ExitCode {
    serve_raw(
        plugins
            .into_iter()
            .map(|p| Box::new(Typed(p)) as Box<dyn RawPlugin>)
            .collect(),
    )
}

/// Serves raw plug-ins on stdin/stdout until stdin closes. Returns the process exit code.
pub fn serve_raw(plugins: Vec<Box<dyn RawPlugin>>) -> ExitCode {
    let channel = Mutex::new(Channel {
        input: BufReader::new(std::io::stdin()),
        output: std::io::stdout(),
    });
    loop {
        let msg = match channel.lock().map(|mut c| c.recv()) {
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) => return ExitCode::SUCCESS,
            Ok(Err(e)) => {
                eprintln!("spindle-sdk: unreadable message from spindle: {e}");
                return ExitCode::from(2);
            }
            Err(_) => return ExitCode::from(2),
        };
        let reply = match msg.kind() {
            Some(Kind::Request(id, HELLO, params)) => {
                let hello: Option<HelloParams> = serde_json::from_value(params.clone()).ok();
                let shared = hello.as_ref().and_then(|h| {
                    h.protocol_versions
                        .iter()
                        .copied()
                        .filter(|v| PROTOCOL_VERSIONS.contains(v))
                        .max()
                });
                match shared {
                    Some(protocol) => Message::response(
                        id.clone(),
                        to_value(HelloResult {
                            protocol,
                            runtime: "rust".into(),
                            classes: plugins.iter().map(|p| p.descriptor()).collect(),
                            errors: Vec::new(),
                            warnings: Vec::new(),
                        }),
                    ),
                    None => invalid(
                        id.clone(),
                        CODE_INVALID_PARAMS,
                        format!("no shared protocol version; this plug-in speaks {PROTOCOL_VERSIONS:?}"),
                    ),
                }
            }
            Some(Kind::Request(id, CALL, params)) => handle_call(&plugins, &channel, id.clone(), params),
            Some(Kind::Request(id, other, _)) => invalid(
                id.clone(),
                CODE_METHOD_NOT_FOUND,
                format!("unknown request {other}"),
            ),
            _ => continue,
        };
        let sent = channel.lock().map(|mut c| c.send(&reply));
        if !matches!(sent, Ok(Ok(()))) {
            return ExitCode::from(2);
        }
    }
}

pub use spindle_api;
pub use spindle_protocol::ClassDescriptor as Descriptor;
