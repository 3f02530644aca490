//! Configuration of the syslog sources (`syslogtcp`, `syslogudp`, `multiport_syslogtcp`): Flume's
//! keys and defaults, plus weir's `max-connections`.

use super::{ConfigError, Section};

/// Which of Flume's three syslog sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogProtocol {
    /// `syslogtcp`: one TCP port.
    Tcp,
    /// `syslogudp`: one UDP port, one datagram per event.
    Udp,
    /// `multiport_syslogtcp`: several TCP ports (`ports`).
    MultiportTcp,
}

impl SyslogProtocol {
    pub fn type_name(self) -> &'static str {
        match self {
            SyslogProtocol::Tcp => "syslogtcp",
            SyslogProtocol::Udp => "syslogudp",
            SyslogProtocol::MultiportTcp => "multiport_syslogtcp",
        }
    }
}

/// Which parsed header parts stay in the event body (Flume `keepFields`). With none of them,
/// the body is the message after the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepFields {
    /// `all`/`true`: the body is the whole message as received.
    pub all: bool,
    pub priority: bool,
    pub version: bool,
    pub timestamp: bool,
    pub hostname: bool,
}

impl KeepFields {
    pub const NONE: KeepFields = KeepFields {
        all: false,
        priority: false,
        version: false,
        timestamp: false,
        hostname: false,
    };

    pub const ALL: KeepFields = KeepFields {
        all: true,
        ..KeepFields::NONE
    };

    /// Flume's values: `none`/`false`, `all`/`true`, or a space-separated subset of
    /// `priority version timestamp hostname` (case-insensitive). Flume silently ignores unknown
    /// words; weir names them, since a typo would otherwise change every body.
    pub fn parse(value: &str) -> Result<KeepFields, String> {
        let v = value.trim().to_ascii_lowercase();
        match v.as_str() {
            "" | "none" | "false" => return Ok(KeepFields::NONE),
            "all" | "true" => return Ok(KeepFields::ALL),
            _ => {}
        }
        let mut k = KeepFields::NONE;
        for word in v.split_whitespace() {
            match word {
                "priority" => k.priority = true,
                "version" => k.version = true,
                "timestamp" => k.timestamp = true,
                "hostname" => k.hostname = true,
                other => {
                    return Err(format!(
                        "'{other}' is not a syslog field; use none, all, or a space-separated subset of: priority version timestamp hostname"
                    ));
                }
            }
        }
        Ok(k)
    }

