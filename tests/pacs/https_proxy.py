"""A small HTTPS front for a test server (Debian's Orthanc 1.10.1 crashes when its own HTTPS is
enabled): TLS ends here with the test certificate, requests go on to the server's HTTP port with
their headers (authentication included) unchanged."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length", "host"}


def start_https_proxy(target: str, cert: str, key: str, bearer: tuple[str, tuple[str, str]] | None = None
                      ) -> tuple[ThreadingHTTPServer, int]:  # fmt: skip
    """``bearer`` = (token, (user, password)): requests must carry ``Authorization: Bearer token``
    (else 401), which is exchanged for the server's basic credentials, as an auth gateway does."""
    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            auth = None
            if bearer is not None:
                if headers.pop("Authorization", None) != f"Bearer {bearer[0]}":
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                auth = bearer[1]
            answer = requests.request(self.command, target + self.path, data=body, headers=headers, auth=auth, timeout=60)
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in _HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]
