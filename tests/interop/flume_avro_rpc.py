"""Flume's Avro RPC (Avro IPC over Netty) from an implementation independent of weir's: the
handshake, protocol and datum code is the Python `avro` package's (avro.ipc, avro.protocol,
avro.io); only Netty's framing, the connection-stateful handshake of Avro's Netty transport
(a handshake only until one matched) and its zlib stream (`compression-type = deflate`) are
written here. For tests/avro.rs.

client --port P --batches N --size K [--append] [--deflate] [--header k=v ...]
    Calls appendBatch (or append, once per event) on an avro source, events numbered
    `py-<batch>-<i>`; prints one JSON line per call: {"call": n, "status": "OK", "bodies": [...]}.
server [--fail N] [--deflate]
    Prints {"port": P}, then answers appendBatch/append from an avro sink: FAILED for the
    first N calls, OK after; prints one JSON line per call:
    {"call": n, "status": ..., "events": [{"headers": {...}, "body": "..."}]}.
"""

import argparse
import io
import json
import socket
import struct
import sys
import threading
import zlib

import avro.io
import avro.ipc
import avro.protocol

# Flume's AvroSourceProtocol (flume-ng-sdk, flume.avdl).
FLUME_PROTOCOL = avro.protocol.parse(
    json.dumps(
        {
            "protocol": "AvroSourceProtocol",
            "namespace": "org.apache.flume.source.avro",
            "types": [
                {"type": "enum", "name": "Status", "symbols": ["OK", "FAILED", "UNKNOWN"]},
                {
                    "type": "record",
                    "name": "AvroFlumeEvent",
                    "fields": [
                        {"name": "headers", "type": {"type": "map", "values": "string"}},
                        {"name": "body", "type": "bytes"},
                    ],
                },
            ],
            "messages": {
                "append": {
                    "request": [{"name": "event", "type": "AvroFlumeEvent"}],
                    "response": "Status",
                },
                "appendBatch": {
                    "request": [
                        {"name": "events", "type": {"type": "array", "items": "AvroFlumeEvent"}}
                    ],
                    "response": "Status",
                },
            },
        }
    )
)


class Stream:
    """A socket carrying Netty-framed messages, optionally inside a zlib stream each way."""

    def __init__(self, sock, deflate):
        self.sock = sock
        self.inbox = b""
        self.comp = zlib.compressobj(6) if deflate else None
        self.decomp = zlib.decompressobj() if deflate else None

    def send(self, serial, payload):
        frame = struct.pack(">ii", serial, 1) + struct.pack(">i", len(payload)) + payload
        if self.comp:
            frame = self.comp.compress(frame) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(frame)

    def _take(self, n):
        while len(self.inbox) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            if self.decomp:
                chunk = self.decomp.decompress(chunk)
            self.inbox += chunk
        out, self.inbox = self.inbox[:n], self.inbox[n:]
        return out

    def receive(self):
        serial, count = struct.unpack(">ii", self._take(8))
        parts = []
        for _ in range(count):
            (n,) = struct.unpack(">i", self._take(4))
            parts.append(self._take(n))
        return serial, b"".join(parts)


class NettyTransceiver:
    """What avro.ipc's requestor needs of a transceiver, over one framed connection."""

    def __init__(self, port, deflate):
        self.stream = Stream(socket.create_connection(("127.0.0.1", port), timeout=30), deflate)
        self.remote_name = f"127.0.0.1:{port}"
        self.serial = 0

    def transceive(self, request):
        self.serial += 1
        self.stream.send(self.serial, request)
        serial, reply = self.stream.receive()
        if serial != self.serial:
            raise RuntimeError(f"reply to call {serial} while waiting for {self.serial}")
        return reply


