//! The Redis provider (`providers.redis`): Traefik's key layout under
//! `rootKey`, each value a Redis string at its full path
//! (`traefik/http/routers/api/rule`), as Traefik's Redis provider stores it.
//!
//! The provider subscribes to the keyspace notifications of the keys under
//! `<rootKey>/` (`PSUBSCRIBE __keyspace@<db>__:<rootKey>/*`), then reads every
//! key with `SCAN` and `MGET` (never `KEYS`, which blocks the server). A
//! notification names a key that changed: bursts are coalesced and the named
//! keys read again with `MGET` (a key that is gone is removed).
//!
//! Redis only sends notifications when `notify-keyspace-events` enables them
//! (`KEA`, or at least `K$gx`), which Traefik also requires. When they are
//! off, or `CONFIG GET` is refused, the provider says so in its log and reads
//! everything again every [`POLL_INTERVAL`] instead.
//!
//! When Redis cannot be reached or fails, the last configuration sent stays
//! in place; the provider retries with backoff (trying the next endpoint)
//! and reports its state at `/api/providers`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::kv;
use super::publish::Publisher;
use super::tls::{ProviderTlsError, client_config, read};
use super::{ProviderHealthRegistry, ProviderUpdate};
use crate::config::{ProviderTlsConfig, RedisConfig};

/// The provider name, qualifying resource names (`api@redis`).
const PROVIDER: &str = "redis";

/// How long connecting to one endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one command may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Without keyspace notifications, everything is read again this often.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(3);

/// After a notification, wait this long for more before reading...
const QUIET_PERIOD: Duration = Duration::from_millis(10);

/// ...but read at the latest this long after the first.
const MAX_DELAY: Duration = Duration::from_millis(100);

/// Keys asked for per `SCAN` and per `MGET`.
const BATCH: usize = 1000;

/// Why the Redis provider cannot be created, or lost Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// An endpoint is not `host:port`.
    #[error("invalid Redis endpoint `{endpoint}`: {reason}")]
    Endpoint {
        /// The endpoint as written.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No endpoint is configured.
    #[error("no Redis endpoint is configured")]
    NoEndpoint,
    /// Sentinel settings are present.
    #[error(
        "sentinel: Redis Sentinel is not supported; list the master's address in `endpoints` instead"
    )]
    Sentinel,
    /// The `tls` options cannot be used.
    #[error(transparent)]
    Tls(#[from] ProviderTlsError),
    /// The client could not be set up from the settings.
    #[error("Redis endpoint `{endpoint}`: {source}")]
    Client {
        /// The endpoint.
        endpoint: String,
        /// The client's reason.
        #[source]
        source: redis::RedisError,
    },
    /// A command failed or the connection was lost.
    #[error("Redis {command} at {endpoint}: {source}")]
    Command {
        /// What was sent (`connect`, `SCAN`, `MGET`, `PSUBSCRIBE`).
        command: &'static str,
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: redis::RedisError,
    },
    /// No answer in time.
    #[error("Redis {command} at {endpoint}: no answer within {timeout:?}")]
    Timeout {
        /// What was sent.
        command: &'static str,
        /// The endpoint.
        endpoint: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// The notification connection closed.
    #[error("Redis at {endpoint} closed the notification connection")]
    Closed {
        /// The endpoint.
        endpoint: String,
    },
}

/// Why a session ended.
enum SessionEnd {
    /// `shutdown`, or the aggregator is gone.
    Stopped,
    /// Redis failed.
    Failed(RedisError),
}

impl From<RedisError> for SessionEnd {
    fn from(error: RedisError) -> Self {
        Self::Failed(error)
    }
}

/// One Redis server.
#[derive(Debug)]
struct Server {
    /// `host:port`, for messages.
    endpoint: String,
    client: Client,
}

/// Reads Traefik dynamic configuration from Redis and follows it.
#[derive(Debug)]
pub struct RedisProvider {
    root_key: String,
    db: i64,
    servers: Vec<Server>,
    /// The server used next; moves on after a failure.
    current: usize,
}

/// Connections to one server: commands, and the keyspace notifications.
struct Session<'a> {
    endpoint: &'a str,
    connection: MultiplexedConnection,
}

