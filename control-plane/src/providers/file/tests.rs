use std::fs;

use tokio::time::timeout_at;

use super::*;

/// A file defining router `name` and its service.
fn router_file(name: &str) -> String {
    format!(
        "http:\n  routers:\n    {name}:\n      rule: Host(`{name}.example`)\n      service: {name}\n\
         \x20 services:\n    {name}:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:8080\n"
    )
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}

/// Writes a temporary file beside `path` and renames it over, as editors do.
fn save_atomically(path: &Path, text: &str) {
    let temporary = path.with_file_name(".save.tmp");
    fs::write(&temporary, text).unwrap();
    fs::rename(&temporary, path).unwrap();
}

fn directory_provider(directory: &Path) -> FileProvider {
    FileProvider::new(&FileProviderConfig {
        directory: Some(directory.to_owned()),
        ..FileProviderConfig::default()
    })
    .unwrap()
}

fn file_provider(file: &Path) -> FileProvider {
    FileProvider::new(&FileProviderConfig {
        filename: Some(file.to_owned()),
        ..FileProviderConfig::default()
    })
    .unwrap()
}

fn routers(update: &ProviderUpdate) -> Vec<String> {
    let http = update.config.http.as_ref();
    http.map(|http| http.routers.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn needs_exactly_one_of_filename_and_directory() {
    let neither = FileProviderConfig::default();
    assert!(matches!(
        FileProvider::new(&neither),
        Err(FileProviderError::NoSource)
    ));
    let both = FileProviderConfig {
        filename: Some("a.yml".into()),
        directory: Some("d".into()),
        ..FileProviderConfig::default()
    };
    assert!(matches!(
        FileProvider::new(&both),
        Err(FileProviderError::BothSources)
    ));
}

#[test]
fn reads_a_single_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("dynamic.yml");
    write(&path, &router_file("api"));
    write(&directory.path().join("other.yml"), &router_file("other"));
    let update = file_provider(&path).load();
    assert_eq!(update.provider, "file");
    assert_eq!(update.errors, []);
    assert_eq!(routers(&update), ["api"]);
    let services = &update.config.http.as_ref().unwrap().services;
    let servers = &services["api"].load_balancer.as_ref().unwrap().servers;
    assert_eq!(servers[0].url, "http://127.0.0.1:8080");
}

#[test]
fn a_missing_file_is_an_error() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("dynamic.yml");
    let update = file_provider(&path).load();
    assert_eq!(update.config, DynamicConfig::default());
    assert_eq!(update.errors[0].location, path.display().to_string());
    assert_eq!(update.errors[0].message, "file not found");
}

#[test]
fn reads_a_directory_tree_of_yaml_and_toml() {
    let directory = tempfile::tempdir().unwrap();
    let root = directory.path();
    write(&root.join("a.yml"), &router_file("a"));
    write(&root.join("sub/b.yaml"), &router_file("b"));
    write(
        &root.join("sub/deeper/c.toml"),
        "[http.routers.c]\nrule = \"Host(`c.example`)\"\nservice = \"a\"\n",
    );
    write(&root.join("empty.yml"), "");
    // None of these is read: they would add routers or fail to parse.
    for ignored in [
        ".hidden.yml",
        "a.yml~",
        ".a.yml.swp",
        "4913",
        "notes.txt",
        ".git/d.yml",
    ] {
        write(&root.join(ignored), "not: [valid");
    }
    let update = directory_provider(root).load();
    assert_eq!(update.errors, []);
    assert_eq!(routers(&update), ["a", "b", "c"]);
}

#[test]
fn unknown_keys_name_the_file_and_key_path() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("api.yml");
    write(
        &path,
        "http:\n  routers:\n    api:\n      rulee: Host(`a`)\n",
    );
    let update = directory_provider(directory.path()).load();
    let [error] = update.errors.as_slice() else {
        panic!("one error expected: {:?}", update.errors);
    };
    assert_eq!(error.location, path.display().to_string());
    assert_eq!(error.key.as_deref(), Some("http.routers.api.rulee"));
    assert!(
        error.message.starts_with("unknown field `rulee`"),
        "{error}"
    );
    assert_eq!(update.config, DynamicConfig::default());
}

