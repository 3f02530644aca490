#![no_main]

// The body lives in targets/mod.rs so tests/fuzz_corpus.rs replays the corpus on stable.
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::bucket_path(data));
