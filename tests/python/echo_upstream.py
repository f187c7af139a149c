"""An echo server on a free loopback port, for the client scripts to put a proxy in front of."""

import socketserver
import threading


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True


def start():
    """Starts the server in the background; returns its port."""
    server = _Server(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]
