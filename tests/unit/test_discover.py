"""Parsing `avahi-browse -rpkt` output, recorded from a real avahi-daemon + ippeveprinter."""

from __future__ import annotations

from appliance.printers.discover import parse_browse

RECORDED = (
    "+;lo;IPv4;Front\\032Desk\\032Laser;_ipp._tcp;local\n"
    "=;lo;IPv4;Front\\032Desk\\032Laser;_ipp._tcp;local;vm.local;127.0.0.1;46959;"
    '"qtotal=1" "txtvers=1" "URF=CP1,IS1-4-5-19,MT1-2-3-4-5-6,RS600,V1.4,W8,DM1" "TLS=1.2" '
    '"UUID=3f0ab732-95cb-350a-6ecf-6fd4babb4598" "Duplex=T" "Color=F" '
    '"pdl=application/pdf,image/jpeg,image/pwg-raster,image/urf,text/plain" "note=" '
    '"adminurl=https://localhost:46959/" "ty=Example Printer" "rp=ipp/print"\n'
    "=;lo;IPv6;Raw\\032One;_pdl-datastream._tcp;local;r.local;fe80::1;9100;\n"
    "=;lo;IPv4;Other;_http._tcp;local;h.local;10.0.0.2;80;\n"
)


def test_resolved_printers_become_uris_with_model_and_formats() -> None:
    laser, raw = parse_browse(RECORDED)
    assert laser.name == "Front Desk Laser" and laser.host == "127.0.0.1"
    assert laser.uris == ["ipp://127.0.0.1:46959/ipp/print"]
    assert laser.make_and_model == "Example Printer"
    assert "image/urf" in laser.formats and laser.sources == ["dns-sd"]
    assert raw.uris == ["socket://[fe80::1]:9100"]


def test_garbage_and_other_services_are_ignored() -> None:
    assert parse_browse("nonsense\n=;;;\n" + RECORDED.splitlines()[3]) == []
