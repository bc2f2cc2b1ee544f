"""Printer status over SNMP (v2c community or v3 USM), for a preflight before a job is sent.

Reads the Host Resources MIB (RFC 2790: hrDeviceStatus, hrPrinterStatus,
hrPrinterDetectedErrorState) and the Printer MIB (RFC 3805: page counter, marker
supplies, alerts) and says in plain words why a job must not be sent now, if it must not.

mib          OIDs and enumerations of both MIBs, SNMPv3 USM protocols
target       SnmpTarget, SnmpV3User: where and how to ask
models       PrinterStatus, Supply: what the printer says and what it means for a job
decode       agent values -> PrinterStatus (pure: no pysnmp needed)
transport    one event loop thread and SnmpEngine for every caller; GET, walk, read_values
status       read_status, preflight
scan         sweep: find the printers of a small network

The functions are blocking and safe to call from any thread. pysnmp is imported on first
use, so importing this package and decoding (`decode_status`) work without it. Errors are
the printer errors of `appliance.printers.errors` (PrinterUnreachable, PrinterNotReady).
"""

from appliance.printers.snmp.decode import decode_error_state, decode_status, encode_error_state
from appliance.printers.snmp.mib import (
    ALERT_DESCR,
    DEVICE_STATUS,
    ERROR_BITS,
    HR_DEVICE_DESCR,
    HR_DEVICE_PRINTER,
    HR_DEVICE_STATUS,
    HR_DEVICE_TYPE,
    HR_PRINTER_ERROR_STATE,
    HR_PRINTER_STATUS,
    PRINTER_STATUS,
    PRT_MARKER_LIFE_COUNT,
    SUPPLY_CLASS,
    SUPPLY_CONSUMED,
    SUPPLY_DESCR,
    SUPPLY_LEVEL,
    SUPPLY_MAX,
    SUPPLY_RECEPTACLE,
    SYS_DESCR,
)
from appliance.printers.snmp.models import (
    BLOCKING_ERRORS,
    WARNING_ERRORS,
    PrinterStatus,
    Supply,
    Value,
)
from appliance.printers.snmp.scan import Discovered, sweep
from appliance.printers.snmp.status import preflight, read_status
from appliance.printers.snmp.target import SnmpTarget, SnmpV3User
from appliance.printers.snmp.transport import close, plain_value, read_values

__all__ = [
    "ALERT_DESCR",
    "BLOCKING_ERRORS",
    "DEVICE_STATUS",
    "ERROR_BITS",
    "HR_DEVICE_DESCR",
    "HR_DEVICE_PRINTER",
    "HR_DEVICE_STATUS",
    "HR_DEVICE_TYPE",
    "HR_PRINTER_ERROR_STATE",
    "HR_PRINTER_STATUS",
    "PRINTER_STATUS",
    "PRT_MARKER_LIFE_COUNT",
    "SUPPLY_CLASS",
    "SUPPLY_CONSUMED",
    "SUPPLY_DESCR",
    "SUPPLY_LEVEL",
    "SUPPLY_MAX",
    "SUPPLY_RECEPTACLE",
    "SYS_DESCR",
    "WARNING_ERRORS",
    "Discovered",
    "PrinterStatus",
    "SnmpTarget",
    "SnmpV3User",
    "Supply",
    "Value",
    "close",
    "decode_error_state",
    "decode_status",
    "encode_error_state",
    "plain_value",
    "preflight",
    "read_status",
    "read_values",
    "sweep",
]