#[test]
fn a_broken_file_keeps_its_last_good_content() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("api.yml");
    write(&path, &router_file("api"));
    write(&directory.path().join("web.yml"), &router_file("web"));
    let mut provider = directory_provider(directory.path());
    let good = provider.load();
    assert_eq!(routers(&good), ["api", "web"]);

    write(&path, "http:\n  routers:\n    api: [\n");
    let broken = provider.load();
    assert_eq!(broken.config, good.config);
    assert_eq!(broken.errors.len(), 1);
    assert_eq!(broken.errors[0].location, path.display().to_string());
    assert!(
        broken.errors[0].message.contains("line"),
        "{}",
        broken.errors[0]
    );

    write(&path, &router_file("api2"));
    let fixed = provider.load();
    assert_eq!(fixed.errors, []);
    assert_eq!(routers(&fixed), ["api2", "web"]);
}

#[test]
fn only_a_changed_file_is_read_as_a_change() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("api.yml");
    write(&path, &router_file("api"));
    let mut provider = directory_provider(directory.path());
    assert!(provider.refresh(), "the first read is a change");
    assert!(!provider.refresh(), "nothing was written");
    write(&path, &router_file("api"));
    assert!(!provider.refresh(), "the same text again");

    // Unreadable as text, then the same text as before: the error must go.
    fs::write(&path, b"http: \xff\xfe\n").unwrap();
    assert!(provider.refresh());
    let unreadable = provider.update();
    assert_eq!(routers(&unreadable), ["api"], "the last good content stays");
    assert_eq!(unreadable.errors.len(), 1, "{:?}", unreadable.errors);
    assert!(!provider.refresh(), "the same error again");
    write(&path, &router_file("api"));
    assert!(provider.refresh());
    let restored = provider.update();
    assert_eq!(restored.errors, []);
    assert_eq!(routers(&restored), ["api"]);

    fs::remove_file(&path).unwrap();
    assert!(provider.refresh());
    assert_eq!(routers(&provider.update()), Vec::<String>::new());
}

#[test]
fn a_deleted_file_takes_its_routers_away() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("sub/api.yml");
    write(&path, &router_file("api"));
    write(&directory.path().join("web.yml"), &router_file("web"));
    let mut provider = directory_provider(directory.path());
    assert_eq!(routers(&provider.load()), ["api", "web"]);
    fs::remove_dir_all(directory.path().join("sub")).unwrap();
    let update = provider.load();
    assert_eq!(update.errors, []);
    assert_eq!(routers(&update), ["web"]);
}

#[test]
fn a_name_in_two_files_keeps_the_first() {
    let directory = tempfile::tempdir().unwrap();
    let first = directory.path().join("a.yml");
    let second = directory.path().join("b.yml");
    write(&first, &router_file("api"));
    write(
        &second,
        "http:\n  routers:\n    api:\n      rule: Host(`other.example`)\n",
    );
    let update = directory_provider(directory.path()).load();
    let http = update.config.http.as_ref().unwrap();
    assert_eq!(http.routers["api"].rule, "Host(`api.example`)");
    let [error] = update.errors.as_slice() else {
        panic!("one error expected: {:?}", update.errors);
    };
    assert_eq!(error.location, second.display().to_string());
    assert_eq!(error.key.as_deref(), Some("http.routers.api"));
    assert!(
        error.message.contains(&first.display().to_string()),
        "{error}"
    );
}

/// Receives updates until one satisfies `done`, failing after a deadline.
async fn update_where(
    updates: &mut mpsc::Receiver<ProviderUpdate>,
    done: impl Fn(&ProviderUpdate) -> bool,
) -> ProviderUpdate {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let update = timeout_at(deadline, updates.recv())
            .await
            .expect("the expected update did not arrive within 10s")
            .expect("the provider stopped");
        if done(&update) {
            return update;
        }
    }
}

fn spawn(provider: FileProvider) -> (mpsc::Receiver<ProviderUpdate>, CancellationToken) {
    let (sender, updates) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    tokio::spawn(provider.run(sender, shutdown.clone()));
    (updates, shutdown)
}

