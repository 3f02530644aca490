//! Where an RPC sink (`avro`, `thrift`) sends its batches, how long it waits and whether over
//! TLS: the keys Flume's AvroSink and ThriftSink share (`hostname`, `port`, `connect-timeout`,
//! `request-timeout`, `reset-connection-interval`, `ssl` and its keys, see `tls`).

use std::time::Duration;

use super::tls::{self, TlsClientConfig};
use super::{ConfigError, Section};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcTarget {
    pub hostname: String,
    pub port: u16,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Drop and re-make the connection this often (Flume `reset-connection-interval`, seconds;
    /// unset or 0: never).
    pub reset_connection_interval: Option<Duration>,
    /// `ssl = true`: TLS to the target.
    pub tls: Option<TlsClientConfig>,
}

impl RpcTarget {
    /// `hostname:port`, for connecting and for messages (an IPv6 address in brackets).
    pub fn address(&self) -> String {
        if self.hostname.contains(':') {
            format!("[{}]:{}", self.hostname, self.port)
        } else {
            format!("{}:{}", self.hostname, self.port)
        }
    }
}

/// The target of a sink whose downstream end is a `kind` (avro, thrift) source. Flume reads
/// `reset-connection-interval`; its user guide names it `connection-reset-interval` for the
/// thrift sink (which Flume then ignores): weir honours either.
pub(super) fn parse_rpc_target(
    s: &Section,
    kind: &str,
    notes: &mut Vec<String>,
) -> Result<RpcTarget, ConfigError> {
    let hostname = s.required(
        "hostname",
        &format!(
            "set `{}` to the host of the downstream {kind} source",
            s.full("hostname")
        ),
    )?;
    let port = s.required(
        "port",
        &format!(
            "set `{}` to the port of the downstream {kind} source",
            s.full("port")
        ),
    )?;
    let port = s.port_number("port", &port)?;
    let (connect_timeout, request_timeout) = rpc_timeouts(s)?;
    let reset_key = if s.string("reset-connection-interval").is_some() {
        s.superseded(
            "connection-reset-interval",
            "reset-connection-interval",
            notes,
        );
        "reset-connection-interval"
    } else if s.string("connection-reset-interval").is_some() {
        "connection-reset-interval"
    } else {
        "reset-connection-interval"
    };
    let reset = s.seconds_or(reset_key, 0)?;
    Ok(RpcTarget {
        hostname,
        port,
        connect_timeout,
        request_timeout,
        reset_connection_interval: (!reset.is_zero()).then_some(reset),
        tls: tls::client(s, notes)?,
    })
}

/// `connect-timeout` and `request-timeout`, in milliseconds (Flume: 20000 each).
pub(super) fn rpc_timeouts(s: &Section) -> Result<(Duration, Duration), ConfigError> {
    let positive_ms = |key: &str| -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(s.positive_or(key, 20_000)?))
    };
    Ok((
        positive_ms("connect-timeout")?,
        positive_ms("request-timeout")?,
    ))
}
