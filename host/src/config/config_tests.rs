use super::*;
use std::collections::HashSet;

fn no_env(_: &str) -> Option<String> {
    None
}

fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_CONFIG_FILE);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn defaults_parse_and_validate() {
    HostConfig::for_root(".").validate().unwrap();
    for setting in settings() {
        assert!(
            setting.check_range(setting.default).is_ok(),
            "{}: the default is within its range",
            setting.key
        );
    }
}

#[test]
fn keys_flags_and_variables_are_unique() {
    let table = settings();
    for name in [|s: &Setting| s.key.clone(), |s: &Setting| s.flag.clone(), |s: &Setting| s.env.clone()] {
        let all: Vec<String> = table.iter().map(name).collect();
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(all.len(), unique.len(), "{all:?}");
    }
    // What `serve` took before the config file keeps its flag and variable.
    let max = table.iter().find(|s| s.key == "server.max_connections").unwrap();
    assert_eq!((max.flag.as_str(), max.env.as_str()), ("max-connections", "FASTMCP_MAX_CONNECTIONS"));
    let epoch = table.iter().find(|s| s.key == "runtime.epoch_tick_ms").unwrap();
    assert_eq!(
        (epoch.flag.as_str(), epoch.env.as_str()),
        ("runtime-epoch-tick-ms", "FASTMCP_RUNTIME_EPOCH_TICK_MS")
    );
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let (dir, path) = write_config(
        "server:\n  max_connections: 10\n  max_body_bytes: 2048\n  listen: 127.0.0.1:9000\n\
         outbound:\n  allow_internal: [10.0.0.0/8, 127.0.0.0/8]\nreload:\n  watch: false\n",
    );
    let env = |name: &str| match name {
        "FASTMCP_MAX_CONNECTIONS" => Some("20".to_owned()),
        "FASTMCP_MAX_BODY_BYTES" => Some("4096".to_owned()),
        "FASTMCP_NO_POOLING" => Some("1".to_owned()),
        _ => None,
    };
    let flags = vec![("server.max_connections".to_owned(), "30".to_owned())];
    let loaded = load(dir.path(), Some(&path), &env, &flags).unwrap();
    let c = &loaded.config;
    assert_eq!(c.server.max_connections, 30);
    assert_eq!(c.server.max_body_bytes, 4096);
    assert_eq!(c.server.listen.port(), 9000);
    assert_eq!(c.outbound.allow_internal.len(), 2);
    assert!(!c.reload.watch);
    assert!(!c.runtime.pooling, "FASTMCP_NO_POOLING=1 turns pooling off");
    let source = |key: &str| loaded.sources[key].clone();
    assert_eq!(source("server.max_connections"), Source::Flag("max-connections".into()));
    assert_eq!(source("server.max_body_bytes"), Source::Env("FASTMCP_MAX_BODY_BYTES".into()));
    assert_eq!(source("server.listen"), Source::File);
    assert_eq!(source("server.keep_alive"), Source::Default);
    let printed = loaded.print();
    assert!(printed.contains("  max_connections: \"30\"  # flag --max-connections\n"), "{printed}");
    assert!(printed.contains("  listen: \"127.0.0.1:9000\"  # file\n"), "{printed}");
}

#[test]
fn the_root_config_file_is_read_when_none_is_named() {
    let (dir, _) = write_config("mcp:\n  max_sessions: 7\n");
    let loaded = load(dir.path(), None, &no_env, &[]).unwrap();
    assert_eq!(loaded.config.mcp.max_sessions, 7);
    assert!(loaded.file.is_some());
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(load(empty.path(), None, &no_env, &[]).unwrap().file, None);
    let missing = empty.path().join("nope.yaml");
    assert!(load(empty.path(), Some(&missing), &no_env, &[]).is_err(), "a named file must exist");
}

