use std::ffi::OsString;

use super::*;
use crate::App;

/// A lookup that sees only `vars`.
fn vars<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Result<String, VarError> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .ok_or(VarError::NotPresent)
    }
}

fn env_error(var: &str, value: &str) -> Error {
    Config::from_lookup(&vars(&[(var, value)])).expect_err("the value is out of range")
}

/// An app that binds to a free loopback port if validation lets it.
fn loopback() -> App {
    App::empty().bind_to("127.0.0.1:0".parse().unwrap())
}

/// Each value out of range is the same start-up error from the
/// environment and from the builder, naming both.
#[tokio::test]
async fn builder_and_environment_refuse_a_value_alike() {
    type Build = fn(App) -> App;
    let cases: [(&str, &str, Build, &str); 10] = [
        (
            "EMMER_MIN_TIMEOUT_MS",
            "9000",
            |a| a.retransmit_bounds(Duration::from_secs(9), Duration::from_secs(8)),
            "at most the longest (8s), not 9s",
        ),
        (
            "EMMER_MAX_TIMEOUT_MS",
            "0",
            |a| a.retransmit_bounds(Duration::from_millis(200), Duration::ZERO),
            "at least 1 ms",
        ),
        (
            "EMMER_TIMEOUT_MS",
            "0",
            |a| a.retransmit_timeout(Duration::ZERO),
            "not 0ns",
        ),
        (
            "EMMER_TIMEOUT_MS",
            "255001",
            |a| a.retransmit_timeout(Duration::from_millis(255_001)),
            "at most 255 s",
        ),
        ("EMMER_MAX_BLKSIZE", "7", |a| a.max_blksize(7), "not 7"),
        ("EMMER_MAX_BLKSIZE", "0", |a| a.max_blksize(0), "not 0"),
        (
            "EMMER_MAX_BLKSIZE",
            "65465",
            |a| a.max_blksize(65465),
            "not 65465",
        ),
        (
            "EMMER_MAX_BLKSIZE",
            "65535",
            |a| a.max_blksize(65535),
            "8..=65464",
        ),
        (
            "EMMER_MAX_WINDOWSIZE",
            "0",
            |a| a.max_windowsize(0),
            "at least 1",
        ),
        (
            "EMMER_MAX_TRANSFERS",
            "0",
            |mut a| {
                a.config_mut().max_transfers = 0;
                a
            },
            "at least 1",
        ),
    ];
    for (var, value, build, says) in cases {
        let from_env = env_error(var, value);
        let from_builder = build(loopback())
            .bind()
            .await
            .expect_err("the builder's value is out of range");
        assert!(matches!(from_env, Error::Config { .. }), "{from_env:?}");
        assert!(
            matches!(from_builder, Error::Config { .. }),
            "{from_builder:?}"
        );
        let msg = from_env.to_string();
        assert_eq!(msg, from_builder.to_string(), "{var}={value}");
        assert!(msg.contains(var), "{msg}");
        assert!(msg.contains(says), "{msg}");
    }
}

#[test]
fn the_messages_name_the_builder_method_and_the_variable() {
    assert_eq!(
        env_error("EMMER_TIMEOUT_MS", "0").to_string(),
        "invalid retransmission timeout (App::retransmit_timeout / EMMER_TIMEOUT_MS): \
         must be at least 1 ms and at most 255 s, not 0ns"
    );
    assert_eq!(
        env_error("EMMER_MAX_WINDOWSIZE", "0").to_string(),
        "invalid largest windowsize (App::max_windowsize / EMMER_MAX_WINDOWSIZE): \
         must be at least 1 (RFC 7440), not 0"
    );
}

/// A value below a millisecond cannot come from the environment, but the
/// builder's is refused by the same rule.
#[test]
fn a_timeout_below_a_millisecond_is_refused() {
    let mut c = Config::default();
    c.transfer.retransmit_timeout = Duration::from_micros(999);
    let msg = c.validate().unwrap_err().to_string();
    assert!(msg.contains("EMMER_TIMEOUT_MS"), "{msg}");
    assert!(msg.contains("not 999µs"), "{msg}");
}

