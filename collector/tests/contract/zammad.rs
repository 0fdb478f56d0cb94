//! Zammad's REST API contract: `Authorization: Token token=T` (or `Bearer T`, or Basic),
//! tickets created with title, group, customer and a first article, articles, state changes
//! by name, and the search API in both answer forms (ids + assets; `expand=true`: tickets).
//! Errors are `{"error": "...", "error_human": "..."}` with 401, 404 or 422.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Value, json};

use crate::contract::{
    ContractServer, Seen, Shared, authorization, basic, error, json, query_pairs, start,
};

/// Zammad's default ticket states (id, name).
pub const STATES: &[(i64, &str)] = &[
    (1, "new"),
    (2, "open"),
    (3, "pending reminder"),
    (4, "closed"),
    (5, "merged"),
    (6, "removed"),
    (7, "pending close"),
];

#[derive(Debug, Clone, Default)]
pub struct Article {
    pub subject: String,
    pub body: String,
    pub kind: String,
    pub internal: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ZammadTicket {
    pub number: String,
    pub title: String,
    pub group: String,
    pub customer: String,
    pub state: String,
    pub articles: Vec<Article>,
}

#[derive(Debug, Default)]
pub struct State {
    pub token: String,
    pub basic: Option<(String, String)>,
    pub groups: Vec<String>,
    pub customers: Vec<String>,
    pub tickets: BTreeMap<i64, ZammadTicket>,
    pub next_id: i64,
    /// Answer searches in the `expand=true` form (a plain array) even when not asked.
    pub always_expand: bool,
}

pub async fn start_zammad(token: &str) -> ContractServer<State> {
    let server = start(handle).await;
    {
        let mut state = server.shared.state.lock().unwrap();
        state.token = token.to_string();
        state.groups = vec!["Users".into(), "Ops".into()];
        state.customers = vec!["monitoring@example.com".into()];
        state.next_id = 0;
    }
    server
}

fn zammad_error(status: u16, message: &str) -> Response {
    error(status, json!({"error": message, "error_human": message}))
}

fn state_id(name: &str) -> Option<i64> {
    STATES.iter().find(|(_, n)| *n == name).map(|(id, _)| *id)
}

fn handle(seen: &Seen, shared: &Shared<State>) -> Response {
    let mut state = shared.state.lock().unwrap();
    let auth = authorization(seen);
    let ok = if let Some(token) = auth
        .strip_prefix("Token token=")
        .or_else(|| auth.strip_prefix("Bearer "))
    {
        token == state.token
    } else if auth.starts_with("Basic ") {
        state
            .basic
            .as_ref()
            .is_some_and(|(u, p)| auth == basic(u, p))
    } else {
        false
    };
    if !ok {
        return zammad_error(401, "Invalid token!");
    }
    let Some(path) = seen.path.strip_prefix("/api/v1/") else {
        return zammad_error(
            404,
            &format!("No route matches [{}] {}", seen.method, seen.path),
        );
    };
    let segments: Vec<&str> = path.split('/').collect();
    match (seen.method.as_str(), segments.as_slice()) {
        ("POST", ["tickets"]) => create(seen, &mut state),
        ("GET", ["tickets", "search"]) => search(seen, &state),
        ("GET", ["tickets", id]) => match id.parse().ok().and_then(|id| state.tickets.get(&id)) {
            Some(t) => json(200, ticket_json(id.parse().unwrap(), t, false)),
            None => zammad_error(404, &format!("Couldn't find Ticket with 'id'={id}")),
        },
        ("PUT", ["tickets", id]) => {
            let Some(id) = id
                .parse::<i64>()
                .ok()
                .filter(|id| state.tickets.contains_key(id))
            else {
                return zammad_error(404, &format!("Couldn't find Ticket with 'id'={id}"));
            };
            let Some(body) = seen.body.as_object() else {
                return zammad_error(422, "the body must be a JSON object");
            };
            if let Some(name) = body.get("state") {
                let name = name.as_str().unwrap_or("");
                if state_id(name).is_none() {
                    return zammad_error(
                        422,
                        &format!("No lookup value found for 'state': {name:?}"),
                    );
                }
                state.tickets.get_mut(&id).unwrap().state = name.to_string();
            }
            json(200, ticket_json(id, &state.tickets[&id], false))
        }
        (_, ["tickets"] | ["tickets", _]) => zammad_error(405, "method not allowed"),
        ("POST", ["ticket_articles"]) => {
            let Some(body) = seen.body.as_object() else {
                return zammad_error(422, "the body must be a JSON object");
            };
            let Some(id) = body
                .get("ticket_id")
                .and_then(Value::as_i64)
                .filter(|id| state.tickets.contains_key(id))
            else {
                return zammad_error(422, "Attribute 'ticket_id' required or unknown!");
            };
            let article = match article(body) {
                Ok(a) => a,
                Err(r) => return r,
            };
            let ticket = state.tickets.get_mut(&id).unwrap();
            ticket.articles.push(article);
            let article_id = ticket.articles.len();
            json(
                201,
                json!({"id": article_id, "ticket_id": id, "type": "note"}),
            )
        }
        (_, ["ticket_articles"]) => zammad_error(405, "method not allowed"),
        _ => zammad_error(
            404,
            &format!("No route matches [{}] {}", seen.method, seen.path),
        ),
    }
}

fn article(body: &serde_json::Map<String, Value>) -> Result<Article, Response> {
    let Some(text) = body
        .get("body")
        .and_then(Value::as_str)
        .filter(|b| !b.trim().is_empty())
    else {
        return Err(zammad_error(422, "Attribute 'body' required!"));
    };
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("note");
    if !matches!(kind, "note" | "email" | "phone" | "web") {
        return Err(zammad_error(
            422,
            &format!("No lookup value found for 'type': {kind:?}"),
        ));
    }
    Ok(Article {
        subject: body
            .get("subject")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        body: text.to_string(),
        kind: kind.to_string(),
        internal: body
            .get("internal")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn create(seen: &Seen, state: &mut State) -> Response {
    let Some(body) = seen.body.as_object() else {
        return zammad_error(422, "the body must be a JSON object");
    };
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
    };
    let Some(title) = text("title") else {
        return zammad_error(422, "Attribute 'title' required!");
    };
    let Some(group) = text("group") else {
        return zammad_error(422, "Attribute 'group' required!");
    };
    if !state.groups.contains(&group) {
        return zammad_error(
            422,
            &format!("No lookup value found for 'group': {group:?}"),
        );
    }
    let Some(customer) = text("customer") else {
        return zammad_error(422, "Attribute 'customer' required!");
    };
    if !state.customers.contains(&customer) {
        return zammad_error(
            422,
            &format!("No lookup value found for 'customer': {customer:?}"),
        );
    }
    let Some(first) = body.get("article").and_then(Value::as_object) else {
        return zammad_error(422, "Attribute 'article' required!");
    };
    let first = match article(first) {
        Ok(a) => a,
        Err(r) => return r,
    };
    state.next_id += 1;
    let id = state.next_id;
    let ticket = ZammadTicket {
        number: format!("{}", 31000 + id),
        title,
        group,
        customer,
        state: "new".into(),
        articles: vec![first],
    };
    let answer = ticket_json(id, &ticket, false);
    state.tickets.insert(id, ticket);
    json(201, answer)
}

fn ticket_json(id: i64, t: &ZammadTicket, expand: bool) -> Value {
    let mut v = json!({
        "id": id,
        "number": t.number,
        "title": t.title,
        "group_id": 1,
        "state_id": state_id(&t.state).unwrap_or(1),
        "article_count": t.articles.len(),
    });
    if expand {
        v["state"] = json!(t.state);
        v["group"] = json!(t.group);
        v["customer"] = json!(t.customer);
    }
    v
}

fn search(seen: &Seen, state: &State) -> Response {
    let pairs = query_pairs(&seen.query);
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let Some(query) = get("query").filter(|q| !q.trim().is_empty()) else {
        return zammad_error(422, "Attribute 'query' required!");
    };
    let limit: usize = get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let expand = get("expand").as_deref() == Some("true") || state.always_expand;
    let needle = query.to_lowercase();
    let found: Vec<(i64, &ZammadTicket)> = state
        .tickets
        .iter()
        .rev()
        .filter(|(_, t)| t.title.to_lowercase().contains(&needle) || t.number == query)
        .take(limit)
        .map(|(id, t)| (*id, t))
        .collect();
    if expand {
        return json(
            200,
            Value::Array(
                found
                    .iter()
                    .map(|(id, t)| ticket_json(*id, t, true))
                    .collect(),
            ),
        );
    }
    let mut tickets = serde_json::Map::new();
    let mut states = serde_json::Map::new();
    for (id, t) in &found {
        tickets.insert(id.to_string(), ticket_json(*id, t, false));
        let sid = state_id(&t.state).unwrap_or(1);
        states.insert(sid.to_string(), json!({"id": sid, "name": t.state}));
    }
    json(
        200,
        json!({
            "tickets": found.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            "tickets_count": found.len(),
            "assets": {"Ticket": tickets, "TicketState": states},
        }),
    )
}
