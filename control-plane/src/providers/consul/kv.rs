//! The Consul KV provider (`providers.consul`): Traefik's key layout under
//! `rootKey`, read with `GET /v1/kv/<rootKey>?recurse=true` and followed
//! with blocking queries. A 404 is an empty tree. With `namespaces` (Consul
//! Enterprise), one provider per namespace, named `consul-<namespace>`.
//!
//! When Consul cannot be reached or answers with an error, the last
//! configuration sent stays in place; the provider retries with backoff and
//! reports its state at `/api/providers`.

use std::sync::Arc;

use base64::Engine;
use http::StatusCode;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::client::{BlockingQuery, ConsulClient, ConsulError, ConsulResponse, DEFAULT_WAIT};
use crate::config::ConsulConfig;
use crate::providers::backoff::Backoff;
use crate::providers::kv::KeyTree;
use crate::providers::publish::Publisher;
use crate::providers::{ProviderHealthRegistry, ProviderUpdate, SourceError};

/// One entry of `GET /v1/kv/...?recurse=true`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KvPair {
    key: String,
    /// Base64; `null` for an empty value or a folder.
    value: Option<String>,
}

/// Reads Traefik dynamic configuration from Consul's KV store.
#[derive(Debug)]
pub struct ConsulKvProvider {
    name: String,
    root_key: String,
    client: ConsulClient,
    /// `/v1/kv/<rootKey>?recurse=true[&ns=<namespace>]`.
    path: String,
}

impl ConsulKvProvider {
    /// The providers for `providers.consul`: one, or one per namespace.
    pub fn from_config(config: &ConsulConfig) -> Result<Vec<Self>, ConsulError> {
        let client = ConsulClient::new(
            &config.endpoints,
            &config.token,
            None,
            "tls",
            config.tls.as_ref(),
        )?;
        let root_key = config.root_key.trim_matches('/').to_owned();
        let provider = |name: String, namespace: Option<&str>| {
            let mut path = format!("/v1/kv/{root_key}?recurse=true");
            if let Some(namespace) = namespace {
                path.push_str(&format!("&ns={namespace}"));
            }
            Self {
                name,
                root_key: root_key.clone(),
                client: client.clone(),
                path,
            }
        };
        if config.namespaces.is_empty() {
            return Ok(vec![provider("consul".to_owned(), None)]);
        }
        Ok(config
            .namespaces
            .iter()
            .map(|namespace| provider(format!("consul-{namespace}"), Some(namespace)))
            .collect())
    }

    /// The provider's name (`consul`, `consul-<namespace>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the tree once.
    pub async fn load(&mut self) -> Result<ProviderUpdate, ConsulError> {
        let response = self.client.get(&self.path, DEFAULT_WAIT).await?;
        self.update(&response)
    }

    /// Sends the tree, then a fresh update after every change, until
    /// `shutdown`. Failures keep the last update in place and are retried
    /// with backoff.
    pub async fn run(
        mut self,
        updates: mpsc::Sender<ProviderUpdate>,
        health: Arc<ProviderHealthRegistry>,
        shutdown: CancellationToken,
    ) {
        let mut publisher = Publisher::new(&self.name, updates, health);
        let mut query = BlockingQuery::new(self.path.clone(), DEFAULT_WAIT);
        let mut backoff = Backoff::default();
        loop {
            let answer = tokio::select! {
                () = shutdown.cancelled() => return,
                answer = query.next(&mut self.client) => answer,
            };
            match answer.and_then(|response| self.update(&response)) {
                Ok(update) => {
                    backoff.reset();
                    publisher.healthy();
                    if !publisher.publish(update, &shutdown).await {
                        return;
                    }
                }
                Err(error) => {
                    publisher.failed(&error);
                    if !backoff.wait(&shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// The update for one answer of the KV endpoint.
    fn update(&self, response: &ConsulResponse) -> Result<ProviderUpdate, ConsulError> {
        let pairs: Vec<KvPair> = if response.status == StatusCode::NOT_FOUND {
            Vec::new()
        } else {
            response.json()?
        };
        let mut tree = KeyTree::new(&self.root_key, '/');
        let mut errors = Vec::new();
        for pair in pairs {
            let value = match decode_value(pair.value.as_deref()) {
                Ok(value) => value,
                Err(message) => {
                    errors.push(SourceError {
                        location: pair.key,
                        key: None,
                        message,
                    });
                    continue;
                }
            };
            if let Err(error) = tree.insert(&pair.key, &value) {
                errors.push(error);
            }
        }
        let decoded = tree.decode();
        errors.extend(decoded.errors);
        Ok(ProviderUpdate {
            provider: self.name.clone(),
            config: decoded.config,
            errors,
            origins: decoded.origins,
        })
    }
}

/// A KV value as text: base64, then UTF-8.
fn decode_value(value: Option<&str>) -> Result<String, String> {
    let Some(value) = value else {
        return Ok(String::new());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|error| format!("value is not valid base64: {error}"))?;
    String::from_utf8(bytes).map_err(|_| "value is not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::config::Secret;

    fn provider(namespaces: &[&str]) -> Vec<ConsulKvProvider> {
        ConsulKvProvider::from_config(&ConsulConfig {
            token: Secret::from("t"),
            namespaces: namespaces.iter().map(|n| (*n).to_owned()).collect(),
            ..ConsulConfig::default()
        })
        .unwrap()
    }

    fn answer(status: StatusCode, body: &str) -> ConsulResponse {
        ConsulResponse {
            index: 7,
            status,
            body: Bytes::from(body.to_owned()),
            url: "http://consul/v1/kv/traefik?recurse=true".to_owned(),
        }
    }

    #[test]
    fn one_provider_per_namespace() {
        let names: Vec<_> = provider(&[]).iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, ["consul"]);
        let providers = provider(&["a", "b"]);
        let names: Vec<_> = providers.iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, ["consul-a", "consul-b"]);
        assert!(
            providers[1].path.ends_with("&ns=b"),
            "{}",
            providers[1].path
        );
    }

    #[test]
    fn decodes_consul_answers_and_names_bad_values() {
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let body = serde_json::json!([
            {"LockIndex": 0, "Key": "traefik/", "Flags": 0, "Value": null, "CreateIndex": 1, "ModifyIndex": 1},
            {"LockIndex": 0, "Key": "traefik/http/routers/api/rule", "Flags": 0,
             "Value": encode("Host(`a`)"), "CreateIndex": 2, "ModifyIndex": 5},
            {"LockIndex": 0, "Key": "traefik/http/routers/bad/rule", "Flags": 0,
             "Value": "%%%", "CreateIndex": 3, "ModifyIndex": 3},
        ]);
        let providers = provider(&[]);
        let update = providers[0]
            .update(&answer(StatusCode::OK, &body.to_string()))
            .unwrap();
        assert_eq!(update.provider, "consul");
        let routers = &update.config.http.as_ref().unwrap().routers;
        assert_eq!(routers["api"].rule, "Host(`a`)");
        assert!(!routers.contains_key("bad"));
        assert_eq!(update.errors.len(), 1);
        assert_eq!(update.errors[0].location, "traefik/http/routers/bad/rule");

        let empty = providers[0]
            .update(&answer(StatusCode::NOT_FOUND, ""))
            .unwrap();
        assert_eq!(empty.config, Default::default());
        let error = providers[0]
            .update(&answer(StatusCode::OK, "{"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unexpected answer"), "{error}");
    }
}