class NettyRequestor(avro.ipc.BaseRequestor):
    """avro.ipc's requestor on a stateful connection: once a handshake matched, calls carry
    none (as Java's Requestor does on a Netty transceiver)."""

    connected = False

    def write_handshake_request(self, encoder):
        # avro.ipc remembers a server's hash per address for the whole process, but gives a new
        # requestor only that: its second connection to the same server would then read the
        # reply without the server's protocol (AttributeError) after the call was delivered.
        cached = avro.ipc.REMOTE_PROTOCOLS.get(self.transceiver.remote_name)
        if cached is not None and self.remote_protocol is None:
            self._remote_protocol = cached
        super().write_handshake_request(encoder)

    def request(self, message_name, request_datum):
        buf = io.BytesIO()
        encoder = avro.io.BinaryEncoder(buf)
        if not self.connected:
            self.write_handshake_request(encoder)
        self.write_call_request(message_name, request_datum, encoder)
        reply = self.transceiver.transceive(buf.getvalue())
        decoder = avro.io.BinaryDecoder(io.BytesIO(reply))
        if not self.connected:
            if not self.read_handshake_response(decoder):
                # NONE: the server did not know this protocol; again, with it.
                return self.request(message_name, request_datum)
            self.connected = True
        return self.read_call_response(message_name, decoder)


def run_client(args):
    headers = dict(h.split("=", 1) for h in args.header)
    requestor = NettyRequestor(FLUME_PROTOCOL, NettyTransceiver(args.port, args.deflate))
    call = 0
    for b in range(args.batches):
        bodies = [f"py-{b}-{i}" for i in range(args.size)]
        events = [{"headers": headers, "body": body.encode()} for body in bodies]
        if args.append:
            for body, event in zip(bodies, events):
                call += 1
                status = requestor.request("append", {"event": event})
                print(json.dumps({"call": call, "status": status, "bodies": [body]}), flush=True)
        else:
            call += 1
            status = requestor.request("appendBatch", {"events": events})
            print(json.dumps({"call": call, "status": status, "bodies": bodies}), flush=True)


class FlumeResponder(avro.ipc.Responder):
    """avro.ipc's responder, answering as a Flume avro source would, on stateful connections."""

    def __init__(self, fail):
        super().__init__(FLUME_PROTOCOL)
        self.fail = fail
        self.calls = 0
        self.lock = threading.Lock()

    def invoke(self, local_message, request):
        events = [request["event"]] if local_message.name == "append" else request["events"]
        with self.lock:
            self.calls += 1
            status = "FAILED" if self.calls <= self.fail else "OK"
            out = [
                {"headers": e["headers"], "body": e["body"].decode("utf-8", "replace")}
                for e in events
            ]
            print(json.dumps({"call": self.calls, "status": status, "events": out}), flush=True)
        return status

    def respond_on(self, conn, call_request):
        decoder = avro.io.BinaryDecoder(io.BytesIO(call_request))
        buf = io.BytesIO()
        encoder = avro.io.BinaryEncoder(buf)
        if conn.get("remote") is None:
            remote = self.process_handshake(decoder, encoder)
            if remote is None:
                return buf.getvalue()
            conn["remote"] = remote
        avro.ipc.META_READER.read(decoder)
        name = decoder.read_utf8()
        remote_message = conn["remote"].messages[name]
        local_message = self.local_protocol.messages[name]
        request = self.read_request(remote_message.request, local_message.request, decoder)
        response = self.invoke(local_message, request)
        avro.ipc.META_WRITER.write({}, encoder)
        encoder.write_boolean(False)
        self.write_response(local_message.response, response, encoder)
        return buf.getvalue()


def serve_connection(responder, sock, deflate):
    stream = Stream(sock, deflate)
    conn = {}
    try:
        while True:
            serial, request = stream.receive()
            stream.send(serial, responder.respond_on(conn, request))
    except (EOFError, OSError):
        pass
    finally:
        sock.close()


def run_server(args):
    responder = FlumeResponder(args.fail)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(
            target=serve_connection, args=(responder, sock, args.deflate), daemon=True
        ).start()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--batches", type=int, default=1)
    c.add_argument("--size", type=int, default=1)
    c.add_argument("--append", action="store_true")
    c.add_argument("--deflate", action="store_true")
    c.add_argument("--header", action="append", default=[])
    s = sub.add_parser("server")
    s.add_argument("--fail", type=int, default=0)
    s.add_argument("--deflate", action="store_true")
    args = p.parse_args()
    if args.mode == "client":
        run_client(args)
    else:
        run_server(args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(1)
