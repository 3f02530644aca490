//! Flume transaction semantics of both channels, through the `Channel` trait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::channel::Channel;
use weir::channel::file::FileChannel;
use weir::channel::memory::MemoryChannel;
use weir::config::{FileChannelConfig, MemoryChannelConfig};
use weir::event::Event;

const NO_WAIT: Duration = Duration::from_millis(0);

fn file_config(dir: &std::path::Path, capacity: u64) -> FileChannelConfig {
    FileChannelConfig {
        capacity,
        transaction_capacity: 100,
        keep_alive: Duration::from_millis(200),
        segment_size: 64 * 1024,
        minimum_required_space: 0,
        ..FileChannelConfig::new(dir.join("ckpt"), dir.join("data"))
    }
}

fn memory(capacity: usize) -> MemoryChannel {
    MemoryChannel::new(
        "m",
        &MemoryChannelConfig {
            capacity,
            transaction_capacity: 100,
            keep_alive: Duration::from_millis(200),
            byte_capacity: None,
        },
    )
}

fn evs(range: std::ops::Range<u32>) -> Vec<Event> {
    range.map(|i| Event::new(format!("e{i}"))).collect()
}

fn bodies(t: &weir::channel::Taken) -> Vec<String> {
    t.events
        .iter()
        .map(|(_, e)| String::from_utf8(e.body.to_vec()).unwrap())
        .collect()
}

fn names(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("e{i}")).collect()
}

/// `EventTakeAttemptCount` and `EventTakeSuccessCount`.
fn take_counts(ch: &dyn Channel) -> (u64, u64) {
    let c = ch.counters();
    let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    (load(&c.take_attempt), load(&c.take_success))
}

/// The semantics both channels must share.
fn transaction_semantics(ch: &dyn Channel) {
    assert!(ch.take(10, NO_WAIT).unwrap().is_empty());
    // As Flume counts: an attempt per event asked for, the one that found nothing included.
    assert_eq!(take_counts(ch), (1, 0));
    ch.put(evs(0..5)).unwrap();
    ch.put(evs(5..10)).unwrap();
    assert_eq!(ch.stats().size, 10);

    // Two competing takers; the first rolls back: its events come back first, in order.
    let a = ch.take(3, NO_WAIT).unwrap();
    let b = ch.take(3, NO_WAIT).unwrap();
    assert_eq!(bodies(&a), names(0..3));
    assert_eq!(bodies(&b), names(3..6));
    ch.rollback(a);
    // Takes succeed at their commit only, so a rolled back one never counts.
    assert_eq!(take_counts(ch), (7, 0));
    let again = ch.take(10, NO_WAIT).unwrap();
    let k = again.events.len() as u64;
    assert_eq!(take_counts(ch), (7 + k + 1, 0));
    // A take may stop at the end of the rolled-back batch or go on with newer events; either
    // way the rolled-back events come first and order is kept.
    assert_eq!(
        bodies(&again)[..3],
        names(0..3),
        "rolled-back events return to the head"
    );
    ch.commit(b).unwrap();
    assert_eq!(take_counts(ch).1, 3);
    let mut seen = bodies(&again)[3..].to_vec();
    ch.commit(again).unwrap();
    assert_eq!(take_counts(ch).1, 3 + k);
    let rest = ch.take(10, NO_WAIT).unwrap();
    assert!(
        rest.events.windows(2).all(|w| w[1].0 > w[0].0),
        "offsets must increase"
    );
    seen.extend(bodies(&rest));
    assert_eq!(seen, names(6..10));
    ch.commit(rest).unwrap();
    assert_eq!(ch.stats().size, 0);

    // Limits.
    assert!(
        ch.put(evs(0..101)).is_err(),
        "transactionCapacity not enforced"
    );
    assert!(ch.take(101, NO_WAIT).is_err());

    // A take waits for a put.
    let start = Instant::now();
    assert!(ch.take(5, Duration::from_millis(100)).unwrap().is_empty());
    assert!(start.elapsed() >= Duration::from_millis(90));
}

#[test]
fn memory_channel_semantics() {
    transaction_semantics(&memory(1000));
}

#[test]
fn file_channel_semantics() {
    let dir = tempfile::tempdir().unwrap();
    transaction_semantics(&FileChannel::open("f", &file_config(dir.path(), 1000)).unwrap());
}

