"""The document's MIME type from its first bytes, for clients that send none (or
application/octet-stream): printers want to be told what they are getting."""

from __future__ import annotations

OCTET_STREAM = "application/octet-stream"
SNIFF_SIZE = 4096  # the first bytes that tell
_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"%!", "application/postscript"),
    (b"RaS2", "image/pwg-raster"),
    (b"UNIRAST", "image/urf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\x1b%-12345X", "application/vnd.hp-pcl"),
    (b"\x1bE", "application/vnd.hp-pcl"),
)


def sniff(first: bytes) -> str:
    for magic, mime in _MAGIC:
        if first.startswith(magic):
            return mime
    sample = first[:SNIFF_SIZE]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character cut at the end of the sample is still text.
        if err.start < len(sample) - 3:
            return OCTET_STREAM
        text = sample[: err.start].decode("utf-8")
    if text and all(ch.isprintable() or ch in "\r\n\t\f" for ch in text):
        return "text/plain"
    return OCTET_STREAM
