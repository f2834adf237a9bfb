//! The HTTP side of the fake API server: paths, list, watch, status patch.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::selector::Selector;
use super::{ApiServer, Change, RESOURCES, ResourceType, object_key};

/// How often a watch with `allowWatchBookmarks` gets a bookmark.
const BOOKMARK_INTERVAL: Duration = Duration::from_millis(500);

type Body = BoxBody<Bytes, Infallible>;

pub(super) fn serve(listener: TcpListener, server: Arc<ApiServer>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let server = Arc::clone(&server);
            connections.spawn(async move {
                let service = service_fn(move |request| {
                    let server = Arc::clone(&server);
                    async move { Ok::<_, Infallible>(handle(&server, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// What a path names.
struct Target {
    resource: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

async fn handle(server: &Arc<ApiServer>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let query = parse_query(request.uri().query().unwrap_or(""));
    let Some(target) = parse_path(&path) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
        );
    };
    let selectors = (
        Selector::parse(query.get("labelSelector").map_or("", String::as_str)),
        Selector::parse(query.get("fieldSelector").map_or("", String::as_str)),
    );
    let (labels, fields) = match selectors {
        (Ok(labels), Ok(fields)) => (labels, fields),
        (Err(message), _) | (_, Err(message)) => {
            return status(StatusCode::BAD_REQUEST, "BadRequest", &message);
        }
    };
    let filter = Filter {
        plural: target.resource.plural,
        namespace: target.namespace.clone(),
        labels,
        fields,
    };
    match (request.method().clone(), &target.name) {
        (Method::GET, None)
            if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) =>
        {
            watch(server, &target.resource, filter, &query)
        }
        (Method::GET, None) => list(server, &target.resource, &filter),
        (Method::GET, Some(name)) => {
            let state = server.state.lock().unwrap();
            let key = (target.namespace.clone().unwrap_or_default(), name.clone());
            match state
                .objects
                .get(target.resource.plural)
                .and_then(|o| o.get(&key))
            {
                Some(object) => json_response(StatusCode::OK, &typed(object, &target.resource)),
                None => not_found(&target.resource, name),
            }
        }
        (Method::PATCH, Some(name)) if target.status => {
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the patch is not JSON",
                );
            };
            patch_status(server, &target, name, &patch)
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
    }
}

/// `/api/v1/...` or `/apis/<group>/<version>/...`, then
/// `[namespaces/<ns>/]<plural>[/<name>[/status]]`.
fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
            (Some((*namespace).to_owned()), rest)
        }
        rest => (None, rest),
    };
    let (plural, name, status) = match rest {
        [plural] => (*plural, None, false),
        [plural, name] => (*plural, Some((*name).to_owned()), false),
        [plural, name, "status"] => (*plural, Some((*name).to_owned()), true),
        _ => return None,
    };
    let resource = *RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)?;
    if namespace.is_some() && !resource.namespaced {
        return None;
    }
    Some(Target {
        resource,
        namespace,
        name,
        status,
    })
}

/// Which objects a list or watch sees.
struct Filter {
    plural: &'static str,
    namespace: Option<String>,
    labels: Selector,
    fields: Selector,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        let in_namespace = self
            .namespace
            .as_ref()
            .is_none_or(|namespace| object_key(object).0 == *namespace);
        in_namespace && self.labels.matches_labels(object) && self.fields.matches_fields(object)
    }

    /// The watch event a change is for this filter, if any.
    fn event(&self, change: &Change, resource: &ResourceType) -> Option<Value> {
        if change.plural != self.plural {
            return None;
        }
        let old = change.old.as_ref().is_some_and(|o| self.matches(o));
        let (kind, object) = match &change.new {
            Some(new) if self.matches(new) => (if old { "MODIFIED" } else { "ADDED" }, new.clone()),
            Some(new) if old => ("DELETED", new.clone()),
            None if old => {
                let mut last = change.old.clone()?;
                last["metadata"]["resourceVersion"] = json!(change.resource_version.to_string());
                ("DELETED", last)
            }
            _ => return None,
        };
        Some(json!({"type": kind, "object": typed(&object, resource)}))
    }
}

fn list(server: &ApiServer, resource: &ResourceType, filter: &Filter) -> Response<Body> {
    let mut state = server.state.lock().unwrap();
    *state.lists.entry(resource.plural).or_default() += 1;
    let items: Vec<Value> = state
        .objects
        .get(resource.plural)
        .into_iter()
        .flat_map(BTreeMap::values)
        .filter(|object| filter.matches(object))
        .map(|object| {
            let mut item = object.clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": {"resourceVersion": state.resource_version.to_string()},
            "items": items,
        }),
    )
}

