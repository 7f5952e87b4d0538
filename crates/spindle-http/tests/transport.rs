//! The transport over real HTTP: authentication, input checks, 404/405, call ids, metrics,
//! and the route table against the router, the OpenAPI document and docs/http-api.md.

mod common;

use common::TestServer;
use serde_json::Value;
use spindle_http::routes::Target;
use spindle_http::{Verb, ROUTES};
use std::collections::BTreeSet;

/// A concrete path for a template (`{x}` → `x-value`).
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => format!("{name}-value"),
            None => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn token_is_required_except_for_healthz_and_openapi() {
    let s = TestServer::start();
    // Public routes.
    let r = s.raw("GET", "/healthz", None, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "ok");
    assert!(r.json()["version"].is_string());
    let r = s.raw("GET", "/openapi.json", None, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["openapi"], "3.1.0");

    let wrong = format!("Bearer {}", "0".repeat(64));
    let short = format!("Bearer {}", &s.token[..63]);
    let no_scheme = s.token.clone();
    let basic = format!("Basic {}", s.token);
    for route in ROUTES.iter().filter(|r| r.auth) {
        let path = concrete(route.path);
        let m = route.method.as_str();
        let r = s.raw(m, &path, None, &[]);
        r.expect_error(401, "unauthorized", None, None);
        for h in [&wrong, &short, &no_scheme, &basic] {
            let r = s.raw(m, &path, None, &[("authorization", h)]);
            r.expect_error(401, "unauthorized", None, None);
        }
    }
    // /metrics too, and the right token opens it.
    s.raw("GET", "/metrics", None, &[])
        .expect_error(401, "unauthorized", None, None);
    let r = s.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/plain")));
}

