#!/usr/bin/env python3
"""docs/PROTOCOL.md's worked example, derived from Protocol/crucial.proto and the text alone
(no protobuf library): the bytes of one Invoke frame and its Result, and the handshake
proofs of the example's secret and nonces. WireCodecTests and HandshakeAuthTests check the
Swift implementation against the same values.
    python3 tools/wire-example.py"""
import hashlib
import hmac


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def uint(field: int, n: int) -> bytes:  # proto3: a zero scalar is not written
    return tag(field, 0) + varint(n) if n else b""


def delimited(field: int, data: bytes) -> bytes:
    return tag(field, 2) + varint(len(data)) + data


def value_int(n: int) -> bytes:  # Value.int_value = 3, sint64 (zigzag); a oneof member is written even when 0
    return tag(3, 0) + varint((n << 1) ^ (n >> 63))


def framed(frame: bytes) -> bytes:
    return len(frame).to_bytes(4, "big") + frame


ref = delimited(1, b"AtomicLong") + delimited(2, b"hits")
create = delimited(1, value_int(0))  # persistent false, session 0: not written
invoke = (uint(1, 7) + uint(2, 0) + delimited(3, ref) + delimited(4, b"addAndGet") + delimited(5, value_int(5))
          + delimited(6, create) + uint(7, 42) + uint(8, 1) + uint(9, 1))
result = uint(1, 7) + delimited(2, value_int(5))
print("Invoke frame:", framed(delimited(3, invoke)).hex(" "))
print("Result frame:", framed(delimited(4, result)).hex(" "))


def proof(secret: str, label: str, fields: list[bytes]) -> str:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    for field in [label.encode()] + fields:
        mac.update(len(field).to_bytes(4, "big") + field)
    return mac.hexdigest()


client_nonce, server_nonce = bytes(range(32)), bytes(range(32, 64))
print("client proof:", proof("s3cret", "crucial-auth-v2 client", [client_nonce, server_nonce, b"demo"]))
print("server proof:", proof("s3cret", "crucial-auth-v2 server", [server_nonce, client_nonce]))
