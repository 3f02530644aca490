"""Reads Avro object container files with the Python `avro` package's reader (avro.datafile),
independent of weir's writer. For tests/file_roll_serializers.rs.

read_avro_container.py FILE...
    Prints, per file, one JSON line {"file": ..., "codec": ..., "schema": {...}} and then one
    {"headers": {...}, "body": "..."} per record (body decoded as UTF-8). Exits non-zero if a
    file is not a valid container to its last byte.
"""

import json
import sys

import avro.datafile
import avro.io


def main():
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            reader = avro.datafile.DataFileReader(f, avro.io.DatumReader())
            print(json.dumps({
                "file": path,
                "codec": reader.get_meta("avro.codec").decode(),
                "schema": json.loads(reader.get_meta("avro.schema").decode()),
            }))
            for record in reader:
                print(json.dumps({
                    "headers": record["headers"],
                    "body": record["body"].decode("utf-8"),
                }))
            # The reader stops at the end of the last complete block: anything after it would
            # be a torn block.
            if f.tell() != f.seek(0, 2):
                sys.exit(f"{path}: bytes after the last block")
            reader.close()


if __name__ == "__main__":
    main()
