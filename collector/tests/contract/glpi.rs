//! GLPI's apirest.php contract: initSession with `Authorization: user_token T` or Basic (and
//! the App-Token when one is configured), every other call with a live `Session-Token`,
//! killSession; Ticket create/update, ITILFollowup, Item_Ticket, and the search engine for
//! Ticket (name contains, status equals / notold) and assets (serial equals). Errors are GLPI's
//! arrays `["ERROR_...", "message"]`.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::contract::{
    ContractServer, Seen, Shared, authorization, basic, error, json, query_pairs, start,
};

pub const SOLVED: i64 = 5;

#[derive(Debug, Clone, Default)]
pub struct GlpiTicket {
    pub name: String,
    pub content: String,
    pub urgency: i64,
    pub entities_id: i64,
    pub status: i64,
    pub followups: Vec<String>,
    /// (itemtype, items_id) linked through Item_Ticket.
    pub items: Vec<(String, i64)>,
    pub input: Value,
}

#[derive(Debug, Default)]
pub struct State {
    pub user_token: String,
    /// (user, password) accepted as Basic auth on initSession.
    pub basic: Option<(String, String)>,
    pub app_token: Option<String>,
    pub live_sessions: BTreeSet<String>,
    pub opened: usize,
    pub killed: usize,
    pub tickets: BTreeMap<i64, GlpiTicket>,
    /// (itemtype, id, serial).
    pub assets: Vec<(String, i64, String)>,
    pub next_id: i64,
}

pub async fn start_glpi(user_token: &str, app_token: Option<&str>) -> ContractServer<State> {
    let server = start(handle).await;
    {
        let mut state = server.shared.state.lock().unwrap();
        state.user_token = user_token.to_string();
        state.app_token = app_token.map(str::to_string);
        state.next_id = 100;
    }
    server
}

fn glpi_error(status: u16, code: &str, message: &str) -> Response {
    error(status, json!([code, message]))
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).and_then(|v| v.to_str().ok())
}

