//! Configuration: the defaults, the `EMMER_*` environment, and the one
//! validation path that both the environment and the [`App`](crate::App)
//! builder go through.
//!
//! A value reaches a [`Config`] in one of three ways: [`Config::from_env`], a
//! builder method such as [`App::max_blksize`](crate::App::max_blksize), or a
//! field set directly (`App::config_mut`). Whichever way it came,
//! [`Config::validate`] checks it, and a wrong value is the same start-up
//! error ([`Error::Config`]) naming the setting by its builder method and its
//! variable:
//!
//! ```text
//! invalid largest blksize (App::max_blksize / EMMER_MAX_BLKSIZE): must be in 8..=65464 (RFC 2348), not 4
//! ```
//!
//! `from_env` validates at once; the builder's values are validated by
//! [`App::bind`](crate::App::bind), before any socket is opened.

use std::env::VarError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::proto::packet;
use crate::proto::{OptionLimits, Rollover, TransferConfig};
use crate::{Error, Result};

/// Loopback only, so that a development server is not reachable from the
/// network until you say so.
const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The Python emmer's development port (TFTP's own is 69).
const DEFAULT_PORT: u16 = 3942;
/// 64 MiB.
const DEFAULT_MAX_UPLOAD: u64 = 64 * 1024 * 1024;
const DEFAULT_MAX_TRANSFERS: usize = 4096;
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The shortest retransmission timeout: the timer has millisecond grain.
const MIN_RETRANSMIT_TIMEOUT: Duration = Duration::from_millis(1);
/// The longest retransmission timeout: the most RFC 2349 lets a client ask
/// for, and far from the `Instant` arithmetic's overflow.
const MAX_RETRANSMIT_TIMEOUT: Duration = Duration::from_secs(255);

/// A setting as a user meets it: what it is, the builder method (or field)
/// that sets it in code, and the variable that sets it from outside (empty
/// for a setting only code can change).
struct Setting {
    what: &'static str,
    builder: &'static str,
    var: &'static str,
}

const HOST: Setting = Setting {
    what: "listening address",
    builder: "App::bind_to",
    var: "EMMER_HOST",
};
const PORTS: Setting = Setting {
    what: "port policy",
    builder: "App::ports",
    var: "EMMER_PORTS",
};
const PORT: Setting = Setting {
    what: "listening port",
    builder: "App::bind_to",
    var: "EMMER_PORT",
};
const RETRANSMIT_TIMEOUT: Setting = Setting {
    what: "retransmission timeout",
    builder: "App::retransmit_timeout",
    var: "EMMER_TIMEOUT_MS",
};
const MIN_RETRANSMIT: Setting = Setting {
    what: "shortest adapted retransmission timeout",
    builder: "App::retransmit_bounds",
    var: "EMMER_MIN_TIMEOUT_MS",
};
const MAX_RETRANSMIT: Setting = Setting {
    what: "longest retransmission timeout",
    builder: "App::retransmit_bounds",
    var: "EMMER_MAX_TIMEOUT_MS",
};
const RETRIES: Setting = Setting {
    what: "retry count",
    builder: "App::retries",
    var: "EMMER_RETRIES",
};
const MAX_UPLOAD: Setting = Setting {
    what: "upload limit",
    builder: "App::max_upload",
    var: "EMMER_MAX_UPLOAD",
};
const MAX_BUFFERED_UPLOADS: Setting = Setting {
    what: "memory for uploads held whole",
    builder: "Config::max_buffered_uploads",
    var: "EMMER_MAX_BUFFERED_UPLOADS",
};
const MAX_TRANSFERS: Setting = Setting {
    what: "transfer limit",
    builder: "Config::max_transfers",
    var: "EMMER_MAX_TRANSFERS",
};
const MAX_TRANSFERS_PER_HOST: Setting = Setting {
    what: "transfer limit per client address",
    builder: "Config::max_transfers_per_host",
    var: "EMMER_MAX_TRANSFERS_PER_HOST",
};
const MAX_BLKSIZE: Setting = Setting {
    what: "largest blksize",
    builder: "App::max_blksize",
    var: "EMMER_MAX_BLKSIZE",
};
const MAX_WINDOWSIZE: Setting = Setting {
    what: "largest windowsize",
    builder: "App::max_windowsize",
    var: "EMMER_MAX_WINDOWSIZE",
};
const ROLLOVER: Setting = Setting {
    what: "block number rollover",
    builder: "App::rollover",
    var: "EMMER_ROLLOVER",
};
const REFUSE_OPTIONS: Setting = Setting {
    what: "refused options",
    builder: "App::refuse_option",
    var: "EMMER_REFUSE_OPTIONS",
};
const HTTP: Setting = Setting {
    what: "HTTP address",
    builder: "App::http",
    var: "EMMER_HTTP",
};
const HTTP_PREFIX: Setting = Setting {
    what: "HTTP path prefix",
    builder: "App::http_prefix",
    var: "EMMER_HTTP_PREFIX",
};
const HTTP_MAX_CONNECTIONS: Setting = Setting {
    what: "HTTP connection limit",
    builder: "HttpConfig::max_connections",
    var: "EMMER_HTTP_MAX_CONNECTIONS",
};
const HTTP_TIMEOUTS: Setting = Setting {
    what: "HTTP timeouts",
    builder: "HttpConfig::header_timeout, HttpConfig::stall_timeout",
    var: "",
};
const HTTP_MAX_HEADER: Setting = Setting {
    what: "largest HTTP request head",
    builder: "HttpConfig::max_header_bytes",
    var: "",
};
const TSIZE_MEASURE_LIMIT: Setting = Setting {
    what: "tsize measuring limit",
    builder: "Config::tsize_measure_limit",
    var: "EMMER_TSIZE_MEASURE_LIMIT",
};

