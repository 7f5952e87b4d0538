//! The route table: the one statement of which routes exist. The router
//! ([`crate::router`]) and the OpenAPI document ([`crate::openapi`]) are both built from
//! [`ROUTES`], so neither can miss a route.
//!
//! Each route names what it accepts (path parameters from its template, query parameters,
//! the fields of its JSON body) and how it becomes one [`Action`]. Input is checked against
//! that declaration before the action is built: malformed JSON, an ill-typed or unknown field
//! and an unknown query parameter are `ValueFormatEx`, a missing required field `MissingKeyEx`,
//! each naming the field in `key`.

use crate::ApiError;
use serde_json::{Map, Value};
use spindle_service::{Action, AddServer, CreateLun, ServerSettings, UpdateServer};

/// An HTTP method a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    /// `GET`, `POST`, `DELETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }

    /// The OpenAPI path-item key (`get`, `post`, `delete`).
    pub fn openapi_key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Delete => "delete",
        }
    }
}

/// The JSON type of a body field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    /// An integer (sizes are bytes), within i64.
    Integer,
    Boolean,
    /// An array of strings.
    StringList,
    /// Any JSON value (a QoS value is the array's own).
    Any,
}

impl FieldType {
    fn describe(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::Integer => "an integer",
            FieldType::Boolean => "true or false",
            FieldType::StringList => "an array of strings",
            FieldType::Any => "a JSON value",
        }
    }
}

/// One field of a JSON request body.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    /// Required fields must be present; optional ones may be absent or `null`.
    pub required: bool,
    pub description: &'static str,
}

const fn req(name: &'static str, ty: FieldType, description: &'static str) -> Field {
    Field {
        name,
        ty,
        required: true,
        description,
    }
}

const fn opt(name: &'static str, ty: FieldType, description: &'static str) -> Field {
    Field {
        name,
        ty,
        required: false,
        description,
    }
}

/// A JSON request body: a closed object (unknown fields are refused).
#[derive(Debug)]
pub struct BodySpec {
    /// Its name among the OpenAPI component schemas.
    pub schema: &'static str,
    pub description: &'static str,
    pub fields: &'static [Field],
}

/// The type of a query parameter.
#[derive(Debug, Clone, Copy)]
pub enum QueryType {
    /// `true` / `false` (empty: true).
    Boolean,
    String,
    /// A non-negative integer that fits in 32 bits.
    UnsignedInt,
    /// One of these words.
    OneOf(&'static [&'static str]),
}

/// One query parameter.
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    pub name: &'static str,
    pub ty: QueryType,
    pub description: &'static str,
}

/// What a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// A component schema.
    Ref(&'static str),
    /// An array of a component schema.
    ArrayOf(&'static str),
    /// `{"job": JobView}`.
    Job,
    /// No body (204).
    NoContent,
    /// Prometheus text.
    Text,
    /// The OpenAPI document itself.
    OpenApi,
}

/// Builds the action of a route from its checked input.
pub type ActionBuilder = fn(&mut Input) -> Result<Action, ApiError>;

/// What a route does.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// `{"status":"ok","version"}`.
    Health,
    /// The OpenAPI document.
    OpenApi,
    /// Prometheus text.
    Metrics,
    /// One [`Action`] handed to the service.
    Action(ActionBuilder),
}

/// One route.
#[derive(Debug)]
pub struct RouteSpec {
    pub method: Verb,
    /// The template (`/v1/servers/{server}`), as axum and OpenAPI both spell it.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// Whether `Authorization: Bearer <token>` is required.
    pub auth: bool,
    pub query: &'static [QueryParam],
    pub body: Option<&'static BodySpec>,
    /// The success answers: status and what it carries.
    pub responses: &'static [(u16, Schema)],
    pub target: Target,
}

impl RouteSpec {
    /// The names of the template's path parameters, in order.
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }
}

// ---------------------------------------------------------------------------------------------
// Input

/// The checked input of one request: path parameters, query parameters, body fields.
#[derive(Debug, Default)]
pub struct Input {
    params: Vec<(String, String)>,
    query: Vec<(&'static str, String)>,
    body: Map<String, Value>,
}

impl Input {
    /// The storage-server settings of a body (`AddServerRequest`, `UpdateServerRequest`).
    fn server_settings(&mut self) -> ServerSettings {
        ServerSettings {
            admin_host: self.string("admin_host"),
            admin_user: self.string("admin_user"),
            admin_passwd: self.string("admin_passwd"),
            access_host: self.string("access_host"),
            access_port: self.int("access_port"),
            username: self.string("username"),
            passwd: self.string("passwd"),
            chap: self.bool("chap"),
            extra_info: self.string("extra_info"),
        }
    }