fn handle(seen: &Seen, shared: &Shared<State>) -> Response {
    let Some(path) = seen.path.strip_prefix("/apirest.php") else {
        return glpi_error(404, "ERROR_RESOURCE_NOT_FOUND", "not apirest.php");
    };
    let mut state = shared.state.lock().unwrap();
    if let Some(app_token) = state.app_token.clone()
        && header(seen, "app-token") != Some(app_token.as_str())
    {
        return glpi_error(
            400,
            "ERROR_WRONG_APP_TOKEN_PARAMETER",
            "parameter app_token seems wrong",
        );
    }
    if path == "/initSession" {
        if seen.method != "GET" && seen.method != "POST" {
            return glpi_error(405, "ERROR_METHOD_NOT_ALLOWED", "initSession");
        }
        let auth = authorization(seen);
        let ok = if let Some(token) = auth.strip_prefix("user_token ") {
            token == state.user_token
        } else if auth.starts_with("Basic ") {
            state
                .basic
                .as_ref()
                .is_some_and(|(u, p)| auth == basic(u, p))
        } else {
            return glpi_error(
                400,
                "ERROR_LOGIN_PARAMETERS_MISSING",
                "parameter(s) login, password or user_token are missing",
            );
        };
        if !ok {
            return glpi_error(
                401,
                "ERROR_GLPI_LOGIN_USER_TOKEN",
                "parameter user_token seems invalid",
            );
        }
        state.opened += 1;
        let token = format!("sess{:08}", state.opened * 7919);
        state.live_sessions.insert(token.clone());
        return json(200, json!({"session_token": token}));
    }
    let Some(session) = header(seen, "session-token") else {
        return glpi_error(
            400,
            "ERROR_SESSION_TOKEN_MISSING",
            "parameter session_token is missing or empty",
        );
    };
    if !state.live_sessions.contains(session) {
        return glpi_error(
            401,
            "ERROR_SESSION_TOKEN_INVALID",
            "session_token seems invalid",
        );
    }
    let session = session.to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (seen.method.as_str(), segments.as_slice()) {
        ("GET", ["killSession"]) => {
            state.live_sessions.remove(&session);
            state.killed += 1;
            axum::http::StatusCode::OK.into_response()
        }
        (_, ["killSession"]) => glpi_error(405, "ERROR_METHOD_NOT_ALLOWED", "killSession"),
        ("POST", ["Ticket"]) => {
            let input = match input(seen) {
                Ok(input) => input,
                Err(r) => return r,
            };
            for field in ["name", "content"] {
                if input
                    .get(field)
                    .and_then(Value::as_str)
                    .is_none_or(|s| s.trim().is_empty())
                {
                    return glpi_error(
                        400,
                        "ERROR_GLPI_ADD",
                        &format!("Mandatory fields are not filled. Please correct: {field}"),
                    );
                }
            }
            state.next_id += 1;
            let id = state.next_id;
            state.tickets.insert(
                id,
                GlpiTicket {
                    name: input["name"].as_str().unwrap().to_string(),
                    content: input["content"].as_str().unwrap().to_string(),
                    urgency: input.get("urgency").and_then(Value::as_i64).unwrap_or(3),
                    entities_id: input
                        .get("entities_id")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                    status: 1,
                    input: Value::Object(input.clone()),
                    ..Default::default()
                },
            );
            json(201, json!({"id": id, "message": ""}))
        }
        ("PUT" | "PATCH", ["Ticket", id]) => {
            let input = match input(seen) {
                Ok(input) => input,
                Err(r) => return r,
            };
            let Some(ticket) = id
                .parse::<i64>()
                .ok()
                .and_then(|id| state.tickets.get_mut(&id))
            else {
                return glpi_error(404, "ERROR_ITEM_NOT_FOUND", "Item not found");
            };
            if let Some(status) = input.get("status") {
                match status.as_i64() {
                    Some(s @ 1..=6) => ticket.status = s,
                    _ => {
                        return glpi_error(
                            400,
                            "ERROR_GLPI_UPDATE",
                            "status is not a valid status",
                        );
                    }
                }
            }
            json(200, json!([{ id.to_string(): true, "message": "" }]))
        }
        (_, ["Ticket"] | ["Ticket", _]) => glpi_error(405, "ERROR_METHOD_NOT_ALLOWED", "Ticket"),
        ("POST", ["ITILFollowup"]) => {
            let input = match input(seen) {
                Ok(input) => input,
                Err(r) => return r,
            };
            if input.get("itemtype").and_then(Value::as_str) != Some("Ticket") {
                return glpi_error(
                    400,
                    "ERROR_GLPI_ADD",
                    "Mandatory fields are not filled. Please correct: itemtype",
                );
            }
            let Some(ticket) = input
                .get("items_id")
                .and_then(Value::as_i64)
                .and_then(|id| state.tickets.get_mut(&id))
            else {
                return glpi_error(
                    400,
                    "ERROR_GLPI_ADD",
                    "Mandatory fields are not filled. Please correct: items_id",
                );
            };
            let Some(content) = input
                .get("content")
                .and_then(Value::as_str)
                .filter(|c| !c.trim().is_empty())
            else {
                return glpi_error(
                    400,
                    "ERROR_GLPI_ADD",
                    "Mandatory fields are not filled. Please correct: content",
                );
            };
            if ticket.status == 6 {
                return glpi_error(
                    400,
                    "ERROR_GLPI_ADD",
                    "You don't have permission to perform this action.",
                );
            }
            ticket.followups.push(content.to_string());
            state.next_id += 1;
            json(201, json!({"id": state.next_id, "message": ""}))
        }
        ("POST", ["Item_Ticket"]) => {
            let input = match input(seen) {
                Ok(input) => input,
                Err(r) => return r,
            };
            let (Some(items_id), Some(itemtype), Some(tickets_id)) = (
                input.get("items_id").and_then(Value::as_i64),
                input.get("itemtype").and_then(Value::as_str),
                input.get("tickets_id").and_then(Value::as_i64),
            ) else {
                return glpi_error(
                    400,
                    "ERROR_GLPI_ADD",
                    "Mandatory fields are not filled. Please correct: items_id, itemtype, tickets_id",
                );
            };
            if !state
                .assets
                .iter()
                .any(|(t, id, _)| t == itemtype && *id == items_id)
            {
                return glpi_error(400, "ERROR_GLPI_ADD", "items_id: item not found");
            }
            let Some(ticket) = state.tickets.get_mut(&tickets_id) else {
                return glpi_error(400, "ERROR_GLPI_ADD", "tickets_id: ticket not found");
            };
            ticket.items.push((itemtype.to_string(), items_id));
            state.next_id += 1;
            json(201, json!({"id": state.next_id, "message": ""}))
        }
        ("GET", ["search", itemtype]) => search(&state, itemtype, &seen.query),
        (_, ["search", _]) => glpi_error(405, "ERROR_METHOD_NOT_ALLOWED", "search"),
        (_, [other, ..]) if matches!(*other, "ITILFollowup" | "Item_Ticket") => {
            glpi_error(405, "ERROR_METHOD_NOT_ALLOWED", other)
        }
        _ => glpi_error(
            400,
            "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM",
            "resource not found or not an instance of CommonDBTM",
        ),
    }
}

