"""The node's printer on DNS-SD (dnssd.py) and cupsd.conf once CUPS is off the network
(cupsconf.py)."""

from __future__ import annotations

from xml.dom import minidom

import pytest

from appliance.errors import ConfigError
from appliance.intake import cupsconf, dnssd
from appliance.intake.ipp import attributes
from appliance.printers.ipp.serializer import attr

PRINTER = dnssd.PrinterSite(
    site_id="site-1",
    node_id="node-1",
    host="meshprint.office.example.com",
    port=631,
    release_url="https://meshprint.office.example.com:9266/",
    location="Lobby & stairs",
)


def test_txt_comes_from_the_printers_own_attributes() -> None:
    answer = attributes.printer_attributes(dnssd.identity(PRINTER), 0)
    values = {a.name: a.values for a in answer}
    txt = dnssd.printer_txt(PRINTER)
    assert txt["rp"] == "ipp/print"
    assert txt["UUID"] == str(values["printer-uuid"][0]).removeprefix("urn:uuid:")
    assert txt["UUID"] == attributes.printer_uuid("site-1", "node-1").removeprefix("urn:uuid:")
    assert txt["pdl"].split(",") == [
        f for f in values["document-format-supported"] if f in attributes.FORMATS
    ]
    assert txt["URF"] == ",".join(values["urf-supported"])
    assert txt["adminurl"] == values["printer-more-info"][0] == PRINTER.release_url
    assert txt["note"] == "Lobby & stairs" == values["printer-location"][0]
    assert txt["ty"] == values["printer-make-and-model"][0]
    assert (txt["Color"], txt["Duplex"], txt["kind"]) == ("T", "T", "document")
    assert (txt["air"], txt["TLS"], txt["PaperMax"]) == ("username,password", "1.2", "legal-A4")
    assert not any("certified" in key for key in txt)  # no claim it lacks
    assert all(len(f"{k}={v}".encode()) <= 255 for k, v in txt.items())


def test_txt_follows_the_attributes() -> None:
    answer = [
        attr("color-supported", False),
        attr("sides-supported", ["one-sided"]),
        attr("media-size-supported", [{"x-dimension": 29700, "y-dimension": 42000}]),
        attr("printer-kind", ["document", "envelope"]),
    ]
    txt = dnssd.txt_record(answer)
    assert (txt["Color"], txt["Duplex"], txt["PaperMax"]) == ("F", "F", "tabloid-A3")
    assert txt["kind"] == "document,envelope"
    small = [attr("media-size-supported", [{"x-dimension": 14800, "y-dimension": 21000}])]
    assert dnssd.txt_record(small)["PaperMax"] == "<legal-A4"


def test_too_long_a_location_is_refused() -> None:
    with pytest.raises(ConfigError, match="note"):
        dnssd.printer_txt(dnssd.PrinterSite("s", "n", "h.local", location="x" * 300))


def test_service_file_has_both_types_their_subtypes_and_the_placeholder() -> None:
    text = dnssd.service_xml("Secure Print", 631, dnssd.printer_txt(PRINTER))
    doc = minidom.parseString(text.encode())
    services = doc.getElementsByTagName("service")
    kinds = [s.getElementsByTagName("type")[0].firstChild.data for s in services]  # type: ignore[union-attr]
    assert kinds == ["_ipp._tcp", "_ipps._tcp", "_printer._tcp"]
    for kind in ("_ipp._tcp", "_ipps._tcp"):
        assert f"<subtype>_universal._sub.{kind}</subtype>" in text
        assert f"<subtype>_print._sub.{kind}</subtype>" in text
    assert text.count("<port>631</port>") == 2 and text.count("<port>0</port>") == 1
    assert "note=Lobby &amp; stairs" in text and "air=username,password" in text


def test_zone_records_for_unicast_dns_sd() -> None:
    zone = dnssd.zone_records(PRINTER, "office.example.com")
    lines = [line.split("\t") for line in zone.splitlines() if not line.startswith(";")]
    by_type: dict[str, list[list[str]]] = {}
    for line in lines:
        assert line[1:3] == ["3600", "IN"], line
        by_type.setdefault(line[3], []).append(line)
    instance = "Secure\\032Print._ipps._tcp.office.example.com."
    ptrs = {(r[0], r[4]) for r in by_type["PTR"]}
    assert ("b._dns-sd._udp.office.example.com.", "office.example.com.") in ptrs
    assert ("_ipps._tcp.office.example.com.", instance) in ptrs
    assert ("_universal._sub._ipps._tcp.office.example.com.", instance) in ptrs
    assert ("_print._sub._ipp._tcp.office.example.com.", instance.replace("_ipps", "_ipp")) in ptrs
    srv = {r[0]: r[4] for r in by_type["SRV"]}
    assert srv[instance] == "0 0 631 meshprint.office.example.com."
    assert (
        srv["Secure\\032Print._printer._tcp.office.example.com."]
        == "0 0 0 meshprint.office.example.com."
    )
    txt = next(r[4] for r in by_type["TXT"] if r[0] == instance)
    assert '"rp=ipp/print"' in txt and '"air=username,password"' in txt
    assert '"adminurl=https://meshprint.office.example.com:9266/"' in txt


def test_zone_records_escape_names_and_refuse_bad_ones() -> None:
    odd = dnssd.PrinterSite("s", "n", "p.example.org", name='Print "2.0"')
    assert 'Print\\032\\"2\\.0\\"._ipp._tcp.example.org.' in dnssd.zone_records(odd, "example.org")
    for domain in ("", "bad..example", "a b.example"):
        with pytest.raises(ConfigError):
            dnssd.zone_records(PRINTER, domain)


CUPSD_CONF = """\
LogLevel warn
Port 631
Listen localhost:631
Listen /run/cups/cups.sock
Browsing Yes
BrowseLocalProtocols dnssd
<Location />
  Order allow,deny
  Allow @LOCAL
</Location>
<Policy meshprint-secure-print>
  JobPrivateAccess @SYSTEM
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""


def test_local_conf_takes_cups_off_the_network_once() -> None:
    assert cupsconf.network_listeners(CUPSD_CONF) == ["Port 631", "Listen localhost:631"]
    local = cupsconf.local_conf(CUPSD_CONF)
    lines = local.splitlines()
    assert cupsconf.network_listeners(local) == []
    assert "Listen /run/cups/cups.sock" in lines
    assert "Browsing No" in lines and "Browsing Yes" not in lines
    assert "PreserveJobFiles No" in lines
    assert "meshprint-secure-print" not in local and "<Policy default>" in lines
    assert "LogLevel warn" in lines and "<Location />" in lines
    assert cupsconf.local_conf(local) == local


def test_local_conf_keeps_a_socket_or_adds_the_standard_one() -> None:
    assert "Listen /tmp/r/cups.sock" in cupsconf.local_conf(
        "Listen /tmp/r/cups.sock\nListen *:631\n"
    )
    added = cupsconf.local_conf("Listen 0.0.0.0:631\nSSLListen [::]:443\n")
    assert added.splitlines()[0] == "Listen /run/cups/cups.sock"
    assert cupsconf.network_listeners(added) == []
