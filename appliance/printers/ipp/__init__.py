"""IPP/1.1-2.0 (RFC 8010, RFC 8011): a small synchronous client, encoder and decoder.

enums        operations, status codes, tags, job and printer states
message      IppMessage / Attribute and the Python types of IPP values
serializer   encode requests (value tags per attribute name)
parser       decode responses, collections and out-of-band values included
transport    HTTP/1.1 over TCP or TLS; chunked document upload
models       PrinterInfo, JobStatus
client       IppClient
"""

from appliance.printers.ipp.client import IppClient
from appliance.printers.ipp.enums import (
    DelimiterTag,
    JobState,
    Operation,
    PrinterState,
    Status,
    ValueTag,
)
from appliance.printers.ipp.exceptions import (
    IppConnectionError,
    IppEncodeError,
    IppError,
    IppHttpError,
    IppParseError,
    IppStatusError,
    IppTimeoutError,
    IppTlsError,
)
from appliance.printers.ipp.message import Attribute, IntRange, IppMessage, OutOfBand, Resolution
from appliance.printers.ipp.models import JobStatus, PrinterInfo

__all__ = [
    "Attribute",
    "DelimiterTag",
    "IntRange",
    "IppClient",
    "IppConnectionError",
    "IppEncodeError",
    "IppError",
    "IppHttpError",
    "IppMessage",
    "IppParseError",
    "IppStatusError",
    "IppTimeoutError",
    "IppTlsError",
    "JobState",
    "JobStatus",
    "Operation",
    "OutOfBand",
    "PrinterInfo",
    "PrinterState",
    "Resolution",
    "Status",
    "ValueTag",
]