impl RedisProvider {
    /// A provider for `providers.redis`.
    pub fn new(config: &RedisConfig) -> Result<Self, RedisError> {
        if config
            .sentinel
            .as_ref()
            .is_some_and(|sentinel| !is_empty_section(sentinel))
        {
            return Err(RedisError::Sentinel);
        }
        if config.endpoints.is_empty() {
            return Err(RedisError::NoEndpoint);
        }
        let mut settings = RedisConnectionInfo::default().set_db(config.db);
        if !config.username.is_empty() {
            settings = settings.set_username(&config.username);
        }
        if !config.password.is_empty() {
            settings = settings.set_password(config.password.expose());
        }
        let servers = config
            .endpoints
            .iter()
            .map(|endpoint| server(endpoint, &settings, config.tls.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            root_key: config.root_key.trim_matches('/').to_owned(),
            db: config.db,
            servers,
            current: 0,
        })
    }

    /// The provider's name, `redis`.
    pub fn name(&self) -> &str {
        PROVIDER
    }

    /// Reads the tree once.
    pub async fn load(&mut self) -> Result<ProviderUpdate, RedisError> {
        let server = &self.servers[self.current];
        let mut session = Session::connect(server).await?;
        let keys = session.read_all(&self.root_key).await?;
        Ok(self.update(&keys))
    }