#[test]
fn bodies_are_checked_before_anything_runs() {
    let s = TestServer::start();
    let luns = "/v1/servers/nowhere/luns";
    s.post(luns, "{\"name\": \"a\", \"size\": ").expect_error(
        400,
        "bad_request",
        Some("ValueFormatEx"),
        None,
    );
    s.post(luns, "[]")
        .expect_error(400, "bad_request", Some("ValueFormatEx"), None);
    s.post(luns, "{\"name\": \"a\", \"size\": \"1G\"}").expect_error(
        400,
        "bad_request",
        Some("ValueFormatEx"),
        Some("size"),
    );
    s.post(luns, "{\"name\": \"a\", \"size\": 1.5}").expect_error(
        400,
        "bad_request",
        Some("ValueFormatEx"),
        Some("size"),
    );
    s.post(luns, "{\"name\": 7, \"size\": 1}").expect_error(
        400,
        "bad_request",
        Some("ValueFormatEx"),
        Some("name"),
    );
    s.post(luns, "{\"name\": \"a\", \"size\": 1, \"thin\": \"yes\"}")
        .expect_error(400, "bad_request", Some("ValueFormatEx"), Some("thin"));
    s.post(luns, "{\"name\": \"a\", \"size\": 1, \"colour\": \"blue\"}")
        .expect_error(400, "bad_request", Some("ValueFormatEx"), Some("colour"));
    s.post(luns, "{\"name\": \"a\"}")
        .expect_error(400, "bad_request", Some("MissingKeyEx"), Some("size"));
    s.post(luns, "")
        .expect_error(400, "bad_request", Some("MissingKeyEx"), Some("name"));
    s.post("/v1/servers", "{\"plugin\": \"spindle.sim.SimArray\"}")
        .expect_error(400, "bad_request", Some("MissingKeyEx"), Some("name"));
    s.post("/v1/servers", "{\"name\": \"x\", \"access_port\": \"3260\"}")
        .expect_error(400, "bad_request", Some("ValueFormatEx"), Some("access_port"));
    s.post("/v1/servers/x/luns/l/present", "{\"groups\": \"g1\"}")
        .expect_error(400, "bad_request", Some("ValueFormatEx"), Some("groups"));
    s.post("/v1/servers/x/luns/l/present", "{\"groups\": [\"g1\", 2]}")
        .expect_error(400, "bad_request", Some("ValueFormatEx"), Some("groups"));
    s.post("/v1/servers/x/snapshots/multi", "{\"name\": \"s\"}")
        .expect_error(400, "bad_request", Some("MissingKeyEx"), Some("luns"));
    s.post("/v1/servers/x/luns/l/split", "{\"now\": true}")
        .expect_error(400, "bad_request", Some("ValueFormatEx"), Some("now"));
    // Query parameters.
    s.get("/v1/servers/x/luns?refresh=maybe").expect_error(
        400,
        "bad_request",
        Some("ValueFormatEx"),
        Some("refresh"),
    );
    s.get("/v1/servers/x/luns?colour=blue").expect_error(
        400,
        "bad_request",
        Some("ValueFormatEx"),
        Some("colour"),
    );
    s.get("/v1/audit?limit=-3")
        .expect_error(400, "bad_request", Some("ValueFormatEx"), Some("limit"));
    s.get("/v1/jobs?state=sleeping")
        .expect_error(400, "bad_request", Some("ValueFormatEx"), Some("state"));
    // A body over the limit is 413, on routes with a body and without one; one just at the
    // limit is read (and refused only for what it says).
    let big = format!(
        "{{\"name\": \"{}\", \"size\": 1}}",
        "a".repeat(spindle_http::MAX_BODY_BYTES)
    );
    let r = s.post(luns, &big);
    r.expect_error(413, "payload_too_large", None, None);
    assert!(
        r.error()["message"]
            .as_str()
            .is_some_and(|m| m.contains(&spindle_http::MAX_BODY_BYTES.to_string())),
        "{}",
        r.text
    );
    s.post(
        "/v1/servers/x/refresh",
        &" ".repeat(spindle_http::MAX_BODY_BYTES + 1),
    )
    .expect_error(413, "payload_too_large", None, None);
    let padded = format!(
        "{{\"name\": \"bad name\"{}}}",
        " ".repeat(spindle_http::MAX_BODY_BYTES - 20)
    );
    assert_eq!(padded.len(), spindle_http::MAX_BODY_BYTES);
    s.post(luns, &padded)
        .expect_error(400, "bad_request", Some("MissingKeyEx"), Some("size"));
}

#[test]
fn unknown_routes_and_methods() {
    let s = TestServer::start();
    let r = s.get("/v1/nothing-here");
    r.expect_error(404, "not_found", None, None);
    assert!(r.error()["message"]
        .as_str()
        .is_some_and(|m| m.contains("/v1/nothing-here")));
    s.raw("GET", "/nope", None, &[])
        .expect_error(404, "not_found", None, None);
    let r = s.call("PUT", "/v1/servers", Some("{}"));
    r.expect_error(405, "method_not_allowed", None, None);
    let allow = r.allow.unwrap_or_default();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");
    s.call("PATCH", "/v1/servers/x/luns/y", Some("{}"))
        .expect_error(405, "method_not_allowed", None, None);
    s.call("DELETE", "/v1/servers/x/luns/y/resize", None)
        .expect_error(405, "method_not_allowed", None, None);
    s.call("POST", "/healthz", Some("{}"))
        .expect_error(405, "method_not_allowed", None, None);
}