#[test]
fn values_that_do_not_parse_name_the_variable() {
    for (var, value, says) in [
        ("EMMER_HOST", "localhost", "is not an IP address"),
        ("EMMER_PORT", "65536", "is not a port number"),
        ("EMMER_TIMEOUT_MS", "1s", "is not milliseconds"),
        ("EMMER_TIMEOUT_MS", "-1", "is not milliseconds"),
        ("EMMER_RETRIES", "many", "is not a count"),
        ("EMMER_MAX_UPLOAD", "1M", "is not a size in bytes"),
        ("EMMER_MAX_BLKSIZE", "100000", "is not a block size"),
        ("EMMER_MAX_WINDOWSIZE", "65536", "is not a window size"),
        ("EMMER_ROLLOVER", "2", "is not 0 or 1"),
        ("EMMER_TSIZE_MEASURE_LIMIT", "x", "is not a size in bytes"),
    ] {
        let msg = env_error(var, value).to_string();
        assert!(msg.contains(var), "{msg}");
        assert!(msg.contains(says), "{msg}");
        assert!(msg.contains(&format!("{value:?}")), "{msg}");
        assert!(msg.ends_with(&format!("fix or unset {var}")), "{msg}");
    }
    let not_utf8 = |_: &str| Err(VarError::NotUnicode(OsString::from("x")));
    let msg = Config::from_lookup(&not_utf8).unwrap_err().to_string();
    assert!(msg.contains("EMMER_HOST") && msg.contains("UTF-8"), "{msg}");
}

/// An unknown option cannot reach the builder (it takes a `TftpOption`);
/// from the environment it is refused with the valid names.
#[test]
fn an_unknown_option_name_is_refused_with_the_valid_ones() {
    let msg = env_error("EMMER_REFUSE_OPTIONS", "tsize,mail").to_string();
    assert_eq!(
        msg,
        "invalid refused options (App::refuse_option / EMMER_REFUSE_OPTIONS): \
         \"mail\" is not an option emmer negotiates; \
         the options are blksize, windowsize, timeout, tsize; \
         fix or unset EMMER_REFUSE_OPTIONS"
    );
    assert_eq!("".parse::<TftpOption>().unwrap_err().name, "");
}

#[test]
fn option_names_round_trip() {
    for o in TftpOption::ALL {
        assert_eq!(o.name().parse::<TftpOption>(), Ok(o));
        assert_eq!(o.name().to_uppercase().parse::<TftpOption>(), Ok(o));
    }
    assert_eq!("utimeout".parse::<TftpOption>(), Ok(TftpOption::Timeout));
}

#[test]
fn the_defaults_are_valid_and_blank_variables_keep_them() {
    assert_eq!(Config::default().validate().ok(), Some(()));
    let blank = Config::from_lookup(&vars(&[
        ("EMMER_PORT", ""),
        ("EMMER_TIMEOUT_MS", "  "),
        ("EMMER_REFUSE_OPTIONS", " , "),
    ]))
    .unwrap();
    assert_eq!(blank, Config::default());
}