#[tokio::test]
async fn watches_a_directory_for_saves_creations_and_deletions() {
    let directory = tempfile::tempdir().unwrap();
    let api = directory.path().join("api.yml");
    write(&api, &router_file("api"));
    let (mut updates, shutdown) = spawn(directory_provider(directory.path()));
    let first = update_where(&mut updates, |_| true).await;
    assert_eq!(routers(&first), ["api"]);

    save_atomically(&api, &router_file("renamed"));
    update_where(&mut updates, |u| routers(u) == ["renamed"]).await;

    write(
        &directory.path().join("sub/web.toml"),
        "[http.routers.web]\nservice = \"x\"\n",
    );
    update_where(&mut updates, |u| routers(u) == ["renamed", "web"]).await;

    write(&api, "http: [");
    let broken = update_where(&mut updates, |u| !u.errors.is_empty()).await;
    assert_eq!(routers(&broken), ["renamed", "web"]);

    fs::remove_file(&api).unwrap();
    let update = update_where(&mut updates, |u| routers(u) == ["web"]).await;
    assert_eq!(update.errors, []);
    shutdown.cancel();
}

#[tokio::test]
async fn watches_a_single_file_replaced_by_rename() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("dynamic.yml");
    write(&path, &router_file("api"));
    let (mut updates, shutdown) = spawn(file_provider(&path));
    assert_eq!(
        routers(&update_where(&mut updates, |_| true).await),
        ["api"]
    );

    // Rewriting the same content sends nothing: the next update is the change.
    save_atomically(&path, &router_file("api"));
    save_atomically(&path, &router_file("web"));
    let update = update_where(&mut updates, |_| true).await;
    assert_eq!(routers(&update), ["web"]);
    shutdown.cancel();
}

#[tokio::test]
async fn without_watch_sends_once_and_stops_on_shutdown() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("dynamic.yml");
    write(&path, &router_file("api"));
    let provider = FileProvider::new(&FileProviderConfig {
        filename: Some(path),
        watch: false,
        ..FileProviderConfig::default()
    })
    .unwrap();
    let (sender, mut updates) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(provider.run(sender, shutdown.clone()));
    assert_eq!(
        routers(&update_where(&mut updates, |_| true).await),
        ["api"]
    );
    shutdown.cancel();
    timeout_at(Instant::now() + Duration::from_secs(10), task)
        .await
        .expect("run returns on shutdown")
        .unwrap();
    assert!(updates.recv().await.is_none(), "exactly one update");
}

/// A watcher event of `kind` about `path`.
fn event(kind: EventKind, path: &Path) -> notify::Result<Event> {
    Ok(Event::new(kind).add_path(path.to_owned()))
}

#[tokio::test(start_paused = true)]
async fn a_completed_write_is_read_at_once_a_partial_one_after_the_quiet_period() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("routes.yml");
    let provider = directory_provider(directory.path());
    let shutdown = CancellationToken::new();
    let (sender, mut events) = mpsc::unbounded_channel();
    let modified = EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Content));
    let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
    let renamed_in = EventKind::Modify(ModifyKind::Name(RenameMode::To));

    // Data written, file not closed yet: wait for the quiet period.
    sender.send(event(modified, &file)).unwrap();
    let started = Instant::now();
    provider.next_change(&mut events, &shutdown).await.unwrap();
    assert_eq!(started.elapsed(), QUIET_PERIOD);

    // Written and closed, or renamed into place: read at once.
    for completing in [closed, renamed_in] {
        sender.send(event(modified, &file)).unwrap();
        sender.send(event(completing, &file)).unwrap();
        let started = Instant::now();
        provider.next_change(&mut events, &shutdown).await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO, "{completing:?}");
    }

    // Closed, then written again: the last event decides.
    sender.send(event(closed, &file)).unwrap();
    sender.send(event(modified, &file)).unwrap();
    let started = Instant::now();
    provider.next_change(&mut events, &shutdown).await.unwrap();
    assert_eq!(started.elapsed(), QUIET_PERIOD);
}
