//! Jira Service Management's contract: the Service Desk API (`/rest/servicedeskapi/request`,
//! its comments and transitions) and JQL search (`/rest/api/2/search`, and Cloud's
//! `/rest/api/3/search/jql`).
//!
//! Enforced: HTTP Basic (`EMAIL` + `API_TOKEN`, Cloud) or `Bearer PAT` (Data Center), else
//! 401; unknown paths 404, wrong methods 405; a request needs `serviceDeskId` and
//! `requestTypeId` (known ones: desk "1" → project SD, request type "10"; desk "2" → OPS,
//! "20"), `requestFieldValues.summary` (≤ 255 chars); only fields on the request type's screen
//! may be set (summary, description, labels, customfield_10050); labels must not contain
//! spaces; a comment needs a body; a transition must be one the request's status offers. Errors
//! are 400 with `{"errorMessage", "i18nErrorMessage"}` (Service Desk API) or
//! `{"errorMessages": [...], "errors": {}}` (platform API). Creates answer 201 with `issueKey`,
//! comments 201, transitions 204.
//!
//! Workflow: "Waiting for support" (category indeterminate) --RESOLVE--> "Resolved" (done)
//! --REOPEN--> "Waiting for support".
//!
//! JQL understood: clauses joined by AND: `labels = "X"`, `statusCategory != Done`,
//! `cf[N] ~ "..."` / `"field" ~ "..."` (`~` is a substring match here: looser than Jira's
//! word search, so a connector must check the exact value itself).
#![allow(dead_code, clippy::unwrap_used)]

use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::contract::{self, ContractServer, Seen, Shared, authorization, basic, query_pairs};

pub const EMAIL: &str = "monitoring@example.com";
pub const API_TOKEN: &str = "ATATT3xFfGF0-token";
pub const PAT: &str = "NjQ2MjE0-pat";
pub const RESOLVE: &str = "761";
pub const REOPEN: &str = "781";
pub const KEY_FIELD: &str = "customfield_10050";
/// (service desk id, project key, request type id).
pub const DESKS: &[(&str, &str, &str)] = &[("1", "SD", "10"), ("2", "OPS", "20")];
const FIELDS: &[&str] = &["summary", "description", "labels", KEY_FIELD];
pub const OPEN: &str = "Waiting for support";
pub const RESOLVED: &str = "Resolved";

#[derive(Debug, Clone)]
pub struct Comment {
    pub body: String,
    pub public: bool,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub issue_id: String,
    pub key: String,
    pub service_desk_id: String,
    pub request_type_id: String,
    pub fields: Map<String, Value>,
    pub status: String,
    pub comments: Vec<Comment>,
}

impl Request {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).and_then(Value::as_str).unwrap_or("")
    }

    pub fn labels(&self) -> Vec<String> {
        self.fields
            .get("labels")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn done(&self) -> bool {
        self.status == RESOLVED
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub requests: Vec<Request>,
}

pub async fn start() -> ContractServer<State> {
    contract::start(handle).await
}

/// The Service Desk API's error answer.
pub fn sd_error(status: u16, message: &str) -> Response {
    contract::error(
        status,
        json!({
            "errorMessage": message,
            "i18nErrorMessage": {"i18nKey": "sd.contract.error", "parameters": []},
        }),
    )
}

/// The platform API's error answer.
pub fn platform_error(status: u16, messages: &[&str]) -> Response {
    contract::error(status, json!({"errorMessages": messages, "errors": {}}))
}

fn handle(seen: &Seen, shared: &Shared<State>) -> Response {
    let segments: Vec<&str> = seen.path.trim_matches('/').split('/').collect();
    let known = matches!(
        segments.as_slice(),
        ["rest", "servicedeskapi", "request"]
            | [
                "rest",
                "servicedeskapi",
                "request",
                _,
                "comment" | "transition"
            ]
            | ["rest", "api", "2", "search"]
            | ["rest", "api", "3", "search", "jql"]
    );
    if !known {
        return contract::error(
            404,
            json!({"message": format!("null for uri: {}", seen.path), "status-code": 404}),
        );
    }
    let auth = authorization(seen);
    if auth != basic(EMAIL, API_TOKEN) && auth != format!("Bearer {PAT}") {
        return platform_error(
            401,
            &["You are not authenticated. Authentication required to perform this operation."],
        );
    }
    let method = seen.method.as_str();
    let not_allowed = || {
        contract::error(
            405,
            json!({"message": "Method Not Allowed", "status-code": 405}),
        )
    };
    match (segments.as_slice(), method) {
        (["rest", "servicedeskapi", "request"], "POST") => {
            with_body(seen, |b| create(seen, shared, b))
        }
        (["rest", "servicedeskapi", "request", key, "comment"], "POST") => {
            with_body(seen, |b| comment(shared, key, b))
        }
        (["rest", "servicedeskapi", "request", key, "transition"], "POST") => {
            with_body(seen, |b| transition(shared, key, b))
        }
        (["rest", "api", ..], "GET") => search(seen, shared),
        _ => not_allowed(),
    }
}

fn with_body(seen: &Seen, then: impl FnOnce(&Map<String, Value>) -> Response) -> Response {
    let content_type = seen
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        // Jira's XSRF check refuses non-JSON posts.
        return contract::error(415, json!({"message": "Unsupported Media Type"}));
    }
    match seen.body.as_object() {
        Some(body) => then(body),
        None => sd_error(400, "The request body is not valid JSON."),
    }
}