/// Every variable lands in the field its builder method sets, and the
/// edges of each range are accepted by both.
#[test]
fn valid_values_round_trip_through_both_paths() {
    let from_env = Config::from_lookup(&vars(&[
        ("EMMER_HOST", "::1"),
        ("EMMER_PORT", "69"),
        ("EMMER_TIMEOUT_MS", "250"),
        ("EMMER_RETRIES", "3"),
        ("EMMER_MAX_UPLOAD", "1024"),
        ("EMMER_MAX_TRANSFERS", "10"),
        ("EMMER_MAX_BLKSIZE", "1428"),
        ("EMMER_MAX_WINDOWSIZE", "16"),
        ("EMMER_ROLLOVER", "1"),
        ("EMMER_REFUSE_OPTIONS", " tsize, Windowsize "),
        ("EMMER_TSIZE_MEASURE_LIMIT", "4096"),
    ]))
    .unwrap();
    let mut app = App::empty()
        .bind_to("[::1]:69".parse().unwrap())
        .retransmit_timeout(Duration::from_millis(250))
        .retries(3)
        .max_upload(1024)
        .max_blksize(1428)
        .max_windowsize(16)
        .rollover(Rollover::ToOne)
        .refuse_option(TftpOption::Tsize)
        .refuse_option(TftpOption::Windowsize);
    app.config_mut().max_transfers = 10;
    app.config_mut().tsize_measure_limit = 4096;
    let from_builder = app.config_mut().clone();
    assert_eq!(from_env, from_builder);
    assert_eq!(from_builder.validate().ok(), Some(()));
    let o = &from_env.options;
    assert!(o.blksize && o.timeout && !o.windowsize && !o.tsize);

    for (var, value) in [
        ("EMMER_TIMEOUT_MS", "1"),
        ("EMMER_TIMEOUT_MS", "255000"),
        ("EMMER_MAX_BLKSIZE", "8"),
        ("EMMER_MAX_BLKSIZE", "65464"),
        ("EMMER_MAX_WINDOWSIZE", "1"),
        ("EMMER_MAX_WINDOWSIZE", "65535"),
        ("EMMER_MAX_TRANSFERS", "1"),
        ("EMMER_REFUSE_OPTIONS", "blksize,timeout,utimeout"),
    ] {
        Config::from_lookup(&vars(&[(var, value)]))
            .unwrap_or_else(|e| panic!("{var}={value}: {e}"));
    }
    for app in [
        loopback().retransmit_timeout(Duration::from_millis(1)),
        loopback().retransmit_timeout(Duration::from_secs(255)),
        loopback().max_blksize(8).max_windowsize(65535),
        loopback().max_blksize(65464).max_windowsize(1),
    ] {
        let mut app = app;
        app.config_mut().validate().unwrap();
    }
}
#[test]
fn http_settings_come_from_the_environment_and_are_checked() {
    let msg = env_error("EMMER_HTTP", "8080").to_string();
    assert!(msg.contains("is not an address and port"), "{msg}");
    let msg = env_error("EMMER_HTTP_PREFIX", "tftp").to_string();
    assert_eq!(
        msg,
        "invalid HTTP path prefix (App::http_prefix / EMMER_HTTP_PREFIX): must be a path \
         that starts and ends with '/', such as / or /tftp/, without spaces, '%', '?' or \
         '#', not \"tftp\""
    );
    assert!(
        env_error("EMMER_HTTP_PREFIX", "/a b/")
            .to_string()
            .contains("not \"/a b/\"")
    );
    let msg = env_error("EMMER_HTTP_MAX_CONNECTIONS", "0").to_string();
    assert!(
        msg.contains("EMMER_HTTP_MAX_CONNECTIONS") && msg.contains("at least 1"),
        "{msg}"
    );
    let c = Config::from_lookup(&vars(&[("EMMER_HTTP_PREFIX", "/boot/")])).unwrap();
    assert_eq!((c.http.addr, c.http.prefix.as_str()), (None, "/boot/"));

    let mut c = Config::default();
    c.http.stall_timeout = Duration::ZERO;
    let msg = c.validate().unwrap_err().to_string();
    assert!(
        msg.starts_with(
            "invalid HTTP timeouts (HttpConfig::header_timeout, HttpConfig::stall_timeout): "
        ),
        "{msg}"
    );
    let mut c = Config::default();
    c.http.max_header_bytes = 100;
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("8192..=1048576")
    );
}

#[cfg(feature = "http")]
#[test]
fn emmer_http_sets_the_address() {
    let c = Config::from_lookup(&vars(&[("EMMER_HTTP", "[::]:8080")])).unwrap();
    assert_eq!(c.http.addr, Some("[::]:8080".parse().unwrap()));
}

/// Without the feature the variable cannot be served: a start-up error
/// says how to get it, rather than silence.
#[cfg(not(feature = "http"))]
#[test]
fn emmer_http_without_the_feature_says_how_to_get_it() {
    let msg = env_error("EMMER_HTTP", "0.0.0.0:8080").to_string();
    assert_eq!(
        msg,
        "invalid HTTP address (App::http / EMMER_HTTP): 0.0.0.0:8080 is set, but this \
         program was built without emmer's `http` feature; enable it (emmer = { features \
         = [\"http\"] }) or unset EMMER_HTTP"
    );
}
