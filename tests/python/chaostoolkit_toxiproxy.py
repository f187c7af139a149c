"""Drives Switchboard with the unchanged Chaos Toolkit extension (PyPI: chaostoolkit-toxiproxy).

Exits non-zero on the first failed expectation. TOXIPROXY_HOST and TOXIPROXY_PORT name the
control endpoint.
"""

import os
import socket
import time

from chaostoxi.proxy import actions as proxies
from chaostoxi.proxy import probes
from chaostoxi.toxic import actions as toxics

import echo_upstream

configuration = {
    "toxiproxy_host": os.environ["TOXIPROXY_HOST"],
    "toxiproxy_port": int(os.environ["TOXIPROXY_PORT"]),
}
upstream_port = echo_upstream.start()

assert proxies.create_proxy(
    "db", "127.0.0.1", upstream_port, listen_host="127.0.0.1", configuration=configuration
)
port = int(configuration["db_PORT"])
assert port != 0
assert probes.proxy_exist("db", configuration=configuration)
assert probes.get_proxy_attribute("db", "upstream", configuration=configuration) == "127.0.0.1:%d" % upstream_port


def round_trip():
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        start = time.monotonic()
        s.sendall(b"hello")
        got = b""
        while len(got) < 5:
            chunk = s.recv(5 - len(got))
            assert chunk, "connection closed early"
            got += chunk
        return time.monotonic() - start


assert round_trip() < 0.1
assert toxics.create_latency_toxic("db", "slow", 150, configuration=configuration)
took = round_trip()
assert took >= 0.15, took
assert toxics.delete_toxic("db", "slow", configuration=configuration)
assert round_trip() < 0.1

# Each of the extension's toxic helpers is accepted.
assert toxics.create_bandwith_degradation_toxic("db", "bw", 100, configuration=configuration)
assert toxics.create_slow_connection_close_toxic("db", "sc", 10, configuration=configuration)
assert toxics.create_timeout_toxic("db", "to", 1000, configuration=configuration)
assert toxics.create_slicer_toxic("db", "sl", 64, 32, 10, configuration=configuration)
assert toxics.create_limiter_toxic("db", "lim", 1024, configuration=configuration)
for name in ["bw", "sc", "to", "sl", "lim"]:
    assert toxics.delete_toxic("db", name, configuration=configuration)
assert not toxics.delete_toxic("db", "bw", configuration=configuration), "deleting twice fails"

# Down and up again.
assert proxies.disable_proxy("db", configuration=configuration)
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    raise AssertionError("connected to a disabled proxy")
except OSError:
    pass
assert proxies.enable_proxy("db", configuration=configuration)
assert int(configuration["db_PORT"]) == port, "the proxy kept its port"
assert round_trip() < 0.1

assert toxics.create_latency_toxic("db", "slow", 150, configuration=configuration)
assert proxies.reset(configuration=configuration)
assert round_trip() < 0.1

proxies.delete_proxy("db", configuration=configuration)
assert not probes.proxy_exist("db", configuration=configuration)
print("chaostoolkit-toxiproxy: ok")
