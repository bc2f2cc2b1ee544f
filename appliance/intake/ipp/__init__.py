"""The node's own IPP Everywhere printer (`ipp(s)://HOST:P/ipp/print`): documents stream
from the client straight into sealing (`jobs.intake.ingest`), no CUPS, no spool.

wire        the request's attributes read off the HTTP body; the document after them
            (gzip undone as it streams), bounded
attributes  what the printer says about itself (Get-Printer-Attributes)
printer     the operations, sign-in (HTTP Basic over IPPS) and the printer's job table
"""