fn watch(
    server: &Arc<ApiServer>,
    resource: &ResourceType,
    filter: Filter,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let requested: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let (sender, receiver) = mpsc::channel::<Bytes>(64);
    let mut replay = Vec::new();
    let (mut live, mut last) = {
        let state = server.state.lock().unwrap();
        let live = server.changes.subscribe();
        if requested == 0 {
            for object in state
                .objects
                .get(resource.plural)
                .into_iter()
                .flat_map(BTreeMap::values)
            {
                if filter.matches(object) {
                    replay.push(json!({"type": "ADDED", "object": typed(object, resource)}));
                }
            }
        } else if requested <= state.compacted {
            let message = format!(
                "too old resource version: {requested} ({})",
                state.compacted
            );
            replay
                .push(json!({"type": "ERROR", "object": status_object(410, "Expired", &message)}));
            let body = lines(&replay);
            return Response::new(Full::new(body).boxed());
        } else {
            for change in state
                .history
                .iter()
                .filter(|c| c.resource_version > requested)
            {
                replay.extend(filter.event(change, resource));
            }
        }
        (live, state.resource_version)
    };
    let resource = *resource;
    tokio::spawn(async move {
        if !replay.is_empty() && sender.send(lines(&replay)).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        loop {
            let line = tokio::select! {
                () = &mut deadline => return,
                () = sender.closed() => return,
                _ = ticker.tick(), if bookmarks => json!({
                    "type": "BOOKMARK",
                    "object": {
                        "kind": resource.kind,
                        "apiVersion": resource.api_version(),
                        "metadata": {"resourceVersion": last.to_string()},
                    },
                }),
                change = live.recv() => match change {
                    Ok(change) if change.resource_version > last => {
                        last = change.resource_version;
                        match filter.event(&change, &resource) {
                            Some(event) => event,
                            None => continue,
                        }
                    }
                    Ok(_) => continue,
                    // Too slow a reader: end the watch, the client resumes.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
            };
            if sender.send(lines(&[line])).await.is_err() {
                return;
            }
        }
    });
    let stream = ReceiverStream::new(receiver).map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    Response::builder()
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("watch response")
}

fn patch_status(server: &ApiServer, target: &Target, name: &str, patch: &Value) -> Response<Body> {
    let mut state = server.state.lock().unwrap();
    let key = (
        target.namespace.clone().unwrap_or_default(),
        name.to_owned(),
    );
    let Some(old) = state
        .objects
        .get(target.resource.plural)
        .and_then(|o| o.get(&key))
        .cloned()
    else {
        return not_found(&target.resource, name);
    };
    let mut new = old.clone();
    if let Some(status) = patch.get("status") {
        merge(&mut new["status"], status);
    }
    state.resource_version += 1;
    let version = state.resource_version;
    new["metadata"]["resourceVersion"] = json!(version.to_string());
    state
        .objects
        .entry(target.resource.plural)
        .or_default()
        .insert(key, new.clone());
    server.record(
        &mut state,
        Change {
            resource_version: version,
            plural: target.resource.plural,
            old: Some(old),
            new: Some(new.clone()),
        },
    );
    json_response(StatusCode::OK, &typed(&new, &target.resource))
}

/// JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(entries) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (key, value) in entries {
                if value.is_null() {
                    target.as_object_mut().map(|t| t.remove(key));
                } else {
                    merge(&mut target[key.as_str()], value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The object with its `kind` and `apiVersion`.
fn typed(object: &Value, resource: &ResourceType) -> Value {
    let mut object = object.clone();
    object["kind"] = json!(resource.kind);
    object["apiVersion"] = json!(resource.api_version());
    object
}

fn lines(events: &[Value]) -> Bytes {
    let mut text = String::new();
    for event in events {
        text.push_str(&event.to_string());
        text.push('\n');
    }
    Bytes::from(text)
}

fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    json_response(code, &status_object(code.as_u16(), reason, message))
}

fn not_found(resource: &ResourceType, name: &str) -> Response<Body> {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!(
            "{}.{} \"{name}\" not found",
            resource.plural, resource.group
        ),
    )
}

fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("response")
}

/// Query parameters, percent-decoded.
fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                match u8::from_str_radix(&text[index + 1..index + 3], 16) {
                    Ok(byte) => {
                        decoded.push(byte);
                        index += 2;
                    }
                    Err(_) => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