    pub fn any(&self) -> bool {
        self.all || self.priority || self.version || self.timestamp || self.hostname
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConfig {
    pub protocol: SyslogProtocol,
    /// Address to bind (Flume `host`; Flume binds every interface when it is unset).
    pub host: String,
    /// `port` (one) or, for multiport, `ports` (space-separated).
    pub ports: Vec<u16>,
    /// Longest message in bytes (Flume `eventSize`, 2500, at least 10); longer ones are kept
    /// truncated with `flume.syslog.status = Incomplete`.
    pub event_size: usize,
    pub keep_fields: KeepFields,
    /// Header names for the client's IP address and resolved host name (off when unset).
    pub client_ip_header: Option<String>,
    pub client_hostname_header: Option<String>,
    /// Multiport only: header for the local port the message arrived on (Flume `portHeader`).
    pub port_header: Option<String>,
    /// Most events per put transaction (Flume `batchSize` for multiport, 100; weir uses it for
    /// all three).
    pub batch_size: usize,
    /// TCP: most concurrent connections; more are closed at once (weir `max-connections`).
    pub max_connections: usize,
    /// TCP with `ssl = true` (Flume 1.9+): connections are TLS.
    pub tls: Option<super::TlsServerConfig>,
}

/// Flume's floor for `eventSize` (SyslogUtils.MIN_SIZE).
const MIN_EVENT_SIZE: u64 = 10;

/// Parses the keys of a syslog source of type `alias` (`syslogtcp`, `syslogudp` or
/// `multiport_syslogtcp`).
pub fn parse_syslog(
    alias: &str,
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<SyslogConfig, ConfigError> {
    let protocol = match alias {
        "syslogudp" => SyslogProtocol::Udp,
        "multiport_syslogtcp" => SyslogProtocol::MultiportTcp,
        _ => SyslogProtocol::Tcp,
    };
    let ports = if protocol == SyslogProtocol::MultiportTcp {
        let list = s.required(
            "ports",
            &format!(
                "set `{}` to the space-separated TCP ports to listen on",
                s.full("ports")
            ),
        )?;
        let mut ports = Vec::new();
        for p in list.split_whitespace() {
            let port = s.port_number("ports", p)?;
            if ports.contains(&port) {
                return Err(s.error(Some("ports"), format!("port {port} is listed twice")));
            }
            ports.push(port);
        }
        ports
    } else {
        let what = if protocol == SyslogProtocol::Udp {
            "UDP"
        } else {
            "TCP"
        };
        let p = s.required(
            "port",
            &format!("set `{}` to the {what} port to listen on", s.full("port")),
        )?;
        vec![s.port_number("port", &p)?]
    };
    let keep_fields = match s.string("keepFields") {
        None => KeepFields::NONE,
        Some(v) => KeepFields::parse(&v).map_err(|m| s.error(Some("keepFields"), m))?,
    };
    // Keys of the other two syslog sources, which this one does not read (nor does Flume's).
    let with = format!("type = {}", protocol.type_name());
    if protocol == SyslogProtocol::MultiportTcp {
        s.ignored_with("port", &format!("{with} (it listens on `ports`)"), notes);
    } else {
        let with = format!("{with} (a key of multiport_syslogtcp)");
        for key in [
            "ports",
            "portHeader",
            "readBufferSize",
            "numProcessors",
            "charset.default",
        ] {
            s.ignored_with(key, &with, notes);
        }
        s.ignored_with_under("charset.port", &with, notes);
    }
    let tls = if protocol == SyslogProtocol::Udp {
        if s.bool_or("ssl", false)? {
            return Err(s.error(
                Some("ssl"),
                "syslog over UDP has no TLS (Flume's syslogudp has none either): use \
                 syslogtcp with ssl = true, or remove the key"
                    .into(),
            ));
        }
        s.ignored_with_keys_of(
            |tls| super::tls::server(tls, &mut Vec::new()),
            &format!("{with} (syslog over UDP has no TLS)"),
            notes,
        );
        None
    } else {
        super::tls::server(s, notes)?
    };
    let port_header = if protocol == SyslogProtocol::MultiportTcp {
        s.string("portHeader")
    } else {
        None
    };
    if protocol == SyslogProtocol::MultiportTcp {
        let why_threads = "weir serves each connection on its own thread";
        s.accept_without_effect("readBufferSize", why_threads, notes);
        s.accept_without_effect("numProcessors", why_threads, notes);
        let why_charset = "weir keeps message bytes as received and parses the ASCII header";
        s.accept_without_effect("charset.default", why_charset, notes);
        for (key, _) in s.props().with_prefix(&s.full("charset.port.")) {
            s.accept_without_effect(&format!("charset.port.{key}"), why_charset, notes);
        }
    }
    Ok(SyslogConfig {
        protocol,
        host: s.string_or("host", "0.0.0.0"),
        ports,
        event_size: s.positive_or("eventSize", 2500)?.max(MIN_EVENT_SIZE) as usize,
        keep_fields,
        client_ip_header: s.string("clientIPHeader"),
        client_hostname_header: s.string("clientHostnameHeader"),
        port_header,
        batch_size: s.positive_or("batchSize", 100)? as usize,
        max_connections: if protocol == SyslogProtocol::Udp {
            s.accept_without_effect("max-connections", "UDP has no connections", notes);
            1000
        } else {
            s.positive_or("max-connections", 1000)? as usize
        },
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;
    use std::path::Path;

    fn parse(alias: &str, text: &str) -> Result<(SyslogConfig, Vec<String>), ConfigError> {
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sources.r1.".into());
        let mut notes = Vec::new();
        let c = parse_syslog(alias, &s, &mut notes)?;
        s.note_unused(&mut notes);
        Ok((c, notes))
    }

    #[test]
    fn defaults_follow_flume() {
        let (c, notes) = parse("syslogtcp", "a.sources.r1.port = 5140\n").unwrap();
        assert_eq!(c.protocol, SyslogProtocol::Tcp);
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.ports, vec![5140]);
        assert_eq!(c.event_size, 2500);
        assert_eq!(c.keep_fields, KeepFields::NONE);
        assert_eq!(c.client_ip_header, None);
        assert_eq!(c.client_hostname_header, None);
        assert_eq!(c.batch_size, 100);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn multiport_keys() {
        let (c, notes) = parse(
            "multiport_syslogtcp",
            "a.sources.r1.ports = 10001 10002\na.sources.r1.portHeader = port\n\
             a.sources.r1.charset.port.10001 = ISO-8859-1\na.sources.r1.readBufferSize = 4096\n\
             a.sources.r1.eventSize = 3\na.sources.r1.keepFields = Timestamp hostname\n",
        )
        .unwrap();
        assert_eq!(c.ports, vec![10001, 10002]);
        assert_eq!(c.port_header.as_deref(), Some("port"));
        assert_eq!(c.event_size, 10, "Flume's floor of 10 bytes");
        assert!(c.keep_fields.timestamp && c.keep_fields.hostname && !c.keep_fields.priority);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().all(|n| n.contains("no effect")), "{notes:?}");
    }

    #[test]
    fn keep_fields_values() {
        assert_eq!(KeepFields::parse("true").unwrap(), KeepFields::ALL);
        assert_eq!(KeepFields::parse("ALL").unwrap(), KeepFields::ALL);
        assert_eq!(KeepFields::parse("false").unwrap(), KeepFields::NONE);
        assert_eq!(KeepFields::parse("none").unwrap(), KeepFields::NONE);
        let k = KeepFields::parse("priority version").unwrap();
        assert!(k.priority && k.version && !k.timestamp && !k.hostname && !k.all);
        let e = KeepFields::parse("priority hostnme").unwrap_err();
        assert!(e.contains("'hostnme'"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("syslogudp", "a.sources.r1.host = x\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("a.sources.r1.port"));
        let e = parse("multiport_syslogtcp", "a.sources.r1.ports = 1 x\n").unwrap_err();
        assert!(e.message.contains("'x' is not a port"), "{e}");
        let e = parse(
            "syslogtcp",
            "a.sources.r1.port = 1\na.sources.r1.keepFields = bogus\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = parse(
            "syslogtcp",
            "a.sources.r1.port = 1\na.sources.r1.ssl = true\n",
        )
        .unwrap_err();
        assert!(e.message.contains("ssl = true needs"), "{e}");
        let e = parse(
            "syslogudp",
            "a.sources.r1.port = 1\na.sources.r1.ssl = true\n",
        )
        .unwrap_err();
        assert!(e.message.contains("UDP has no TLS"), "{e}");
    }
}
