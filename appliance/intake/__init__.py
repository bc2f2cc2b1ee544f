"""Driverless intake: the CUPS "Secure Print" queue, its backend and its DNS-SD record."""