impl Setting {
    fn error(&self, message: impl Into<String>) -> Error {
        let setting = if self.var.is_empty() {
            format!("{} ({})", self.what, self.builder)
        } else {
            format!("{} ({} / {})", self.what, self.builder, self.var)
        };
        Error::Config {
            setting,
            message: message.into(),
        }
    }

    /// The variable's value parsed, `None` when it is unset or blank.
    fn parse<T: FromStr>(&self, lookup: &Lookup<'_>, expected: &str) -> Result<Option<T>> {
        match lookup(self.var) {
            Ok(v) if v.trim().is_empty() => Ok(None),
            Ok(v) => v.trim().parse().map(Some).map_err(|_| {
                self.error(format!(
                    "{v:?} is not {expected}; fix or unset {}",
                    self.var
                ))
            }),
            Err(VarError::NotPresent) => Ok(None),
            Err(VarError::NotUnicode(_)) => Err(self.error(format!(
                "the value is not valid UTF-8; fix or unset {}",
                self.var
            ))),
        }
    }
}

/// How [`Config::from_env`] reads a variable: `std::env::var`, or a table in
/// tests (which run in parallel and must not change the process environment).
type Lookup<'a> = dyn Fn(&str) -> Result<String, VarError> + 'a;

/// Server settings. [`Config::default`] gives the documented defaults,
/// [`Config::from_env`] applies `EMMER_*` variables on top, and
/// [`Config::validate`] checks them (as [`App::bind`](crate::App::bind)
/// does).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use emmer::{App, Config};
///
/// let mut config = Config::default();
/// config.transfer.retransmit_timeout = Duration::from_millis(300);
/// config.validate().unwrap();
/// let app = App::new().config(config);
/// # let _ = app;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The addresses to listen on, each on [`port`](Self::port). Default
    /// `[127.0.0.1]`. `0.0.0.0` and `::` take every address of the host
    /// (`::` IPv4 too); replies leave from the address each request hit.
    pub hosts: Vec<IpAddr>,
    /// The UDP port. Default 3942; 0 picks a free one.
    pub port: u16,
    /// Which ports transfers answer from. Default [`Ports::Ephemeral`].
    pub ports: Ports,
    /// Retransmission timeout, retries, dally, block number rollover.
    pub transfer: TransferConfig,
    /// Which options are answered and their maxima.
    pub options: OptionLimits,
    /// Largest upload accepted, in bytes. Default 64 MiB.
    pub max_upload: u64,
    /// Most transfers served at once (at least 1); a request beyond it
    /// waits up to 2 s for a transfer to end (its client's repeats are
    /// dropped meanwhile), then is dropped, never answered "busy": in a
    /// boot storm a client that waits boots, one refused fails. Default 4096.
    pub max_transfers: usize,
    /// Most transfers served at once for one client address (0: no limit
    /// but `max_transfers`). A request beyond it is refused at once with
    /// ERROR 0 saying so, so that one address cannot crowd out the others.
    /// Default 0.
    pub max_transfers_per_host: usize,
    /// The most memory held at once by uploads read whole for handlers
    /// that take `data`, across all transfers (streaming handlers do not
    /// count). An upload that would go beyond it ends with ERROR 3 ("try
    /// again later"). Default 512 MiB.
    pub max_buffered_uploads: u64,
    /// On shutdown, how long running transfers may go on. Default 5 s.
    pub shutdown_grace: Duration,
    /// When a client asks for `tsize` of a streamed body whose size is not
    /// known, read up to this many bytes ahead to learn it (0: leave tsize
    /// out of the OACK). A body can set its own limit with
    /// [`ReadBody::measure_tsize_up_to`](crate::ReadBody::measure_tsize_up_to).
    /// Default 0.
    pub tsize_measure_limit: u64,
    /// Route requests by their file name without a W3C `traceparent`
    /// appended to it ([`Traceparent`](crate::Traceparent)), as
    /// [`App::strip_traceparent`](crate::App::strip_traceparent) sets.
    /// Default false.
    pub strip_traceparent: bool,
    /// Serving the same routes over HTTP (feature `http`): off unless
    /// [`HttpConfig::addr`] is set (`EMMER_HTTP`, `App::http`).
    pub http: HttpConfig,
}

