//! Flume's `netcatudp` source: each datagram is one event, its body the datagram's bytes up to
//! the first newline (the rest of the datagram is dropped, as in Flume), with the sender's
//! address in the `remoteAddressHeader` header when that is set.
//!
//! Datagrams already queued are put in one transaction (up to the channels'
//! `transactionCapacity`, at most [`BATCH_MAX`]) by [`super::datagrams`], where Flume commits
//! each on its own; what the channel refuses is lost, as in Flume: UDP has no way to make the
//! sender wait or resend.

use std::net::{SocketAddr, UdpSocket};

use super::reporter::Reporter;
use super::{ChannelProcessor, Source, StopFlag, datagrams};
use crate::config::NetcatUdpConfig;
use crate::event::Event;

/// The most datagrams put in one transaction.
const BATCH_MAX: usize = 1000;

pub struct NetcatUdpSource {
    name: String,
    config: NetcatUdpConfig,
    socket: Option<UdpSocket>,
}

impl NetcatUdpSource {
    pub fn new(name: &str, config: NetcatUdpConfig) -> NetcatUdpSource {
        NetcatUdpSource {
            name: name.to_owned(),
            config,
            socket: None,
        }
    }

    /// The address this source listens on, once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.as_ref().and_then(|s| s.local_addr().ok())
    }
}

/// The event for one datagram from `peer`.
fn event(datagram: &[u8], peer: SocketAddr, header: Option<&str>) -> Event {
    let line = datagram
        .iter()
        .position(|&b| b == b'\n')
        .map_or(datagram, |end| &datagram[..end]);
    let mut event = Event::new(line.to_vec());
    if let Some(h) = header {
        event
            .headers
            .insert(h.to_owned(), super::java_net::socket_address(peer));
    }
    event
}

impl Source for NetcatUdpSource {
    fn start(&mut self) -> anyhow::Result<()> {
        let socket = datagrams::bind(&self.name, "netcatudp", &self.config.bind, self.config.port)?;
        self.socket = Some(socket);
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let Some(socket) = self.socket else {
            tracing::error!(source = %self.name, "netcatudp source run before start");
            return;
        };
        let header = self.config.remote_address_header.as_deref();
        let batch = processor.transaction_limit().min(BATCH_MAX);
        datagrams::receive(
            &self.name,
            &socket,
            &processor,
            &stop,
            batch,
            |datagram, peer, _: &mut Reporter, events| events.push(event(datagram, peer, header)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;
    use crate::source::test_rig::{memory_channel, processor_for, take_bodies};
    use std::sync::Arc;

    use std::time::Duration;

    fn config(header: Option<&str>) -> NetcatUdpConfig {
        NetcatUdpConfig {
            bind: "127.0.0.1".into(),
            port: 0,
            remote_address_header: header.map(str::to_owned),
        }
    }

    #[test]
    fn a_datagram_is_an_event_up_to_its_first_newline() {
        let peer: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let e = event(b"first line\r\nsecond line\n", peer, Some("from"));
        assert_eq!(&e.body[..], b"first line\r");
        assert_eq!(e.headers.get("from"), Some("/10.1.2.3:4567"));
        let e = event(b"no newline", peer, None);
        assert_eq!(&e.body[..], b"no newline");
        assert!(e.headers.is_empty());
        assert!(event(b"\n", peer, None).body.is_empty());
        // As Java 14+ prints an IPv6 InetSocketAddress; an IPv4 client of a `::` socket is IPv4.
        let peer: SocketAddr = "[2001:db8::7]:53".parse().unwrap();
        let e = event(b"x", peer, Some("from"));
        assert_eq!(e.headers.get("from"), Some("/[2001:db8:0:0:0:0:0:7]:53"));
        let peer: SocketAddr = "[::ffff:10.0.0.9]:53".parse().unwrap();
        let e = event(b"x", peer, Some("from"));
        assert_eq!(e.headers.get("from"), Some("/10.0.0.9:53"));
    }

    #[test]
    fn datagrams_arrive_in_the_channel_with_the_senders_address() {
        let channel: Arc<dyn Channel> = memory_channel(1000, 100, Duration::ZERO);
        let mut source = NetcatUdpSource::new("r1", config(Some("remote")));
        source.start().unwrap();
        let addr = source.local_addr().unwrap();
        let stop = crate::stop::Stop::new();
        let processor = processor_for(&channel);
        let stopper = stop.clone();
        let runner = std::thread::spawn(move || Box::new(source).run(processor, stopper));

        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..50 {
            client
                .send_to(format!("line {i}\n").as_bytes(), addr)
                .unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 50 {
            let more = take_bodies(&channel, 100, Duration::from_secs(10));
            assert!(
                !more.is_empty(),
                "only {} of 50 datagrams arrived",
                got.len()
            );
            got.extend(more);
        }
        let expected: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
        assert_eq!(got, expected);

        client.send_to(b"with header", addr).unwrap();
        let taken = channel.take(1, Duration::from_secs(10)).unwrap();
        let header = taken.events[0].1.headers.get("remote").map(str::to_owned);
        channel.commit(taken).unwrap();
        assert_eq!(header, Some(format!("/{}", client.local_addr().unwrap())));

        stop.set();
        runner.join().unwrap();
    }
}
