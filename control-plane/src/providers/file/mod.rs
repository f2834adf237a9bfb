//! The file provider: Traefik v3 dynamic configuration from one file
//! (`providers.file.filename`) or a directory tree
//! (`providers.file.directory`), watched for changes.
//!
//! - In a directory, every `.yml`, `.yaml` and `.toml` file is read,
//!   recursively. Hidden entries (`.name`), backups (`name~`) and other files
//!   (editor swap files, vim's `4913` probe) are ignored; symbolic links to
//!   files are followed, to directories not.
//! - Each file is one [`DynamicConfig`]. Files are merged in path order: a
//!   name defined twice (router, service, middleware, servers transport, TLS
//!   options or store) keeps the first file's definition, and the later file
//!   gets an error naming the first. The update's `origins` name the file
//!   that defined each resource.
//! - What was fine is never taken down: a file that stops parsing (a typo, a
//!   half-written save) keeps its last good content while its error is
//!   reported. A deleted file's configuration goes away.
//! - The directory is watched, not the files (for `filename`, its parent
//!   directory, filtered by name), so editor saves that write a temporary
//!   file and rename it over the original are seen, and so are Kubernetes
//!   ConfigMap updates (a `..data` symbolic link swapped). Bursts of events
//!   are debounced; an update is sent only when the result changed. An event
//!   that says a write is complete (a file closed after writing, or renamed
//!   into place) needs no quiet period: the files are read at once.
//!
//! Certificate, key and CA files named in the configuration are read by the
//! compiler, not here; but they are watched (their parent directories), and
//! a change to one sends the update again so the compiler re-reads them:
//! certificates rotate without a configuration change (`referenced`).

mod merge;
mod parse;
mod referenced;
mod stamp;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use self::merge::Merged;
use self::parse::{is_config_file, is_hidden_or_backup, parse};
use self::referenced::referenced_files;
use self::stamp::{FileStamp, ReadStamp};
use super::{ProviderUpdate, SourceError};
use crate::config::FileProviderConfig;
use crate::dynamic::DynamicConfig;

/// The provider name, qualifying resource names (`api@file`).
const PROVIDER: &str = "file";

/// Re-read once no event has arrived for this long (unless the last one
/// completed a write)...
const QUIET_PERIOD: Duration = Duration::from_millis(50);

/// ...but at the latest this long after the first event of a burst.
const MAX_DELAY: Duration = Duration::from_millis(500);

/// Why a file provider cannot be created from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum FileProviderError {
    /// Neither `filename` nor `directory` is set.
    #[error("set `filename` or `directory`")]
    NoSource,
    /// Both `filename` and `directory` are set.
    #[error("`filename` and `directory` are mutually exclusive; set one")]
    BothSources,
}

/// Reads Traefik dynamic configuration from a file or a directory tree and
/// watches it: the last good content of every file, merged in path order.
#[derive(Debug)]
pub struct FileProvider {
    source: Source,
    watch: bool,
    /// Every file read so far, by path (so in merge order).
    files: BTreeMap<PathBuf, FileState>,
    /// Why changes are not being watched, reported with every update.
    watch_error: Option<SourceError>,
    /// Directories that could not be listed, as last read.
    list_errors: Vec<SourceError>,
    /// Files the configuration references (certificates, keys, CAs).
    referenced: BTreeSet<PathBuf>,
    /// Directories watched for the referenced files.
    watched_directories: BTreeSet<PathBuf>,
}

#[derive(Debug)]
enum Source {
    File(PathBuf),
    Directory(PathBuf),
}

#[derive(Debug, Default)]
struct FileState {
    /// The text last read, so an unchanged file is not parsed again: with
    /// thousands of routes in one file, parsing is most of a reload.
    text: Option<String>,
    /// The last content that parsed.
    config: Option<DynamicConfig>,
    /// Why the current content could not be read or parsed.
    error: Option<SourceError>,
    /// The file's stamp when `text` was read.
    read_stamp: Option<ReadStamp>,
}