/// The HTTP side of a server (feature `http`): where it listens, under
/// which path, and the limits that keep slow or hostile clients from
/// holding memory or connections.
///
/// Read routes answer `GET` and `HEAD` at `<prefix><file name>`, write
/// routes `PUT`; see the `http` feature in the crate docs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let mut config = emmer::Config::default();
/// config.http.addr = Some("127.0.0.1:8080".parse().unwrap());
/// config.http.prefix = "/boot/".into();
/// config.http.stall_timeout = Duration::from_secs(10);
/// # #[cfg(feature = "http")]
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The TCP address to serve HTTP on (port 0 picks a free one); `None`
    /// (the default) serves no HTTP. `EMMER_HTTP=host:port`,
    /// [`App::http`](crate::App::http).
    pub addr: Option<SocketAddr>,
    /// The path the file names hang under: starts and ends with `/`.
    /// Default `/`: `GET /pxelinux.0` reads `pxelinux.0`; with `/tftp/`,
    /// `GET /tftp/pxelinux.0` does. `EMMER_HTTP_PREFIX`,
    /// [`App::http_prefix`](crate::App::http_prefix).
    pub prefix: String,
    /// Connections open at once (at least 1); beyond it new connections
    /// wait in the kernel's accept queue. Default 1024.
    /// `EMMER_HTTP_MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// How long a request head may take to arrive, counted from when the
    /// connection is ready for it: so also the longest a kept-alive
    /// connection stays idle. Default 30 s.
    pub header_timeout: Duration,
    /// How long a request may go without a byte moving either way (a
    /// client that stops reading its download or sending its upload, or a
    /// handler that takes that long to answer) before its connection is
    /// closed. Default 30 s.
    pub stall_timeout: Duration,
    /// The largest request head (request line and headers) in bytes,
    /// 8192..=1048576; beyond it the client gets 431. Default 16384.
    pub max_header_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: None,
            prefix: "/".into(),
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
        }
    }
}

/// The documented defaults.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let config = emmer::Config::default();
/// assert_eq!(config.hosts, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
/// assert_eq!(config.port, 3942);
/// assert_eq!(config.transfer.retransmit_timeout, Duration::from_secs(1));
/// assert_eq!(config.max_upload, 64 * 1024 * 1024);
/// assert_eq!(config.max_transfers, 4096);
/// ```
impl Default for Config {
    fn default() -> Self {
        Self {
            hosts: vec![DEFAULT_HOST],
            port: DEFAULT_PORT,
            ports: Ports::Ephemeral,
            transfer: TransferConfig::default(),
            options: OptionLimits::default(),
            max_upload: DEFAULT_MAX_UPLOAD,
            max_transfers: DEFAULT_MAX_TRANSFERS,
            max_buffered_uploads: 512 * 1024 * 1024,
            max_transfers_per_host: 0,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            tsize_measure_limit: 0,
            strip_traceparent: false,
            http: HttpConfig::default(),
        }
    }
}

