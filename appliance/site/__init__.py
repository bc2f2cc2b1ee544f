"""The site: its certificate authority, join tokens, signed directory and TLS contexts."""