    /// Sends the tree, then a fresh update after every change, until
    /// `shutdown`.
    pub async fn run(
        mut self,
        updates: mpsc::Sender<ProviderUpdate>,
        health: Arc<ProviderHealthRegistry>,
        shutdown: CancellationToken,
    ) {
        let mut publisher = Publisher::new(PROVIDER, updates, health);
        let mut backoff = Backoff::default();
        loop {
            let end = tokio::select! {
                () = shutdown.cancelled() => return,
                end = self.session(&mut publisher, &mut backoff, &shutdown) => end,
            };
            match end {
                SessionEnd::Stopped => return,
                SessionEnd::Failed(error) => {
                    publisher.failed(&error);
                    self.current = (self.current + 1) % self.servers.len();
                    if !backoff.wait(&shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// Subscribes, reads everything, publishes it, then follows
    /// notifications (or polls) until Redis fails.
    async fn session(
        &self,
        publisher: &mut Publisher,
        backoff: &mut Backoff,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let server = &self.servers[self.current];
        let mut session = match Session::connect(server).await {
            Ok(session) => session,
            Err(error) => return error.into(),
        };
        let channel_prefix = format!("__keyspace@{}__:", self.db);
        let pattern = format!("{channel_prefix}{}/*", glob_escape(&self.root_key));
        let mut notifications = match subscribe(server, &pattern).await {
            Ok(stream) => stream,
            Err(error) => return error.into(),
        };
        let polling = !session.notifications_enabled().await;
        let mut keys = match session.read_all(&self.root_key).await {
            Ok(keys) => keys,
            Err(error) => return error.into(),
        };
        backoff.reset();
        publisher.healthy();
        if !publisher.publish(self.update(&keys), shutdown).await {
            return SessionEnd::Stopped;
        }
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.reset();
        loop {
            tokio::select! {
                changed = next_batch(&mut notifications, &channel_prefix) => {
                    let Some(changed) = changed else {
                        return RedisError::Closed { endpoint: server.endpoint.clone() }.into();
                    };
                    if let Err(error) = session.refresh(&mut keys, changed).await {
                        return error.into();
                    }
                }
                _ = poll.tick(), if polling => {
                    keys = match session.read_all(&self.root_key).await {
                        Ok(keys) => keys,
                        Err(error) => return error.into(),
                    };
                }
            }
            if !publisher.publish(self.update(&keys), shutdown).await {
                return SessionEnd::Stopped;
            }
        }
    }

    fn update(&self, keys: &BTreeMap<String, Vec<u8>>) -> ProviderUpdate {
        kv::update_from_raw_keys(PROVIDER, &self.root_key, keys)
    }
}

impl<'a> Session<'a> {
    async fn connect(server: &'a Server) -> Result<Self, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let connection = server
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| RedisError::Command {
                command: "connect",
                endpoint: server.endpoint.clone(),
                source,
            })?;
        Ok(Self {
            endpoint: &server.endpoint,
            connection,
        })
    }

    fn failed(&self, command: &'static str) -> impl FnOnce(redis::RedisError) -> RedisError {
        let endpoint = self.endpoint.to_owned();
        move |source| RedisError::Command {
            command,
            endpoint,
            source,
        }
    }

    /// Whether `notify-keyspace-events` sends what the provider follows;
    /// logs why not otherwise.
    async fn notifications_enabled(&mut self) -> bool {
        let answer: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(&mut self.connection)
            .await;
        match answer {
            Ok(pair) => {
                let flags = pair.get(1).map_or("", String::as_str);
                if notifies_changes(flags) {
                    return true;
                }
                tracing::warn!(
                    endpoint = self.endpoint,
                    notify_keyspace_events = flags,
                    interval = ?POLL_INTERVAL,
                    "Redis keyspace notifications are off; reading every key periodically \
                     instead (enable them with `CONFIG SET notify-keyspace-events KEA`)"
                );
            }
            Err(error) => tracing::warn!(
                endpoint = self.endpoint,
                %error,
                interval = ?POLL_INTERVAL,
                "cannot check Redis keyspace notifications (CONFIG GET); reading every key \
                 periodically as well"
            ),
        }
        false
    }

    /// Every key under `<root>/` and its value.
    async fn read_all(&mut self, root: &str) -> Result<BTreeMap<String, Vec<u8>>, RedisError> {
        let pattern = format!("{}/*", glob_escape(root));
        let mut names = BTreeSet::new();
        let mut cursor = 0_u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut self.connection)
                .await
                .map_err(self.failed("SCAN"))?;
            names.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut keys = BTreeMap::new();
        self.refresh(&mut keys, names).await?;
        Ok(keys)
    }

    /// Reads `changed` again into `keys`; a key that is gone (or no longer
    /// a string) is removed.
    async fn refresh(
        &mut self,
        keys: &mut BTreeMap<String, Vec<u8>>,
        changed: BTreeSet<String>,
    ) -> Result<(), RedisError> {
        let changed: Vec<String> = changed.into_iter().collect();
        for names in changed.chunks(BATCH) {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(names)
                .query_async(&mut self.connection)
                .await
                .map_err(self.failed("MGET"))?;
            for (name, value) in names.iter().zip(values) {
                match value {
                    Some(value) => keys.insert(name.clone(), value),
                    None => keys.remove(name),
                };
            }
        }
        Ok(())
    }
}

/// The server at `endpoint` (`host:port`), over TLS when `tls` is set.
fn server(
    endpoint: &str,
    settings: &RedisConnectionInfo,
    tls: Option<&ProviderTlsConfig>,
) -> Result<Server, RedisError> {
    let invalid = |reason: &str| RedisError::Endpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let address = endpoint
        .strip_prefix("redis://")
        .or_else(|| endpoint.strip_prefix("rediss://"))
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected `host:port`"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port is not a number from 1 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid("expected `host:port`"));
    }
    let client_error = |source| RedisError::Client {
        endpoint: endpoint.to_owned(),
        source,
    };
    let client = match tls {
        None => Client::open(
            ConnectionAddr::Tcp(host.to_owned(), port)
                .into_connection_info()
                .map_err(client_error)?
                .set_redis_settings(settings.clone()),
        )
        .map_err(client_error)?,
        Some(tls) => {
            // Checks every file and option, with errors naming them.
            client_config("tls", Some(tls))?;
            let info = ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: tls.insecure_skip_verify,
                tls_params: None,
            }
            .into_connection_info()
            .map_err(client_error)?
            .set_redis_settings(settings.clone());
            let certificates = redis::TlsCertificates {
                client_tls: (!tls.cert.is_empty())
                    .then(|| {
                        Ok::<_, ProviderTlsError>(redis::ClientTlsConfig {
                            client_cert: read("tls.cert", &tls.cert)?,
                            client_key: read("tls.key", &tls.key)?,
                        })
                    })
                    .transpose()?,
                root_cert: (!tls.ca.is_empty())
                    .then(|| read("tls.ca", &tls.ca))
                    .transpose()?,
            };
            Client::build_with_tls(info, certificates).map_err(client_error)?
        }
    };
    Ok(Server {
        endpoint: endpoint.to_owned(),
        client,
    })
}

/// A connection subscribed to the channels matching `pattern`.
async fn subscribe(server: &Server, pattern: &str) -> Result<PubSubStream, RedisError> {
    let subscribed = async {
        let mut pubsub = server.client.get_async_pubsub().await?;
        pubsub.psubscribe(pattern).await?;
        Ok(pubsub.into_on_message())
    };
    tokio::time::timeout(CONNECT_TIMEOUT, subscribed)
        .await
        .map_err(|_| RedisError::Timeout {
            command: "PSUBSCRIBE",
            endpoint: server.endpoint.clone(),
            timeout: CONNECT_TIMEOUT,
        })?
        .map_err(|source| RedisError::Command {
            command: "PSUBSCRIBE",
            endpoint: server.endpoint.clone(),
            source,
        })
}

/// The keys named by the next notifications: one, and those that follow it
/// within [`QUIET_PERIOD`] of each other (at most [`MAX_DELAY`] in all).
/// `None` once the connection is closed.
async fn next_batch(
    notifications: &mut PubSubStream,
    channel_prefix: &str,
) -> Option<BTreeSet<String>> {
    let mut changed = BTreeSet::new();
    let first = notifications.next().await?;
    changed.extend(
        first
            .get_channel_name()
            .strip_prefix(channel_prefix)
            .map(str::to_owned),
    );
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        let wait = (tokio::time::Instant::now() + QUIET_PERIOD).min(deadline);
        match tokio::time::timeout_at(wait, notifications.next()).await {
            Ok(Some(message)) => changed.extend(
                message
                    .get_channel_name()
                    .strip_prefix(channel_prefix)
                    .map(str::to_owned),
            ),
            // Read what arrived; the next call reports the end.
            Ok(None) | Err(_) => return Some(changed),
        }
    }
}