impl Config {
    /// The defaults overridden by environment variables, validated.
    ///
    /// | variable | builder | meaning | default |
    /// |---|---|---|---|
    /// | `EMMER_HOST` | [`App::bind_to`](crate::App::bind_to) | addresses to listen on, comma-separated (IPv4 or IPv6; `::` serves both) | `127.0.0.1` |
    /// | `EMMER_PORT` | [`App::bind_to`](crate::App::bind_to) | UDP port | `3942` |
    /// | `EMMER_PORTS` | [`App::ports`](crate::App::ports) | which ports transfers answer from: `ephemeral`, `single` (the listening port), or a range `A-B` ([`Ports`]) | `ephemeral` |
    /// | `EMMER_TIMEOUT_MS` | [`App::retransmit_timeout`](crate::App::retransmit_timeout) | retransmission timeout: the first retransmission after this many ms, 1..=255000 | `1000` |
    /// | `EMMER_MIN_TIMEOUT_MS` | [`App::retransmit_bounds`](crate::App::retransmit_bounds) | the shortest wait once the round trip is measured | `200` |
    /// | `EMMER_MAX_TIMEOUT_MS` | [`App::retransmit_bounds`](crate::App::retransmit_bounds) | the longest wait between retransmissions, at most 255000 | `8000` |
    /// | `EMMER_RETRIES` | [`App::retries`](crate::App::retries) | retransmissions before a transfer is dropped | `5` |
    /// | `EMMER_MAX_UPLOAD` | [`App::max_upload`](crate::App::max_upload) | largest upload in bytes | `67108864` |
    /// | `EMMER_MAX_TRANSFERS_PER_HOST` | [`Config::max_transfers_per_host`] | transfers at once for one client address, 0 for no limit | `0` |
    /// | `EMMER_MAX_BUFFERED_UPLOADS` | [`Config::max_buffered_uploads`] | memory for uploads held whole (`data` handlers), across transfers, in bytes | `536870912` |
    /// | `EMMER_MAX_TRANSFERS` | [`Config::max_transfers`] | transfers at once, at least 1 | `4096` |
    /// | `EMMER_MAX_BLKSIZE` | [`App::max_blksize`](crate::App::max_blksize) | largest blksize granted, 8..=65464 | `65464` |
    /// | `EMMER_MAX_WINDOWSIZE` | [`App::max_windowsize`](crate::App::max_windowsize) | largest windowsize granted, at least 1 | `64` |
    /// | `EMMER_ROLLOVER` | [`App::rollover`](crate::App::rollover) | block after 65535: `0` or `1` | `0` |
    /// | `EMMER_REFUSE_OPTIONS` | [`App::refuse_option`](crate::App::refuse_option) | options never acknowledged, comma-separated [`TftpOption`] names | none |
    /// | `EMMER_TSIZE_MEASURE_LIMIT` | [`Config::tsize_measure_limit`] | bytes read ahead to learn the tsize of a stream of unknown size | `0` |
    /// | `EMMER_HTTP` | [`App::http`](crate::App::http) | serve the routes over HTTP too, on this `host:port` (feature `http`) | off |
    /// | `EMMER_HTTP_PREFIX` | [`App::http_prefix`](crate::App::http_prefix) | the URL path the file names hang under | `/` |
    /// | `EMMER_HTTP_MAX_CONNECTIONS` | [`HttpConfig::max_connections`] | HTTP connections open at once | `1024` |
    ///
    /// An unset or blank variable leaves the default.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the setting when a value does not parse or
    /// [`validate`](Self::validate) refuses it.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = emmer::Config::from_env().unwrap();
    /// assert!(config.max_upload > 0);
    /// ```
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(&|name| std::env::var(name))
    }

    /// [`from_env`](Self::from_env) with the variables read through `lookup`.
    fn from_lookup(lookup: &Lookup<'_>) -> Result<Self> {
        let mut c = Self::default();
        if let Some(list) = HOST.parse::<String>(lookup, "a list of IP addresses")? {
            c.hosts = list
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| {
                    h.parse().map_err(|_| {
                        HOST.error(format!(
                            "{h:?} is not an IP address such as 0.0.0.0 or :: \
                             (a list is comma-separated); fix or unset {}",
                            HOST.var
                        ))
                    })
                })
                .collect::<Result<_>>()?;
        }
        if let Some(p) = PORT.parse(lookup, "a port number 0..=65535")? {
            c.port = p;
        }
        if let Some(p) = PORTS.parse(lookup, "ephemeral, single, or a range such as 50000-50999")? {
            c.ports = p;
        }
        if let Some(ms) = RETRANSMIT_TIMEOUT.parse(lookup, "milliseconds, such as 1000")? {
            c.transfer.retransmit_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = MIN_RETRANSMIT.parse(lookup, "milliseconds, such as 200")? {
            c.transfer.min_retransmit_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = MAX_RETRANSMIT.parse(lookup, "milliseconds, such as 8000")? {
            c.transfer.max_retransmit_timeout = Duration::from_millis(ms);
        }
        if let Some(r) = RETRIES.parse(lookup, "a count such as 5")? {
            c.transfer.max_retries = r;
        }
        if let Some(m) = MAX_UPLOAD.parse(lookup, "a size in bytes")? {
            c.max_upload = m;
        }
        if let Some(m) = MAX_TRANSFERS_PER_HOST.parse(lookup, "a count such as 32")? {
            c.max_transfers_per_host = m;
        }
        if let Some(m) = MAX_BUFFERED_UPLOADS.parse(lookup, "a size in bytes")? {
            c.max_buffered_uploads = m;
        }
        if let Some(m) = MAX_TRANSFERS.parse(lookup, "a count such as 4096")? {
            c.max_transfers = m;
        }
        if let Some(b) = MAX_BLKSIZE.parse(lookup, "a block size 8..=65464")? {
            c.options.max_blksize = b;
        }
        if let Some(w) = MAX_WINDOWSIZE.parse(lookup, "a window size 1..=65535")? {
            c.options.max_windowsize = w;
        }
        if let Some(r) = ROLLOVER.parse::<String>(lookup, "0 or 1")? {
            c.transfer.rollover = match r.as_str() {
                "0" => Rollover::ToZero,
                "1" => Rollover::ToOne,
                _ => {
                    return Err(ROLLOVER.error(format!(
                        "{r:?} is not 0 or 1; fix or unset {}",
                        ROLLOVER.var
                    )));
                }
            };
        }
        if let Some(list) =
            REFUSE_OPTIONS.parse::<String>(lookup, "a list such as tsize,windowsize")?
        {
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let option = name.parse().map_err(|e: UnknownOptionError| {
                    REFUSE_OPTIONS.error(format!("{e}; fix or unset {}", REFUSE_OPTIONS.var))
                })?;
                c.refuse_option(option);
            }
        }
        if let Some(n) = TSIZE_MEASURE_LIMIT.parse(lookup, "a size in bytes")? {
            c.tsize_measure_limit = n;
        }
        if let Some(addr) = HTTP.parse(
            lookup,
            "an address and port such as 0.0.0.0:8080 or [::]:80",
        )? {
            c.http.addr = Some(addr);
        }
        if let Some(prefix) = HTTP_PREFIX.parse(lookup, "a path such as / or /tftp/")? {
            c.http.prefix = prefix;
        }
        if let Some(n) = HTTP_MAX_CONNECTIONS.parse(lookup, "a count such as 1024")? {
            c.http.max_connections = n;
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks every value against its range. [`from_env`](Self::from_env)
    /// and [`App::bind`](crate::App::bind) call it, so a value is refused the
    /// same way whether it came from a variable, a builder method or a field:
    ///
    /// - retransmission timeout: 1 ms..=255 s (RFC 2349's longest);
    /// - its bounds: 1 ms <= shortest <= longest <= 255 s;
    /// - largest blksize: 8..=65464 (RFC 2348);
    /// - largest windowsize: at least 1 (RFC 7440);
    /// - transfer limit: at least 1;
    /// - HTTP ([`HttpConfig`]): an address only with the `http` feature; a
    ///   prefix that starts and ends with `/`; at least one connection;
    ///   timeouts of at least 1 ms; a head limit in 8192..=1048576.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first wrong setting by its builder method
    /// and its `EMMER_*` variable, and its valid range.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut config = emmer::Config::default();
    /// assert!(config.validate().is_ok());
    /// config.options.max_blksize = 4;
    /// let err = config.validate().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid largest blksize (App::max_blksize / EMMER_MAX_BLKSIZE): \
    ///      must be in 8..=65464 (RFC 2348), not 4"
    /// );
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.hosts.is_empty() {
            return Err(HOST.error("names no address; give at least one, such as 127.0.0.1"));
        }
        if let Ports::Range { first, last } = self.ports {
            if first == 0 || first > last {
                return Err(PORTS.error(format!(
                    "must be a range of ports such as 50000-50999, not {first}-{last}"
                )));
            }
        }
        let t = self.transfer.retransmit_timeout;
        if !(MIN_RETRANSMIT_TIMEOUT..=MAX_RETRANSMIT_TIMEOUT).contains(&t) {
            return Err(RETRANSMIT_TIMEOUT.error(format!(
                "must be at least 1 ms and at most 255 s, not {t:?}"
            )));
        }
        let (min, max) = (
            self.transfer.min_retransmit_timeout,
            self.transfer.max_retransmit_timeout,
        );
        if !(MIN_RETRANSMIT_TIMEOUT..=MAX_RETRANSMIT_TIMEOUT).contains(&max) {
            return Err(MAX_RETRANSMIT.error(format!(
                "must be at least 1 ms and at most 255 s, not {max:?}"
            )));
        }
        if !(MIN_RETRANSMIT_TIMEOUT..=max).contains(&min) {
            return Err(MIN_RETRANSMIT.error(format!(
                "must be at least 1 ms and at most the longest ({max:?}), not {min:?}"
            )));
        }
        // RFC 2348: blksize 8..=65464.
        let b = self.options.max_blksize;
        if !(8..=packet::MAX_BLKSIZE).contains(&b) {
            return Err(MAX_BLKSIZE.error(format!("must be in 8..=65464 (RFC 2348), not {b}")));
        }
        // RFC 7440: windowsize 1..=65535.
        if self.options.max_windowsize == 0 {
            return Err(MAX_WINDOWSIZE.error("must be at least 1 (RFC 7440), not 0"));
        }
        if self.max_transfers == 0 {
            return Err(MAX_TRANSFERS.error("must be at least 1, not 0"));
        }
        self.http.validate()
    }

    /// Leaves `option` out of every OACK.
    pub(crate) fn refuse_option(&mut self, option: TftpOption) {
        let o = &mut self.options;
        match option {
            TftpOption::Blksize => o.blksize = false,
            TftpOption::Windowsize => o.windowsize = false,
            TftpOption::Timeout => o.timeout = false,
            TftpOption::Tsize => o.tsize = false,
        }
    }
}