fn full_then_room(ch: &dyn Channel) {
    ch.put(evs(0..10)).unwrap();
    let start = Instant::now();
    let err = ch.put(evs(10..11)).unwrap_err();
    assert!(err.is_full(), "{err}");
    assert!(err.to_string().contains("full"), "{err}");
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "keep-alive not waited"
    );
    // Taken but not committed events still occupy the channel.
    let t = ch.take(4, NO_WAIT).unwrap();
    assert!(ch.put(evs(10..11)).unwrap_err().is_full());
    ch.commit(t).unwrap();
    ch.put(evs(10..14)).unwrap();
    assert!(ch.put(evs(14..15)).unwrap_err().is_full());
}

#[test]
fn memory_channel_full() {
    full_then_room(&memory(10));
}

#[test]
fn file_channel_full() {
    let dir = tempfile::tempdir().unwrap();
    full_then_room(&FileChannel::open("f", &file_config(dir.path(), 10)).unwrap());
}

/// A put refused for want of room counts, as Flume's file channel counts its events one by
/// one, the events that fit and the first that did not: not the whole batch.
#[test]
fn a_refused_put_counts_attempts_up_to_the_first_event_without_room() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = file_config(dir.path(), 10);
    cfg.keep_alive = Duration::ZERO;
    let ch = FileChannel::open("f", &cfg).unwrap();
    ch.put(evs(0..7)).unwrap();
    assert!(ch.put(evs(7..17)).unwrap_err().is_full());
    let attempts = || ch.counters().put_attempt.load(Ordering::Relaxed);
    // 7 stored, then 3 that fit and the 4th that did not.
    assert_eq!(attempts(), 11);
    ch.put(evs(7..10)).unwrap();
    assert!(ch.put(evs(10..15)).unwrap_err().is_full());
    assert_eq!(attempts(), 15);
    assert_eq!(ch.counters().put_success.load(Ordering::Relaxed), 10);
}

#[test]
fn a_put_waiting_for_room_succeeds_when_a_take_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = file_config(dir.path(), 10);
    cfg.keep_alive = Duration::from_secs(5);
    let ch = Arc::new(FileChannel::open("f", &cfg).unwrap());
    ch.put(evs(0..10)).unwrap();
    let putter = {
        let ch = ch.clone();
        std::thread::spawn(move || ch.put(evs(10..12)))
    };
    std::thread::sleep(Duration::from_millis(100));
    let t = ch.take(5, NO_WAIT).unwrap();
    ch.commit(t).unwrap();
    putter.join().unwrap().unwrap();
}

#[test]
fn file_channel_redelivers_uncommitted_takes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file_config(dir.path(), 1000);
    {
        let ch = FileChannel::open("f", &cfg).unwrap();
        ch.put(evs(0..10)).unwrap();
        let done = ch.take(4, NO_WAIT).unwrap();
        ch.commit(done).unwrap();
        let _in_flight = ch.take(3, NO_WAIT).unwrap();
        // Dropped without commit: as if the agent died mid-delivery.
    }
    let ch = FileChannel::open("f", &cfg).unwrap();
    assert_eq!(ch.stats().size, 6);
    let t = ch.take(100, NO_WAIT).unwrap();
    assert_eq!(
        bodies(&t),
        names(4..10),
        "committed takes must not come back; in-flight ones must"
    );
}

#[test]
fn out_of_order_commits_never_checkpoint_past_an_open_batch() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file_config(dir.path(), 1000);
    {
        let ch = FileChannel::open("f", &cfg).unwrap();
        ch.put(evs(0..9)).unwrap();
        let a = ch.take(3, NO_WAIT).unwrap();
        let b = ch.take(3, NO_WAIT).unwrap();
        let c = ch.take(3, NO_WAIT).unwrap();
        ch.commit(c).unwrap();
        ch.commit(a).unwrap();
        drop(b); // never committed
    }
    let ch = FileChannel::open("f", &cfg).unwrap();
    let t = ch.take(100, NO_WAIT).unwrap();
    // b (e3..e5) must come back; c after it may come back too (at-least-once), a must not.
    let got = bodies(&t);
    assert_eq!(got.first().map(String::as_str), Some("e3"), "{got:?}");
    assert!(!got.contains(&"e0".to_owned()));
}

