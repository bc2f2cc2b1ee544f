"""The objects read from a printer: Host Resources MIB (RFC 2790) and Printer MIB
(RFC 3805) OIDs and enumerations, and the SNMPv3 USM protocols by their pysnmp names."""

from __future__ import annotations

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
HR_DEVICE_TYPE = "1.3.6.1.2.1.25.3.2.1.2.1"
HR_DEVICE_DESCR = "1.3.6.1.2.1.25.3.2.1.3.1"
HR_DEVICE_STATUS = "1.3.6.1.2.1.25.3.2.1.5.1"
HR_PRINTER_STATUS = "1.3.6.1.2.1.25.3.5.1.1.1"
HR_PRINTER_ERROR_STATE = "1.3.6.1.2.1.25.3.5.1.2.1"
PRT_MARKER_LIFE_COUNT = "1.3.6.1.2.1.43.10.2.1.4.1.1"
HR_DEVICE_PRINTER = "1.3.6.1.2.1.25.3.1.5"  # hrDeviceType value of a printer

SUPPLY_CLASS = "1.3.6.1.2.1.43.11.1.1.4"  # prtMarkerSuppliesClass
SUPPLY_DESCR = "1.3.6.1.2.1.43.11.1.1.6"  # prtMarkerSuppliesDescription
SUPPLY_MAX = "1.3.6.1.2.1.43.11.1.1.8"  # prtMarkerSuppliesMaxCapacity
SUPPLY_LEVEL = "1.3.6.1.2.1.43.11.1.1.9"  # prtMarkerSuppliesLevel
ALERT_DESCR = "1.3.6.1.2.1.43.18.1.1.8"  # prtAlertDescription

STATUS_SCALARS = (
    SYS_DESCR,
    HR_DEVICE_DESCR,
    HR_DEVICE_STATUS,
    HR_PRINTER_STATUS,
    HR_PRINTER_ERROR_STATE,
    PRT_MARKER_LIFE_COUNT,
)
STATUS_COLUMNS = (SUPPLY_CLASS, SUPPLY_DESCR, SUPPLY_MAX, SUPPLY_LEVEL, ALERT_DESCR)

DEVICE_STATUS = {1: "unknown", 2: "running", 3: "warning", 4: "testing", 5: "down"}
PRINTER_STATUS = {1: "other", 2: "unknown", 3: "idle", 4: "printing", 5: "warmup"}

# hrPrinterDetectedErrorState (RFC 2790, extended by RFC 3805) is a BITS value sent as an
# OCTET STRING: bit 0 is the most significant bit of the first octet.
ERROR_BITS = (
    "lowPaper",  # 0  (0x80 of octet 1)
    "noPaper",  # 1
    "lowToner",  # 2
    "noToner",  # 3
    "doorOpen",  # 4
    "jammed",  # 5
    "offline",  # 6
    "serviceRequested",  # 7  (0x01 of octet 1)
    "inputTrayMissing",  # 8  (0x80 of octet 2)
    "outputTrayMissing",  # 9
    "markerSupplyMissing",  # 10
    "outputNearFull",  # 11
    "outputFull",  # 12
    "inputTrayEmpty",  # 13
    "overduePreventMaint",  # 14
)

# prtMarkerSuppliesClass
SUPPLY_CONSUMED = 3  # supplyThatIsConsumed: toner, ink, drum … (level falls)
SUPPLY_RECEPTACLE = 4  # receptacleThatIsFilled: waste toner … (level rises)

# SNMPv3 USM protocols (SNMP-USER-BASED-SM-MIB and its SHA-2 and AES extensions), by the
# keyword a registry entry or a user gives -> the pysnmp constant.
AUTH_PROTOCOLS = {
    "md5": "USM_AUTH_HMAC96_MD5",
    "sha": "USM_AUTH_HMAC96_SHA",
    "sha224": "USM_AUTH_HMAC128_SHA224",
    "sha256": "USM_AUTH_HMAC192_SHA256",
    "sha384": "USM_AUTH_HMAC256_SHA384",
    "sha512": "USM_AUTH_HMAC384_SHA512",
}
PRIV_PROTOCOLS = {
    "des": "USM_PRIV_CBC56_DES",
    "3des": "USM_PRIV_CBC168_3DES",
    "aes": "USM_PRIV_CFB128_AES",
    "aes128": "USM_PRIV_CFB128_AES",
    "aes192": "USM_PRIV_CFB192_AES",
    "aes256": "USM_PRIV_CFB256_AES",
}