    /// Input from already checked parts (see [`parse_query`] and [`parse_body`]).
    pub fn new(
        params: Vec<(String, String)>,
        query: Vec<(&'static str, String)>,
        body: Map<String, Value>,
    ) -> Input {
        Input { params, query, body }
    }

    fn path(&mut self, name: &str) -> Result<String, ApiError> {
        match self.params.iter().position(|(n, _)| n == name) {
            Some(i) => Ok(self.params.swap_remove(i).1),
            None => Err(ApiError::internal(format!("route has no path parameter {name}"))),
        }
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn q_bool(&self, name: &str) -> bool {
        matches!(self.query(name), Some("true" | ""))
    }

    fn q_string(&self, name: &str) -> Option<String> {
        self.query(name).map(str::to_owned)
    }

    fn q_u32(&self, name: &str) -> Option<u32> {
        self.query(name).and_then(|v| v.parse().ok())
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.body.shift_remove(key)
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.take(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    fn req_string(&mut self, key: &str) -> Result<String, ApiError> {
        self.string(key)
            .ok_or_else(|| ApiError::missing_key(key, format!("missing body field '{key}'")))
    }

    fn int(&mut self, key: &str) -> Option<i64> {
        self.take(key).and_then(|v| v.as_i64())
    }

    fn req_int(&mut self, key: &str) -> Result<i64, ApiError> {
        self.int(key)
            .ok_or_else(|| ApiError::missing_key(key, format!("missing body field '{key}'")))
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        self.take(key).and_then(|v| v.as_bool())
    }

    fn req_list(&mut self, key: &str) -> Result<Vec<String>, ApiError> {
        match self.take(key) {
            Some(Value::Array(items)) => Ok(items
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect()),
            _ => Err(ApiError::missing_key(key, format!("missing body field '{key}'"))),
        }
    }

    fn value(&mut self, key: &str) -> Option<Value> {
        self.take(key)
    }

    fn req_value(&mut self, key: &str) -> Result<Value, ApiError> {
        self.take(key)
            .ok_or_else(|| ApiError::missing_key(key, format!("missing body field '{key}'")))
    }
}

fn shorten(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Checks a query string against a route's parameters: each known at most once, well typed.
pub fn parse_query(
    params: &'static [QueryParam],
    raw: Option<&str>,
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let mut out = Vec::new();
    let Some(raw) = raw else {
        return Ok(out);
    };
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let Some(p) = params.iter().find(|p| p.name == k) else {
            if k.is_empty() && v.is_empty() {
                continue;
            }
            let k = shorten(&k);
            return Err(ApiError::value_format(
                Some(k),
                format!("unknown query parameter '{k}'"),
            ));
        };
        if out.iter().any(|(n, _)| *n == p.name) {
            return Err(ApiError::value_format(
                Some(p.name),
                format!("query parameter '{}' given more than once", p.name),
            ));
        }
        let ok = match p.ty {
            QueryType::Boolean => matches!(&*v, "true" | "false" | ""),
            QueryType::String => !v.is_empty(),
            QueryType::UnsignedInt => v.parse::<u32>().is_ok(),
            QueryType::OneOf(words) => words.contains(&&*v),
        };
        if !ok {
            let expected = match p.ty {
                QueryType::Boolean => "true or false".to_owned(),
                QueryType::String => "a non-empty string".to_owned(),
                QueryType::UnsignedInt => "a non-negative integer".to_owned(),
                QueryType::OneOf(words) => format!("one of {}", words.join(", ")),
            };
            return Err(ApiError::value_format(
                Some(p.name),
                format!(
                    "query parameter '{}' must be {expected}, not '{}'",
                    p.name,
                    shorten(&v)
                ),
            ));
        }
        out.push((p.name, v.into_owned()));
    }
    Ok(out)
}

/// Checks a request body against a route's declaration. An empty body is `{}`; a route with
/// no declared body accepts only that. Optional fields given as `null` count as absent.
pub fn parse_body(spec: Option<&BodySpec>, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let fields: &[Field] = spec.map_or(&[], |b| b.fields);
    let obj = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(ApiError::value_format(
                    None,
                    "the request body must be a JSON object",
                ))
            }
            Err(e) => return Err(ApiError::value_format(None, format!("malformed JSON body: {e}"))),
        }
    };
    if let Ok(TopLevelKeys(Some(twice))) = serde_json::from_slice::<TopLevelKeys>(bytes) {
        let k = shorten(&twice);
        return Err(ApiError::value_format(
            Some(k),
            format!("body field '{k}' is given twice: which one is meant cannot be told"),
        ));
    }
    let mut out = Map::with_capacity(obj.len());
    for (k, v) in obj {
        let Some(f) = fields.iter().find(|f| f.name == k) else {
            let k = shorten(&k);
            let message = if fields.is_empty() {
                format!("unknown body field '{k}': this route takes no body")
            } else {
                let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
                format!("unknown body field '{k}' (known: {})", known.join(", "))
            };
            return Err(ApiError::value_format(Some(k), message));
        };
        if v.is_null() && !f.required {
            continue;
        }
        let ok = match f.ty {
            FieldType::String => v.is_string(),
            FieldType::Integer => v.as_i64().is_some(),
            FieldType::Boolean => v.is_boolean(),
            FieldType::StringList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            FieldType::Any => true,
        };
        if !ok {
            let extra = if f.ty == FieldType::Integer && v.is_number() {
                " (a whole number of bytes within 64 bits)"
            } else {
                ""
            };
            return Err(ApiError::value_format(
                Some(f.name),
                format!("body field '{}' must be {}{extra}", f.name, f.ty.describe()),
            ));
        }
        out.insert(k, v);
    }
    if let Some(f) = fields.iter().find(|f| f.required && !out.contains_key(f.name)) {
        return Err(ApiError::missing_key(
            f.name,
            format!("missing body field '{}'", f.name),
        ));
    }
    Ok(out)
}

/// The first key a JSON object gives twice, if any (its values are skipped). A parsed `Value`
/// keeps only the last of two equal keys, so `{"size": 1, "size": 1099511627776}` would be
/// served as whichever came last without a word.
struct TopLevelKeys(Option<String>);

impl<'de> serde::Deserialize<'de> for TopLevelKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = TopLevelKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<TopLevelKeys, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut twice = None;
                while let Some(k) = m.next_key::<String>()? {
                    m.next_value::<serde::de::IgnoredAny>()?;
                    if twice.is_none() && !seen.insert(k.clone()) {
                        twice = Some(k);
                    }
                }
                Ok(TopLevelKeys(twice))
            }
        }
        d.deserialize_map(Keys)
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

