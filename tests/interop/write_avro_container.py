"""Writes an Avro object container file with the Python `avro` package's writer
(avro.datafile), independent of weir, for tests/spooldir_deserializers.rs.

write_avro_container.py FILE CODEC RECORDS SYNC_INTERVAL
    Writes RECORDS records of SCHEMA (record i has id i) with CODEC (null or deflate), ending a
    block once it holds SYNC_INTERVAL bytes, then prints one JSON line:
    {"schema": the avro.schema text as stored in the file,
     "fingerprint": the schema's CRC-64-AVRO fingerprint in hex (Python's fingerprint()),
     "datums": [each record's binary encoding by avro.io.DatumWriter, in hex]}
"""

import io
import json
import sys

import avro.datafile
import avro.io
import avro.schema

# Every kind of type a record can hold, so that the reader must walk each of them to find
# where a record ends. No named type is referred to twice and no logical type is used: there
# Python's canonical form (and so its fingerprint) differs from the specification's.
SCHEMA = {
    "type": "record",
    "name": "Reading",
    "namespace": "weir.test",
    "doc": "a sensor reading",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "sensor", "type": "string"},
        {"name": "value", "type": ["null", "double"]},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "int"}},
        {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["LOW", "MID", "HIGH"]}},
        {"name": "raw", "type": "bytes"},
        {"name": "ok", "type": "boolean"},
        {"name": "ratio", "type": "float"},
        {"name": "mac", "type": {"type": "fixed", "name": "Mac", "size": 6}},
    ],
}


def record(i):
    return {
        "id": i,
        "sensor": f"sensor-{i % 7}-\u00e9",
        "value": None if i % 3 == 0 else i / 4,
        "tags": [f"t{j}" for j in range(i % 4)],
        "attrs": {f"a{j}": j * i for j in range(i % 3)},
        "level": ["LOW", "MID", "HIGH"][i % 3],
        "raw": bytes([i % 256, 0, 255]) * (i % 5),
        "ok": i % 2 == 0,
        "ratio": 0.5,
        "mac": i.to_bytes(6, "big"),
    }


def main():
    path, codec, count, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    schema = avro.schema.parse(json.dumps(SCHEMA))
    avro.datafile.SYNC_INTERVAL = interval
    datums = []
    with open(path, "wb") as f:
        writer = avro.datafile.DataFileWriter(f, avro.io.DatumWriter(), schema, codec=codec)
        for i in range(count):
            r = record(i)
            writer.append(r)
            buf = io.BytesIO()
            avro.io.DatumWriter(schema).write(r, avro.io.BinaryEncoder(buf))
            datums.append(buf.getvalue().hex())
        writer.close()
    with open(path, "rb") as f:
        stored = avro.datafile.DataFileReader(f, avro.io.DatumReader()).get_meta("avro.schema").decode()
    print(json.dumps({"schema": stored, "fingerprint": schema.fingerprint().hex(), "datums": datums}))


if __name__ == "__main__":
    main()
