"""IPP numbers (RFC 8010, RFC 8011, PWG 5100.x): operations, status codes, tags, states."""

from __future__ import annotations

from enum import IntEnum


class _Keyword(IntEnum):
    """An IPP enum whose IPP keyword is its name in lower case with '-' for '_'."""

    @property
    def keyword(self) -> str:
        return self.name.lower().replace("_", "-")


class Operation(_Keyword):
    PRINT_JOB = 0x0002
    PRINT_URI = 0x0003
    VALIDATE_JOB = 0x0004
    CREATE_JOB = 0x0005
    SEND_DOCUMENT = 0x0006
    SEND_URI = 0x0007
    CANCEL_JOB = 0x0008
    GET_JOB_ATTRIBUTES = 0x0009
    GET_JOBS = 0x000A
    GET_PRINTER_ATTRIBUTES = 0x000B
    HOLD_JOB = 0x000C
    RELEASE_JOB = 0x000D
    RESTART_JOB = 0x000E
    PAUSE_PRINTER = 0x0010
    RESUME_PRINTER = 0x0011
    PURGE_JOBS = 0x0012
    CANCEL_MY_JOBS = 0x0039
    CLOSE_JOB = 0x003B
    IDENTIFY_PRINTER = 0x003C


class Status(_Keyword):
    SUCCESSFUL_OK = 0x0000
    SUCCESSFUL_OK_IGNORED_OR_SUBSTITUTED_ATTRIBUTES = 0x0001
    SUCCESSFUL_OK_CONFLICTING_ATTRIBUTES = 0x0002
    CLIENT_ERROR_BAD_REQUEST = 0x0400
    CLIENT_ERROR_FORBIDDEN = 0x0401
    CLIENT_ERROR_NOT_AUTHENTICATED = 0x0402
    CLIENT_ERROR_NOT_AUTHORIZED = 0x0403
    CLIENT_ERROR_NOT_POSSIBLE = 0x0404
    CLIENT_ERROR_TIMEOUT = 0x0405
    CLIENT_ERROR_NOT_FOUND = 0x0406
    CLIENT_ERROR_GONE = 0x0407
    CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE = 0x0408
    CLIENT_ERROR_REQUEST_VALUE_TOO_LONG = 0x0409
    CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED = 0x040A
    CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED = 0x040B
    CLIENT_ERROR_URI_SCHEME_NOT_SUPPORTED = 0x040C
    CLIENT_ERROR_CHARSET_NOT_SUPPORTED = 0x040D
    CLIENT_ERROR_CONFLICTING_ATTRIBUTES = 0x040E
    CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED = 0x040F
    CLIENT_ERROR_COMPRESSION_ERROR = 0x0410
    CLIENT_ERROR_DOCUMENT_FORMAT_ERROR = 0x0411
    CLIENT_ERROR_DOCUMENT_ACCESS_ERROR = 0x0412
    CLIENT_ERROR_DOCUMENT_PASSWORD_ERROR = 0x0418
    CLIENT_ERROR_DOCUMENT_PERMISSION_ERROR = 0x0419
    CLIENT_ERROR_DOCUMENT_SECURITY_ERROR = 0x041A
    CLIENT_ERROR_DOCUMENT_UNPRINTABLE_ERROR = 0x041B
    SERVER_ERROR_INTERNAL_ERROR = 0x0500
    SERVER_ERROR_OPERATION_NOT_SUPPORTED = 0x0501
    SERVER_ERROR_SERVICE_UNAVAILABLE = 0x0502
    SERVER_ERROR_VERSION_NOT_SUPPORTED = 0x0503
    SERVER_ERROR_DEVICE_ERROR = 0x0504
    SERVER_ERROR_TEMPORARY_ERROR = 0x0505
    SERVER_ERROR_NOT_ACCEPTING_JOBS = 0x0506
    SERVER_ERROR_BUSY = 0x0507
    SERVER_ERROR_JOB_CANCELED = 0x0508
    SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED = 0x0509

    @staticmethod
    def describe(code: int) -> str:
        """The keyword for a status code, or its hex value when it is not a known one."""
        try:
            return Status(code).keyword
        except ValueError:
            return f"status 0x{code:04x}"

    @staticmethod
    def is_success(code: int) -> bool:
        return 0 <= code < 0x0100


