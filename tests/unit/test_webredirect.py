"""Port 80 redirects to https: over a real socket, and with hostile Host headers."""

from __future__ import annotations

import http.client
import socket
import threading

from appliance.webredirect import https_location, make_server


def test_location_keeps_host_and_path_but_drops_the_port() -> None:
    assert https_location("meshprint.local:80", "/setup?x=1", "fb") == (
        "https://meshprint.local/setup?x=1"
    )
    assert https_location("[fe80::1]:80", "/", "fb") == "https://[fe80::1]/"


def test_bad_host_or_path_cannot_redirect_elsewhere() -> None:
    assert https_location("evil.com/x@", "/", "meshprint") == "https://meshprint/"
    assert https_location(None, "/a", "meshprint") == "https://meshprint/a"
    assert https_location("meshprint.local", "//evil.com/", "fb") == "https://meshprint.local/"


def test_served_from_an_inherited_listening_socket() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = make_server(listener, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", listener.getsockname()[1], timeout=5)
        conn.request("GET", "/setup", headers={"Host": "meshprint.local"})
        response = conn.getresponse()
        assert response.status == 301
        assert response.getheader("Location") == "https://meshprint.local/setup"
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", listener.getsockname()[1], timeout=5)
        conn.request("POST", "/login", body=b"x", headers={"Host": "meshprint.local"})
        assert conn.getresponse().status == 308
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