use FieldType as T;

/// The fields of `AddServerRequest`; the first [`SETTINGS`] are the settings that
/// `UpdateServerRequest` changes.
static SERVER_FIELDS: [Field; 13] = [
    opt("admin_host", T::String, "Management host of the array."),
    opt("admin_user", T::String, "Management user."),
    opt(
        "admin_passwd",
        T::String,
        "Management password (stored, never returned).",
    ),
    opt("access_host", T::String, "Data-path host (iSCSI portal)."),
    opt("access_port", T::Integer, "Data-path port."),
    opt("username", T::String, "CHAP user."),
    opt("passwd", T::String, "CHAP secret (stored, never returned)."),
    opt("chap", T::Boolean, "Whether the data path uses CHAP."),
    opt(
        "extra_info",
        T::String,
        "Plug-in specific `key=value;...` settings (see the plug-in's ss_extra_info_help).",
    ),
    req("name", T::String, "The storage server's name in spindle."),
    opt(
        "plugin",
        T::String,
        "Plug-in class (e.g. `spindle.sim.SimArray`), optionally `@version`.",
    ),
    opt("storage_type", T::String, "`SANStorage` or `iSCSIStorage`."),
    opt(
        "embedded",
        T::Boolean,
        "Register the embedded local array under `name`.",
    ),
];
const SETTINGS: usize = 9;

static ADD_SERVER: BodySpec = BodySpec {
    schema: "AddServerRequest",
    description: "A storage server to register. With `embedded`, every field but `name` and the data path's CHAP (`chap`, `username`, `passwd`) comes from the server's embedded local array.",
    fields: &SERVER_FIELDS,
};

static UPDATE_SERVER: BodySpec = BodySpec {
    schema: "UpdateServerRequest",
    description: "Settings to change; each field given replaces the stored one, the others are kept. The plug-in validates the new record before it is kept.",
    fields: SERVER_FIELDS.split_at(SETTINGS).0,
};

static CREATE_LUN: BodySpec = BodySpec {
    schema: "CreateLunRequest",
    description: "A LUN to create.",
    fields: &[
        req("name", T::String, "The LUN's name."),
        req("size", T::Integer, "Size in bytes."),
        opt("vol_group", T::String, "Pool; defaults to the only pool."),
        opt("thin", T::Boolean, "Thin provisioning (default true)."),
        opt("qos", T::Any, "A QoS value of getQoSList."),
    ],
};

static RESIZE: BodySpec = BodySpec {
    schema: "ResizeRequest",
    description: "The new size. A smaller size drops the data past it: refused (400, key allow_shrink) unless allow_shrink is true.",
    fields: &[
        req("size", T::Integer, "New size in bytes."),
        opt(
            "allow_shrink",
            T::Boolean,
            "Allow a size below the current one (default false): the data past the new end is lost. A size that rounds up to the current one in whole MiB is not a shrink.",
        ),
    ],
};

static PRESENT: BodySpec = BodySpec {
    schema: "PresentRequest",
    description: "Access groups to present to, or to stop presenting to.",
    fields: &[req("groups", T::StringList, "Access group names.")],
};

static SET_QOS: BodySpec = BodySpec {
    schema: "SetQosRequest",
    description: "The QoS to set.",
    fields: &[req("qos", T::Any, "A QoS value of getQoSList.")],
};

static CLONE: BodySpec = BodySpec {
    schema: "CloneRequest",
    description: "The clone to make.",
    fields: &[
        req("name", T::String, "The clone's name."),
        opt("qos", T::Any, "A QoS value of getQoSList."),
    ],
};

static CLONE_FROM_SNAPSHOT: BodySpec = BodySpec {
    schema: "CloneFromSnapshotRequest",
    description: "The clone of a snapshot to make.",
    fields: &[
        req("name", T::String, "The clone's name."),
        opt("qos", T::Any, "A QoS value of getQoSList."),
        opt(
            "lun",
            T::String,
            "Which of the snapshot's LUNs to clone (required when it covers several).",
        ),
    ],
};

static CREATE_SNAPSHOT: BodySpec = BodySpec {
    schema: "CreateSnapshotRequest",
    description: "A snapshot of one LUN.",
    fields: &[
        req("lun", T::String, "The LUN (name or uuid)."),
        req("name", T::String, "The snapshot's name."),
    ],
};

