//! Hands one record to librdkafka without copying its payload.
//!
//! rdkafka's `BaseProducer::send` asks librdkafka to copy every payload
//! (`RD_KAFKA_MSG_F_COPY`) and builds a C string of the topic name for every record. For a
//! 1 KiB event that is an allocation of ~1.2 KiB (past glibc's small-bin range, so each one
//! first consolidates the allocator's fast bins), a copy and, on delivery, a free, all on the
//! sink's thread, for bytes that already sit in memory weir owns: the event body is a
//! [`Bytes`], usually a view into the log's memory map.
//!
//! So the record's delivery opaque owns a handle on the body, and librdkafka is given a pointer
//! to it without the copy flag. librdkafka reads the payload until it has reported the
//! record's delivery, and not after; the opaque is dropped only in that report (or here, when
//! librdkafka refuses the record), so the bytes outlive every read. A producer destroyed with
//! records never reported would leak their opaques (and bodies), never free them early. rdkafka
//! has no safe API for this, hence the FFI here; everything else stays on rdkafka's safe API
//! (its delivery-report handler rebuilds the opaque with the same `IntoOpaque` used below).

use std::ffi::{CStr, c_void};

use bytes::Bytes;
use rdkafka::bindings as rd;
use rdkafka::bindings::rd_kafka_vtype_t as T;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::IntoOpaque;

/// A delivery opaque that may own the payload librdkafka is to read in place.
pub trait OwnsPayload {
    fn payload(&self) -> Option<&Bytes>;
}

/// How librdkafka gets a record's payload.
pub enum Value<'a> {
    /// Copied at enqueue: cheaper than sharing for small payloads, where the copy goes into the
    /// record's own allocation, and where sharing a `Bytes` that owns a `Vec` costs an allocation
    /// of its own.
    Copy(&'a [u8]),
    /// Read in place from the opaque's [`OwnsPayload::payload`] (no payload: an empty value).
    InOpaque,
}

/// Record headers being built for librdkafka (which takes them over once a record is enqueued).
pub struct NativeHeaders(*mut rd::rd_kafka_headers_t);

impl NativeHeaders {
    pub fn with_capacity(n: usize) -> NativeHeaders {
        // SAFETY: plain constructor; the list is owned by the value and destroyed in Drop unless
        // librdkafka took it over.
        NativeHeaders(unsafe { rd::rd_kafka_headers_new(n) })
    }

    /// Adds a header; name and value are copied by librdkafka.
    pub fn add(&mut self, name: &str, value: &[u8]) {
        // SAFETY: `self.0` is a live header list we own; name and value are valid for the given
        // lengths for the duration of the call (librdkafka copies both, explicit lengths, so no
        // NUL terminator is needed). Lengths of Rust slices fit in isize.
        unsafe {
            rd::rd_kafka_header_add(
                self.0,
                name.as_ptr().cast(),
                name.len() as isize,
                value.as_ptr().cast(),
                value.len() as isize,
            );
        }
    }
}

impl Drop for NativeHeaders {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we still own the list (it is nulled when librdkafka takes it over).
            unsafe { rd::rd_kafka_headers_destroy(self.0) }
        }
    }
}

/// Where a record goes and what it carries besides its payload.
pub struct Record<'a> {
    pub topic: &'a CStr,
    pub partition: Option<i32>,
    pub value: Value<'a>,
    /// Copied by librdkafka.
    pub key: Option<&'a [u8]>,
    pub headers: NativeHeaders,
    /// Milliseconds since the epoch; `None`: the time it is enqueued.
    pub timestamp: Option<i64>,
}

/// Enqueues a record. On refusal the opaque comes back (with the error code) so the caller can
/// retry or report it.
pub fn enqueue<C, O>(
    producer: &BaseProducer<C>,
    mut record: Record<'_>,
    opaque: Box<O>,
) -> Result<(), (RDKafkaErrorCode, Box<O>)>
where
    C: ProducerContext<DeliveryOpaque = Box<O>>,
    O: OwnsPayload + Send + Sync,
{
    let (payload_ptr, payload_len, flags) = match record.value {
        Value::Copy(p) => (p.as_ptr() as *mut c_void, p.len(), rd::RD_KAFKA_MSG_F_COPY),
        // The heap block behind the Box does not move, and neither do the bytes behind the
        // `Bytes` it holds: this pointer stays valid until the opaque is dropped.
        Value::InOpaque => match opaque.payload() {
            Some(p) => (p.as_ptr() as *mut c_void, p.len(), 0),
            None => (std::ptr::null_mut(), 0, 0),
        },
    };
    let opaque_ptr = opaque.into_ptr();
    let (key_ptr, key_len) = match record.key {
        Some(k) => (k.as_ptr() as *mut c_void, k.len()),
        None => (std::ptr::null_mut(), 0),
    };
    let mut vus = [
        vu(
            T::RD_KAFKA_VTYPE_TOPIC,
            Arg {
                cstr: record.topic.as_ptr(),
            },
        ),
        vu(
            T::RD_KAFKA_VTYPE_PARTITION,
            Arg {
                i32_: record.partition.unwrap_or(-1),
            },
        ),
        // Without RD_KAFKA_MSG_F_COPY librdkafka points at the payload (the key is always
        // copied).
        vu(T::RD_KAFKA_VTYPE_MSGFLAGS, Arg { i: flags }),
        vu(T::RD_KAFKA_VTYPE_VALUE, mem(payload_ptr, payload_len)),
        vu(T::RD_KAFKA_VTYPE_KEY, mem(key_ptr, key_len)),
        vu(T::RD_KAFKA_VTYPE_OPAQUE, Arg { ptr: opaque_ptr }),
        // 0 is librdkafka's "now".
        vu(
            T::RD_KAFKA_VTYPE_TIMESTAMP,
            Arg {
                i64_: record.timestamp.unwrap_or(0),
            },
        ),
        vu(
            T::RD_KAFKA_VTYPE_HEADERS,
            Arg {
                headers: record.headers.0,
            },
        ),
    ];
    // SAFETY: the client pointer is live for the producer's lifetime; every pointer in `vus`
    // is valid for the call (topic C string, key and copied payload slices, header list we
    // own); a payload read in place stays valid until the opaque is dropped, which happens only
    // in the delivery report of this record or below on refusal. librdkafka copies what it
    // keeps of everything else.
    let error = unsafe {
        rd::rd_kafka_produceva(producer.client().native_ptr(), vus.as_mut_ptr(), vus.len())
    };
    if error.is_null() {
        // librdkafka owns the header list now.
        record.headers.0 = std::ptr::null_mut();
        return Ok(());
    }
    // SAFETY: `error` is a non-null error object we own and destroy once; on refusal librdkafka
    // kept neither the opaque (rebuilt here, exactly once) nor the header list (dropped with
    // `record`).
    let code = unsafe {
        let code = rd::rd_kafka_error_code(error);
        rd::rd_kafka_error_destroy(error);
        code
    };
    // SAFETY: see above; `opaque_ptr` came from `into_ptr` on a Box<O> and was not consumed.
    let opaque = unsafe { Box::<O>::from_ptr(opaque_ptr) };
    Err((code.into(), opaque))
}

/// The value of one `rd_kafka_vu_t` argument.
type Arg = rd::rd_kafka_vu_s__bindgen_ty_1;

fn vu(vtype: T, u: Arg) -> rd::rd_kafka_vu_t {
    rd::rd_kafka_vu_t { vtype, u }
}

/// A (pointer, length) argument: a value or a key.
fn mem(ptr: *mut c_void, size: usize) -> Arg {
    Arg {
        mem: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 { ptr, size },
    }
}