impl FileProvider {
    /// A provider for `providers.file`; exactly one of `filename` and
    /// `directory` must be set.
    pub fn new(config: &FileProviderConfig) -> Result<Self, FileProviderError> {
        let source = match (&config.filename, &config.directory) {
            (Some(file), None) => Source::File(file.clone()),
            (None, Some(directory)) => Source::Directory(directory.clone()),
            (None, None) => return Err(FileProviderError::NoSource),
            (Some(_), Some(_)) => return Err(FileProviderError::BothSources),
        };
        Ok(Self {
            source,
            watch: config.watch,
            files: BTreeMap::new(),
            watch_error: None,
            list_errors: Vec::new(),
            referenced: BTreeSet::new(),
            watched_directories: BTreeSet::new(),
        })
    }

    /// Reads every file now. A file that fails keeps its last good content.
    pub fn load(&mut self) -> ProviderUpdate {
        self.refresh();
        self.update()
    }

    /// Reads every file; true when any file's content or error changed, or
    /// a file or listing error came or went.
    fn refresh(&mut self) -> bool {
        let (found, unreadable) = self.list();
        let mut list_errors = Vec::new();
        let mut kept_directories = Vec::new();
        for (directory, error) in unreadable {
            let is_root = matches!(&self.source, Source::Directory(root) if *root == directory);
            if error.kind() != io::ErrorKind::NotFound || is_root {
                list_errors.push(SourceError {
                    location: directory.display().to_string(),
                    key: None,
                    message: format!("cannot list: {error}"),
                });
            }
            if error.kind() != io::ErrorKind::NotFound {
                kept_directories.push(directory);
            }
        }
        let mut changed = list_errors != self.list_errors;
        self.list_errors = list_errors;
        let before = self.files.len();
        self.files.retain(|path, _| {
            found.contains(path) || kept_directories.iter().any(|kept| path.starts_with(kept))
        });
        changed |= self.files.len() != before;
        for path in found {
            changed |= self.read(path);
        }
        changed
    }

    /// The update for the files as last read: their configurations merged.
    fn update(&mut self) -> ProviderUpdate {
        let mut errors = self.list_errors.clone();
        errors.extend(self.watch_error.clone());
        let mut merged = Merged::default();
        for (path, state) in &self.files {
            errors.extend(state.error.clone());
            if let Some(config) = &state.config {
                merged.add(path, config);
            }
        }
        let (config, origins, duplicates) = merged.finish();
        errors.extend(duplicates);
        self.referenced = referenced_files(&config);
        ProviderUpdate {
            provider: PROVIDER.to_owned(),
            config,
            errors,
            origins,
        }
    }

    /// Loads, sends, then watches and sends a fresh [`ProviderUpdate`] after
    /// each change that alters it, until `shutdown` is cancelled or the
    /// receiver is gone. Watching starts before the first load, so no change
    /// after it is missed. With `watch: false`, or if the directory cannot be
    /// watched (reported in the update), it sends once and waits for
    /// `shutdown`.
    pub async fn run(mut self, updates: mpsc::Sender<ProviderUpdate>, shutdown: CancellationToken) {
        let (events_sender, mut events) = mpsc::unbounded_channel();
        let watcher = if self.watch {
            self.start_watching(events_sender)
        } else {
            None
        };
        let (mut provider, first) = self.reload_off_thread(true).await;
        if let Some(first) = first
            && !send(&updates, first, &shutdown).await
        {
            return;
        }
        let Some(mut watcher) = watcher else {
            shutdown.cancelled().await;
            return;
        };
        provider.watch_referenced(&mut watcher);
        while let Some(referenced_changed) = provider.next_change(&mut events, &shutdown).await {
            let (reloaded, update) = provider.reload_off_thread(referenced_changed).await;
            provider = reloaded;
            provider.watch_referenced(&mut watcher);
            if let Some(update) = update
                && !send(&updates, update, &shutdown).await
            {
                return;
            }
        }
    }

    /// The files to read, and the directories that could not be listed.
    fn list(&self) -> (BTreeSet<PathBuf>, Vec<(PathBuf, io::Error)>) {
        let mut found = BTreeSet::new();
        let mut unreadable = Vec::new();
        match &self.source {
            Source::File(path) => {
                found.insert(path.clone());
            }
            Source::Directory(root) => walk(root, &mut found, &mut unreadable),
        }
        (found, unreadable)
    }

