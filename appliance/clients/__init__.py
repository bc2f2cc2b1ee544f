"""Typed clients of the node's APIs, one method per operation:

- `peer.PeerClient`: the node-to-node peer API (port 9264, mutual TLS);
- `node.NodeClient`: the submit (9265) and release (9266) APIs, for the command line,
  the web UI, the Secure Print backend, joining nodes, the demo, bench/ and the tests.

Both sit on `appliance.https.client.Client`; a refusal arrives as the server's own error
class (a `RemoteError`). Nothing else in the code base writes a `/peer/` or `/v1/` path,
except the routers that serve them.
"""
