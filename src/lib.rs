//! weir: a reliable edge agent in the style of Apache Flume.
//!
//! Events enter through sources, are made durable in a channel backed by a segmented,
//! memory-mapped write-ahead log ([`wal`]), and leave through sinks that commit their position in
//! the log only after the destination has acknowledged them. [`event`] defines what flows; the
//! log's bytes on disk are specified in `wal-format.md`.

pub mod agent;
pub mod avro_client;
pub mod avro_container;
pub mod avro_rpc;
pub mod avro_schema;
pub mod bucket_path;
pub mod channel;
pub mod config;
pub mod event;
pub mod flume_event_format;
pub mod http_wire;
pub mod interceptor;
#[cfg(feature = "kafka")]
pub(crate) mod kafka_client;
pub mod kafka_metrics;
pub(crate) mod log_throttle;
pub mod metrics;
pub mod rpc_connection;
pub mod selector;
pub mod sink;
pub mod source;
pub mod stop;
pub mod thrift_rpc;
pub mod tls;
pub mod wal;