/// `{"input": {...}}` of a POST/PUT.
fn input(seen: &Seen) -> Result<&serde_json::Map<String, Value>, Response> {
    seen.body
        .get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| glpi_error(400, "ERROR_BAD_ARRAY", "input parameter must be an object"))
}

struct Criterion {
    field: String,
    searchtype: String,
    value: String,
}

fn search(state: &State, itemtype: &str, query: &str) -> Response {
    let pairs = query_pairs(query);
    let mut criteria: BTreeMap<String, Criterion> = BTreeMap::new();
    let mut display: Vec<String> = Vec::new();
    for (key, value) in &pairs {
        if let Some(rest) = key.strip_prefix("criteria[") {
            let Some((index, field)) = rest.split_once("][") else {
                return glpi_error(400, "ERROR_BAD_ARRAY", "criteria");
            };
            let c = criteria.entry(index.to_string()).or_insert(Criterion {
                field: String::new(),
                searchtype: String::new(),
                value: String::new(),
            });
            match field.trim_end_matches(']') {
                "field" => c.field = value.clone(),
                "searchtype" => c.searchtype = value.clone(),
                "value" => c.value = value.clone(),
                "link" => {}
                other => {
                    return glpi_error(400, "ERROR_BAD_ARRAY", &format!("criteria key {other}"));
                }
            }
        } else if key.starts_with("forcedisplay[") {
            display.push(value.clone());
        }
    }
    // Rows of (id, name, serial, status).
    let rows: Vec<(i64, String, String, i64)> = if itemtype == "Ticket" {
        state
            .tickets
            .iter()
            .map(|(id, t)| (*id, t.name.clone(), String::new(), t.status))
            .collect()
    } else if matches!(
        itemtype,
        "Computer" | "NetworkEquipment" | "Printer" | "Peripheral"
    ) {
        state
            .assets
            .iter()
            .filter(|(t, _, _)| t == itemtype)
            .map(|(_, id, serial)| (*id, format!("{itemtype}-{id}"), serial.clone(), 0))
            .collect()
    } else {
        return glpi_error(
            400,
            "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM",
            "itemtype not found",
        );
    };
    let mut data = Vec::new();
    'rows: for (id, name, serial, status) in rows {
        for c in criteria.values() {
            let ok = match (c.field.as_str(), c.searchtype.as_str()) {
                ("1", "contains") => name.to_lowercase().contains(&c.value.to_lowercase()),
                ("1", "equals") => name == c.value,
                ("2", "equals") => id.to_string() == c.value,
                ("5", "equals") if itemtype != "Ticket" => serial == c.value,
                ("12", "equals") if itemtype == "Ticket" => match c.value.as_str() {
                    "notold" => status < SOLVED,
                    "old" => status >= SOLVED,
                    "all" => true,
                    v => v == status.to_string(),
                },
                (field, searchtype) => {
                    return glpi_error(
                        400,
                        "ERROR_GLPI_SEARCH",
                        &format!("unsupported criterion field {field} searchtype {searchtype}"),
                    );
                }
            };
            if !ok {
                continue 'rows;
            }
        }
        // GLPI always shows the name (1); forced fields come beside it.
        let mut row = serde_json::Map::new();
        row.insert("1".into(), json!(name));
        for f in &display {
            match f.as_str() {
                "2" => row.insert("2".into(), json!(id)),
                "5" => row.insert("5".into(), json!(serial)),
                "12" => row.insert("12".into(), json!(status)),
                _ => None,
            };
        }
        data.push(Value::Object(row));
    }
    let count = data.len();
    let mut body = json!({"totalcount": count, "count": count, "sort": [1], "order": ["ASC"]});
    if count > 0 {
        body["data"] = Value::Array(data);
    }
    json(200, body)
}
