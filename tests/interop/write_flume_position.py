"""Writes a spooldir position file (`.flumespool-main.meta`) the way Flume's
DurablePositionTracker does, with the Python `avro` package's DataFileWriter (the Apache Avro
writer whose API Java's mirrors), independent of weir, for tests/spooldir.rs.

write_flume_position.py META TARGET OFFSET...
    Creates META naming TARGET in its "file" metadata, then stores each OFFSET as Flume's
    storePosition does: append one TransferStateFileMeta record, sync (ending the block), flush.
    After the first OFFSET the file is closed and opened again for appending, as Flume does at
    every start.
"""

import sys

import avro.datafile
import avro.io
import avro.schema

SCHEMA = avro.schema.parse(
    '{"type":"record","name":"TransferStateFileMeta",'
    '"namespace":"org.apache.flume.serialization",'
    '"fields":[{"name":"offset","type":"long"}]}'
)


def store(writer, offset):
    writer.append({"offset": offset})
    writer.sync()
    writer.flush()


def main():
    meta, target, offsets = sys.argv[1], sys.argv[2], [int(o) for o in sys.argv[3:]]
    with open(meta, "wb") as f:
        writer = avro.datafile.DataFileWriter(f, avro.io.DatumWriter(), SCHEMA)
        writer.set_meta("file", target.encode())
        store(writer, offsets[0])
        writer.close()
    with open(meta, "ab+") as f:
        # No schema: append to the existing file, keeping its header and sync marker.
        writer = avro.datafile.DataFileWriter(f, avro.io.DatumWriter())
        for offset in offsets[1:]:
            store(writer, offset)
        writer.close()


if __name__ == "__main__":
    main()
