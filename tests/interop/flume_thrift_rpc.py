"""Flume's Thrift RPC (ThriftSourceProtocol over framed Thrift) from an implementation
independent of weir's: the framing and the compact and binary protocols are the Python `thrift`
package's (TFramedTransport, TCompactProtocol, TBinaryProtocol, TApplicationException); only
the shape of Flume's calls (flume-ng-sdk's flume.thrift) is written here, field by field, with
no generated code. For tests/thrift.rs.

client --port P --batches N --size K [--append] [--protocol compact|binary] [--header k=v ...]
       [--unknown-method]
    Calls appendBatch (or append, once per event) on a thrift source, events numbered
    `py-<batch>-<i>`; prints one JSON line per call: {"call": n, "status": "OK", "bodies": [...]}.
    With --unknown-method, first calls a method Flume does not serve and prints
    {"exception": {"type": t, "message": m}}; the later calls use the same connection.
server [--fail N] [--protocol compact|binary]
    Prints {"port": P}, then answers appendBatch/append from a thrift sink: FAILED for the
    first N calls, OK after; prints one JSON line per call:
    {"call": n, "status": ..., "events": [{"headers": {...}, "body": "..."}]}.
"""

import argparse
import json
import sys
import threading

from thrift.Thrift import TApplicationException, TMessageType, TType
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.transport import TSocket, TTransport

STATUS = ["OK", "FAILED", "ERROR", "UNKNOWN"]


def protocol(name, transport):
    if name == "binary":
        return TBinaryProtocol.TBinaryProtocol(transport)
    return TCompactProtocol.TCompactProtocol(transport)


def write_event(p, headers, body):
    p.writeStructBegin("ThriftFlumeEvent")
    p.writeFieldBegin("headers", TType.MAP, 1)
    p.writeMapBegin(TType.STRING, TType.STRING, len(headers))
    for k, v in headers.items():
        p.writeString(k)
        p.writeString(v)
    p.writeMapEnd()
    p.writeFieldEnd()
    p.writeFieldBegin("body", TType.STRING, 2)
    p.writeBinary(body)
    p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()


def read_event(p):
    headers, body = None, None
    p.readStructBegin()
    while True:
        _, ftype, fid = p.readFieldBegin()
        if ftype == TType.STOP:
            break
        if fid == 1 and ftype == TType.MAP:
            _, _, n = p.readMapBegin()
            headers = {}
            for _ in range(n):
                k = p.readString()
                headers[k] = p.readString()
            p.readMapEnd()
        elif fid == 2 and ftype == TType.STRING:
            body = p.readBinary()
        else:
            p.skip(ftype)
        p.readFieldEnd()
    p.readStructEnd()
    if headers is None or body is None:
        raise ValueError("a ThriftFlumeEvent without its required fields")
    return headers, body


def read_status(p, name, seqid):
    """The status of the reply to name/seqid; raises TApplicationException on an exception."""
    rname, rtype, rseqid = p.readMessageBegin()
    if rtype == TMessageType.EXCEPTION:
        x = TApplicationException()
        x.read(p)
        p.readMessageEnd()
        raise x
    if (rname, rtype, rseqid) != (name, TMessageType.REPLY, seqid):
        raise ValueError("unexpected reply %r" % ((rname, rtype, rseqid),))
    status = None
    p.readStructBegin()
    while True:
        _, ftype, fid = p.readFieldBegin()
        if ftype == TType.STOP:
            break
        if fid == 0 and ftype == TType.I32:
            status = p.readI32()
        else:
            p.skip(ftype)
        p.readFieldEnd()
    p.readStructEnd()
    p.readMessageEnd()
    return STATUS[status] if status is not None and 0 <= status < 4 else "UNKNOWN"


