"""Drives Switchboard with the unchanged toxiproxy-python client (PyPI: toxiproxy-python).

Exits non-zero on the first failed expectation. TOXIPROXY_HOST and TOXIPROXY_PORT name the
control endpoint.
"""

import os
import socket
import time

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

import echo_upstream

server = Toxiproxy()
server.update_api_consumer(os.environ["TOXIPROXY_HOST"], int(os.environ["TOXIPROXY_PORT"]))
upstream = "127.0.0.1:%d" % echo_upstream.start()

assert server.running(), "the control endpoint answers"
assert b"2.12.0" in server.version()

# A proxy on a free port: the answer carries the real one.
proxy = server.create(upstream=upstream, name="echo")
host, port = proxy.listen.rsplit(":", 1)
port = int(port)
assert port != 0, proxy.listen
assert set(server.proxies()) == {"echo"}


def round_trip():
    with socket.create_connection((host, port), timeout=5) as s:
        start = time.monotonic()
        s.sendall(b"ping")
        got = b""
        while len(got) < 4:
            chunk = s.recv(4 - len(got))
            assert chunk, "connection closed early"
            got += chunk
        assert got == b"ping", got
        return time.monotonic() - start


assert round_trip() < 0.1

# A latency toxic, measured.
proxy.add_toxic(type="latency", attributes={"latency": 200, "jitter": 0})
toxics = proxy.toxics()
assert list(toxics) == ["latency_downstream"], toxics
assert toxics["latency_downstream"].attributes == {"latency": 200, "jitter": 0}
took = round_trip()
assert took >= 0.2, took

# Updating a toxic (the client has no helper; it is the same API call the others use).
APIConsumer.post("/proxies/echo/toxics/latency_downstream", json={"attributes": {"latency": 50}})
assert proxy.get_toxic("latency_downstream").attributes["latency"] == 50
assert 0.05 <= round_trip() < 0.2

# Deleting it.
assert proxy.destroy_toxic("latency_downstream")
assert proxy.toxics() == {}
assert round_trip() < 0.1

# down(): the proxy refuses connections inside the block and works again after it.
with proxy.down():
    try:
        socket.create_connection((host, port), timeout=2).close()
        raise AssertionError("connected to a proxy that is down")
    except OSError:
        pass
    assert server.get_proxy("echo").enabled is False
assert server.get_proxy("echo").enabled is True
assert round_trip() < 0.1

# Errors map to the client's exceptions.
try:
    APIConsumer.post("/proxies", json={"name": "echo", "listen": "127.0.0.1:0", "upstream": upstream})
    raise AssertionError("a second proxy with the same name was accepted")
except ProxyExists:
    pass
try:
    server.create(upstream=upstream, name="echo")
    raise AssertionError("create() accepted a duplicate")
except ProxyExists:
    pass
try:
    APIConsumer.get("/proxies/nope")
    raise AssertionError("an unknown proxy was found")
except NotFound:
    pass
try:
    proxy.add_toxic(type="latency", attributes={"latency": -1})
    raise AssertionError("a negative latency was accepted")
except InvalidToxic:
    pass

# reset(): every toxic gone, every proxy enabled.
proxy.add_toxic(type="timeout", name="stall", attributes={"timeout": 0})
proxy.disable()
assert server.reset()
assert proxy.toxics() == {}
assert server.get_proxy("echo").enabled is True
assert round_trip() < 0.1

assert server.destroy(proxy)
assert server.get_proxy("echo") is None
print("toxiproxy-python: ok")
