//! The OpenAPI 3.1 document, built from [`ROUTES`] and [`BODIES`]: every route of the router
//! is an operation here, with its parameters, body and answers.

use crate::routes::{BodySpec, FieldType, QueryType, Schema, Target, BODIES, ROUTES};
use serde_json::{json, Map, Value};
use spindle_api::ExceptionKind;

/// Every `code` an error body may carry.
pub const ERROR_CODES: &[&str] = &[
    "bad_request",
    "unauthorized",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "conflict",
    "ambiguous",
    "refused",
    "contract",
    "plugin_failed",
    "internal",
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(ty: &str) -> Value {
    json!({ "type": [ty, "null"] })
}

fn field_schema(ty: FieldType, required: bool, description: &str) -> Value {
    let mut s = match ty {
        FieldType::String => json!({"type": "string"}),
        FieldType::Integer => json!({"type": "integer", "format": "int64"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::StringList => json!({"type": "array", "items": {"type": "string"}}),
        FieldType::Any => json!({}),
    };
    if !required && ty != FieldType::Any {
        if let Some(t) = s.get("type").cloned() {
            s["type"] = json!([t, "null"]);
        }
    }
    s["description"] = Value::String(description.to_owned());
    s
}

fn body_schema(b: &BodySpec) -> Value {
    let mut props = Map::new();
    for f in b.fields {
        props.insert(f.name.to_owned(), field_schema(f.ty, f.required, f.description));
    }
    let required: Vec<&str> = b.fields.iter().filter(|f| f.required).map(|f| f.name).collect();
    let mut s = json!({
        "type": "object",
        "description": b.description,
        "properties": props,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        s["required"] = json!(required);
    }
    s
}

fn path_param_description(name: &str) -> &'static str {
    match name {
        "server" => "A storage server's name.",
        "lun" => "An element's name or uuid (a name matching two elements is 409 `ambiguous`).",
        "snap" => "A snapshot's name or uuid.",
        "group" => "An access group's name.",
        "id" => "A job's id.",
        _ => "A path parameter.",
    }
}

fn component_schemas() -> Map<String, Value> {
    let exceptions: Vec<Value> = ExceptionKind::ALL
        .iter()
        .map(|k| Value::String(k.as_str().to_owned()))
        .chain([Value::Null])
        .collect();
    let state_enum = json!([
        "UNKNOWN",
        "OFFLINE",
        "BUSY_CREATE",
        "BUSY_CLONE",
        "BUSY_COPY",
        "BUSY_CHILDREN",
        "ERROR",
        "ONLINE"
    ]);
    let op = json!({"type": "string", "enum": ["ONLINE", "OFFLINE", "UNSUPPORTED"]});
    let yn = json!({"type": "string", "enum": ["YES", "NO"]});
    let mut s = Map::new();
    let mut put = |name: &str, v: Value| {
        s.insert(name.to_owned(), v);
    };
    put(
        "ErrorDetail",
        json!({
            "type": "object",
            "description": "What went wrong.",
            "required": ["code", "exception", "message", "key", "call_id"],
            "properties": {
                "code": {"type": "string", "enum": ERROR_CODES},
                "exception": {
                    "type": ["string", "null"],
                    "enum": exceptions,
                    "description": "The guides' exception name when one applies, else null."
                },
                "message": {"type": "string"},
                "key": {"type": ["string", "null"], "description": "The offending field, when known."},
                "call_id": {"type": "string"}
            }
        }),
    );
    put(
        "ErrorBody",
        json!({
            "type": "object",
            "description": "Every error answer.",
            "required": ["error"],
            "properties": {"error": schema_ref("ErrorDetail")}
        }),
    );
    put(
        "Health",
        json!({
            "type": "object",
            "required": ["status", "version"],
            "properties": {"status": {"const": "ok"}, "version": {"type": "string"}}
        }),
    );
    put(
        "Abilities",
        json!({
            "type": "object",
            "description": "The ability dict (16 keys).",
            "required": ["snapshot", "clone", "resize", "splitclone", "snapclone", "custom_snap_name",
                "snap_is_sync", "custom_clone_name", "clone_is_sync", "resize_is_sync",
                "splitclone_is_sync", "splitclone_while_open", "snapclone_is_sync",
                "require_storage_name", "access_control", "max_access_entries"],
            "properties": {
                "snapshot": op, "clone": op, "resize": op, "splitclone": op, "snapclone": op,
                "custom_snap_name": yn, "snap_is_sync": yn, "custom_clone_name": yn,
                "clone_is_sync": yn, "resize_is_sync": yn, "splitclone_is_sync": yn,
                "splitclone_while_open": yn, "snapclone_is_sync": yn,
                "require_storage_name": yn, "access_control": yn,
                "max_access_entries": {"type": "integer", "description": "-1: unlimited."}
            }
        }),
    );
    put(
        "PluginInfo",
        json!({
            "type": "object",
            "required": ["class", "version", "abilities"],
            "properties": {
                "class": {"type": "string"},
                "version": {"type": "string"},
                "abilities": schema_ref("Abilities"),
                "ss_extra_info_help": {"description": "What the plug-in reads from ss_record.extra_info."}
            }
        }),
    );
    put(
        "vol_group",
        json!({
            "type": "object",
            "required": ["vol_name"],
            "properties": {
                "vol_name": {"type": "string"},
                "vol_total_sz": {"type": "integer"},
                "vol_used_sz": {"type": "integer"},
                "vol_free_sz": {"type": "integer"},
                "vol_alloc_sz": {"type": "integer"},
                "vol_desc": {"type": "string"}
            }
        }),
    );
    put(
        "access_grp",
        json!({
            "type": "object",
            "required": ["grp_name", "grp_entries"],
            "properties": {
                "grp_name": {"type": "string"},
                "grp_entries": {"type": "array", "items": {"type": "string"},
                    "description": "WWNs (SAN) or initiator names (iSCSI)."},
                "grp_modes": {"description": "Optional modes (e.g. NFS export options)."}
            }
        }),
    );
    put(
        "qos_vals",
        json!({
            "type": "object",
            "required": ["priority", "value"],
            "properties": {
                "priority": {"type": "integer", "description": "0 is the highest."},
                "value": {"description": "The array's name for it; what `qos` fields take."},
                "description": {"type": "string"}
            }
        }),
    );
    put(
        "ServerView",
        json!({
            "type": "object",
            "description": "A registered storage server. Secrets are never returned: `secrets_set` lists which are set.",
            "required": ["name", "plugin", "storage_type", "secrets_set"],
            "properties": {
                "name": {"type": "string"},
                "plugin": {"type": "string", "description": "class@version"},
                "storage_type": {"type": "string"},
                "admin_host": nullable("string"),
                "admin_user": nullable("string"),
                "access_host": nullable("string"),
                "access_port": {"type": ["integer", "string", "null"]},
                "username": nullable("string"),
                "chap": {"type": ["boolean", "string", "null"]},
                "uuid": {"type": "string"},
                "status": nullable("string"),
                "storage_desc": nullable("string"),
                "total_sz": nullable("integer"),
                "used_sz": nullable("integer"),
                "free_sz": nullable("integer"),
                "alloc_sz": nullable("integer"),
                "vol_groups": {"type": "array", "items": schema_ref("vol_group")},
                "access_grps": {"type": "array", "items": schema_ref("access_grp")},
                "extra_info": {"description": "extra_info with secret-looking keys removed."},
                "secrets_set": {"type": "array", "items": {"type": "string"}},
                "refreshed_at": {"type": ["string", "null"], "format": "date-time"},
                "last_error": {"description": "Why the last re-read from the plug-in failed, if it did."},
                "counts": {
                    "type": "object",
                    "properties": {
                        "luns": {"type": "integer"},
                        "clones": {"type": "integer"},
                        "snapshots": {"type": "integer"}
                    }
                }
            }
        }),
    );
    put(
        "ElementView",
        json!({
            "type": "object",
            "description": "The se_record as the plug-in last returned it, plus server, kind and parent.",
            "required": ["server", "kind", "name", "uuid"],
            "additionalProperties": true,
            "properties": {
                "server": {"type": "string"},
                "kind": {"type": "string", "enum": ["lun", "clone", "snapshot"]},
                "parent": {"type": ["string", "null"],
                    "description": "Snapshots and clones: the parent's name if the plug-in reports it."},
                "se_type": {"type": "string", "enum": ["LUNType", "GhostLUNType", "SnapType", "SnapCloneType"]},
                "uuid": {"type": "string"},
                "name": {"type": "string"},
                "page83_id": {"type": "string"},
                "size": {"type": "integer", "description": "Bytes."},
                "status": {"type": "string"},
                "state": {"type": "string", "enum": state_enum},
                "vol_group_name": {"type": "string"},
                "access_grp_names": {"type": "array", "items": {"type": "string"}},
                "qos": {}
            }
        }),
    );
    put(
        "JobView",
        json!({
            "type": "object",
            "description": "An asynchronous operation.",
            "required": ["id", "server", "method", "target", "state", "percent", "created_at",
                "updated_at", "finished_at", "call_id", "error", "result"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "server": {"type": "string"},
                "method": {"type": "string", "description": "e.g. splitClone"},
                "target": {"type": "string", "description": "The element's name."},
                "state": {"type": "string", "enum": ["running", "succeeded", "failed"]},
                "percent": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "finished_at": {"type": ["string", "null"], "format": "date-time"},
                "call_id": {"type": "string"},
                "error": {"anyOf": [schema_ref("ErrorDetail"), {"type": "null"}]},
                "result": {"anyOf": [schema_ref("ElementView"), {"type": "null"}]}
            }
        }),
    );
    put(
        "JobAccepted",
        json!({
            "type": "object",
            "required": ["job"],
            "properties": {"job": schema_ref("JobView")}
        }),
    );
    put(
        "AuditEntry",
        json!({
            "type": "object",
            "description": "One mutating request, successful or not.",
            "required": ["id", "at", "who", "remote", "call_id", "action", "outcome"],
            "properties": {
                "id": {"type": ["integer", "string"]},
                "at": {"type": "string", "format": "date-time"},
                "who": {"type": "string"},
                "remote": {"type": "string"},
                "call_id": {"type": "string"},
                "action": {"type": "string", "description": "e.g. lun.create"},
                "server": {"type": ["string", "null"]},
                "target": {"type": ["string", "null"]},
                "outcome": {"type": "string", "description": "ok, or an error code."},
                "exception": {"type": ["string", "null"]},
                "duration_ms": {"type": "integer"},
                "detail": {"type": ["string", "null"], "description": "What a server update changes (key old → new; secrets only as changed)."}
            }
        }),
    );
    for b in BODIES {
        s.insert(b.schema.to_owned(), body_schema(b));
    }
    s
}

fn response(schema: Schema) -> Value {
    let headers = json!({"X-Call-Id": {"$ref": "#/components/headers/X-Call-Id"}});
    let json_content = |s: Value| json!({"application/json": {"schema": s}});
    match schema {
        Schema::Ref(name) => json!({
            "description": name, "headers": headers, "content": json_content(schema_ref(name))
        }),
        Schema::ArrayOf(name) => json!({
            "description": format!("[{name}]"), "headers": headers,
            "content": json_content(json!({"type": "array", "items": schema_ref(name)}))
        }),
        Schema::Job => json!({
            "description": "The operation continues as a job (GET /v1/jobs/{id}).",
            "headers": headers, "content": json_content(schema_ref("JobAccepted"))
        }),
        Schema::NoContent => json!({"description": "Done.", "headers": headers}),
        Schema::Text => json!({
            "description": "Prometheus text exposition format 0.0.4.", "headers": headers,
            "content": {"text/plain": {"schema": {"type": "string"}}}
        }),
        Schema::OpenApi => json!({
            "description": "This document.", "headers": headers,
            "content": json_content(json!({"type": "object"}))
        }),
    }
}

/// Builds the document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| {
            let params: Vec<Value> = r
                .path_params()
                .map(|p| {
                    json!({
                        "name": p, "in": "path", "required": true,
                        "description": path_param_description(p),
                        "schema": {"type": "string", "minLength": 1}
                    })
                })
                .collect();
            let mut item = Map::new();
            if !params.is_empty() {
                item.insert("parameters".into(), Value::Array(params));
            }
            Value::Object(item)
        });
        let mut parameters = vec![json!({"$ref": "#/components/parameters/X-Call-Id"})];
        for q in r.query {
            let schema = match q.ty {
                QueryType::Boolean => json!({"type": "boolean"}),
                QueryType::String => json!({"type": "string", "minLength": 1}),
                QueryType::UnsignedInt => {
                    json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})
                }
                QueryType::OneOf(words) => json!({"type": "string", "enum": words}),
            };
            parameters.push(json!({
                "name": q.name, "in": "query", "required": false,
                "description": q.description, "schema": schema
            }));
        }
        let mut responses = Map::new();
        for (status, schema) in r.responses {
            responses.insert(status.to_string(), response(*schema));
        }
        if r.auth {
            responses.insert(
                "401".into(),
                json!({"$ref": "#/components/responses/Unauthorized"}),
            );
        }
        // Every action reads the request body, whether or not it takes one.
        if matches!(r.target, Target::Action(_)) {
            responses.insert(
                "413".into(),
                json!({"$ref": "#/components/responses/PayloadTooLarge"}),
            );
        }
        responses.insert("default".into(), json!({"$ref": "#/components/responses/Error"}));
        let mut op = json!({
            "operationId": r.operation_id,
            "summary": r.summary,
            "tags": [r.tag],
            "parameters": parameters,
            "responses": responses,
        });
        if !r.auth {
            op["security"] = json!([]);
        }
        if let Some(b) = r.body {
            op["requestBody"] = json!({
                "required": b.fields.iter().any(|f| f.required),
                "description": b.description,
                "content": {"application/json": {"schema": schema_ref(b.schema)}}
            });
        }
        if let Value::Object(item) = item {
            item.insert(r.method.openapi_key().to_owned(), op);
        }
    }
    let mut tags: Vec<&str> = Vec::new();
    for r in ROUTES {
        if !tags.contains(&r.tag) {
            tags.push(r.tag);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "spindle",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Storage provisioning through storage plug-ins. Names, not uuids: \
                {server} is a storage server's name; {lun} and {snap} an element's name or uuid; \
                {group} an access group's name. Sizes are bytes. Every answer carries X-Call-Id.",
            "license": {"name": "Apache-2.0 OR MIT", "identifier": "Apache-2.0 OR MIT"}
        },
        "servers": [{"url": "/"}],
        "tags": tags.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The 64 hex digits of <data-dir>/token."
                }
            },
            "parameters": {
                "X-Call-Id": {
                    "name": "X-Call-Id", "in": "header", "required": false,
                    "description": "Tags the request's log lines, plug-in calls, audit entry and job; made by the server when absent or invalid.",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}
                }
            },
            "headers": {
                "X-Call-Id": {
                    "description": "The request's call id.",
                    "schema": {"type": "string"}
                }
            },
            "responses": {
                "Error": {
                    "description": "An error (see ErrorDetail.code).",
                    "headers": {"X-Call-Id": {"$ref": "#/components/headers/X-Call-Id"}},
                    "content": {"application/json": {"schema": schema_ref("ErrorBody")}}
                },
                "Unauthorized": {
                    "description": "Missing or wrong bearer token.",
                    "headers": {"X-Call-Id": {"$ref": "#/components/headers/X-Call-Id"}},
                    "content": {"application/json": {"schema": schema_ref("ErrorBody")}}
                },
                "PayloadTooLarge": {
                    "description": format!(
                        "The request body is over {} bytes (code payload_too_large).",
                        crate::MAX_BODY_BYTES
                    ),
                    "headers": {"X-Call-Id": {"$ref": "#/components/headers/X-Call-Id"}},
                    "content": {"application/json": {"schema": schema_ref("ErrorBody")}}
                }
            }
        }
    })
}