impl HttpConfig {
    /// The HTTP part of [`Config::validate`].
    fn validate(&self) -> Result<()> {
        if let (Some(addr), false) = (self.addr, cfg!(feature = "http")) {
            return Err(HTTP.error(format!(
                "{addr} is set, but this program was built without emmer's `http` feature; \
                 enable it (emmer = {{ features = [\"http\"] }}) or unset {}",
                HTTP.var
            )));
        }
        let p = &self.prefix;
        let plain = p
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#'));
        if !p.starts_with('/') || !p.ends_with('/') || !plain {
            return Err(HTTP_PREFIX.error(format!(
                "must be a path that starts and ends with '/', such as / or /tftp/, \
                 without spaces, '%', '?' or '#', not {p:?}"
            )));
        }
        if self.max_connections == 0 {
            return Err(HTTP_MAX_CONNECTIONS.error("must be at least 1, not 0"));
        }
        for t in [self.header_timeout, self.stall_timeout] {
            if t < MIN_RETRANSMIT_TIMEOUT {
                return Err(HTTP_TIMEOUTS.error(format!("must be at least 1 ms, not {t:?}")));
            }
        }
        let h = self.max_header_bytes;
        if !(8192..=1 << 20).contains(&h) {
            return Err(HTTP_MAX_HEADER.error(format!("must be in 8192..=1048576, not {h}")));
        }
        Ok(())
    }
}

