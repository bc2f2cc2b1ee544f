"""The node's HTTPS APIs: peer (mutual TLS), submit and release, on a small shared HTTP layer."""