#[test]
fn takes_committed_together_are_done_and_an_open_one_still_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file_config(dir.path(), 1000);
    {
        let ch = FileChannel::open("f", &cfg).unwrap();
        ch.put(evs(0..12)).unwrap();
        let a = ch.take(3, NO_WAIT).unwrap();
        let b = ch.take(3, NO_WAIT).unwrap();
        let c = ch.take(3, NO_WAIT).unwrap();
        let d = ch.take(3, NO_WAIT).unwrap();
        ch.commit_all(vec![a, b, d]).unwrap();
        assert_eq!(ch.stats().size, 6, "c and d are still held: c is open");
        drop(c); // never committed
    }
    let ch = FileChannel::open("f", &cfg).unwrap();
    let got = bodies(&ch.take(100, NO_WAIT).unwrap());
    // c (e6..e8) comes back; d after it may too (at-least-once); a and b must not.
    assert_eq!(got.first().map(String::as_str), Some("e6"), "{got:?}");
    assert!(!got.contains(&"e5".to_owned()), "{got:?}");

    let m = memory(100);
    m.put(evs(0..9)).unwrap();
    let takes: Vec<_> = (0..3).map(|_| m.take(3, NO_WAIT).unwrap()).collect();
    m.commit_all(takes).unwrap();
    assert_eq!(m.stats().size, 0);
}

/// Bodies of 1 KiB are views into the log's map. Neither a committed take nor the channel's
/// reader may keep a segment referenced while the commit retires it: a referenced segment can
/// only be deleted, and the spares that make later segments cheaper to sync would never be kept.
#[test]
fn committed_takes_leave_their_segments_to_be_kept_as_spares() {
    let spares_after = |takes_ahead: bool| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = file_config(dir.path(), 10_000);
        let ch = FileChannel::open("f", &cfg).unwrap();
        let body = |i: u32| Event::new(vec![b'a' + (i % 26) as u8; 1024]);
        // 20 KiB frames, two to a 64 KiB segment: 15 puts fill eight segments.
        for p in 0..15 {
            ch.put((p * 20..p * 20 + 20).map(body).collect()).unwrap();
        }
        if takes_ahead {
            // As a sink with batches on its way: the reader has moved past each segment by
            // the time its last take commits, and the take itself still holds it.
            let takes: Vec<_> = (0..15).map(|_| ch.take(20, NO_WAIT).unwrap()).collect();
            assert!(takes.iter().all(|t| t.len() == 20));
            for t in takes {
                ch.commit(t).unwrap();
            }
        } else {
            // One batch at a time, each ending where a frame does: every other take ends a
            // segment, with the reader still at its end.
            for _ in 0..15 {
                let t = ch.take(20, NO_WAIT).unwrap();
                assert_eq!(t.len(), 20);
                ch.commit(t).unwrap();
            }
        }
        std::fs::read_dir(&cfg.data_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".spare"))
            .count()
    };
    assert!(spares_after(true) > 0, "takes ahead: no spare kept");
    assert!(spares_after(false) > 0, "one at a time: no spare kept");
}

#[test]
fn memory_channel_byte_capacity() {
    let ch = MemoryChannel::new(
        "m",
        &MemoryChannelConfig {
            capacity: 1000,
            transaction_capacity: 100,
            keep_alive: Duration::from_millis(50),
            byte_capacity: Some(10),
        },
    );
    ch.put(vec![Event::new(vec![0u8; 8])]).unwrap();
    let err = ch.put(vec![Event::new(vec![0u8; 3])]).unwrap_err();
    assert!(err.to_string().contains("byteCapacity"), "{err}");
}

/// Interceptors and the multiplexing selector, through a real config and the channel processor.
#[test]
fn multiplexing_selector_routes_by_header_after_interceptors() {
    let text = "a.sources = r1\na.channels = eu us any\na.sinks =\n\
        a.sources.r1.type = seq\na.sources.r1.channels = eu us any\n\
        a.sources.r1.interceptors = f s\n\
        a.sources.r1.interceptors.f.type = regex_filter\na.sources.r1.interceptors.f.regex = ^drop\n\
        a.sources.r1.interceptors.f.excludeEvents = true\n\
        a.sources.r1.interceptors.s.type = org.apache.flume.interceptor.StaticInterceptor$Builder\n\
        a.sources.r1.interceptors.s.key = region\na.sources.r1.interceptors.s.value = us\n\
        a.sources.r1.selector.type = multiplexing\na.sources.r1.selector.header = region\n\
        a.sources.r1.selector.mapping.eu = eu\na.sources.r1.selector.mapping.us = us\n\
        a.sources.r1.selector.optional.eu = any\na.sources.r1.selector.default = any\n\
        a.channels.eu.type = memory\na.channels.us.type = memory\na.channels.any.type = memory\n";
    let (p, channels) = processor_over(text, &["eu", "us", "any"]);
    p.process(vec![
        Event::new("a").with_header("region", "eu"),
        Event::new("b"),
        Event::new("drop me"),
        Event::new("c").with_header("region", "mars"),
    ])
    .unwrap();
    let take = |i: usize| bodies(&channels[i].take(10, NO_WAIT).unwrap());
    assert_eq!(take(0), vec!["a"]);
    assert_eq!(
        take(1),
        vec!["b"],
        "static sets region=us where it is missing"
    );
    // Required puts happen before optional ones, so "c" (default) precedes "a" (optional).
    assert_eq!(
        take(2),
        vec!["c", "a"],
        "optional copy of eu, and the default for unmapped values"
    );
}

