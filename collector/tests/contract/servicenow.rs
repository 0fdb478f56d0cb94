//! ServiceNow's contract: the Table API (`/api/now/table/{table}`) and Event Management
//! (`/api/global/em/jsonv2`), with ServiceNow's error body
//! `{"error":{"message","detail"},"status":"failure"}`.
//!
//! Enforced: HTTP Basic (`USER`/`PASSWORD`) or `Bearer TOKEN` (else 401); known tables
//! (`incident`); an unknown URI is 400 "Requested URI does not represent any resource" (as
//! ServiceNow answers), a method the resource lacks 405; JSON bodies (415/400); a new incident
//! needs `short_description`; urgency/impact are 1-3; a resolve (state 6) needs `close_code`
//! and `close_notes` (the data policy most instances have; real instances answer such a data
//! policy refusal with 403 "Operation Failed" and the field in `detail`: here it is a 400
//! naming the field in `message`). An incident is `active` until Closed (7) or Canceled (8).
//! Events need `source`, `node` and a severity 0-5 and `additional_info` as a JSON-object
//! string; alerts are deduplicated by `message_key`, severity 0 closes the alert.
#![allow(dead_code, clippy::unwrap_used)]

use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::contract::{self, ContractServer, Seen, Shared, authorization, basic, query_pairs};

pub const USER: &str = "steward.integration";
pub const PASSWORD: &str = "pa:ss word";
pub const TOKEN: &str = "sn-oauth-token";
pub const TABLES: &[&str] = &["incident"];

#[derive(Debug, Clone)]
pub struct Incident {
    pub table: String,
    pub sys_id: String,
    /// Every field as ServiceNow stores it (strings), `number` and `state` included.
    pub fields: Map<String, Value>,
    /// The work notes journal, oldest first.
    pub work_notes: Vec<String>,
}

impl Incident {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).and_then(Value::as_str).unwrap_or("")
    }

    pub fn active(&self) -> bool {
        !matches!(self.field("state"), "7" | "8")
    }

    fn record(&self) -> Map<String, Value> {
        let mut record = self.fields.clone();
        record.insert("sys_id".into(), json!(self.sys_id));
        record.insert("active".into(), json!(self.active().to_string()));
        record
    }
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub message_key: String,
    pub severity: String,
    /// `Open` or `Closed`.
    pub state: String,
    pub description: String,
    /// Events folded into this alert.
    pub events: usize,
}

#[derive(Debug, Default)]
pub struct State {
    pub incidents: Vec<Incident>,
    /// Every event record received, in order.
    pub events: Vec<Map<String, Value>>,
    pub alerts: Vec<Alert>,
}

impl State {
    pub fn open_alerts(&self) -> Vec<&Alert> {
        self.alerts.iter().filter(|a| a.state == "Open").collect()
    }
}

pub async fn start() -> ContractServer<State> {
    contract::start(handle).await
}

/// ServiceNow's error answer.
pub fn failure(status: u16, message: &str, detail: Option<&str>) -> Response {
    contract::error(
        status,
        json!({"error": {"message": message, "detail": detail}, "status": "failure"}),
    )
}

fn handle(seen: &Seen, shared: &Shared<State>) -> Response {
    let auth = authorization(seen);
    if auth != basic(USER, PASSWORD) && auth != format!("Bearer {TOKEN}") {
        return failure(
            401,
            "User Not Authenticated",
            Some("Required to provide Auth information"),
        );
    }
    if let Some(accept) = seen.headers.get("accept").and_then(|v| v.to_str().ok())
        && !accept.contains("application/json")
        && !accept.contains("*/*")
    {
        return failure(406, "Not Acceptable", Some("only application/json"));
    }
    let segments: Vec<&str> = seen.path.trim_matches('/').split('/').collect();
    let method = seen.method.as_str();
    match segments.as_slice() {
        ["api", "now", "table", table, rest @ ..] if rest.len() <= 1 => {
            if !TABLES.contains(table) {
                return failure(400, &format!("Invalid table {table}"), None);
            }
            match (method, rest.first()) {
                ("GET", None) => list(seen, shared, table),
                ("POST", None) => with_body(seen, |body| insert(seen, shared, table, body)),
                ("GET", Some(id)) => get_one(seen, shared, table, id),
                ("PATCH" | "PUT", Some(id)) => {
                    with_body(seen, |body| patch(seen, shared, table, id, body))
                }
                _ => failure(405, "Method not Supported", Some("see the Table API")),
            }
        }
        ["api", "global", "em", "jsonv2"] => match method {
            "POST" => with_body(seen, |body| events(shared, body)),
            _ => failure(405, "Method not Supported", Some("POST only")),
        },
        _ => failure(400, "Requested URI does not represent any resource", None),
    }
}