/// Whether `notify-keyspace-events` flags publish keyspace events (`K`) for
/// writes, deletions and expirations (`A`, or `$`, `g` and `x`).
fn notifies_changes(flags: &str) -> bool {
    flags.contains('K')
        && (flags.contains('A') || ['$', 'g', 'x'].iter().all(|flag| flags.contains(*flag)))
}

/// `text` with Redis glob characters escaped, for `MATCH` and `PSUBSCRIBE`.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// Whether a `sentinel` section sets nothing (`{}`, `null`, empty values).
fn is_empty_section(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Bool(enabled) => !enabled,
        serde_json::Value::String(text) => text.is_empty(),
        serde_json::Value::Array(items) => items.iter().all(is_empty_section),
        serde_json::Value::Object(fields) => fields.values().all(is_empty_section),
        serde_json::Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn config(change: impl FnOnce(&mut RedisConfig)) -> RedisConfig {
        let mut config = RedisConfig::default();
        change(&mut config);
        config
    }

    #[test]
    fn endpoints_sentinel_and_tls_are_checked_at_startup() {
        let provider = RedisProvider::new(&config(|c| {
            c.root_key = "/traefik/".to_owned();
            c.password = Secret::from("hunter2");
            c.db = 3;
        }))
        .unwrap();
        assert_eq!(provider.root_key, "traefik");
        assert_eq!(provider.servers[0].endpoint, "127.0.0.1:6379");
        let settings = provider.servers[0].client.get_connection_info();
        assert_eq!(settings.redis_settings().db(), 3);
        assert!(
            !format!("{provider:?}").contains("hunter2"),
            "the password is never printed"
        );

        let error = RedisProvider::new(&config(|c| c.endpoints = vec!["redis".to_owned()]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "invalid Redis endpoint `redis`: expected `host:port`"
        );
        let error = RedisProvider::new(&config(|c| c.endpoints.clear()))
            .unwrap_err()
            .to_string();
        assert_eq!(error, "no Redis endpoint is configured");

        let error = RedisProvider::new(&config(|c| {
            c.sentinel = Some(serde_json::json!({"masterName": "mymaster"}));
        }))
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("sentinel: Redis Sentinel is not supported"),
            "{error}"
        );
        RedisProvider::new(&config(|c| c.sentinel = Some(serde_json::json!({})))).unwrap();

        let error = RedisProvider::new(&config(|c| {
            c.tls = Some(ProviderTlsConfig {
                ca: "/x/ca.pem".to_owned(),
                ..ProviderTlsConfig::default()
            });
        }))
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("tls.ca `/x/ca.pem`: No such file"),
            "{error}"
        );
        let provider = RedisProvider::new(&config(|c| {
            c.tls = Some(ProviderTlsConfig::default());
        }))
        .unwrap();
        assert!(matches!(
            provider.servers[0].client.get_connection_info().addr(),
            ConnectionAddr::TcpTls { .. }
        ));
    }

    #[test]
    fn notification_flags_and_patterns() {
        assert!(notifies_changes("AKE"));
        assert!(notifies_changes("K$gx"));
        assert!(!notifies_changes(""));
        assert!(!notifies_changes("EA"), "keyevent only: no key names");
        assert!(!notifies_changes("K$"), "deletions would be missed");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn decodes_keys_and_names_bad_values() {
        let provider = RedisProvider::new(&RedisConfig::default()).unwrap();
        let mut keys = BTreeMap::new();
        keys.insert(
            "traefik/http/routers/a/rule".to_owned(),
            b"Path(`/`)".to_vec(),
        );
        keys.insert("traefik/http/routers/b/rule".to_owned(), vec![0xff]);
        let update = provider.update(&keys);
        assert_eq!(update.provider, "redis");
        let routers = &update.config.http.as_ref().unwrap().routers;
        assert_eq!(routers.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(update.errors[0].location, "traefik/http/routers/b/rule");
    }
}
