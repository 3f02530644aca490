//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and saved crash reproducers
//! (`fuzz/regressions/<target>/`) through the fuzz target bodies on the stable toolchain, so plain
//! `cargo test` keeps every input the fuzzers found interesting passing.
//!
//! The seed part of the corpora is written by `regenerate_seed_corpus` below (ignored; see
//! `fuzz/README.md`).

#[path = "../fuzz/targets/mod.rs"]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `body` on every corpus and regression input of `target`, naming every input that fails
/// rather than stopping at the first.
fn replay(target: &str, body: fn(&[u8])) {
    let corpus = inputs(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} is empty or missing: regenerate it (fuzz/README.md)"
    );
    let regressions = inputs(&fuzz_dir().join("regressions").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed:\n{}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n")
    );
}

#[test]
fn rpc_messages_corpus() {
    replay("rpc_messages", targets::rpc_messages);
}

#[test]
fn source_messages_corpus() {
    replay("source_messages", targets::source_messages);
}

#[test]
fn spool_files_corpus() {
    replay("spool_files", targets::spool_files);
}

#[test]
fn frame_decode_corpus() {
    replay("frame_decode", targets::frame_decode);
}

#[test]
fn segment_recovery_corpus() {
    replay("segment_recovery", targets::segment_recovery);
}

#[test]
fn config_parse_corpus() {
    replay("config_parse", targets::config_parse);
}

#[test]
fn bucket_path_corpus() {
    replay("bucket_path", targets::bucket_path);
}

#[test]
fn java_keystore_corpus() {
    replay("java_keystore", targets::java_keystore);
}

/// The `valid-*` store seeds read with the fixtures' passwords (JKS or PKCS#12 as named), so
/// the fuzzer starts from stores that reach every entry kind; `two-keys` is refused as such.
#[test]
fn java_keystore_seeds_read_as_named() {
    use weir::config::java_keystore::read_bytes;
    for (name, bytes) in seeds::java_keystores() {
        let kind = if name.ends_with(".p12") {
            "PKCS12"
        } else {
            "JKS"
        };
        let pw = if name.contains("trust") {
            "trust-pass"
        } else {
            "store-pass"
        };
        let read = read_bytes(&bytes, kind, Some(pw), Some("key-pass"));
        match (name.starts_with("valid-"), read) {
            (true, Err(e)) => panic!("{name} should be read: {e}"),
            (false, Ok(_)) => panic!("{name} should not be read"),
            (false, Err(e)) if name == "two-keys.jks" => {
                assert!(e.to_string().contains("2 private keys"), "{e}")
            }
            _ => {}
        }
        targets::java_keystore(&bytes);
    }
}

#[test]
fn checkpoint_decode_corpus() {
    replay("checkpoint_decode", targets::checkpoint_decode);
}

/// Seed inputs: valid encodings from weir's own encoders, then the ways they go wrong on disk.
mod seeds {
    use weir::event::Event;
    use weir::wal::checkpoint::{
        CHECKPOINT_MAGIC, Checkpoint, META_MAGIC, Position, VerifiedEnd, encode_checkpoint,
        encode_meta, encode_meta_verified,
    };
    use weir::wal::frame::{FRAME_HEADER_LEN, encode_frame, encoded_frame_len};
    use weir::wal::log_id::LogId;
    use weir::wal::segment::{self, SEGMENT_HEADER_LEN, Seal};
    use weir::wal::slots::{SLOT_LEN, encode_slot};

    pub type Seeds = Vec<(String, Vec<u8>)>;

    pub fn frame(first: u64, epoch: u32, events: &[Event]) -> Vec<u8> {
        let mut buf = vec![0u8; encoded_frame_len(events).unwrap()];
        encode_frame(&mut buf, first, epoch, events);
        buf
    }

    /// A frame with a correct CRC around an arbitrary payload: reaches the structural checks that
    /// random bytes almost never get past.
    pub fn raw_frame(first: u64, count: u32, epoch: u32, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; FRAME_HEADER_LEN];
        buf[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        buf[8..16].copy_from_slice(&first.to_le_bytes());
        buf[16..20].copy_from_slice(&count.to_le_bytes());
        buf[20..24].copy_from_slice(&epoch.to_le_bytes());
        buf.extend_from_slice(payload);
        let crc = crc32fast::hash(&buf[4..]);
        buf[0..4].copy_from_slice(&crc.to_le_bytes());
        buf
    }

    /// One event in wire form, headers in the given (possibly non-canonical) order.
    pub fn raw_event(headers: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
        let mut e = (headers.len() as u16).to_le_bytes().to_vec();
        for (k, v) in headers {
            e.extend_from_slice(&(k.len() as u16).to_le_bytes());
            e.extend_from_slice(k);
            e.extend_from_slice(&(v.len() as u32).to_le_bytes());
            e.extend_from_slice(v);
        }
        e.extend_from_slice(body);
        let mut out = (e.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&e);
        out
    }

    fn flip(mut b: Vec<u8>, byte: usize, bit: u8) -> Vec<u8> {
        b[byte] ^= 1 << bit;
        b
    }

