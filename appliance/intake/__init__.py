"""Driverless intake: the node's own IPP Everywhere printer (`ipp`), its DNS-SD record
(`dnssd`) and the move of an appliance onto it (`install`, `cupsconf`). The CUPS
"Secure Print" queue's backend and its local door (`backend`, `door`) stay only so that
`meshprint intake install` can drain jobs an older appliance's queue still holds."""