#[test]
fn call_ids_are_echoed_or_made() {
    let s = TestServer::start();
    let auth = format!("Bearer {}", s.token);
    let r = s.raw("GET", "/healthz", None, &[("x-call-id", "abc.DEF_123-x")]);
    assert_eq!(r.call_id.as_deref(), Some("abc.DEF_123-x"));
    let max = "z".repeat(64);
    let r = s.raw("GET", "/healthz", None, &[("x-call-id", &max)]);
    assert_eq!(r.call_id.as_deref(), Some(max.as_str()));
    // Echoed in error bodies too.
    let r = s.raw("GET", "/v1/servers", None, &[("x-call-id", "given-1")]);
    r.expect_error(401, "unauthorized", None, None);
    assert_eq!(r.error()["call_id"], "given-1");
    let r = s.raw(
        "GET",
        "/nothing",
        None,
        &[("x-call-id", "given-2"), ("authorization", &auth)],
    );
    assert_eq!(r.error()["call_id"], "given-2");
    // Bad ones are replaced by a fresh id.
    let too_long = "a".repeat(65);
    let mut seen = BTreeSet::new();
    for bad in [
        "has space",
        "semi;colon",
        "slash/ed",
        "ümlaut",
        too_long.as_str(),
        "",
    ] {
        let r = s.raw("GET", "/healthz", None, &[("x-call-id", bad)]);
        let id = r.call_id.unwrap_or_else(|| panic!("no call id for {bad:?}"));
        assert_ne!(id, bad);
        assert!(spindle_http::valid_call_id(&id), "{id}");
        assert_eq!(id.len(), 32, "uuid simple: {id}");
        seen.insert(id);
    }
    let r = s.raw("GET", "/healthz", None, &[]);
    seen.insert(r.call_id.expect("call id"));
    assert_eq!(seen.len(), 7, "call ids must be fresh: {seen:?}");
}

/// Every route of the table reaches its own handler (not the 404/405 fallbacks), which the
/// metrics confirm by its template; the `DELETE .../snapshots/multi` alias reaches the
/// snapshot removal.
#[test]
fn every_route_of_the_table_is_routed() {
    let s = TestServer::start();
    for r in ROUTES {
        let path = concrete(r.path);
        let resp = s.call(r.method.as_str(), &path, None);
        if resp.status >= 400 {
            let e = resp.error();
            assert_ne!(e["code"], "method_not_allowed", "{} {path}", r.method.as_str());
            assert!(
                !e["message"].as_str().unwrap_or("").starts_with("no route"),
                "{} {path}: {}",
                r.method.as_str(),
                resp.text
            );
        }
    }
    let r = s.call("DELETE", "/v1/servers/x/snapshots/multi", None);
    assert!(!r.text.contains("no route") && r.status != 405, "{}", r.text);
    let r = s.call(
        "POST",
        "/v1/servers/x/snapshots/multi/clone",
        Some("{\"name\": \"c\"}"),
    );
    assert!(!r.text.contains("no route") && r.status != 405, "{}", r.text);
    let r = s.call("POST", "/v1/servers/x/snapshots/multi/restore", None);
    assert!(!r.text.contains("no route") && r.status != 405, "{}", r.text);

    let metrics = s.get("/metrics").text;
    for r in ROUTES {
        let line = format!(
            "spindle_http_requests_total{{route=\"{}\",method=\"{}\",",
            r.path,
            r.method.as_str()
        );
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }
}

#[test]
fn metrics_count_by_template() {
    let s = TestServer::start();
    for _ in 0..3 {
        s.get("/v1/servers/alpha/luns");
        s.get("/v1/servers/beta/luns");
    }
    s.get("/v1/does-not-exist");
    s.call("PUT", "/v1/servers", Some("{}"));
    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    let t = m.text;
    assert!(
        !t.contains("alpha") && !t.contains("beta"),
        "raw paths leaked:\n{t}"
    );
    let luns = "route=\"/v1/servers/{server}/luns\"";
    let count_line = t
        .lines()
        .find(|l| l.starts_with("spindle_http_request_duration_seconds_count") && l.contains(luns))
        .unwrap_or_else(|| panic!("no histogram for luns:\n{t}"));
    assert!(count_line.ends_with(" 6"), "{count_line}");
    assert!(
        t.contains("spindle_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"),
        "{t}"
    );
    assert!(
        t.contains("spindle_http_requests_total{route=\"/v1/servers\",method=\"PUT\",status=\"405\"} 1"),
        "{t}"
    );
    assert!(t.contains("# TYPE spindle_http_request_duration_seconds histogram"));
    assert!(t.contains("le=\"+Inf\""));
}