class DelimiterTag(_Keyword):
    """Group delimiters (0x00-0x0f)."""

    OPERATION_ATTRIBUTES = 0x01
    JOB_ATTRIBUTES = 0x02
    END_OF_ATTRIBUTES = 0x03
    PRINTER_ATTRIBUTES = 0x04
    UNSUPPORTED_ATTRIBUTES = 0x05
    SUBSCRIPTION_ATTRIBUTES = 0x06
    EVENT_NOTIFICATION_ATTRIBUTES = 0x07
    RESOURCE_ATTRIBUTES = 0x08
    DOCUMENT_ATTRIBUTES = 0x09
    SYSTEM_ATTRIBUTES = 0x0A


class ValueTag(_Keyword):
    # out-of-band (0x10-0x1f): no value
    UNSUPPORTED = 0x10
    UNKNOWN = 0x12
    NO_VALUE = 0x13
    NOT_SETTABLE = 0x15
    DELETE_ATTRIBUTE = 0x16
    ADMIN_DEFINE = 0x17
    # integers (0x20-0x2f)
    INTEGER = 0x21
    BOOLEAN = 0x22
    ENUM = 0x23
    # octet strings (0x30-0x3f)
    OCTET_STRING = 0x30
    DATE_TIME = 0x31
    RESOLUTION = 0x32
    RANGE_OF_INTEGER = 0x33
    BEG_COLLECTION = 0x34
    TEXT_WITH_LANGUAGE = 0x35
    NAME_WITH_LANGUAGE = 0x36
    END_COLLECTION = 0x37
    # character strings (0x40-0x5f)
    TEXT_WITHOUT_LANGUAGE = 0x41
    NAME_WITHOUT_LANGUAGE = 0x42
    KEYWORD = 0x44
    URI = 0x45
    URI_SCHEME = 0x46
    CHARSET = 0x47
    NATURAL_LANGUAGE = 0x48
    MIME_MEDIA_TYPE = 0x49
    MEMBER_ATTR_NAME = 0x4A
    EXTENSION = 0x7F

    @property
    def keyword(self) -> str:
        """The type's name as RFC 8010 writes it: rangeOfInteger, no-value …"""
        return _TAG_NAMES.get(self, self.name.lower().replace("_", "-"))

    @staticmethod
    def is_out_of_band(tag: int) -> bool:
        return 0x10 <= tag <= 0x1F

    @staticmethod
    def describe(tag: int) -> str:
        try:
            return ValueTag(tag).keyword
        except ValueError:
            return f"tag 0x{tag:02x}"


_TAG_NAMES = {
    ValueTag.OCTET_STRING: "octetString",
    ValueTag.DATE_TIME: "dateTime",
    ValueTag.RANGE_OF_INTEGER: "rangeOfInteger",
    ValueTag.BEG_COLLECTION: "begCollection",
    ValueTag.TEXT_WITH_LANGUAGE: "textWithLanguage",
    ValueTag.NAME_WITH_LANGUAGE: "nameWithLanguage",
    ValueTag.END_COLLECTION: "endCollection",
    ValueTag.TEXT_WITHOUT_LANGUAGE: "textWithoutLanguage",
    ValueTag.NAME_WITHOUT_LANGUAGE: "nameWithoutLanguage",
    ValueTag.URI_SCHEME: "uriScheme",
    ValueTag.NATURAL_LANGUAGE: "naturalLanguage",
    ValueTag.MIME_MEDIA_TYPE: "mimeMediaType",
    ValueTag.MEMBER_ATTR_NAME: "memberAttrName",
}


STRING_TAGS = frozenset(
    {
        ValueTag.TEXT_WITHOUT_LANGUAGE,
        ValueTag.NAME_WITHOUT_LANGUAGE,
        ValueTag.KEYWORD,
        ValueTag.URI,
        ValueTag.URI_SCHEME,
        ValueTag.CHARSET,
        ValueTag.NATURAL_LANGUAGE,
        ValueTag.MIME_MEDIA_TYPE,
        ValueTag.MEMBER_ATTR_NAME,
    }
)


class JobState(_Keyword):
    PENDING = 3
    PENDING_HELD = 4
    PROCESSING = 5
    PROCESSING_STOPPED = 6
    CANCELED = 7
    ABORTED = 8
    COMPLETED = 9

    @property
    def finished(self) -> bool:
        return self >= JobState.CANCELED


class PrinterState(_Keyword):
    IDLE = 3
    PROCESSING = 4
    STOPPED = 5