fn with_body(seen: &Seen, then: impl FnOnce(&Map<String, Value>) -> Response) -> Response {
    let content_type = seen
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return failure(
            415,
            "Unsupported Media Type",
            Some("the body must be application/json"),
        );
    }
    match seen.body.as_object() {
        Some(body) => then(body),
        None => failure(
            400,
            "Exception while reading request",
            Some("The payload is not valid JSON."),
        ),
    }
}

/// `sysparm_fields` applied to a record.
fn select(seen: &Seen, record: Map<String, Value>) -> Value {
    let fields = query_pairs(&seen.query)
        .into_iter()
        .find(|(k, _)| k == "sysparm_fields")
        .map(|(_, v)| v);
    match fields {
        None => Value::Object(record),
        Some(list) => Value::Object(
            list.split(',')
                .map(|f| {
                    let f = f.trim();
                    (
                        f.to_string(),
                        record.get(f).cloned().unwrap_or_else(|| json!("")),
                    )
                })
                .collect(),
        ),
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A refusal when `field` is given and not 1-3.
fn check_choice(body: &Map<String, Value>, field: &str) -> Option<Response> {
    match body.get(field) {
        None => None,
        Some(v) if matches!(as_text(v).as_deref(), Some("1" | "2" | "3")) => None,
        Some(v) => Some(failure(
            400,
            &format!("Invalid value {v} for field {field}: expected 1, 2 or 3"),
            None,
        )),
    }
}

fn insert(seen: &Seen, shared: &Shared<State>, table: &str, body: &Map<String, Value>) -> Response {
    let short = body
        .get("short_description")
        .and_then(Value::as_str)
        .unwrap_or("");
    if short.trim().is_empty() {
        return failure(
            400,
            "Data Policy Exception: Short description (short_description) is mandatory",
            None,
        );
    }
    for field in ["urgency", "impact"] {
        if let Some(r) = check_choice(body, field) {
            return r;
        }
    }
    let mut state = shared.state.lock().unwrap();
    let n = state.incidents.len() + 1;
    let mut fields = Map::new();
    for (k, v) in body {
        if k == "work_notes" || k == "sys_id" {
            continue;
        }
        if let Some(text) = as_text(v) {
            fields.insert(k.clone(), json!(text));
        }
    }
    fields.insert("number".into(), json!(format!("INC{:07}", 10_000 + n)));
    fields.insert("state".into(), json!("1"));
    let incident = Incident {
        table: table.to_string(),
        sys_id: format!("{:032x}", 0x5e4d_0000_u64 + n as u64),
        fields,
        work_notes: Vec::new(),
    };
    let record = incident.record();
    state.incidents.push(incident);
    contract::json(201, json!({"result": select(seen, record)}))
}

fn list(seen: &Seen, shared: &Shared<State>, table: &str) -> Response {
    let params = query_pairs(&seen.query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut conditions = Vec::new();
    if let Some(query) = param("sysparm_query") {
        for term in query.split('^').filter(|t| !t.is_empty()) {
            let Some((field, value)) = term.split_once('=') else {
                return failure(400, &format!("Unsupported query term {term}"), None);
            };
            conditions.push((field.to_string(), value.to_string()));
        }
    }
    let limit = match param("sysparm_limit").map(str::parse::<usize>) {
        None => usize::MAX,
        Some(Ok(n)) => n,
        Some(Err(_)) => return failure(400, "Invalid sysparm_limit", None),
    };
    let state = shared.state.lock().unwrap();
    let result: Vec<Value> = state
        .incidents
        .iter()
        .filter(|i| i.table == table)
        .map(Incident::record)
        .filter(|r| {
            conditions
                .iter()
                .all(|(f, v)| r.get(f).and_then(Value::as_str) == Some(v.as_str()))
        })
        .take(limit)
        .map(|r| select(seen, r))
        .collect();
    contract::json(200, json!({"result": result}))
}

fn get_one(seen: &Seen, shared: &Shared<State>, table: &str, id: &str) -> Response {
    let state = shared.state.lock().unwrap();
    match state
        .incidents
        .iter()
        .find(|i| i.table == table && i.sys_id == id)
    {
        Some(i) => contract::json(200, json!({"result": select(seen, i.record())})),
        None => no_record(),
    }
}

fn no_record() -> Response {
    failure(
        404,
        "No Record found",
        Some("Record doesn't exist or ACL restricts the record retrieval"),
    )
}

fn patch(
    seen: &Seen,
    shared: &Shared<State>,
    table: &str,
    id: &str,
    body: &Map<String, Value>,
) -> Response {
    for field in ["urgency", "impact"] {
        if let Some(r) = check_choice(body, field) {
            return r;
        }
    }
    let mut state = shared.state.lock().unwrap();
    let Some(incident) = state
        .incidents
        .iter_mut()
        .find(|i| i.table == table && i.sys_id == id)
    else {
        return no_record();
    };
    let mut fields = incident.fields.clone();
    for (k, v) in body {
        if k == "work_notes" || k == "sys_id" || k == "number" {
            continue;
        }
        if let Some(text) = as_text(v) {
            fields.insert(k.clone(), json!(text));
        }
    }
    let resolving = fields.get("state").and_then(Value::as_str) == Some("6");
    if resolving {
        for (field, label) in [
            ("close_code", "Resolution code"),
            ("close_notes", "Resolution notes"),
        ] {
            if fields
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(|v| v.trim().is_empty())
            {
                return failure(
                    400,
                    &format!("Data Policy Exception: {label} ({field}) is mandatory"),
                    None,
                );
            }
        }
    }
    incident.fields = fields;
    if let Some(note) = body.get("work_notes").and_then(Value::as_str)
        && !note.is_empty()
    {
        incident.work_notes.push(note.to_string());
    }
    contract::json(200, json!({"result": select(seen, incident.record())}))
}

fn events(shared: &Shared<State>, body: &Map<String, Value>) -> Response {
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return failure(
            400,
            "Invalid request: records (a list of events) is missing",
            None,
        );
    };
    if records.is_empty() {
        return failure(400, "Invalid request: records is empty", None);
    }
    let mut checked = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let Some(record) = record.as_object() else {
            return failure(400, &format!("records[{i}] is not an object"), None);
        };
        for field in ["source", "node"] {
            if record
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return failure(400, &format!("records[{i}]: {field} is mandatory"), None);
            }
        }
        let severity = record.get("severity").and_then(as_text).unwrap_or_default();
        if !matches!(severity.as_str(), "0" | "1" | "2" | "3" | "4" | "5") {
            return failure(
                400,
                &format!("records[{i}]: severity {severity:?} is not 0-5"),
                None,
            );
        }
        if let Some(info) = record.get("additional_info") {
            let ok = info
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .is_some_and(|v| v.is_object());
            if !ok {
                return failure(
                    400,
                    &format!("records[{i}]: additional_info must be a JSON object in a string"),
                    None,
                );
            }
        }
        checked.push((record.clone(), severity));
    }
    let mut state = shared.state.lock().unwrap();
    let count = checked.len();
    for (record, severity) in checked {
        let text = |f: &str| {
            record
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let key = match text("message_key") {
            k if !k.is_empty() => k,
            _ => ["source", "node", "type", "resource", "metric_name"]
                .map(text)
                .join("_"),
        };
        let description = text("description");
        let open = state
            .alerts
            .iter_mut()
            .find(|a| a.message_key == key && a.state == "Open");
        match (open, severity.as_str()) {
            (Some(alert), "0") => {
                alert.state = "Closed".into();
                alert.severity = severity.clone();
                alert.events += 1;
            }
            (Some(alert), _) => {
                alert.severity = severity.clone();
                alert.description = description;
                alert.events += 1;
            }
            (None, "0") => {}
            (None, _) => state.alerts.push(Alert {
                message_key: key,
                severity: severity.clone(),
                state: "Open".into(),
                description,
                events: 1,
            }),
        }
        state.events.push(record);
    }
    contract::json(
        200,
        json!({"result": {"Default Bulk Endpoint": format!("{count} events were inserted")}}),
    )
}