/// The routes of docs/http-api.md, as (method, path).
fn documented_routes() -> BTreeSet<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/http-api.md"))
        .unwrap_or_else(|e| panic!("docs/http-api.md: {e}"));
    let mut out = BTreeSet::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !matches!(cells[1], "GET" | "POST" | "DELETE" | "PUT" | "PATCH") {
            continue;
        }
        let path = cells[2].trim_matches('`');
        out.insert((cells[1].to_owned(), path.to_owned()));
    }
    out
}

fn table_routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect()
}

#[test]
fn the_table_is_the_documented_api() {
    let doc = documented_routes();
    assert_eq!(doc.len(), 39, "{doc:?}");
    assert_eq!(table_routes(), doc);
    assert_eq!(ROUTES.len(), doc.len(), "a route twice in the table");
}

/// The error codes of docs/http-api.md's table, with their statuses, are those the OpenAPI
/// document lists (a new code, such as 413's, is documented where clients look).
#[test]
fn the_error_codes_are_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/http-api.md"))
        .unwrap_or_else(|e| panic!("docs/http-api.md: {e}"));
    let mut codes = BTreeSet::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[2].starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        if let Some(code) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
            codes.insert(code.to_owned());
            if code == "payload_too_large" {
                assert_eq!(cells[2], "413", "{line}");
            }
        }
    }
    codes.insert("ambiguous".to_owned()); // documented in the conflict row
    let listed: BTreeSet<String> = spindle_http::openapi::ERROR_CODES
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    assert_eq!(codes, listed);
}

fn object_schema(schema: &oas3::spec::Schema, spec: &oas3::Spec) -> oas3::spec::ObjectSchema {
    match schema.resolve(spec).unwrap_or_else(|e| panic!("{e}")) {
        oas3::spec::Schema::Object(o) => match *o {
            oas3::spec::ObjectOrReference::Object(s) => s,
            oas3::spec::ObjectOrReference::Ref { ref_path, .. } => panic!("unresolved {ref_path}"),
        },
        oas3::spec::Schema::Boolean(_) => panic!("boolean schema"),
    }
}

fn walk_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap_or_default().to_owned());
                } else {
                    walk_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| walk_refs(x, out)),
        _ => {}
    }
}