def client(args):
    headers = dict(h.split("=", 1) for h in args.header)
    sock = TSocket.TSocket("127.0.0.1", args.port)
    sock.setTimeout(20000)
    transport = TTransport.TFramedTransport(sock)
    transport.open()
    p = protocol(args.protocol, transport)
    seqid = 0
    if args.unknown_method:
        seqid += 1
        p.writeMessageBegin("appendAll", TMessageType.CALL, seqid)
        p.writeStructBegin("appendAll_args")
        p.writeFieldStop()
        p.writeStructEnd()
        p.writeMessageEnd()
        transport.flush()
        try:
            status = read_status(p, "appendAll", seqid)
            print(json.dumps({"exception": None, "status": status}), flush=True)
        except TApplicationException as x:
            print(json.dumps({"exception": {"type": x.type, "message": x.message}}), flush=True)
    call = 0
    for b in range(args.batches):
        bodies = ["py-%d-%d" % (b, i) for i in range(args.size)]
        calls = [bodies] if not args.append else [[body] for body in bodies]
        for group in calls:
            seqid += 1
            name = "append" if args.append else "appendBatch"
            p.writeMessageBegin(name, TMessageType.CALL, seqid)
            p.writeStructBegin(name + "_args")
            if args.append:
                p.writeFieldBegin("event", TType.STRUCT, 1)
                write_event(p, headers, group[0].encode())
            else:
                p.writeFieldBegin("events", TType.LIST, 1)
                p.writeListBegin(TType.STRUCT, len(group))
                for body in group:
                    write_event(p, headers, body.encode())
                p.writeListEnd()
            p.writeFieldEnd()
            p.writeFieldStop()
            p.writeStructEnd()
            p.writeMessageEnd()
            transport.flush()
            status = read_status(p, name, seqid)
            print(json.dumps({"call": call, "status": status, "bodies": group}), flush=True)
            call += 1
    transport.close()


def server(args):
    listener = TSocket.TServerSocket(host="127.0.0.1", port=0)
    listener.listen()
    print(json.dumps({"port": listener.handle.getsockname()[1]}), flush=True)
    lock = threading.Lock()
    counter = {"calls": 0}

    def serve(sock):
        transport = TTransport.TFramedTransport(sock)
        p = protocol(args.protocol, transport)
        try:
            while True:
                name, mtype, seqid = p.readMessageBegin()
                if mtype != TMessageType.CALL or name not in ("append", "appendBatch"):
                    raise ValueError("unexpected call %r" % ((name, mtype),))
                events = []
                p.readStructBegin()
                while True:
                    _, ftype, fid = p.readFieldBegin()
                    if ftype == TType.STOP:
                        break
                    if fid == 1 and ftype == TType.LIST and name == "appendBatch":
                        _, n = p.readListBegin()
                        events = [read_event(p) for _ in range(n)]
                        p.readListEnd()
                    elif fid == 1 and ftype == TType.STRUCT and name == "append":
                        events = [read_event(p)]
                    else:
                        p.skip(ftype)
                    p.readFieldEnd()
                p.readStructEnd()
                p.readMessageEnd()
                with lock:
                    n = counter["calls"]
                    counter["calls"] += 1
                    status = "FAILED" if n < args.fail else "OK"
                    print(
                        json.dumps(
                            {
                                "call": n,
                                "status": status,
                                "events": [
                                    {"headers": h, "body": b.decode("utf-8", "replace")}
                                    for h, b in events
                                ],
                            }
                        ),
                        flush=True,
                    )
                p.writeMessageBegin(name, TMessageType.REPLY, seqid)
                p.writeStructBegin(name + "_result")
                p.writeFieldBegin("success", TType.I32, 0)
                p.writeI32(STATUS.index(status))
                p.writeFieldEnd()
                p.writeFieldStop()
                p.writeStructEnd()
                p.writeMessageEnd()
                transport.flush()
        except TTransport.TTransportException:
            pass
        finally:
            transport.close()

    while True:
        sock = listener.accept()
        if sock is not None:
            threading.Thread(target=serve, args=(sock,), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--batches", type=int, default=1)
    c.add_argument("--size", type=int, default=10)
    c.add_argument("--append", action="store_true")
    c.add_argument("--protocol", choices=["compact", "binary"], default="compact")
    c.add_argument("--header", action="append", default=[])
    c.add_argument("--unknown-method", action="store_true")
    s = sub.add_parser("server")
    s.add_argument("--fail", type=int, default=0)
    s.add_argument("--protocol", choices=["compact", "binary"], default="compact")
    args = ap.parse_args()
    if args.mode == "client":
        client(args)
    else:
        server(args)


if __name__ == "__main__":
    sys.exit(main())
