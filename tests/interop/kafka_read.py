"""Reads every record of a topic with kafka-python, a Kafka client that shares no code with
librdkafka (which weir's sink uses), and prints one JSON object per record on stdout.

Used by tests/kafka.rs to check that what the sink wrote is readable by another client: record
batches, compression, keys, headers and partitions as the protocol defines them. With
--flume-event-format each value is also decoded with Flume's Avro schema for AvroFlumeEvent
(flume-ng-sdk's flume.avdl) by fastavro, an Avro implementation independent of weir's encoder.

Exit status: 0 when --count records were read, 1 on a timeout (what was read is still printed),
2 when a module is missing.
"""

import argparse
import io
import json
import sys
import time

try:
    import fastavro
    from kafka import KafkaConsumer, TopicPartition
    from kafka.partitioner.default import murmur2
except ImportError as e:  # the test reports this, naming requirements.txt
    print(f"missing Python module: {e}", file=sys.stderr)
    sys.exit(2)

FLUME_EVENT_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "AvroFlumeEvent",
        "namespace": "org.apache.flume.source.avro",
        "fields": [
            {"name": "headers", "type": {"type": "map", "values": "string"}},
            {"name": "body", "type": "bytes"},
        ],
    }
)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--flume-event-format", action="store_true")
    args = p.parse_args()

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    deadline = time.monotonic() + args.timeout
    partitions = None
    while partitions is None and time.monotonic() < deadline:
        partitions = consumer.partitions_for_topic(args.topic)
        if partitions is None:
            time.sleep(0.2)
    if partitions is None:
        print(f"topic {args.topic} not found", file=sys.stderr)
        return 1
    assigned = [TopicPartition(args.topic, n) for n in sorted(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)

    read = 0
    while read < args.count and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            for r in records:
                out = {
                    "partition": tp.partition,
                    "offset": r.offset,
                    "key": None if r.key is None else r.key.hex(),
                    "value": None if r.value is None else r.value.hex(),
                    "headers": [[k, v.hex()] for k, v in r.headers],
                    "timestamp": r.timestamp,
                    "timestamp_type": r.timestamp_type,
                }
                if r.key is not None:
                    # Where the Java producer (Flume's) puts a keyed record: a positive
                    # murmur2 of the key modulo the partition count.
                    out["java_partition"] = (murmur2(r.key) & 0x7FFFFFFF) % len(partitions)
                if args.flume_event_format:
                    event = fastavro.schemaless_reader(io.BytesIO(r.value), FLUME_EVENT_SCHEMA)
                    out["flume_event"] = {
                        "headers": event["headers"],
                        "body": event["body"].hex(),
                    }
                print(json.dumps(out), flush=True)
                read += 1
    consumer.close()
    if read < args.count:
        print(f"read {read} of {args.count} records in {args.timeout} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