static MULTI_SNAPSHOT: BodySpec = BodySpec {
    schema: "MultiSnapshotRequest",
    description: "One snapshot of several LUNs at once.",
    fields: &[
        req("luns", T::StringList, "The LUNs (names or uuids)."),
        req("name", T::String, "The snapshots' name."),
    ],
};

static RESTORE: BodySpec = BodySpec {
    schema: "RestoreRequest",
    description: "Where to restore the snapshot.",
    fields: &[opt(
        "lun",
        T::String,
        "Restore into this element (default: the snapshot's own LUN).",
    )],
};

static CREATE_GROUP: BodySpec = BodySpec {
    schema: "CreateGroupRequest",
    description: "An access group to create.",
    fields: &[
        req("name", T::String, "The group's name."),
        req("entries", T::StringList, "Initiator names (iSCSI) or WWNs (SAN)."),
    ],
};

static RENAME_GROUP: BodySpec = BodySpec {
    schema: "RenameGroupRequest",
    description: "The group's new name.",
    fields: &[req("new_name", T::String, "The new name.")],
};

static GROUP_ENTRIES: BodySpec = BodySpec {
    schema: "GroupEntriesRequest",
    description: "Entries to add to or remove from an access group.",
    fields: &[req(
        "entries",
        T::StringList,
        "Initiator names (iSCSI) or WWNs (SAN).",
    )],
};

/// Every request body, for the OpenAPI components.
pub static BODIES: &[&BodySpec] = &[
    &ADD_SERVER,
    &UPDATE_SERVER,
    &CREATE_LUN,
    &RESIZE,
    &PRESENT,
    &SET_QOS,
    &CLONE,
    &CLONE_FROM_SNAPSHOT,
    &CREATE_SNAPSHOT,
    &MULTI_SNAPSHOT,
    &RESTORE,
    &CREATE_GROUP,
    &RENAME_GROUP,
    &GROUP_ENTRIES,
];

// ---------------------------------------------------------------------------------------------
// Query parameters

static Q_REFRESH: &[QueryParam] = &[QueryParam {
    name: "refresh",
    ty: QueryType::Boolean,
    description: "Re-read from the plug-in first.",
}];

static Q_LUN: &[QueryParam] = &[QueryParam {
    name: "lun",
    ty: QueryType::String,
    description: "Only this LUN's snapshots (name or uuid).",
}];

static Q_STATE: &[QueryParam] = &[QueryParam {
    name: "state",
    ty: QueryType::OneOf(&["running"]),
    description: "Only jobs in this state.",
}];

static Q_LIMIT: &[QueryParam] = &[QueryParam {
    name: "limit",
    ty: QueryType::UnsignedInt,
    description: "At most this many entries (default 100).",
}];

// ---------------------------------------------------------------------------------------------
// Answers

use Schema as S;

const ELEMENT: &[(u16, Schema)] = &[(200, S::Ref("ElementView")), (202, S::Job)];
const ELEMENT_CREATED: &[(u16, Schema)] = &[(201, S::Ref("ElementView")), (202, S::Job)];
const GONE: &[(u16, Schema)] = &[(204, S::NoContent), (202, S::Job)];
const GROUP: &[(u16, Schema)] = &[(200, S::Ref("access_grp")), (202, S::Job)];
const SERVER: &[(u16, Schema)] = &[(200, S::Ref("ServerView"))];

/// The server's own default `?limit` of the audit log.
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;

// ---------------------------------------------------------------------------------------------
// The table

const NO_QUERY: &[QueryParam] = &[];