fn text<'a>(body: &'a Map<String, Value>, field: &str) -> &'a str {
    body.get(field).and_then(Value::as_str).unwrap_or("")
}

fn create(seen: &Seen, shared: &Shared<State>, body: &Map<String, Value>) -> Response {
    let desk_id = text(body, "serviceDeskId");
    if desk_id.is_empty() {
        return sd_error(400, "serviceDeskId: The service desk ID must be provided.");
    }
    let type_id = text(body, "requestTypeId");
    if type_id.is_empty() {
        return sd_error(400, "requestTypeId: The request type ID must be provided.");
    }
    let Some(&(_, project, desk_type)) = DESKS.iter().find(|(id, _, _)| *id == desk_id) else {
        return sd_error(
            400,
            &format!("serviceDeskId: The service desk with ID {desk_id} does not exist."),
        );
    };
    if desk_type != type_id {
        return sd_error(
            400,
            &format!(
                "requestTypeId: The request type {type_id} does not exist in service desk {desk_id}."
            ),
        );
    }
    let Some(values) = body.get("requestFieldValues").and_then(Value::as_object) else {
        return sd_error(
            400,
            "requestFieldValues: The field values must be provided.",
        );
    };
    let summary = text(values, "summary");
    if summary.trim().is_empty() {
        return sd_error(
            400,
            "requestFieldValues.summary: You must specify a summary of the issue.",
        );
    }
    if summary.chars().count() > 255 || summary.contains('\n') {
        return sd_error(
            400,
            "requestFieldValues.summary: Summary must be less than 255 characters, on one line.",
        );
    }
    for (field, value) in values {
        if !FIELDS.contains(&field.as_str()) {
            return sd_error(
                400,
                &format!(
                    "requestFieldValues.{field}: Field '{field}' cannot be set. It is not on the appropriate screen, or unknown."
                ),
            );
        }
        let ok = match field.as_str() {
            "labels" => value.as_array().is_some_and(|l| {
                l.iter().all(|v| {
                    v.as_str()
                        .is_some_and(|s| !s.is_empty() && !s.contains(' '))
                })
            }),
            _ => value.is_string(),
        };
        if !ok {
            return sd_error(
                400,
                &format!(
                    "requestFieldValues.{field}: invalid value {value} (labels: a list of words without spaces; other fields: text)"
                ),
            );
        }
    }
    let mut state = shared.state.lock().unwrap();
    let n = state
        .requests
        .iter()
        .filter(|r| r.service_desk_id == desk_id)
        .count()
        + 1;
    let request = Request {
        issue_id: (10_000 + state.requests.len() + 1).to_string(),
        key: format!("{project}-{n}"),
        service_desk_id: desk_id.to_string(),
        request_type_id: type_id.to_string(),
        fields: values.clone(),
        status: OPEN.to_string(),
        comments: Vec::new(),
    };
    let host = seen
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("jira");
    let answer = json!({
        "_expands": ["participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action", "comment"],
        "issueId": request.issue_id,
        "issueKey": request.key,
        "requestTypeId": type_id,
        "serviceDeskId": desk_id,
        "createdDate": {"iso8601": "2025-01-01T10:00:00+0000", "epochMillis": 1_735_725_600_000_i64},
        "reporter": {"accountId": "5b10a2844c20165700ede21g", "emailAddress": EMAIL},
        "requestFieldValues": values
            .iter()
            .map(|(k, v)| json!({"fieldId": k, "value": v}))
            .collect::<Vec<_>>(),
        "currentStatus": {"status": OPEN, "statusCategory": "INDETERMINATE"},
        "_links": {
            "web": format!("http://{host}/servicedesk/customer/portal/{desk_id}/{}", request.key),
            "self": format!("http://{host}/rest/servicedeskapi/request/{}", request.issue_id),
        },
    });
    state.requests.push(request);
    contract::json(201, answer)
}

fn find_request<'a>(state: &'a mut State, key: &str) -> Option<&'a mut Request> {
    state
        .requests
        .iter_mut()
        .find(|r| r.key == key || r.issue_id == key)
}

fn comment(shared: &Shared<State>, key: &str, body: &Map<String, Value>) -> Response {
    let text = text(body, "body");
    if text.trim().is_empty() {
        return sd_error(400, "body: The comment body must not be empty.");
    }
    let public = match body.get("public") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => return sd_error(400, &format!("public: {other} is not a boolean.")),
    };
    let mut state = shared.state.lock().unwrap();
    let Some(request) = find_request(&mut state, key) else {
        return sd_error(
            404,
            &format!("The request {key} does not exist or you do not have permission to see it."),
        );
    };
    request.comments.push(Comment {
        body: text.to_string(),
        public,
    });
    contract::json(
        201,
        json!({"id": (request.comments.len() + 20_000).to_string(), "body": text, "public": public,
               "author": {"emailAddress": EMAIL}, "created": {"iso8601": "2025-01-01T10:05:00+0000"}}),
    )
}

