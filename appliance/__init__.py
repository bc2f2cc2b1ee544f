"""meshprint node services: job store, crypto, site trust, mesh protocol and command line."""

__version__ = "0.1.0"