/// Every route spindle answers, in the order of `docs/http-api.md`.
pub static ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Verb::Get,
        path: "/healthz",
        operation_id: "health",
        summary: "Liveness: status and version (no token).",
        tag: "system",
        auth: false,
        query: NO_QUERY,
        body: None,
        responses: &[(200, S::Ref("Health"))],
        target: Target::Health,
    },
    RouteSpec {
        method: Verb::Get,
        path: "/openapi.json",
        operation_id: "openapi",
        summary: "This OpenAPI 3.1 document (no token).",
        tag: "system",
        auth: false,
        query: NO_QUERY,
        body: None,
        responses: &[(200, S::OpenApi)],
        target: Target::OpenApi,
    },
    RouteSpec {
        method: Verb::Get,
        path: "/metrics",
        operation_id: "metrics",
        summary: "Metrics in Prometheus text format.",
        tag: "system",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: &[(200, S::Text)],
        target: Target::Metrics,
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/plugins",
        operation_id: "listPlugins",
        summary: "The installed plug-ins.",
        tag: "plugins",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: &[(200, S::ArrayOf("PluginInfo"))],
        target: Target::Action(|_| Ok(Action::ListPlugins)),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/servers",
        operation_id: "listServers",
        summary: "The registered storage servers.",
        tag: "servers",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: &[(200, S::ArrayOf("ServerView"))],
        target: Target::Action(|_| Ok(Action::ListServers)),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers",
        operation_id: "addServer",
        summary: "Register a storage server: validate, getInfo, then read elements and groups.",
        tag: "servers",
        auth: true,
        query: NO_QUERY,
        body: Some(&ADD_SERVER),
        responses: &[(201, S::Ref("ServerView"))],
        target: Target::Action(|i| {
            Ok(Action::AddServer(AddServer {
                name: i.req_string("name")?,
                plugin: i.string("plugin"),
                storage_type: i.string("storage_type"),
                settings: i.server_settings(),
                embedded: i.bool("embedded").unwrap_or(false),
            }))
        }),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/servers/{server}",
        operation_id: "showServer",
        summary: "One storage server.",
        tag: "servers",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: SERVER,
        target: Target::Action(|i| {
            Ok(Action::ShowServer {
                server: i.path("server")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/settings",
        operation_id: "updateServer",
        summary: "Change a storage server's settings (e.g. rotate the CHAP secret): validate the new record, keep it, re-read the server.",
        tag: "servers",
        auth: true,
        query: NO_QUERY,
        body: Some(&UPDATE_SERVER),
        responses: SERVER,
        target: Target::Action(|i| {
            Ok(Action::UpdateServer(UpdateServer {
                server: i.path("server")?,
                settings: i.server_settings(),
                from_embedded_flags: false,
            }))
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/refresh",
        operation_id: "refreshServer",
        summary:
            "Re-read a storage server (getInfo, list, getCurrentSnaps, getCurrentClones, getAccessGroups).",
        tag: "servers",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: SERVER,
        target: Target::Action(|i| {
            Ok(Action::RefreshServer {
                server: i.path("server")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Delete,
        path: "/v1/servers/{server}",
        operation_id: "removeServer",
        summary: "Forget a storage server (nothing on the array changes).",
        tag: "servers",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: &[(204, S::NoContent)],
        target: Target::Action(|i| {
            Ok(Action::RemoveServer {
                server: i.path("server")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/servers/{server}/capabilities",
        operation_id: "getCapabilities",
        summary: "The ability dict of the array now (getCapabilities).",
        tag: "servers",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: &[(200, S::Ref("Abilities"))],
        target: Target::Action(|i| {
            Ok(Action::Capabilities {
                server: i.path("server")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/servers/{server}/luns",
        operation_id: "listLuns",
        summary: "LUNs and clones, from the stored records.",
        tag: "luns",
        auth: true,
        query: Q_REFRESH,
        body: None,
        responses: &[(200, S::ArrayOf("ElementView"))],
        target: Target::Action(|i| {
            Ok(Action::ListLuns {
                server: i.path("server")?,
                refresh: i.q_bool("refresh"),
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/luns",
        operation_id: "createLun",
        summary: "Create a LUN (create).",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: Some(&CREATE_LUN),
        responses: ELEMENT_CREATED,
        target: Target::Action(|i| {
            Ok(Action::CreateLun(CreateLun {
                server: i.path("server")?,
                name: i.req_string("name")?,
                size: i.req_int("size")?,
                vol_group: i.string("vol_group"),
                thin: i.bool("thin").unwrap_or(true),
                qos: i.value("qos"),
            }))
        }),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/servers/{server}/luns/{lun}",
        operation_id: "showLun",
        summary: "One LUN or clone (`?refresh=true`: getInfo first).",
        tag: "luns",
        auth: true,
        query: Q_REFRESH,
        body: None,
        responses: &[(200, S::Ref("ElementView"))],
        target: Target::Action(|i| {
            Ok(Action::ShowLun {
                server: i.path("server")?,
                lun: i.path("lun")?,
                refresh: i.q_bool("refresh"),
            })
        }),
    },
    RouteSpec {
        method: Verb::Delete,
        path: "/v1/servers/{server}/luns/{lun}",
        operation_id: "removeLun",
        summary: "Remove a LUN or clone (remove).",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: GONE,
        target: Target::Action(|i| {
            Ok(Action::RemoveLun {
                server: i.path("server")?,
                lun: i.path("lun")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/luns/{lun}/resize",
        operation_id: "resizeLun",
        summary: "Resize (resize).",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: Some(&RESIZE),
        responses: ELEMENT,
        target: Target::Action(|i| {
            Ok(Action::ResizeLun {
                server: i.path("server")?,
                lun: i.path("lun")?,
                size: i.req_int("size")?,
                allow_shrink: i.bool("allow_shrink").unwrap_or(false),
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/luns/{lun}/online",
        operation_id: "onlineLun",
        summary: "Bring online (online).",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: ELEMENT,
        target: Target::Action(|i| {
            Ok(Action::Online {
                server: i.path("server")?,
                lun: i.path("lun")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/luns/{lun}/offline",
        operation_id: "offlineLun",
        summary: "Take offline (offline).",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: ELEMENT,
        target: Target::Action(|i| {
            Ok(Action::Offline {
                server: i.path("server")?,
                lun: i.path("lun")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/luns/{lun}/present",
        operation_id: "presentLun",
        summary: "Present to access groups (startPresent).",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: Some(&PRESENT),
        responses: ELEMENT,
        target: Target::Action(|i| {
            Ok(Action::Present {
                server: i.path("server")?,
                lun: i.path("lun")?,
                groups: i.req_list("groups")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/luns/{lun}/unpresent",
        operation_id: "unpresentLun",
        summary: "Stop presenting to access groups (stopPresent).",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: Some(&PRESENT),
        responses: ELEMENT,
        target: Target::Action(|i| {
            Ok(Action::Unpresent {
                server: i.path("server")?,
                lun: i.path("lun")?,
                groups: i.req_list("groups")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/luns/{lun}/qos",
        operation_id: "setLunQos",
        summary: "Set the QoS (setQoS).",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: Some(&SET_QOS),
        responses: ELEMENT,
        target: Target::Action(|i| {
            Ok(Action::SetQos {
                server: i.path("server")?,
                lun: i.path("lun")?,
                qos: i.req_value("qos")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/luns/{lun}/clone",
        operation_id: "cloneLun",
        summary: "Clone a LUN or clone (clone).",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: Some(&CLONE),
        responses: ELEMENT_CREATED,
        target: Target::Action(|i| {
            Ok(Action::Clone {
                server: i.path("server")?,
                lun: i.path("lun")?,
                name: i.req_string("name")?,
                qos: i.value("qos"),
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/luns/{lun}/split",
        operation_id: "splitClone",
        summary: "Split a clone from its parent (splitClone): always a job.",
        tag: "luns",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: &[(202, S::Job)],
        target: Target::Action(|i| {
            Ok(Action::Split {
                server: i.path("server")?,
                lun: i.path("lun")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/servers/{server}/snapshots",
        operation_id: "listSnapshots",
        summary: "Snapshots (all, or of one LUN).",
        tag: "snapshots",
        auth: true,
        query: Q_LUN,
        body: None,
        responses: &[(200, S::ArrayOf("ElementView"))],
        target: Target::Action(|i| {
            Ok(Action::ListSnapshots {
                server: i.path("server")?,
                lun: i.q_string("lun"),
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/snapshots",
        operation_id: "createSnapshot",
        summary: "Snapshot one LUN (createSnap).",
        tag: "snapshots",
        auth: true,
        query: NO_QUERY,
        body: Some(&CREATE_SNAPSHOT),
        responses: ELEMENT_CREATED,
        target: Target::Action(|i| {
            Ok(Action::CreateSnapshot {
                server: i.path("server")?,
                lun: i.req_string("lun")?,
                name: i.req_string("name")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/snapshots/multi",
        operation_id: "createMultiSnapshot",
        summary: "Snapshot several LUNs at once (createMultiSnap).",
        tag: "snapshots",
        auth: true,
        query: NO_QUERY,
        body: Some(&MULTI_SNAPSHOT),
        responses: &[(201, S::ArrayOf("ElementView")), (202, S::Job)],
        target: Target::Action(|i| {
            Ok(Action::CreateMultiSnapshot {
                server: i.path("server")?,
                luns: i.req_list("luns")?,
                name: i.req_string("name")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Delete,
        path: "/v1/servers/{server}/snapshots/{snap}",
        operation_id: "removeSnapshot",
        summary: "Remove a snapshot (snapRemove).",
        tag: "snapshots",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: GONE,
        target: Target::Action(|i| {
            Ok(Action::RemoveSnapshot {
                server: i.path("server")?,
                snap: i.path("snap")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/snapshots/{snap}/restore",
        operation_id: "restoreSnapshot",
        summary: "Roll a LUN back to a snapshot (snapRestore); answers the restored LUN.",
        tag: "snapshots",
        auth: true,
        query: NO_QUERY,
        body: Some(&RESTORE),
        responses: ELEMENT,
        target: Target::Action(|i| {
            Ok(Action::RestoreSnapshot {
                server: i.path("server")?,
                snap: i.path("snap")?,
                lun: i.string("lun"),
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/snapshots/{snap}/clone",
        operation_id: "cloneSnapshot",
        summary: "Clone a snapshot (cloneFromSnap).",
        tag: "snapshots",
        auth: true,
        query: NO_QUERY,
        body: Some(&CLONE_FROM_SNAPSHOT),
        responses: ELEMENT_CREATED,
        target: Target::Action(|i| {
            Ok(Action::CloneSnapshot {
                server: i.path("server")?,
                snap: i.path("snap")?,
                name: i.req_string("name")?,
                qos: i.value("qos"),
                lun: i.string("lun"),
            })
        }),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/servers/{server}/groups",
        operation_id: "listGroups",
        summary: "The access groups.",
        tag: "groups",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: &[(200, S::ArrayOf("access_grp"))],
        target: Target::Action(|i| {
            Ok(Action::ListGroups {
                server: i.path("server")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/groups",
        operation_id: "createGroup",
        summary: "Create an access group (createAccessGroups).",
        tag: "groups",
        auth: true,
        query: NO_QUERY,
        body: Some(&CREATE_GROUP),
        responses: &[(201, S::Ref("access_grp")), (202, S::Job)],
        target: Target::Action(|i| {
            Ok(Action::CreateGroup {
                server: i.path("server")?,
                name: i.req_string("name")?,
                entries: i.req_list("entries")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Delete,
        path: "/v1/servers/{server}/groups/{group}",
        operation_id: "removeGroup",
        summary: "Remove an access group (removeAccessGroups).",
        tag: "groups",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: GONE,
        target: Target::Action(|i| {
            Ok(Action::RemoveGroup {
                server: i.path("server")?,
                group: i.path("group")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/groups/{group}/rename",
        operation_id: "renameGroup",
        summary: "Rename an access group (renameAccessGroup).",
        tag: "groups",
        auth: true,
        query: NO_QUERY,
        body: Some(&RENAME_GROUP),
        responses: GROUP,
        target: Target::Action(|i| {
            Ok(Action::RenameGroup {
                server: i.path("server")?,
                group: i.path("group")?,
                new_name: i.req_string("new_name")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/groups/{group}/entries",
        operation_id: "addGroupEntries",
        summary: "Add entries to an access group (addToAccessGroup).",
        tag: "groups",
        auth: true,
        query: NO_QUERY,
        body: Some(&GROUP_ENTRIES),
        responses: GROUP,
        target: Target::Action(|i| {
            Ok(Action::AddGroupEntries {
                server: i.path("server")?,
                group: i.path("group")?,
                entries: i.req_list("entries")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Post,
        path: "/v1/servers/{server}/groups/{group}/entries/remove",
        operation_id: "removeGroupEntries",
        summary: "Remove entries from an access group (removeFromAccessGroup).",
        tag: "groups",
        auth: true,
        query: NO_QUERY,
        body: Some(&GROUP_ENTRIES),
        responses: GROUP,
        target: Target::Action(|i| {
            Ok(Action::RemoveGroupEntries {
                server: i.path("server")?,
                group: i.path("group")?,
                entries: i.req_list("entries")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/servers/{server}/qos",
        operation_id: "listQos",
        summary: "The QoS values the array offers (getQoSList).",
        tag: "qos",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: &[(200, S::ArrayOf("qos_vals"))],
        target: Target::Action(|i| {
            Ok(Action::ListQos {
                server: i.path("server")?,
            })
        }),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/jobs",
        operation_id: "listJobs",
        summary: "Jobs, newest first.",
        tag: "jobs",
        auth: true,
        query: Q_STATE,
        body: None,
        responses: &[(200, S::ArrayOf("JobView"))],
        target: Target::Action(|i| {
            Ok(Action::ListJobs {
                running_only: i.query("state") == Some("running"),
            })
        }),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/jobs/{id}",
        operation_id: "showJob",
        summary: "One job.",
        tag: "jobs",
        auth: true,
        query: NO_QUERY,
        body: None,
        responses: &[(200, S::Ref("JobView"))],
        target: Target::Action(|i| Ok(Action::ShowJob { id: i.path("id")? })),
    },
    RouteSpec {
        method: Verb::Get,
        path: "/v1/audit",
        operation_id: "listAudit",
        summary: "The audit log, newest first.",
        tag: "audit",
        auth: true,
        query: Q_LIMIT,
        body: None,
        responses: &[(200, S::ArrayOf("AuditEntry"))],
        target: Target::Action(|i| {
            Ok(Action::ListAudit {
                limit: i.q_u32("limit").unwrap_or(DEFAULT_AUDIT_LIMIT),
            })
        }),
    },
];

/// The distinct path templates of [`ROUTES`], in table order.
pub fn templates() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in ROUTES {
        if !out.contains(&r.path) {
            out.push(r.path);
        }
    }
    out
}

/// A path served by one route's handler although the router matches it to another template:
/// a literal segment of one template (`/snapshots/multi`) shadows a parameter of another
/// (`/snapshots/{snap}`) for methods only the latter answers. `fixed` are the parameters the
/// literal stands for.
#[derive(Debug, Clone)]
pub struct Alias {
    pub route: usize,
    pub path: &'static str,
    pub fixed: Vec<(&'static str, &'static str)>,
}

/// Every [`Alias`] of the table.
pub fn aliases() -> Vec<Alias> {
    let mut out = Vec::new();
    let templates = templates();
    for (idx, b) in ROUTES.iter().enumerate() {
        for &a in &templates {
            if a == b.path || ROUTES.iter().any(|r| r.path == a && r.method == b.method) {
                continue;
            }
            let sa: Vec<&str> = a.split('/').collect();
            let sb: Vec<&str> = b.path.split('/').collect();
            if sa.len() != sb.len() {
                continue;
            }
            let mut fixed = Vec::new();
            let matches = sa.iter().zip(&sb).all(|(x, y)| {
                let px = x.starts_with('{');
                match (px, y.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
                    (true, Some(_)) => x == y,
                    (false, Some(name)) => {
                        fixed.push((name, *x));
                        true
                    }
                    (true, None) => false,
                    (false, None) => x == y,
                }
            });
            if matches && !fixed.is_empty() {
                out.push(Alias {
                    route: idx,
                    path: a,
                    fixed,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_well_formed() {
        let mut seen = std::collections::HashSet::new();
        let mut ops = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method.as_str(),
                r.path
            );
            assert!(
                ops.insert(r.operation_id),
                "operation id {} twice",
                r.operation_id
            );
            assert!(r.path.starts_with('/'));
            assert!(!r.responses.is_empty());
            if r.method == Verb::Get {
                assert!(r.body.is_none(), "{} takes a body", r.path);
            }
            if !r.auth {
                assert!(matches!(r.target, Target::Health | Target::OpenApi), "{}", r.path);
            }
        }
        for b in BODIES {
            assert!(ROUTES.iter().any(|r| r.body.is_some_and(|x| std::ptr::eq(x, *b))));
        }
    }

    #[test]
    fn the_only_alias_is_delete_snapshot_multi() {
        let a = aliases();
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].path, "/v1/servers/{server}/snapshots/multi");
        assert_eq!(ROUTES[a[0].route].operation_id, "removeSnapshot");
        assert_eq!(a[0].fixed, vec![("snap", "multi")]);
    }

    fn body(route: &str, json: &str) -> Result<Map<String, Value>, ApiError> {
        let r = ROUTES.iter().find(|r| r.operation_id == route).expect("route");
        parse_body(r.body, json.as_bytes())
    }

    #[test]
    fn body_checks() {
        let e = body("createLun", "{\"name\": \"a\", \"size\": \"1\"}").expect_err("type");
        assert_eq!(e.key.as_deref(), Some("size"));
        assert_eq!(e.exception, Some(spindle_api::ExceptionKind::ValueFormatEx));
        let e = body("createLun", "{\"name\": \"a\", \"size\": 1.5}").expect_err("float");
        assert_eq!(e.key.as_deref(), Some("size"));
        let e = body("createLun", "{\"name\": \"a\", \"size\": 18446744073709551615}").expect_err("u64");
        assert_eq!(e.key.as_deref(), Some("size"));
        let e = body("createLun", "{\"name\": \"a\"}").expect_err("missing");
        assert_eq!(e.key.as_deref(), Some("size"));
        assert_eq!(e.exception, Some(spindle_api::ExceptionKind::MissingKeyEx));
        let e = body("createLun", "{\"name\": \"a\", \"size\": 1, \"colour\": 1}").expect_err("unknown");
        assert_eq!(e.key.as_deref(), Some("colour"));
        let e = body("createLun", "{\"name\": ").expect_err("malformed");
        assert_eq!(e.key, None);
        assert_eq!(e.exception, Some(spindle_api::ExceptionKind::ValueFormatEx));
        let e = body("createLun", "[1]").expect_err("not an object");
        assert_eq!(e.key, None);
        let e = body("presentLun", "{\"groups\": [\"a\", 1]}").expect_err("list");
        assert_eq!(e.key.as_deref(), Some("groups"));
        let e = body("splitClone", "{\"x\": 1}").expect_err("no body");
        assert_eq!(e.key.as_deref(), Some("x"));
        assert!(body("splitClone", "").is_ok());
        assert!(body("splitClone", " {} ").is_ok());
        let ok =
            body("createLun", "{\"name\": \"a\", \"size\": 1, \"vol_group\": null}").expect("null optional");
        assert!(!ok.contains_key("vol_group"));
        assert!(body("setLunQos", "{\"qos\": null}").is_ok());
        // A field given twice is refused, not read as the last one.
        let e = body(
            "createLun",
            "{\"name\": \"a\", \"size\": 1, \"size\": 1099511627776}",
        )
        .expect_err("twice");
        assert_eq!(e.key.as_deref(), Some("size"));
        assert_eq!(e.exception, Some(spindle_api::ExceptionKind::ValueFormatEx));
        assert!(e.message.contains("'size' is given twice"), "{}", e.message);
        // Equal keys inside a value are that value's business.
        assert!(body("setLunQos", "{\"qos\": {\"a\": 1, \"a\": 2}}").is_ok());
    }

    #[test]
    fn query_checks() {
        assert!(parse_query(Q_REFRESH, Some("refresh=true")).is_ok());
        assert!(parse_query(Q_REFRESH, Some("refresh")).is_ok());
        let e = parse_query(Q_REFRESH, Some("refresh=maybe")).expect_err("bool");
        assert_eq!(e.key.as_deref(), Some("refresh"));
        let e = parse_query(Q_REFRESH, Some("refresh=true&refresh=false")).expect_err("twice");
        assert_eq!(e.key.as_deref(), Some("refresh"));
        let e = parse_query(Q_REFRESH, Some("x=1")).expect_err("unknown");
        assert_eq!(e.key.as_deref(), Some("x"));
        let e = parse_query(Q_LIMIT, Some("limit=-1")).expect_err("negative");
        assert_eq!(e.key.as_deref(), Some("limit"));
        let e = parse_query(Q_STATE, Some("state=failed")).expect_err("state");
        assert_eq!(e.key.as_deref(), Some("state"));
        let q = parse_query(Q_LUN, Some("lun=db%201")).expect("lun");
        assert_eq!(q, vec![("lun", "db 1".to_owned())]);
    }

    #[test]
    fn actions_are_built_from_input() {
        let r = ROUTES
            .iter()
            .find(|r| r.operation_id == "createLun")
            .expect("route");
        let b = parse_body(r.body, br#"{"name":"db1","size":1048576,"qos":"gold"}"#).expect("body");
        let mut i = Input::new(vec![("server".into(), "local".into())], vec![], b);
        let Target::Action(build) = r.target else {
            panic!("not an action")
        };
        assert_eq!(
            build(&mut i).expect("action"),
            Action::CreateLun(CreateLun {
                server: "local".into(),
                name: "db1".into(),
                size: 1048576,
                vol_group: None,
                thin: true,
                qos: Some(Value::String("gold".into())),
            })
        );
    }
}
