"""Port 80 on the appliance: answer every request with a redirect to the same path over
https. Socket-activated by systemd (meshprint-redirect.socket), so it needs no privileges;
run by hand it binds `--port` itself.

    python -m appliance.webredirect [--port 8080]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import socketserver
from http.server import BaseHTTPRequestHandler, HTTPServer

SD_LISTEN_FDS_START = 3
HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$")


def https_location(host_header: str | None, path: str, fallback: str) -> str:
    """The https URL for a request; a missing or malformed Host gets `fallback` (this
    machine's name), so a bad header cannot send the browser anywhere else."""
    host = (host_header or "").strip()
    match = HOST_RE.match(host)
    name = match.group(1) if match else fallback
    if not path.startswith("/") or path.startswith("//"):
        path = "/"
    return f"https://{name}{path}"


class RedirectHandler(BaseHTTPRequestHandler):
    server_version = "meshprint"
    sys_version = ""

    def _redirect(self) -> None:
        location = https_location(self.headers.get("Host"), self.path, socket.gethostname())
        body = f'<a href="{location}">{location}</a>\n'.encode()
        self.send_response(308 if self.command not in ("GET", "HEAD") else 301)
        self.send_header("Location", location)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _redirect

    def log_message(self, format: str, *args: object) -> None:  # quiet: journald noise
        pass


class RedirectServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


def systemd_socket() -> socket.socket | None:
    """The listening socket systemd passed (LISTEN_FDS), if it passed one to us."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        return None
    return socket.socket(fileno=SD_LISTEN_FDS_START)


def make_server(sock: socket.socket | None, port: int) -> RedirectServer:
    if sock is None:
        return RedirectServer(("", port), RedirectHandler)
    server = RedirectServer(sock.getsockname()[:2], RedirectHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.address_family = sock.family
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=80, help="without systemd: port to bind")
    args = parser.parse_args()
    make_server(systemd_socket(), args.port).serve_forever()


if __name__ == "__main__":
    main()