/// Flume 1.10's load_balancing selector through a real config and the channel processor: one
/// batch's events are dealt to the channels in turn, each stored once.
#[test]
fn load_balancing_selector_deals_events_to_the_channels_in_turn() {
    let text = "a.sources = r1\na.channels = c1 c2\na.sinks =\n\
        a.sources.r1.type = seq\na.sources.r1.channels = c1 c2\n\
        a.sources.r1.selector.type = load_balancing\n\
        a.sources.r1.selector.policy = round_robin\n\
        a.channels.c1.type = memory\na.channels.c2.type = memory\n";
    let (p, channels) = processor_over(text, &["c1", "c2"]);
    p.process(["a", "b", "c", "d", "e"].map(Event::new).to_vec())
        .unwrap();
    let take = |i: usize| bodies(&channels[i].take(10, NO_WAIT).unwrap());
    assert_eq!(take(0), vec!["a", "c", "e"]);
    assert_eq!(take(1), vec!["b", "d"]);
}

/// Source r1 of agent `a` in `text`, as the agent builds its processor, over memory channels
/// named `names` (in the order of the source's `channels`).
fn processor_over(
    text: &str,
    names: &[&str],
) -> (weir::source::ChannelProcessor, Vec<Arc<dyn Channel>>) {
    use weir::config::{AgentConfig, Properties};
    use weir::source::{ChannelProcessor, SourceCounters};
    let props = Properties::parse(std::path::Path::new("t.properties"), text.as_bytes()).unwrap();
    let cfg = AgentConfig::from_properties(&props, "a").unwrap();
    let channels: Vec<Arc<dyn Channel>> = names
        .iter()
        .map(|n| Arc::new(memory_named(n)) as Arc<dyn Channel>)
        .collect();
    let p = ChannelProcessor::new(
        &cfg.sources[0],
        &channels,
        Arc::new(SourceCounters::default()),
    );
    (p, channels)
}

fn memory_named(name: &str) -> MemoryChannel {
    MemoryChannel::new(
        name,
        &MemoryChannelConfig {
            capacity: 100,
            transaction_capacity: 100,
            keep_alive: Duration::from_millis(50),
            byte_capacity: None,
        },
    )
}

/// A full optional channel neither fails nor holds up the put (Flume: optional channels are
/// best effort); a full required channel fails it after its keep-alive.
#[test]
fn a_full_optional_channel_never_blocks_the_put() {
    use weir::config::{AgentConfig, Properties};
    use weir::source::{ChannelProcessor, SourceCounters};
    let text = "a.sources = r1\na.channels = main extra\na.sinks =\n\
        a.sources.r1.type = seq\na.sources.r1.channels = main extra\n\
        a.sources.r1.selector.optional = extra\n\
        a.channels.main.type = memory\na.channels.extra.type = memory\n";
    let props = Properties::parse(std::path::Path::new("t.properties"), text.as_bytes()).unwrap();
    let cfg = AgentConfig::from_properties(&props, "a").unwrap();
    // A keep-alive far longer than the test may take: waiting on it would be unmistakable.
    let patient = |name: &str, capacity: usize| {
        Arc::new(MemoryChannel::new(
            name,
            &MemoryChannelConfig {
                capacity,
                transaction_capacity: 100,
                keep_alive: Duration::from_secs(600),
                byte_capacity: None,
            },
        )) as Arc<dyn Channel>
    };
    let channels = vec![patient("main", 100), patient("extra", 1)];
    let p = ChannelProcessor::new(
        &cfg.sources[0],
        &channels,
        Arc::new(SourceCounters::default()),
    );
    p.process(vec![Event::new("first")]).unwrap();
    let started = std::time::Instant::now();
    p.process(vec![Event::new("second")]).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "the put waited for the full optional channel's keep-alive"
    );
    assert_eq!(
        bodies(&channels[0].take(10, NO_WAIT).unwrap()),
        vec!["first", "second"]
    );
    assert_eq!(
        bodies(&channels[1].take(10, NO_WAIT).unwrap()),
        vec!["first"]
    );
}
