"""Tooling for development, not the product: `make demo`, the tests and `bench/`.

- `processes`: processes started in sessions of their own, free loopback ports;
- `localmesh`: a mesh of real node processes on 127.0.0.1;
- `virtual_printer`: ippeveprinter (with a private avahi) as a printer that takes jobs;
- `webserver`: the web UI over HTTPS in a thread;
- `demo`: `make demo`.

Nothing in the product imports this package; it may import anything of the product.
"""