/// Which ports transfers answer from (`EMMER_PORTS`, [`App::ports`](crate::App::ports)).
///
/// # Examples
///
/// ```
/// use emmer::config::Ports;
/// assert_eq!("single".parse::<Ports>().unwrap(), Ports::Single);
/// assert_eq!(
///     "50000-50999".parse::<Ports>().unwrap(),
///     Ports::Range { first: 50000, last: 50999 }
/// );
/// assert!("50000".parse::<Ports>().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ports {
    /// Each transfer answers from a new port the system picks (RFC 1350:
    /// a new transfer ID). Stateful firewalls and NAT must allow it.
    #[default]
    Ephemeral,
    /// Each transfer answers from a port of this range (firewalls can
    /// open it); when every port is in use, the client gets ERROR 0.
    Range {
        /// The first port.
        first: u16,
        /// The last port.
        last: u16,
    },
    /// Every transfer answers from the listening port, and the server tells
    /// transfers apart by the client's address and port: what containers,
    /// Kubernetes Services, load balancers and conntrack need.
    Single,
}

impl FromStr for Ports {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ephemeral" => Ok(Ports::Ephemeral),
            "single" => Ok(Ports::Single),
            range => {
                let (a, b) = range
                    .split_once('-')
                    .ok_or_else(|| format!("{s:?} is not ephemeral, single or A-B"))?;
                let port = |p: &str| {
                    p.trim()
                        .parse::<u16>()
                        .map_err(|_| format!("{p:?} is not a port number"))
                };
                Ok(Ports::Range {
                    first: port(a)?,
                    last: port(b)?,
                })
            }
        }
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ports::Ephemeral => f.write_str("ephemeral"),
            Ports::Single => f.write_str("single"),
            Ports::Range { first, last } => write!(f, "{first}-{last}"),
        }
    }
}