#[test]
fn bad_files_name_the_file_the_key_and_what_is_allowed() {
    let cases: &[(&str, &str)] = &[
        ("server:\n  max_conections: 3\n", "server.max_conections: unknown setting"),
        ("sever:\n  listen: 1\n", "sever: unknown section"),
        (
            "server:\n  max_connections: 0\n",
            "server.max_connections: `0` is outside the allowed range 1..=1000000",
        ),
        ("server:\n  listen: nowhere\n", "server.listen: `nowhere` is not ADDR:PORT"),
        (
            "audit:\n  max_record_bytes: 100\n",
            "audit.max_record_bytes: `100` is outside the allowed range 2048",
        ),
        ("server:\n  keep_alive: {a: 1}\n", "server.keep_alive: expected a value"),
        ("- 1\n", "expected a mapping of sections"),
        ("redis:\n  url: http://x\n", "redis.url: not a URL the Redis client accepts"),
    ];
    for (text, expected) in cases {
        let (dir, path) = write_config(text);
        let error = format!("{:#}", load(dir.path(), Some(&path), &no_env, &[]).unwrap_err());
        assert!(error.contains(expected), "{text:?}: {error}");
        if !expected.starts_with("redis") {
            assert!(error.contains(DEFAULT_CONFIG_FILE), "{text:?}: names the file: {error}");
        }
    }
}

#[test]
fn values_built_in_code_are_checked_too() {
    let mut config = HostConfig::for_root(".");
    config.runtime.max_concurrent_calls = 0;
    let error = config.validate().unwrap_err().to_string();
    assert!(error.starts_with("runtime.max_concurrent_calls: `0` is outside"), "{error}");
    let mut config = HostConfig::for_root(".");
    config.auth.jwks_min_max_age = config.auth.jwks_max_max_age * 2;
    assert!(config.validate().is_err());
}

#[test]
fn the_old_providers_variable_still_works_with_a_warning() {
    let env = |name: &str| (name == "FASTMCP_PROVIDERS").then(|| "p.yml".to_owned());
    let loaded = load(Path::new("/r"), None, &env, &[]).unwrap();
    assert_eq!(loaded.config.broker.providers_file, Some(PathBuf::from("p.yml")));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
}

#[test]
fn secrets_are_redacted_when_printed() {
    let env = |name: &str| (name == "REDIS_URL").then(|| "redis://:hunter2@db:6379/0".to_owned());
    let loaded = load(Path::new("/r"), None, &env, &[]).unwrap();
    let printed = loaded.print();
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("  url: \"<redacted>\"  # env REDIS_URL"), "{printed}");
}

/// The README's table of settings is this table (`markdown_table`).
#[test]
fn the_readme_lists_every_setting_as_the_code_states_it() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let (begin, end) = ("<!-- settings:begin -->\n", "<!-- settings:end -->");
    let start = readme.find(begin).expect("README has the settings markers") + begin.len();
    let stop = readme[start..].find(end).expect("the end marker") + start;
    let expected = markdown_table();
    assert!(
        readme[start..stop] == expected,
        "README.md's settings table differs from the code; replace it with:\n{expected}"
    );
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../fastmcp.example.yaml")).unwrap();
    assert!(
        example == example_file(),
        "fastmcp.example.yaml differs from the code; replace it with:\n{}",
        example_file()
    );
}

/// The example file names every setting with its default; with the
/// settings uncommented it loads and changes nothing.
#[test]
fn the_example_file_uncommented_sets_every_setting_to_its_default() {
    let uncommented: String = example_file()
        .lines()
        .map(|line| {
            line.strip_prefix("  # ")
                .filter(|l| !l.starts_with(' '))
                .map_or(line.to_owned(), |l| format!("  {l}"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let (dir, path) = write_config(&uncommented);
    let loaded = load(dir.path(), Some(&path), &no_env, &[]).expect("the example loads");
    let not_in_file: Vec<_> =
        loaded.sources.iter().filter(|(_, s)| **s != Source::File).map(|(k, _)| k).collect();
    assert!(not_in_file.is_empty(), "missing from the example: {not_in_file:?}");
    let defaults = HostConfig::for_root(dir.path());
    for setting in settings() {
        assert_eq!(setting.get(&loaded.config), setting.get(&defaults), "{}", setting.key);
    }
}