    fn garbage(seed: u64, len: usize) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..len).map(|_| rng.u8(..)).collect()
    }

    pub fn one() -> Vec<Event> {
        vec![Event::new(&b"hi"[..]).with_header("h", "v")]
    }

    pub fn many() -> Vec<Event> {
        vec![
            Event::new(&b"hello"[..]).with_header("host", "edge-1"),
            Event::new(&b""[..]),
            Event::new(vec![0u8, 255, 10])
                .with_header("a", "")
                .with_header("", "v"),
            Event::new(&b"line of a log file\n"[..])
                .with_header("timestamp", "1700000000000")
                .with_header("host", "edge-2")
                .with_header("topic", "logs")
                .with_header("k\u{e9}y", "v\u{2603}"),
            Event::new(vec![7u8; 200]),
        ]
    }

    pub fn frames() -> Seeds {
        let one = frame(5, 1, &one());
        let many = frame(0, 3, &many());
        let empty_body = frame(9, 1, &[Event::new(&b""[..])]);
        let mut s: Seeds = vec![
            ("valid-one-header".into(), one.clone()),
            ("valid-many".into(), many.clone()),
            ("valid-empty-body".into(), empty_body.clone()),
            (
                "valid-no-headers".into(),
                frame(1, 1, &[Event::new(&b"body only"[..])]),
            ),
            (
                "valid-many-headers".into(),
                frame(
                    2,
                    2,
                    &[(0..40).fold(Event::new(&b"x"[..]), |e, i| {
                        e.with_header(format!("key-{i:02}"), "v".repeat(i))
                    })],
                ),
            ),
            (
                "valid-100-empty-events".into(),
                frame(1 << 40, u32::MAX, &vec![Event::new(&b""[..]); 100]),
            ),
            (
                "valid-high-offset".into(),
                frame(u64::MAX - 10, 7, &self::one()),
            ),
            (
                "valid-then-junk".into(),
                [one.clone(), garbage(1, 40)].concat(),
            ),
            ("zeroes".into(), vec![0u8; 64]),
            ("short".into(), one[..10].to_vec()),
            ("header-only".into(), one[..FRAME_HEADER_LEN].to_vec()),
            ("truncated-payload".into(), many[..many.len() - 7].to_vec()),
            ("flip-payload".into(), flip(many.clone(), 40, 3)),
            ("flip-crc".into(), flip(one.clone(), 0, 0)),
            ("flip-length".into(), flip(one.clone(), 5, 1)),
            ("flip-count".into(), flip(many.clone(), 16, 0)),
            ("garbage".into(), garbage(2, 300)),
        ];
        // CRC-valid frames whose payload is wrong in each way the decoder checks.
        let ev = raw_event(&[(b"k", b"v")], b"body");
        let bad: Vec<(&str, u32, Vec<u8>)> = vec![
            ("crc-ok-event-len-past-payload", 1, {
                let mut e = ev.clone();
                e[0..4].copy_from_slice(&1000u32.to_le_bytes());
                e
            }),
            ("crc-ok-event-len-short", 1, vec![1, 0, 0, 0, 0]),
            (
                "crc-ok-key-past-event",
                1,
                vec![5, 0, 0, 0, 1, 0, 5, 0, b'a'],
            ),
            ("crc-ok-value-past-event", 1, {
                let mut e = raw_event(&[(b"k", b"v")], b"");
                let n = e.len();
                e[n - 5..n - 1].copy_from_slice(&99u32.to_le_bytes());
                e
            }),
            ("crc-ok-count-too-high", 2, ev.clone()),
            ("crc-ok-count-too-low", 1, [ev.clone(), ev.clone()].concat()),
            (
                "crc-ok-trailing-bytes",
                1,
                [ev.clone(), vec![1, 2, 3]].concat(),
            ),
            (
                "crc-ok-key-not-utf8",
                1,
                raw_event(&[(b"\xff\xfe", b"v")], b"b"),
            ),
            (
                "crc-ok-value-not-utf8",
                1,
                raw_event(&[(b"k", b"\xc3")], b"b"),
            ),
            (
                "crc-ok-headers-unsorted",
                1,
                raw_event(&[(b"z", b"1"), (b"a", b"2")], b"b"),
            ),
            (
                "crc-ok-headers-duplicate",
                1,
                raw_event(&[(b"k", b"1"), (b"k", b"2")], b"b"),
            ),
            (
                "crc-ok-header-count-high",
                1,
                raw_event(&[(b"k", b"v")], b"")
                    .into_iter()
                    .enumerate()
                    .map(|(i, b)| if i == 4 { 9 } else { b })
                    .collect(),
            ),
        ];
        for (name, count, payload) in bad {
            s.push((name.into(), raw_frame(3, count, 1, &payload)));
        }
        s.push(("zero-event-count".into(), raw_frame(3, 0, 1, &ev)));
        s
    }

    /// The bytes that follow the segment header page.
    pub fn segments() -> Seeds {
        let chain = |frames: &[(u64, u32, usize)]| -> Vec<u8> {
            frames
                .iter()
                .flat_map(|&(first, epoch, n)| {
                    let events: Vec<Event> = (0..n)
                        .map(|i| Event::new(vec![i as u8; 10]).with_header("n", i.to_string()))
                        .collect();
                    frame(first, epoch, &events)
                })
                .collect()
        };
        let good = chain(&[(0, 1, 2), (2, 1, 3), (5, 2, 1)]);
        let f1 = chain(&[(0, 1, 2)]).len();
        let mut s: Seeds = vec![
            ("unwritten".into(), vec![0u8; 256]),
            ("chain".into(), good.clone()),
            ("chain-then-stale-offset".into(), {
                [good.clone(), chain(&[(2, 2, 1)])].concat()
            }),
            ("chain-then-older-epoch".into(), {
                [good.clone(), chain(&[(6, 1, 1)])].concat()
            }),
            ("chain-then-offset-gap".into(), {
                [good.clone(), chain(&[(9, 2, 1)])].concat()
            }),
            ("chain-from-10".into(), chain(&[(10, 1, 1), (11, 1, 2)])),
            ("torn-tail".into(), good[..good.len() - 5].to_vec()),
            ("torn-middle-then-valid".into(), {
                let mut b = good.clone();
                b[f1 + 30] ^= 0x40;
                b
            }),
            ("torn-first-then-valid".into(), flip(good.clone(), 2, 2)),
            (
                "junk-then-valid".into(),
                [garbage(3, 37), good.clone()].concat(),
            ),
            (
                "short-nonzero-tail".into(),
                [good.clone(), vec![1u8; 10]].concat(),
            ),
            ("near-offset-limit".into(), {
                chain(&[(u64::MAX - 5, 1, 2), (u64::MAX - 3, 1, 3)])
            }),
            ("offset-overflow".into(), chain(&[(u64::MAX - 1, 1, 3)])),
            ("garbage".into(), garbage(4, 512)),
        ];
        // A chain that fills the page exactly, the last frame cut by the end of the segment.
        let mut fill = Vec::new();
        let mut off = 0;
        while fill.len() < SEGMENT_HEADER_LEN {
            fill.extend(chain(&[(off, 1, 7)]));
            off += 7;
        }
        fill.truncate(SEGMENT_HEADER_LEN);
        s.push(("full-page-cut-frame".into(), fill));
        // Header pages, for `decode_header` on the raw input: made before log ids, and with one.
        let sealed = |header: &[u8]| {
            let mut page = header[..128].to_vec();
            let seal = Seal {
                end_pos: 4200,
                next_offset: 6,
            };
            page[64..96].copy_from_slice(&segment::encode_seal(header, seal));
            page
        };
        let header = segment::encode_header(0, 8192, None);
        s.push(("header-page".into(), header[..128].to_vec()));
        s.push(("header-page-sealed".into(), sealed(&header)));
        s.push(("header-page-bad-crc".into(), flip(sealed(&header), 20, 1)));
        let with_id = segment::encode_header(0, 8192, Some(LogId([0x3c; 16])));
        s.push(("header-page-sealed-with-log-id".into(), sealed(&with_id)));
        s
    }

    pub fn checkpoints() -> Seeds {
        let ck = |name: &str, offset: u64| {
            encode_checkpoint(&Checkpoint {
                name: name.into(),
                position: Position {
                    offset,
                    segment: offset & !0xff,
                    frame_pos: offset.wrapping_add(4096),
                },
                log: None,
            })
        };
        let slot = |seq: u64, payload: &[u8]| encode_slot(CHECKPOINT_MAGIC, seq, payload).to_vec();
        let a = slot(7, &ck("sink-1", 100));
        let b = slot(8, &ck("sink-1", 250));
        let mut torn = b.clone();
        torn[20] ^= 0xff;
        let raw_payload = |name_len: u16, name: &[u8]| {
            let mut p = vec![0u8; 24];
            p[0] = 42;
            p.extend_from_slice(&name_len.to_le_bytes());
            p.extend_from_slice(name);
            p
        };
        let mut s: Seeds = vec![
            ("both-slots".into(), [a.clone(), b.clone()].concat()),
            (
                "both-slots-newest-first".into(),
                [b.clone(), a.clone()].concat(),
            ),
            ("one-slot-torn".into(), [a.clone(), torn.clone()].concat()),
            ("both-torn".into(), [flip(a.clone(), 100, 0), torn].concat()),
            ("only-first-slot".into(), a.clone()),
            ("short-file".into(), [a.clone(), b[..188].to_vec()].concat()),
            (
                "second-slot-only".into(),
                [vec![0u8; SLOT_LEN], b.clone()].concat(),
            ),
            (
                "equal-sequences".into(),
                [a.clone(), slot(7, &ck("sink-1", 1))].concat(),
            ),
            ("long-name".into(), slot(1, &ck(&"n".repeat(64), u64::MAX))),
            (
                "name-too-long".into(),
                slot(1, &raw_payload(65, &[b'n'; 65])),
            ),
            (
                "name-len-past-payload".into(),
                slot(1, &raw_payload(200, b"abc")),
            ),
            (
                "name-not-utf8".into(),
                slot(1, &raw_payload(2, b"\xff\xff")),
            ),
            ("name-path".into(), slot(1, &raw_payload(4, b"../x"))),
            ("name-empty".into(), slot(1, &raw_payload(0, b""))),
            ("payload-short".into(), slot(1, &[1, 2, 3])),
            (
                "payload-trailing".into(),
                slot(1, &[ck("c", 5), vec![9; 10]].concat()),
            ),
            (
                "payload-max".into(),
                slot(1, &[ck("c", 5), vec![9; 440]].concat()),
            ),
            ("meta".into(), {
                let m = |seq, epoch| encode_slot(META_MAGIC, seq, &encode_meta(epoch)).to_vec();
                [m(3, 3), m(4, 4)].concat()
            }),
            ("with-log-id".into(), {
                let c = Checkpoint {
                    name: "sink-1".into(),
                    position: Position {
                        offset: 300,
                        segment: 256,
                        frame_pos: 4396,
                    },
                    log: Some(LogId([0xab; 16])),
                };
                [b.clone(), slot(9, &encode_checkpoint(&c))].concat()
            }),
            ("meta-with-log-id".into(), {
                let end = VerifiedEnd {
                    base: 256,
                    end_pos: 8192,
                    next_offset: 300,
                };
                let record = encode_meta_verified(5, end, LogId([0x5a; 16]), true);
                encode_slot(META_MAGIC, 2, &record).to_vec()
            }),
            ("bad-magic".into(), {
                let mut b = a.clone();
                b[0] = b'X';
                b
            }),
            ("bad-version".into(), flip(a.clone(), 4, 1)),
            ("bad-length".into(), {
                let mut b = a.clone();
                b[6..8].copy_from_slice(&600u16.to_le_bytes());
                b
            }),
            ("zeroes".into(), vec![0u8; 2 * SLOT_LEN]),
            ("garbage".into(), garbage(5, 700)),
            ("bare-payload".into(), ck("consumer.a_b-c", 77)),
        ];
        // A length that makes the CRC land on the last bytes of the slot.
        let full = slot(2, &vec![0x55; 492]);
        s.push(("payload-fills-slot".into(), full));
        s
    }

    /// The selector byte of `targets::rpc_messages`, then a message.
    pub fn rpc_messages() -> Seeds {
        use weir::avro_rpc::{self, Requestor};
        use weir::thrift_rpc::{self, Protocol};
        let events = many();
        let batch = avro_rpc::append_batch_call(events.iter());
        let single = avro_rpc::append_call(&events[0]);
        let first_request = Requestor::new().request(&batch);
        let with = |sel: u8, bytes: &[u8]| [&[sel][..], bytes].concat();
        let thrift_batch = |p| thrift_rpc::append_batch_call(p, 7, events.iter());
        let status = |p| thrift_rpc::status_reply(p, "appendBatch", 1, thrift_rpc::Status::Ok);
        let exception = |p| thrift_rpc::exception_reply(p, "appendBatch", 1, 1, "no such method");
        vec![
            ("avro-first-request".into(), with(0, &first_request)),
            (
                "avro-first-request-cut".into(),
                with(0, &first_request[..first_request.len() / 2]),
            ),
            ("avro-call-batch".into(), with(1, &batch)),
            ("avro-call-append".into(), with(1, &single)),
            ("avro-call-unknown".into(), with(1, b"\x0cunknown\x00")),
            ("avro-reply-garbage".into(), with(2, &garbage(6, 64))),
            (
                "avro-frames".into(),
                with(
                    3,
                    &[
                        avro_rpc::encode_frame(1, &batch),
                        avro_rpc::encode_frame(2, b""),
                    ]
                    .concat(),
                ),
            ),
            (
                "avro-frame-huge-count".into(),
                with(3, &[0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]),
            ),
            (
                "thrift-compact-batch".into(),
                with(4, &thrift_batch(Protocol::Compact)),
            ),
            (
                "thrift-compact-append".into(),
                with(
                    4,
                    &thrift_rpc::append_call(Protocol::Compact, 3, &events[1]),
                ),
            ),
            (
                "thrift-binary-batch".into(),
                with(5, &thrift_batch(Protocol::Binary)),
            ),
            (
                "thrift-binary-cut".into(),
                with(5, &thrift_batch(Protocol::Binary)[..30]),
            ),
            (
                "thrift-compact-reply".into(),
                with(6, &status(Protocol::Compact)),
            ),
            (
                "thrift-binary-reply".into(),
                with(6, &status(Protocol::Binary)),
            ),
            (
                "thrift-exception".into(),
                with(6, &exception(Protocol::Compact)),
            ),
            (
                "thrift-frames".into(),
                with(
                    6,
                    &[
                        thrift_rpc::encode_frame(&status(Protocol::Binary)),
                        vec![0x7f, 0xff, 0xff, 0xff],
                    ]
                    .concat(),
                ),
            ),
        ]
    }

    /// The selector byte of `targets::source_messages`, then an input.
    pub fn source_messages() -> Seeds {
        let with = |sel: u8, bytes: &[u8]| [&[sel][..], bytes].concat();
        let flume_event = weir::flume_event_format::encode(
            &[("host".to_owned(), "edge-1".to_owned())]
                .into_iter()
                .collect(),
            b"body",
        );
        vec![
            (
                "syslog-5424".into(),
                with(
                    0,
                    b"<165>1 2003-10-11T22:14:15.003Z host app 1 ID47 [ex@32473 a=\"1\"] msg\n",
                ),
            ),
            (
                "syslog-3164".into(),
                with(0, b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed\n"),
            ),
            (
                "syslog-octet-counted".into(),
                with(0, b"12 <13>1 - - - x9 <13>hello\n"),
            ),
            ("syslog-bad-pri".into(), with(0, b"<999>1 x\n<>\n<13\n")),
            (
                "http-json".into(),
                with(1, br#"[{"headers":{"a":"b"},"body":"hello"},{"body":""}]"#),
            ),
            (
                "http-json-bad".into(),
                with(1, br#"[{"headers":{"a":1},"body":"x"}"#),
            ),
            (
                "http-json-escapes".into(),
                with(1, br#"[{"body":"\ud83d\ude00 \u0000"}]"#),
            ),
            ("flume-event".into(), with(2, &flume_event)),
            ("flume-event-cut".into(), with(2, &flume_event[..5])),
            ("blob-query".into(), with(3, b"/p?a=1&b=%20x+y&c&%zz=%")),
        ]
    }

    /// Files a spooling directory may hold: Avro containers as file_roll's AVRO_EVENT writes
    /// them (each codec, several blocks), damaged ones, text and binary.
    pub fn spool_files() -> Seeds {
        use weir::config::{AvroCodec, SerializerConfig};
        use weir::sink::serializer::Serializer;
        let container = |codec, batches: &[&[Event]]| {
            let config = SerializerConfig::AvroEvent {
                sync_interval_bytes: 64,
                codec,
            };
            Serializer::whole_file(&config, batches).unwrap()
        };
        // Flume's position file: a header naming the file, a block of one offset per commit.
        let flume_meta = {
            use weir::flume_event_format::{put_bytes, put_bytes_map, put_long};
            let sync = *b"flume-meta-sync!";
            let mut out = b"Obj\x01".to_vec();
            put_bytes_map(
                &mut out,
                &[
                    (
                        "avro.schema",
                        &br#"{"type":"record","name":"TransferStateFileMeta","namespace":"org.apache.flume.serialization","fields":[{"name":"offset","type":"long"}]}"#[..],
                    ),
                    ("avro.codec", b"null"),
                    ("file", b"/var/spool/app/a.log"),
                ],
            );
            out.extend_from_slice(&sync);
            for offset in [0, 120, 4096] {
                let mut record = Vec::new();
                put_long(&mut record, offset);
                put_long(&mut out, 1);
                put_bytes(&mut out, &record);
                out.extend_from_slice(&sync);
            }
            out
        };
        let evs = many();
        let null = container(AvroCodec::Null, &[&evs, &evs[..1]]);
        let deflate = container(AvroCodec::Deflate, &[&evs]);
        let snappy = container(AvroCodec::Snappy, &[&evs[1..], &evs]);
        let bzip2 = container(AvroCodec::Bzip2, &[&evs, &evs[2..]]);
        let zstandard = container(AvroCodec::Zstandard, &[&evs[..2], &evs]);
        vec![
            ("avro-null".into(), null.clone()),
            ("avro-deflate".into(), deflate.clone()),
            ("avro-snappy".into(), snappy.clone()),
            ("avro-bzip2".into(), bzip2.clone()),
            ("avro-zstandard".into(), zstandard.clone()),
            (
                "avro-flip-zstandard-block".into(),
                flip(zstandard.clone(), zstandard.len() - 30, 4),
            ),
            ("avro-no-blocks".into(), container(AvroCodec::Null, &[])),
            ("avro-cut".into(), null[..null.len() - 9].to_vec()),
            (
                "avro-flip-sync".into(),
                flip(null.clone(), null.len() - 3, 1),
            ),
            (
                "avro-flip-block".into(),
                flip(deflate.clone(), deflate.len() - 30, 4),
            ),
            ("avro-header-only".into(), null[..60].to_vec()),
            (
                "lines".into(),
                b"first\nsecond line\r\n\nlast without newline".to_vec(),
            ),
            (
                "lines-long".into(),
                [vec![b'x'; 40], b"\n".to_vec(), vec![b'y'; 3]].concat(),
            ),
            ("flume-meta".into(), flume_meta.clone()),
            (
                "flume-meta-cut".into(),
                flume_meta[..flume_meta.len() - 5].to_vec(),
            ),
            (
                "lines-not-utf8".into(),
                b"ok\n\xff\xfe bad\n\xe2\x82\n".to_vec(),
            ),
            ("binary".into(), garbage(7, 50)),
            ("empty".into(), Vec::new()),
        ]
    }
    /// Flume properties files: weir's embedded default, one per kind of component with its
    /// keys set, sink groups, selectors and interceptors, `${…}` references, and the ways files
    /// go wrong (bad escapes, missing and unknown keys, wiring to nothing).
    pub fn configs() -> Seeds {
        let wiring = "a.sources = r\na.channels = c\na.sinks = k\na.sources.r.channels = c\n\
                      a.sinks.k.channel = c\na.channels.c.type = memory\n";
        let with = |rest: &str| format!("{wiring}{rest}").into_bytes();
        vec![
            (
                "valid-embedded-default".into(),
                include_bytes!("../conf/weir.properties").to_vec(),
            ),
            (
                "valid-netcat-file-logger".into(),
                with(
                    "a.sources.r.type = netcat\na.sources.r.bind = 0.0.0.0\n\
                     a.sources.r.port = 44444\na.sources.r.max-line-length = 1024\n\
                     a.sources.r.ack-every-event = false\na.channels.c.type = file\n\
                     a.channels.c.checkpointDir = /tmp/cp\na.channels.c.dataDirs = /tmp/d1,/tmp/d2\n\
                     a.channels.c.capacity = 1000000\na.channels.c.transactionCapacity = 10000\n\
                     a.channels.c.maxFileSize = 2146435071\na.channels.c.minimumRequiredSpace = 524288000\n\
                     a.channels.c.fsyncPerTransaction = false\na.channels.c.fsyncInterval = 5\n\
                     a.channels.c.onCorruption = skip\na.sinks.k.type = logger\n\
                     a.sinks.k.maxBytesToLog = 64\n",
                ),
            ),
            (
                "valid-kafka-sink".into(),
                with(
                    "a.sources.r.type = seq\na.sources.r.totalEvents = 1000\n\
                     a.sources.r.batchSize = 100\na.sinks.k.type = org.apache.flume.sink.kafka.KafkaSink\n\
                     a.sinks.k.kafka.bootstrap.servers = localhost:9092\n\
                     a.sinks.k.kafka.topic = logs\na.sinks.k.flumeBatchSize = 100\n\
                     a.sinks.k.kafka.producer.acks = 1\na.sinks.k.kafka.producer.linger.ms = 5\n\
                     a.sinks.k.kafka.producer.compression.type = snappy\n\
                     a.sinks.k.useFlumeEventFormat = true\na.sinks.k.partitionIdHeader = p\n\
                     a.sinks.k.allowTopicOverride = true\na.sinks.k.topicHeader = topic\n\
                     a.sinks.k.kafka.producer.security.protocol = SASL_SSL\n\
                     a.sinks.k.kafka.producer.sasl.mechanism = PLAIN\n",
                ),
            ),
            (
                "valid-kafka-source-and-channel".into(),
                b"b.sources = s\nb.channels = kc\nb.sinks = n\nb.sources.s.type = kafka\n\
                  b.sources.s.kafka.bootstrap.servers = h1:9092,h2:9092\n\
                  b.sources.s.kafka.topics.regex = ^logs-.*\nb.sources.s.batchSize = 500\n\
                  b.sources.s.kafka.consumer.group.id = g\nb.sources.s.channels = kc\n\
                  b.channels.kc.type = org.apache.flume.channel.kafka.KafkaChannel\n\
                  b.channels.kc.kafka.bootstrap.servers = h1:9092\nb.channels.kc.kafka.topic = ch\n\
                  b.channels.kc.parseAsFlumeEvent = false\nb.channels.kc.pollTimeout = 100\n\
                  b.sinks.n.type = null\nb.sinks.n.channel = kc\nb.sinks.n.batchSize = 10\n"
                    .to_vec(),
            ),
            (
                "valid-syslog-multiplexing-interceptors".into(),
                b"a.sources = r\na.channels = c1 c2\na.sinks = k1 k2\n\
                  a.sources.r.type = multiport_syslogtcp\na.sources.r.ports = 5140 5141\n\
                  a.sources.r.host = 127.0.0.1\na.sources.r.keepFields = timestamp hostname\n\
                  a.sources.r.portHeader = port\na.sources.r.channels = c1 c2\n\
                  a.sources.r.selector.type = multiplexing\na.sources.r.selector.header = port\n\
                  a.sources.r.selector.mapping.5140 = c1\na.sources.r.selector.default = c2\n\
                  a.sources.r.selector.optional.5141 = c2\n\
                  a.sources.r.interceptors = t h s x e sr rm\n\
                  a.sources.r.interceptors.t.type = timestamp\na.sources.r.interceptors.t.preserveExisting = true\n\
                  a.sources.r.interceptors.h.type = host\na.sources.r.interceptors.h.useIP = false\n\
                  a.sources.r.interceptors.s.type = static\na.sources.r.interceptors.s.key = dc\n\
                  a.sources.r.interceptors.s.value = eu-1\n\
                  a.sources.r.interceptors.x.type = regex_filter\na.sources.r.interceptors.x.regex = ^DEBUG\n\
                  a.sources.r.interceptors.x.excludeEvents = true\n\
                  a.sources.r.interceptors.e.type = regex_extractor\n\
                  a.sources.r.interceptors.e.regex = (\\\\d+):(\\\\d+)\n\
                  a.sources.r.interceptors.e.serializers = s1 s2\n\
                  a.sources.r.interceptors.e.serializers.s1.name = one\n\
                  a.sources.r.interceptors.e.serializers.s2.type = org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer\n\
                  a.sources.r.interceptors.e.serializers.s2.name = when\n\
                  a.sources.r.interceptors.e.serializers.s2.pattern = yyyy-MM-dd'T'HH:mm:ss.SSSZ\n\
                  a.sources.r.interceptors.sr.type = search_replace\n\
                  a.sources.r.interceptors.sr.searchPattern = (user)=(?<name>\\\\w+)\n\
                  a.sources.r.interceptors.sr.replaceString = $1=\\\\$x$${name}\n\
                  a.sources.r.interceptors.rm.type = remove_header\n\
                  a.sources.r.interceptors.rm.fromList = a, b\n\
                  a.channels.c1.type = memory\na.channels.c1.capacity = 10000\n\
                  a.channels.c1.byteCapacity = 800000\na.channels.c2.type = SPILLABLEMEMORY\n\
                  a.channels.c2.memoryCapacity = 100\na.channels.c2.overflowCapacity = 1000\n\
                  a.channels.c2.checkpointDir = /tmp/c\na.channels.c2.dataDirs = /tmp/d\n\
                  a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\n\
                  a.sinks.k1.sink.directory = /tmp/out\na.sinks.k1.sink.rollInterval = 0\n\
                  a.sinks.k1.sink.serializer = AVRO_EVENT\na.sinks.k1.sink.serializer.compressionCodec = deflate\n\
                  a.sinks.k1.sink.pathManager = ROLLTIME\na.sinks.k1.sink.pathManager.prefix = p-\n\
                  a.sinks.k2.type = http\na.sinks.k2.channel = c2\n\
                  a.sinks.k2.endpoint = http://localhost:8080/in\na.sinks.k2.backoff.5XX = false\n\
                  a.sinks.k2.rollback.503 = true\na.sinks.k2.incrementMetrics.200 = true\n\
                  a.sinkgroups = g\na.sinkgroups.g.sinks = k1 k2\n\
                  a.sinkgroups.g.processor.type = failover\n\
                  a.sinkgroups.g.processor.priority.k1 = 10\na.sinkgroups.g.processor.priority.k2 = 5\n\
                  a.sinkgroups.g.processor.maxpenalty = 10000\n"
                    .to_vec(),
            ),
            (
                "valid-files-and-rpc".into(),
                b"a.sources = sp td ex av th h u sy st\na.channels = c\na.sinks = k1 k2\n\
                  a.sources.sp.type = spooldir\na.sources.sp.spoolDir = /tmp/spool\n\
                  a.sources.sp.deserializer = AVRO\na.sources.sp.deserializer.schemaType = LITERAL\n\
                  a.sources.sp.deletePolicy = immediate\na.sources.sp.consumeOrder = random\n\
                  a.sources.sp.includePattern = ^.*\\\\.log$\na.sources.sp.channels = c\n\
                  a.sources.td.type = TAILDIR\na.sources.td.filegroups = f1 f2\n\
                  a.sources.td.filegroups.f1 = /var/log/app/.*\\\\.log\n\
                  a.sources.td.filegroups.f2 = /var/log/test.log\na.sources.td.headers.f1.kind = app\n\
                  a.sources.td.positionFile = /tmp/pos.json\na.sources.td.fileHeader = true\n\
                  a.sources.td.channels = c\n\
                  a.sources.ex.type = exec\na.sources.ex.command = tail -F /var/log/x\n\
                  a.sources.ex.shell = /bin/sh -c\na.sources.ex.restart = true\na.sources.ex.channels = c\n\
                  a.sources.av.type = avro\na.sources.av.bind = 0.0.0.0\na.sources.av.port = 4141\n\
                  a.sources.av.compression-type = deflate\na.sources.av.ipFilter = true\n\
                  a.sources.av.ipFilterRules = allow:ip:127.*,allow:name:localhost,deny:ip:*\n\
                  a.sources.av.channels = c\n\
                  a.sources.th.type = thrift\na.sources.th.bind = ::\na.sources.th.port = 4142\n\
                  a.sources.th.protocol = binary\na.sources.th.channels = c\n\
                  a.sources.h.type = http\na.sources.h.port = 8080\n\
                  a.sources.h.handler = org.apache.flume.sink.solr.morphline.BlobHandler\n\
                  a.sources.h.channels = c\n\
                  a.sources.u.type = netcatudp\na.sources.u.port = 5555\n\
                  a.sources.u.remoteAddressHeader = from\na.sources.u.channels = c\n\
                  a.sources.sy.type = syslogudp\na.sources.sy.port = 514\na.sources.sy.channels = c\n\
                  a.sources.st.type = org.apache.flume.source.StressSource\na.sources.st.size = 10\n\
                  a.sources.st.maxTotalEvents = 100\na.sources.st.channels = c\n\
                  a.channels.c.type = memory\na.channels.c.capacity = 1000\n\
                  a.channels.c.transactionCapacity = 1000\n\
                  a.sinks.k1.type = avro\na.sinks.k1.hostname = collector\na.sinks.k1.port = 4141\n\
                  a.sinks.k1.batch-size = 500\na.sinks.k1.compression-type = deflate\n\
                  a.sinks.k1.compression-level = 9\na.sinks.k1.channel = c\n\
                  a.sinks.k2.type = thrift\na.sinks.k2.hostname = collector\na.sinks.k2.port = 4142\n\
                  a.sinks.k2.channel = c\n\
                  a.sinkgroups = lb\na.sinkgroups.lb.sinks = k1 k2\n\
                  a.sinkgroups.lb.processor.type = load_balance\n\
                  a.sinkgroups.lb.processor.selector = random\na.sinkgroups.lb.processor.backoff = true\n"
                    .to_vec(),
            ),
            (
                "valid-hdfs-http-file-roll".into(),
                b"a.sources = r\na.channels = c\na.sinks = h1 h2 w f\n\
                  a.sources.r.type = seq\na.sources.r.channels = c\n\
                  a.sources.r.interceptors = ts\na.sources.r.interceptors.ts.type = timestamp\n\
                  a.channels.c.type = memory\na.channels.c.capacity = 1000\n\
                  a.channels.c.transactionCapacity = 500\n\
                  a.sinks.h1.type = hdfs\na.sinks.h1.channel = c\n\
                  a.sinks.h1.hdfs.path = file:///tmp/weir/%{app}/%Y-%m-%d/%H%M\n\
                  a.sinks.h1.hdfs.filePrefix = events-%{host}\na.sinks.h1.hdfs.fileSuffix = .seq\n\
                  a.sinks.h1.hdfs.fileType = SequenceFile\na.sinks.h1.hdfs.writeFormat = Text\n\
                  a.sinks.h1.hdfs.round = true\na.sinks.h1.hdfs.roundValue = 10\n\
                  a.sinks.h1.hdfs.roundUnit = minute\na.sinks.h1.hdfs.timeZone = Asia/Kolkata\n\
                  a.sinks.h1.hdfs.rollInterval = 600\na.sinks.h1.hdfs.rollSize = 134217728\n\
                  a.sinks.h1.hdfs.rollCount = 0\na.sinks.h1.hdfs.idleTimeout = 60\n\
                  a.sinks.h1.hdfs.batchSize = 500\na.sinks.h1.hdfs.inUsePrefix = _\n\
                  a.sinks.h2.type = org.apache.flume.sink.hdfs.HDFSEventSink\na.sinks.h2.channel = c\n\
                  a.sinks.h2.hdfs.path = hdfs://namenode:8020/flume/%y%m%d\n\
                  a.sinks.h2.hdfs.webhdfsAddress = nn1:9870,nn2:9870\n\
                  a.sinks.h2.hdfs.fileType = CompressedStream\na.sinks.h2.serializer = HEADER_AND_TEXT\n\
                  a.sinks.h2.hdfs.useLocalTimeStamp = true\na.sinks.h2.hdfs.proxyUser = etl\n\
                  a.sinks.h2.hdfs.codeC = org.apache.hadoop.io.compress.ZStandardCodec\n\
                  a.sinks.h2.hdfs.callTimeout = 60000\na.sinks.h2.hdfs.closeTries = 3\n\
                  a.sinks.w.type = http\na.sinks.w.channel = c\n\
                  a.sinks.w.endpoint = http://collector:8080/ingest\na.sinks.w.connectTimeout = 2000\n\
                  a.sinks.w.requestTimeout = 3000\na.sinks.w.contentTypeHeader = application/json\n\
                  a.sinks.w.backoff.503 = false\na.sinks.w.rollback.5XX = true\n\
                  a.sinks.f.type = file_roll\na.sinks.f.channel = c\na.sinks.f.sink.directory = /tmp/out\n\
                  a.sinks.f.sink.rollInterval = 0\na.sinks.f.sink.serializer = AVRO_EVENT\n\
                  a.sinks.f.sink.serializer.compressionCodec = zstandard\n\
                  a.sinks.f.sink.pathManager = ROLLTIME\na.sinks.f.sink.pathManager.prefix = ev-\n"
                    .to_vec(),
            ),
            (
                "valid-references".into(),
                with(
                    "a.sources.r.type = netcat\na.sources.r.bind = ${host:-127.0.0.1}\n\
                     a.sources.r.port = ${env:PORT}\nhost = 0.0.0.0\n\
                     a.sinks.k.type = ${sys:sink:-null}\na.sinks.k.batchSize = ${a.n}${a.n}\n\
                     a.n = 5\na.x = $${literal} and ${a.${a.which}}\na.which = n\n",
                ),
            ),
            (
                "reference-loop".into(),
                with("a.sources.r.type = seq\na.sinks.k.type = null\na.x = ${a.y}\na.y = ${a.x}\n"),
            ),
            (
                "valid-escapes-and-continuations".into(),
                b"# comment\n! another\na.sources = \\\n  r\na.channels : c\na.sinks k\n\
                  a.sources.r.type = seq\na.sources.r.channels = c\na.channels.c.type = memory\n\
                  a.sinks.k.type = log\\u0067er\na.sinks.k.channel = c\n\
                  a.sinks.k.maxBytesToLog = 1\\\n   6\r\na.sources.r.x = caf\xc3\xa9 \\t tab\n"
                    .to_vec(),
            ),
            (
                "bad-escape".into(),
                with("a.sources.r.type = seq\na.sinks.k.type = null\na.x = \\u12\n"),
            ),
            (
                "errors".into(),
                b"a.sources = r\na.channels = c\na.sinks = k\na.sources.r.type = netcat\n\
                  a.sources.r.port = 99999\na.sources.r.channels = nowhere\n\
                  a.channels.c.type = file\na.channels.c.capacity = -1\n\
                  a.sinks.k.type = org.apache.flume.sink.hdfs.HDFSSink\na.sinks.k.channel = c\n\
                  a.sinks.k.unknownKey = 1\n"
                    .to_vec(),
            ),
            ("no-agent".into(), b"x = 1\ny.z = 2\n".to_vec()),
            ("empty".into(), Vec::new()),
            ("binary".into(), garbage(11, 80)),
        ]
    }

    /// Flume path templates (a settings byte, the template, the `timestamp` header, the `app`
    /// header): every time escape, header escapes, rounding, odd and extreme timestamps.
    pub fn bucket_paths() -> Seeds {
        let seed = |name: &str, settings: u8, template: &str, stamp: &str, app: &str| {
            let mut b = vec![settings];
            b.extend_from_slice(format!("{template}\n{stamp}\n{app}").as_bytes());
            (name.to_owned(), b)
        };
        vec![
            seed(
                "every-escape-utc",
                0,
                "/f/%a %A %b %B %c %d %e %D %H %I %j %k %l %m %n %M %p %s %S %t %y %Y %z %%",
                "1700000000123",
                "web",
            ),
            seed(
                "headers-and-date",
                1,
                "hdfs://nn/flume/%{app}/%Y-%m-%d/%H",
                "1700000000123",
                "web",
            ),
            seed(
                "round-10-minutes-kolkata",
                3 | 8,
                "/d/%Y%m%d%H%M",
                "1700000000123",
                "",
            ),
            seed(
                "round-2-hours-new-york",
                4 | 16,
                "/d/%H",
                "1699164000000",
                "x",
            ),
            seed("round-15-seconds-local", 7 | 24, "/d/%S", "-5", "x"),
            seed("empty-timestamp", 0, "/d/%Y", "", "x"),
            // The template alone: no `timestamp` header at all.
            ("no-timestamp".to_owned(), [&[0u8][..], b"/d/%Y"].concat()),
            seed("bad-timestamp", 0, "/d/%Y", "12ab", "x"),
            seed(
                "extreme-timestamp",
                2,
                "/d/%Y %c",
                "9223372036854775807",
                "x",
            ),
            seed("constant", 0, "/plain/path%%/100%", "1", "x"),
            seed("odd-escapes", 0, "%{bad name}%{}%é%Q%", "1", "x"),
        ]
    }

    /// Java key and trust stores: the committed fixtures (`tests/fixtures/java-stores/`, made
    /// by keytool), a version 1 JKS store, one with two keys, and the ways a file goes wrong.
    pub fn java_keystores() -> Seeds {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/java-stores");
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let sealed = |mut body: Vec<u8>| {
            let digest = super::targets::jks_digest("store-pass", &body);
            body.extend_from_slice(&digest);
            body
        };
        let ca = openssl::x509::X509::from_pem(&read("ca.pem"))
            .unwrap()
            .to_der()
            .unwrap();
        // Version 1: no certificate type before each certificate.
        let mut v1 = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        v1.extend_from_slice(&2u16.to_be_bytes());
        v1.extend_from_slice(b"ca");
        v1.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        v1.extend_from_slice(&(ca.len() as u32).to_be_bytes());
        v1.extend_from_slice(&ca);
        // keystore.jks's one key entry twice, under another alias the second time.
        let keystore = read("keystore.jks");
        let entry = &keystore[12..keystore.len() - 20];
        let alias_len = u16::from_be_bytes([entry[4], entry[5]]) as usize;
        let mut two_keys = keystore[..8].to_vec();
        two_keys.extend_from_slice(&2u32.to_be_bytes());
        two_keys.extend_from_slice(entry);
        two_keys.extend_from_slice(&entry[..4]);
        two_keys.extend_from_slice(&(alias_len as u16 + 1).to_be_bytes());
        two_keys.extend_from_slice(&entry[6..6 + alias_len]);
        two_keys.push(b'2');
        two_keys.extend_from_slice(&entry[6 + alias_len..]);
        vec![
            ("valid-truststore.jks".into(), read("truststore.jks")),
            (
                "valid-other-truststore.jks".into(),
                read("other-truststore.jks"),
            ),
            ("valid-keystore.jks".into(), keystore.clone()),
            ("valid-v1-store.jks".into(), sealed(v1)),
            ("two-keys.jks".into(), sealed(two_keys)),
            (
                "cut-keystore.jks".into(),
                keystore[..keystore.len() / 2].to_vec(),
            ),
            (
                "jceks-header".into(),
                vec![0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2, 0, 0, 0, 0],
            ),
            ("valid-truststore.p12".into(), read("truststore.p12")),
            ("valid-keystore.p12".into(), read("keystore.p12")),
            (
                "valid-truststore-legacy.p12".into(),
                read("truststore-legacy.p12"),
            ),
        ]
    }
}

/// Rewrites the `seed-*` files of `fuzz/corpus/`, leaving minimized fuzzer finds alone.
#[test]
#[ignore = "writes fuzz/corpus; run by hand, see fuzz/README.md"]
fn regenerate_seed_corpus() {
    for (target, seeds) in [
        ("frame_decode", seeds::frames()),
        ("segment_recovery", seeds::segments()),
        ("checkpoint_decode", seeds::checkpoints()),
        ("rpc_messages", seeds::rpc_messages()),
        ("source_messages", seeds::source_messages()),
        ("spool_files", seeds::spool_files()),
        ("config_parse", seeds::configs()),
        ("java_keystore", seeds::java_keystores()),
        ("bucket_path", seeds::bucket_paths()),
    ] {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for old in inputs(&dir) {
            if old
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                std::fs::remove_file(old).unwrap();
            }
        }
        for (name, bytes) in seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
}

/// The `valid-*` config seeds build into a configuration (with the environment the target
/// gives), so that the fuzzer starts from files that reach every component's parser; the others
/// fail where they are meant to.
#[test]
fn config_seeds_build_or_fail_as_named() {
    use weir::config::{AgentConfig, Lookups, Properties};
    let env = |name: &str| (name == "PORT").then(|| "4141".to_owned());
    for (name, bytes) in seeds::configs() {
        let built = Properties::parse(Path::new("seed.properties"), &bytes).and_then(|mut p| {
            let agent = p.agent_names().first().cloned().unwrap_or_default();
            let lookups = Lookups {
                system: &[],
                env_fallback: false,
                env: &env,
            };
            p.interpolate(&format!("{agent}."), &lookups)?;
            AgentConfig::from_properties(&p, &agent)
        });
        match (name.starts_with("valid-"), built) {
            (true, Err(e)) => panic!("{name} should build: {e}"),
            (false, Ok(_)) => panic!("{name} should not build"),
            _ => {}
        }
    }
}

/// The seeds are built to reach specific places; check that they still do, so a change in the
/// encoders cannot silently turn them into uninteresting bytes.
#[test]
fn seeds_reach_what_they_are_named_for() {
    use weir::wal::frame::decode_frame;
    for (name, bytes) in seeds::frames() {
        let decoded = decode_frame(&bytes);
        let valid = decoded.as_ref().is_ok_and(|f| f.validate().is_ok());
        if name.starts_with("valid-") {
            assert!(valid, "{name} should be a valid frame");
        }
        if name.starts_with("crc-ok-") {
            assert!(decoded.is_ok(), "{name} should pass its CRC");
            // Includes unsorted and repeated header keys, which would lose data if accepted.
            assert!(!valid, "{name} must be rejected");
        }
        targets::frame_decode(&bytes);
    }
    for (_, bytes) in seeds::segments() {
        targets::segment_recovery(&bytes);
    }
    for (_, bytes) in seeds::checkpoints() {
        targets::checkpoint_decode(&bytes);
    }
}