/// An option the server negotiates, to refuse with
/// [`App::refuse_option`](crate::App::refuse_option) or
/// `EMMER_REFUSE_OPTIONS`.
///
/// Parsed from its RFC name, case-insensitively; `utimeout` (tftp-hpa's
/// timeout in microseconds) is [`TftpOption::Timeout`], because the server
/// answers both as one option.
///
/// # Examples
///
/// ```
/// use emmer::TftpOption;
/// assert_eq!("tsize".parse::<TftpOption>(), Ok(TftpOption::Tsize));
/// assert_eq!("UTIMEOUT".parse::<TftpOption>(), Ok(TftpOption::Timeout));
/// assert_eq!(TftpOption::Windowsize.to_string(), "windowsize");
///
/// let err = "mail".parse::<TftpOption>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#""mail" is not an option emmer negotiates; the options are blksize, windowsize, timeout, tsize"#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TftpOption {
    /// `blksize` (RFC 2348).
    Blksize,
    /// `windowsize` (RFC 7440).
    Windowsize,
    /// `timeout` (RFC 2349) and tftp-hpa's `utimeout`.
    Timeout,
    /// `tsize` (RFC 2349).
    Tsize,
}

impl TftpOption {
    /// Every option, in the order the docs list them.
    ///
    /// # Examples
    ///
    /// ```
    /// use emmer::TftpOption;
    /// let names: Vec<&str> = TftpOption::ALL.iter().map(|o| o.name()).collect();
    /// assert_eq!(names, ["blksize", "windowsize", "timeout", "tsize"]);
    /// ```
    pub const ALL: [TftpOption; 4] = [
        TftpOption::Blksize,
        TftpOption::Windowsize,
        TftpOption::Timeout,
        TftpOption::Tsize,
    ];

    /// The name as it goes on the wire, lowercase.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(emmer::TftpOption::Blksize.name(), "blksize");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            TftpOption::Blksize => "blksize",
            TftpOption::Windowsize => "windowsize",
            TftpOption::Timeout => "timeout",
            TftpOption::Tsize => "tsize",
        }
    }
}

impl fmt::Display for TftpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TftpOption {
    type Err = UnknownOptionError;

    /// RFC 2347: option names are case-insensitive.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("utimeout") {
            return Ok(TftpOption::Timeout);
        }
        TftpOption::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownOptionError { name: s.to_owned() })
    }
}

/// A name that is not a [`TftpOption`]; its message lists the valid names.
///
/// # Examples
///
/// ```
/// let err = "blocksize".parse::<emmer::TftpOption>().unwrap_err();
/// assert!(err.to_string().contains("blksize, windowsize, timeout, tsize"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOptionError {
    name: String,
}

impl fmt::Display for UnknownOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an option emmer negotiates; the options are ",
            self.name
        )?;
        for (i, o) in TftpOption::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(o.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownOptionError {}

#[cfg(test)]
mod tests;