    /// Reads and parses one file into its state; true when the state changed.
    fn read(&mut self, path: PathBuf) -> bool {
        let read_at = SystemTime::now();
        let stamp = std::fs::metadata(&path)
            .ok()
            .map(|metadata| FileStamp::of(&metadata));
        if let (Some(state), Some(stamp)) = (self.files.get(&path), &stamp)
            && state.text.is_some()
            && state.read_stamp.is_some_and(|read| read.vouches_for(stamp))
        {
            return false;
        }
        let (message, keeps_config) = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let state = self.files.entry(path.clone()).or_default();
                state.read_stamp = stamp.map(|stamp| stamp.read_at(read_at));
                if state.text.as_deref() == Some(text.as_str()) {
                    return false;
                }
                match parse(&path, &text) {
                    Ok(config) => {
                        state.config = Some(config);
                        state.error = None;
                    }
                    Err(error) => state.error = Some(error),
                }
                state.text = Some(text);
                return true;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if matches!(self.source, Source::Directory(_)) {
                    return self.files.remove(&path).is_some();
                }
                // The configured file is gone, and its configuration with it.
                ("file not found".to_owned(), false)
            }
            // Unreadable for now: the last good content stays.
            Err(error) => (format!("cannot read: {error}"), true),
        };
        let error = Some(SourceError {
            location: path.display().to_string(),
            key: None,
            message,
        });
        let state = self.files.entry(path).or_default();
        let mut changed = state.error != error || state.text.is_some();
        if !keeps_config {
            changed |= state.config.take().is_some();
        }
        state.text = None;
        state.error = error;
        changed
    }

    /// Reads the files on the blocking pool; the update when anything
    /// changed, or always when `always` (a referenced file changed: the
    /// compiler must read it again).
    async fn reload_off_thread(mut self, always: bool) -> (Self, Option<ProviderUpdate>) {
        let loaded = tokio::task::spawn_blocking(move || {
            let changed = self.refresh();
            let update = (changed || always).then(|| self.update());
            (self, update)
        });
        match loaded.await {
            Ok(loaded) => loaded,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }

    /// Watches the directory (for a single file, its parent), sending raw
    /// events to `events`. On failure, records the error for every update.
    fn start_watching(
        &mut self,
        events: mpsc::UnboundedSender<notify::Result<Event>>,
    ) -> Option<RecommendedWatcher> {
        let (directory, mode) = match &self.source {
            Source::File(path) => {
                let parent = path
                    .parent()
                    .filter(|parent| !parent.as_os_str().is_empty());
                (
                    parent.unwrap_or(Path::new(".")),
                    RecursiveMode::NonRecursive,
                )
            }
            Source::Directory(directory) => (directory.as_path(), RecursiveMode::Recursive),
        };
        let watching = notify::recommended_watcher(move |event| {
            // The receiver is gone only once `run` has returned.
            let _ = events.send(event);
        })
        .and_then(|mut watcher| watcher.watch(directory, mode).map(|()| watcher));
        match watching {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                let location = directory.display().to_string();
                tracing::warn!(%error, directory = %location, "cannot watch for file changes");
                self.watch_error = Some(SourceError {
                    location,
                    key: None,
                    message: format!("cannot watch for changes: {error}"),
                });
                None
            }
        }
    }

    /// Watches the parent directories of referenced files not watched yet
    /// (a directory that cannot be watched is logged and retried next time).
    fn watch_referenced(&mut self, watcher: &mut RecommendedWatcher) {
        let directories: BTreeSet<PathBuf> = self
            .referenced
            .iter()
            .filter_map(|file| file.parent())
            .filter(|parent| !parent.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .collect();
        for directory in directories {
            if self.watched_directories.contains(&directory) {
                continue;
            }
            match watcher.watch(&directory, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched_directories.insert(directory);
                }
                Err(error) => tracing::warn!(
                    %error,
                    directory = %directory.display(),
                    "cannot watch the directory of a certificate file; changes to it are not seen"
                ),
            }
        }
    }

    /// Waits for an event that may change the configuration, then until
    /// events stop for [`QUIET_PERIOD`] (at most [`MAX_DELAY`]), or only
    /// until the queued events are taken when the last one completed a
    /// write. `None` once `shutdown` is cancelled; `Some(true)` when a
    /// referenced file (certificate, key, CA) changed.
    async fn next_change(
        &self,
        events: &mut mpsc::UnboundedReceiver<notify::Result<Event>>,
        shutdown: &CancellationToken,
    ) -> Option<bool> {
        let mut referenced = false;
        let mut complete;
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return None,
                event = events.recv() => event,
            };
            match event {
                Some(event) if self.may_change_config(&event) => {
                    referenced |= self.touches_referenced(&event);
                    complete = completes_a_write(&event);
                    break;
                }
                Some(_) => {}
                None => return None,
            }
        }
        let deadline = Instant::now() + MAX_DELAY;
        loop {
            // Events already queued belong to the same change.
            while let Ok(event) = events.try_recv() {
                if self.may_change_config(&event) {
                    referenced |= self.touches_referenced(&event);
                    complete = completes_a_write(&event);
                }
            }
            if complete {
                return Some(referenced);
            }
            let quiet_until = (Instant::now() + QUIET_PERIOD).min(deadline);
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep_until(quiet_until) => return Some(referenced),
                event = events.recv() => match event {
                    Some(event) if self.may_change_config(&event) => {
                        referenced |= self.touches_referenced(&event);
                        complete = completes_a_write(&event);
                    }
                    Some(_) => {}
                    None => return None,
                },
            }
        }
    }

    /// Whether a (non-read) event is about a referenced file.
    fn touches_referenced(&self, event: &notify::Result<Event>) -> bool {
        match event {
            Ok(event) => event.paths.iter().any(|path| self.is_referenced(path)),
            Err(_) => true,
        }
    }

    /// Whether `path` (absolute, as the watcher reports it) is a referenced file.
    fn is_referenced(&self, path: &Path) -> bool {
        self.referenced.iter().any(|file| {
            file == path
                || (file.file_name() == path.file_name()
                    && file.parent().and_then(|p| p.canonicalize().ok())
                        == path.parent().and_then(|p| p.canonicalize().ok()))
        })
    }

    /// Whether a raw event may change what [`FileProvider::load`] returns.
    /// Reads (including the provider's own) do not; watcher errors might.
    fn may_change_config(&self, event: &notify::Result<Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "file watcher error; re-reading every file");
                return true;
            }
        };
        let is_read = matches!(
            event.kind,
            EventKind::Access(access) if access != AccessKind::Close(AccessMode::Write)
        );
        if is_read {
            return false;
        }
        event.need_rescan()
            || event
                .paths
                .iter()
                .any(|path| self.may_matter(path) || self.is_referenced(path))
    }

    /// Whether a changed path may be, contain or point to a configuration file.
    fn may_matter(&self, path: &Path) -> bool {
        let name = path.file_name().and_then(OsStr::to_str).unwrap_or_default();
        // Kubernetes mounts ConfigMaps as links into a `..data` directory,
        // swapped atomically on update.
        if name.starts_with("..") {
            return true;
        }
        match &self.source {
            Source::File(file) => path.file_name() == file.file_name(),
            Source::Directory(_) => {
                let may_be_directory = path.extension().is_none() && !is_hidden_or_backup(path);
                is_config_file(path) || may_be_directory
            }
        }
    }
}

/// Collects the configuration files under `directory`.
fn walk(
    directory: &Path,
    found: &mut BTreeSet<PathBuf>,
    unreadable: &mut Vec<(PathBuf, io::Error)>,
) {
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) => return unreadable.push((directory.to_owned(), error)),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => return unreadable.push((directory.to_owned(), error)),
        };
        let path = entry.path();
        if is_hidden_or_backup(&path) {
            continue;
        }
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => walk(&path, found, unreadable),
            Ok(kind) if is_config_file(&path) && (kind.is_file() || path.is_file()) => {
                found.insert(path);
            }
            Ok(_) => {}
            Err(error) => unreadable.push((path, error)),
        }
    }
}

/// Sends unless `shutdown` comes first; false if the provider should stop.
/// Whether `event` says a file is now whole: closed after writing, or
/// renamed into place (the last step of an atomic save).
fn completes_a_write(event: &notify::Result<Event>) -> bool {
    matches!(
        event,
        Ok(Event {
            kind: EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)),
            ..
        })
    )
}

async fn send(
    updates: &mpsc::Sender<ProviderUpdate>,
    update: ProviderUpdate,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        sent = updates.send(update) => sent.is_ok(),
    }
}

#[cfg(test)]
mod tests;
