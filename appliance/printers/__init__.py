"""Printers: the registry, device protocols (IPP, SNMP) and delivery drivers."""