fn transition(shared: &Shared<State>, key: &str, body: &Map<String, Value>) -> Response {
    let id = match body.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return sd_error(400, "id: The transition ID must be provided."),
    };
    let note = match body.get("additionalComment") {
        None => None,
        Some(Value::Object(c)) => match c.get("body").and_then(Value::as_str) {
            Some(b) if !b.trim().is_empty() => Some(b.to_string()),
            _ => {
                return sd_error(
                    400,
                    "additionalComment.body: The comment body must not be empty.",
                );
            }
        },
        Some(_) => return sd_error(400, "additionalComment: must be an object with a body."),
    };
    let mut state = shared.state.lock().unwrap();
    let Some(request) = find_request(&mut state, key) else {
        return sd_error(
            404,
            &format!("The request {key} does not exist or you do not have permission to see it."),
        );
    };
    let next = match (request.status.as_str(), id.as_str()) {
        (OPEN, RESOLVE) => RESOLVED,
        (RESOLVED, REOPEN) => OPEN,
        _ => {
            return sd_error(
                400,
                &format!(
                    "id: The transition with ID {id} is not valid for request {key} in status {}.",
                    request.status
                ),
            );
        }
    };
    request.status = next.to_string();
    if let Some(note) = note {
        request.comments.push(Comment {
            body: note,
            public: true,
        });
    }
    Response::builder()
        .status(204)
        .body(axum::body::Body::empty())
        .unwrap()
}

/// One JQL clause.
enum Clause {
    Labels(String),
    NotDone,
    Contains(String, String),
}

/// Reads a JQL string literal at the start of `text`; returns it and the rest.
fn literal(text: &str) -> Option<(String, &str)> {
    let rest = text.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &rest[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

fn parse_jql(jql: &str) -> Result<Vec<Clause>, String> {
    let mut clauses = Vec::new();
    let mut rest = jql.trim();
    loop {
        let clause;
        if let Some(r) = rest.strip_prefix("labels = ") {
            let (value, r) = literal(r).ok_or("labels: expected a quoted value")?;
            clause = Clause::Labels(value);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("statusCategory != Done") {
            clause = Clause::NotDone;
            rest = r;
        } else {
            let (field, r) = if let Some(r) = rest.strip_prefix("cf[") {
                let (n, r) = r.split_once(']').ok_or("cf[: missing ]")?;
                (format!("customfield_{n}"), r)
            } else {
                literal(rest).ok_or_else(|| format!("unexpected {rest:?}"))?
            };
            let r = r.strip_prefix(" ~ ").ok_or("expected ~")?;
            let (value, r) = literal(r).ok_or("~: expected a quoted value")?;
            let phrase = literal(&value).map(|(p, _)| p).unwrap_or(value);
            clause = Clause::Contains(field, phrase);
            rest = r;
        }
        clauses.push(clause);
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(clauses);
        }
        rest = rest
            .strip_prefix("AND ")
            .ok_or_else(|| format!("expected AND at {rest:?}"))?;
    }
}

fn search(seen: &Seen, shared: &Shared<State>) -> Response {
    let params = query_pairs(&seen.query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(jql) = param("jql") else {
        return platform_error(400, &["jql: a query is required here."]);
    };
    let clauses = match parse_jql(&jql) {
        Ok(c) => c,
        Err(e) => return platform_error(400, &[&format!("Error in the JQL Query: {e}")]),
    };
    let max = match param("maxResults").map(|m| m.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) => n,
        Some(Err(_)) => return platform_error(400, &["maxResults: not a number"]),
    };
    let fields: Vec<String> = param("fields")
        .map(|f| f.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let state = shared.state.lock().unwrap();
    let matching: Vec<&Request> = state
        .requests
        .iter()
        .filter(|r| {
            clauses.iter().all(|c| match c {
                Clause::Labels(l) => r.labels().contains(l),
                Clause::NotDone => !r.done(),
                Clause::Contains(f, p) => r.field(f).contains(p.as_str()),
            })
        })
        .collect();
    let issues: Vec<Value> = matching
        .iter()
        .take(max)
        .map(|r| {
            let selected: Map<String, Value> = fields
                .iter()
                .filter(|f| *f != "key")
                .map(|f| (f.clone(), r.fields.get(f).cloned().unwrap_or(Value::Null)))
                .collect();
            json!({"id": r.issue_id, "key": r.key, "self": format!("/rest/api/2/issue/{}", r.issue_id), "fields": selected})
        })
        .collect();
    contract::json(
        200,
        json!({"expand": "names,schema", "startAt": 0, "maxResults": max, "total": matching.len(), "issues": issues}),
    )
}
