"""The RESP client against an in-process test double of a Redis server (a socket peer that answers
with RESP2 replies as the Redis protocol specification defines them)."""

import socket
import threading

import pytest
from ansible_collections.gymfleet.cluster.plugins.module_utils.resp import (
    RespClient,
    RespError,
    encode,
    parse_info,
)


class FakeRedis:
    """Test double: answers each command with the next canned RESP reply and records what it got."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.received = b""
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        with conn:
            for reply in self.replies:
                data = conn.recv(65536)
                if not data:
                    return
                self.received += data
                # Split a reply in two writes, as a real server may, to exercise buffering.
                conn.sendall(reply[:3])
                conn.sendall(reply[3:])

    def close(self):
        self.server.close()


def test_encode():
    assert encode("SET", "k", 5) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n"


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        (b"+PONG\r\n", "PONG"),
        (b":42\r\n", 42),
        (b"$5\r\nhello\r\n", "hello"),
        (b"$-1\r\n", None),
        (b"*2\r\n$1\r\na\r\n:1\r\n", ["a", 1]),
        (b"*2\r\n$1\r\n0\r\n*2\r\n$2\r\nk1\r\n$2\r\nk2\r\n", ["0", ["k1", "k2"]]),
    ],
)
def test_replies(reply, value):
    server = FakeRedis([reply])
    try:
        with RespClient(port=server.port) as client:
            assert client.command("X") == value
    finally:
        server.close()


def test_auth_select_and_error_reply():
    server = FakeRedis([b"+OK\r\n", b"+OK\r\n", b"-ERR unknown command 'NOPE'\r\n"])
    try:
        with RespClient(port=server.port, password="s3cret", username="ops", db=1) as client, \
                pytest.raises(RespError, match="unknown command"):
            client.command("NOPE")
        assert b"AUTH\r\n$3\r\nops\r\n$6\r\ns3cret" in server.received
        assert b"SELECT\r\n$1\r\n1" in server.received
    finally:
        server.close()


def test_scan_iter_follows_the_cursor():
    server = FakeRedis([
        b"*2\r\n$2\r\n17\r\n*1\r\n$1\r\na\r\n",
        b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\nc\r\n",
    ])
    try:
        with RespClient(port=server.port) as client:
            assert list(client.scan_iter("omnibox:nodes:*")) == ["a", "b", "c"]
        assert b"$2\r\n17\r\n" in server.received  # the second SCAN continues from the first cursor
    finally:
        server.close()


def test_connection_refused_names_the_address():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(RespError, match=f"127.0.0.1:{port}"):
        RespClient(port=port, timeout=1)


def test_parse_info():
    info = parse_info("# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:12\r\nmem_fragmentation_ratio:1.5\r\n"
                      "# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\ndb1:keys=5,expires=5,avg_ttl=100\r\n")
    assert info["redis_version"] == "7.0.15"
    assert info["uptime_in_seconds"] == 12
    assert info["mem_fragmentation_ratio"] == 1.5
    assert info["db1"] == {"keys": 5, "expires": 5, "avg_ttl": 100}
