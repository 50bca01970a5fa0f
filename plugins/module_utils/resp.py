"""A small Redis client speaking RESP2 over a socket, for modules that run on hosts without redis-py."""

from __future__ import annotations

import socket


class RespError(Exception):
    """An error reply from the server (-ERR ...), or a protocol or connection failure."""


def encode(*args) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Reader:
    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._buf = b""

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise RespError("connection closed by the server")
        self._buf += chunk

    def line(self) -> bytes:
        while b"\r\n" not in self._buf:
            self._fill()
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def exact(self, size: int) -> bytes:
        while len(self._buf) < size + 2:
            self._fill()
        data, self._buf = self._buf[:size], self._buf[size + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.exact(size).decode(errors="replace")
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.reply() for _ in range(size)]
        raise RespError(f"unexpected reply {line[:40]!r}")


class RespClient:
    """Connect, authenticate and select a database; then send commands one at a time."""

    def __init__(self, host="127.0.0.1", port=6379, password=None, username=None, db=0, timeout=3.0):
        try:
            self._sock = socket.create_connection((host, int(port)), timeout=timeout)
        except OSError as exc:
            raise RespError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        self._reader = _Reader(self._sock)
        if password:
            self.command(*(["AUTH", username, password] if username else ["AUTH", password]))
        if db:
            self.command("SELECT", db)

    def command(self, *args):
        try:
            self._sock.sendall(encode(*args))
            return self._reader.reply()
        except OSError as exc:
            raise RespError(f"{args[0]} failed: {exc}") from exc

    def scan_iter(self, match: str = "*", count: int = 500):
        """Yield keys with SCAN, which unlike KEYS never blocks the server on a large database."""
        cursor = "0"
        while True:
            cursor, keys = self.command("SCAN", cursor, "MATCH", match, "COUNT", count)
            yield from keys
            if cursor == "0":
                return

    def close(self) -> None:
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parse_info(text: str) -> dict:
    """INFO output as a flat dict; numeric values become numbers and dbN lines become dicts."""
    info: dict = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        if key.startswith("db") and key[2:].isdigit():
            info[key] = {k: int(v) for k, v in (part.split("=", 1) for part in value.split(","))}
            continue
        for cast in (int, float):
            try:
                info[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            info[key] = value
    return info
