"""The sample documents made for CUPS's ipptool files (tests/fixtures/ipp_samples.py):
every PWG raster type and resolution ipp-everywhere.test names is a whole raster that
the intake's page counter walks, and CUPS's own raster reader (cups-filters'
rastertopdf) takes it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from appliance.jobs.pages import PageCounter
from tests.fixtures.ipp_samples import TYPES, document, named_files, write_samples

EVERYWHERE = Path("/usr/share/cups/ipptool/ipp-everywhere.test")
RASTERTOPDF = Path("/usr/lib/cups/filter/rastertopdf")


def pages(document_format: str, data: bytes) -> int | None:
    counter = PageCounter(document_format)
    for start in range(0, len(data), 65536):
        counter.feed(data[start : start + 65536])
    return counter.pages


@pytest.mark.parametrize("kind", sorted(TYPES))
@pytest.mark.parametrize("dpi", [150, 300, 720])
def test_every_raster_type_is_walked_page_by_page(kind: str, dpi: int) -> None:
    two = document(f"pwg-raster-samples-{dpi}dpi/{kind}/document-a4-{kind}-{dpi}dpi.pwg")
    one = document(f"pwg-raster-samples-{dpi}dpi/{kind}/color.jpg-4x6-{kind}-{dpi}dpi.pwg")
    assert two.startswith(b"RaS2") and len(two) < 64 * 1024
    assert pages("image/pwg-raster", two) == 2
    assert pages("image/pwg-raster", one) == 1
    assert pages("image/pwg-raster", two[:-3]) is None  # cut short: not a whole page


@pytest.mark.skipif(not RASTERTOPDF.exists(), reason="cups-filters is not installed")
@pytest.mark.parametrize("kind", ["black-1", "sgray-8", "srgb-16", "cmyk-8"])
def test_cups_reads_the_rasters(kind: str, tmp_path: Path) -> None:
    data = document(f"pwg-raster-samples-300dpi/{kind}/document-letter-{kind}-300dpi.pwg")
    result = subprocess.run(
        [str(RASTERTOPDF), "1", "user", "title", "1", ""],
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.startswith(b"%PDF") and result.stderr.count(b"Starting page") == 2


@pytest.mark.skipif(not EVERYWHERE.exists(), reason="cups-ipp-utils is not installed")
def test_every_file_the_suites_name_is_written(tmp_path: Path) -> None:
    names = named_files(EVERYWHERE)
    assert "document-a4.pdf" in names and "color.jpg" in names  # from ipp-1.1.test
    assert len([n for n in names if n.endswith(".pwg")]) == 144
    written = write_samples(tmp_path, EVERYWHERE)
    assert sorted(str(p.relative_to(tmp_path)) for p in written) == sorted(names)
    assert (tmp_path / "color.jpg").read_bytes().startswith(b"\xff\xd8\xff")
    assert pages("application/pdf", (tmp_path / "document-letter.pdf").read_bytes()) == 2
    with pytest.raises(ValueError, match="no sample document for"):
        document("../data/testprint.ps")