#[test]
fn openapi_document_is_valid_and_complete() {
    let s = TestServer::start();
    let r = s.raw("GET", "/openapi.json", None, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let spec = oas3::from_json(&r.text).unwrap_or_else(|e| panic!("not an OpenAPI 3.1 document: {e}"));
    let version = spec.validate_version().unwrap_or_else(|e| panic!("version: {e}"));
    assert_eq!((version.major, version.minor), (3, 1));

    let raw_doc: Value = r.json();
    let raw = &raw_doc["paths"];
    // Operations are exactly the table's routes.
    let ops: BTreeSet<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (method.as_str().to_owned(), path))
        .collect();
    assert_eq!(ops, table_routes());
    for route in ROUTES {
        let method = match route.method {
            Verb::Get => ureq::http::Method::GET,
            Verb::Post => ureq::http::Method::POST,
            Verb::Delete => ureq::http::Method::DELETE,
        };
        let op = spec
            .operation(&method, route.path)
            .unwrap_or_else(|| panic!("{} {} missing", route.method.as_str(), route.path));
        assert_eq!(op.operation_id.as_deref(), Some(route.operation_id));
        // Public operations override the document's bearer requirement with `security: []`;
        // the others inherit it.
        let raw_op = &raw[route.path][route.method.openapi_key()];
        if route.auth {
            assert!(raw_op.get("security").is_none(), "{}", route.path);
        } else {
            assert_eq!(raw_op["security"], serde_json::json!([]), "{}", route.path);
        }
        let responses = op.responses.as_ref().expect("responses");
        for (status, _) in route.responses {
            let resp = responses
                .get(&status.to_string())
                .unwrap_or_else(|| panic!("{} {status}", route.path))
                .resolve(&spec)
                .unwrap_or_else(|e| panic!("{} {status}: {e}", route.path));
            for media in resp.content.values() {
                if let Some(schema) = &media.schema {
                    schema
                        .resolve(&spec)
                        .unwrap_or_else(|e| panic!("{} {status}: {e}", route.path));
                }
            }
        }
        if route.auth {
            responses
                .get("401")
                .unwrap_or_else(|| panic!("{}: no 401", route.path))
                .resolve(&spec)
                .unwrap_or_else(|e| panic!("{}: {e}", route.path));
        }
        match (route.body, &op.request_body) {
            (None, None) => {}
            (Some(b), Some(rb)) => {
                let rb = rb.resolve(&spec).unwrap_or_else(|e| panic!("{e}"));
                let media = rb.content.get("application/json").expect("json body");
                let schema = object_schema(media.schema.as_ref().expect("schema"), &spec);
                let props: BTreeSet<&str> = schema.properties.keys().map(String::as_str).collect();
                let fields: BTreeSet<&str> = b.fields.iter().map(|f| f.name).collect();
                assert_eq!(props, fields, "{}", route.path);
                let required: BTreeSet<&str> = schema.required.iter().map(String::as_str).collect();
                let req_fields: BTreeSet<&str> =
                    b.fields.iter().filter(|f| f.required).map(|f| f.name).collect();
                assert_eq!(required, req_fields, "{}", route.path);
            }
            (b, rb) => panic!("{}: body {:?} vs {:?}", route.path, b.is_some(), rb.is_some()),
        }
        let query: BTreeSet<String> = op
            .parameters
            .iter()
            .filter_map(|p| p.resolve(&spec).ok())
            .filter(|p| matches!(p.location, oas3::spec::ParameterIn::Query))
            .map(|p| p.name)
            .collect();
        let declared: BTreeSet<String> = route.query.iter().map(|q| q.name.to_owned()).collect();
        assert_eq!(query, declared, "{}", route.path);
        if matches!(route.target, Target::Action(_)) {
            assert!(responses.contains_key("default"), "{}", route.path);
            responses
                .get("413")
                .unwrap_or_else(|| panic!("{}: no 413", route.path))
                .resolve(&spec)
                .unwrap_or_else(|e| panic!("{}: {e}", route.path));
        }
    }

    // Components.
    let components = spec.components.as_ref().expect("components");
    for name in [
        "ServerView",
        "ElementView",
        "JobView",
        "AuditEntry",
        "ErrorBody",
        "access_grp",
        "qos_vals",
        "AddServerRequest",
        "CreateLunRequest",
        "ResizeRequest",
        "PresentRequest",
        "SetQosRequest",
        "CloneRequest",
        "CreateSnapshotRequest",
        "MultiSnapshotRequest",
        "RestoreRequest",
        "CreateGroupRequest",
        "RenameGroupRequest",
        "GroupEntriesRequest",
    ] {
        components
            .schemas
            .get(name)
            .unwrap_or_else(|| panic!("schema {name} missing"))
            .resolve(&spec)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let bearer = components
        .security_schemes
        .get("bearer")
        .expect("bearer scheme")
        .resolve(&spec)
        .expect("bearer");
    let shown = format!("{bearer:?}");
    assert!(shown.contains("bearer"), "{shown}");

    // Raw checks: every $ref resolves, every path parameter is declared.
    let doc: Value = r.json();
    let mut refs = Vec::new();
    walk_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for rf in refs {
        let pointer = rf
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {rf}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {rf}");
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let declared: BTreeSet<&str> = item["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path" && p["required"] == true)
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        assert_eq!(declared, in_path, "{path}");
    }
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

#[test]
fn shutdown_closes_idle_keep_alive_connections_promptly() {
    let s = TestServer::start();
    let addr = s.addr;
    // The agent keeps this connection open and idle.
    assert_eq!(s.get("/metrics").status, 200);
    let t = std::time::Instant::now();
    drop(s);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}
