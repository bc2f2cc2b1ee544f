"""Convert a document into a RAW printer's language through CUPS's own filters.

A RAW (port 9100) printer takes only its page description language: PDF, PostScript or
PCL. When a job's format is not that language, or options must be written into the
document (copies, two-sided, black and white), the stream goes through `cupsfilter`,
which chains the same filters a CUPS queue would use (pdftopdf, pdftops, gstopxl,
rastertopdf for iPhone URF …).

Those filters spool their input to temporary files (PDF needs random access). To keep
plaintext off the disk, they run with TMPDIR set to a private directory on a
memory-backed file system (tmpfs: /dev/shm, or /run), removed afterwards; with no tmpfs
mounted the conversion is refused. The converted output streams straight on to the
printer; the `PAGE:` lines the filters log give the number of impressions, which the SNMP
page-counter check uses to tell when the job has really come out.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from appliance.printers.delivery import PrintOptions
from appliance.printers.errors import PrinterError

READ_SIZE = 256 * 1024
PDLS = ("pdf", "postscript", "pcl")
PDL_FORMATS = {
    "pdf": ("application/pdf",),
    "postscript": ("application/postscript",),
    "pcl": ("application/vnd.hp-pcl", "application/vnd.hp-pclxl"),
}
# What cupsfilter should produce for each language, and the PPD that drives it (None:
# cupsfilter's own defaults). PCL means PCL 6 / PCL XL, through Ghostscript's gstopxl.
_PPD_DIR = Path("/usr/share/ppd/cupsfilters")
MEMORY_DIRS = ("/dev/shm", "/run/shm", "/run")


def accepts(pdl: str, document_format: str) -> bool:
    return document_format in PDL_FORMATS[pdl]


def needs_conversion(pdl: str, document_format: str, options: PrintOptions) -> bool:
    """Whether the document must go through the filters before a `pdl` printer gets it.

    Options count: RAW carries none, so copies, sides and black-and-white must be written
    into the document, which only the filters can do for PDF."""
    if not accepts(pdl, document_format):
        return True
    plain = options.copies == 1 and options.sides == "one-sided" and options.color
    return document_format == "application/pdf" and not plain


def memory_tmp() -> str:
    """A tmpfs mount this process can write to; PrinterError when there is none."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        mounts = []
    tmpfs = {
        fields[1] for fields in map(str.split, mounts) if len(fields) > 2 and fields[2] == "tmpfs"
    }
    for candidate in MEMORY_DIRS:
        if candidate in tmpfs and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    raise PrinterError(
        "converting this document for a RAW printer needs a memory-backed temporary "
        f"directory (a tmpfs on one of {', '.join(MEMORY_DIRS)}), and none is writable: "
        "the document is not converted on disk. Mount one, or print through an IPP or "
        "CUPS printer"
    )


def filter_command(pdl: str, document_format: str, options: PrintOptions) -> list[str]:
    """The cupsfilter command line reading the document on stdin."""
    cupsfilter = shutil.which("cupsfilter", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if cupsfilter is None:
        raise PrinterError(
            "cupsfilter is not installed (Debian package cups): it converts documents for "
            "RAW printers"
        )
    command = [cupsfilter, "-i", document_format, "-n", str(options.copies)]
    command += ["-o", f"sides={options.sides}", "-o", "collate=true"]
    if not options.color:
        command += ["-o", "print-color-mode=monochrome", "-o", "ColorModel=Gray"]
    if pdl == "pcl":
        ppd = _PPD_DIR / ("pxlcolor.ppd" if options.color else "pxlmono.ppd")
        if not ppd.is_file():
            raise PrinterError(
                f"the PCL XL driver description {ppd} is missing (Debian package cups-filters)"
            )
        duplex = {"two-sided-long-edge": "DuplexNoTumble", "two-sided-short-edge": "DuplexTumble"}
        command += ["-o", f"Duplex={duplex.get(options.sides, 'None')}"]
        command += ["-e", "-p", str(ppd), "-m", "printer/cupsfilter"]
    elif pdl == "postscript":
        command += ["-m", "application/vnd.cups-postscript"]
    else:
        command += ["-m", "application/pdf"]
    return [*command, "-"]


class Conversion:
    """The converted document as an iterator of chunks; `pages` once it is exhausted.

    Iterating runs cupsfilter, feeding it `document` from a thread. Closing the iterator
    early (the printer went away) stops the filters and removes their temporary files.
    """

    def __init__(
        self, document: Iterator[bytes], document_format: str, pdl: str, options: PrintOptions
    ) -> None:
        if pdl not in PDLS:
            raise PrinterError(f"unknown printer language {pdl!r}: use one of {', '.join(PDLS)}")
        self.command = filter_command(pdl, document_format, options)
        self.document = document
        self.document_format = document_format
        self.pdl = pdl
        self.pages: int | None = None
        self._errors: list[str] = []
        self._impressions = 0
        self._feed_error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        tmp = tempfile.mkdtemp(prefix="meshprint-convert-", dir=memory_tmp())
        env = {**os.environ, "TMPDIR": tmp}
        try:
            process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=tmp,
                start_new_session=True,
            )
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise PrinterError(f"cannot run cupsfilter: {err.strerror or err}") from err
        assert process.stdin and process.stdout and process.stderr
        feeder = threading.Thread(target=self._feed, args=(process,), daemon=True)
        reader = threading.Thread(target=self._read_log, args=(process,), daemon=True)
        feeder.start()
        reader.start()
        finished = False
        try:
            while chunk := process.stdout.read(READ_SIZE):
                yield chunk
            finished = True
        finally:
            if not finished:
                process.kill()
            code = process.wait()
            feeder.join()
            reader.join()
            process.stdout.close()
            shutil.rmtree(tmp, ignore_errors=True)
        if self._feed_error is not None:
            raise self._feed_error
        if code != 0:
            said = self._errors[-1] if self._errors else f"exit status {code}"
            hint = (
                "; CUPS has no filter for that format — print it on an IPP printer, or"
                " give this printer --pdl as-is if it reads the format itself"
                if "No filter" in said
                else ""
            )
            raise PrinterError(
                f"could not convert the {self.document_format} document for a {self.pdl} "
                f"printer: {said}{hint}"
            )
        self.pages = self._impressions or None

    def _feed(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin
        try:
            for chunk in self.document:
                process.stdin.write(chunk)
        except BrokenPipeError:
            pass  # the filters stopped early: their exit status says why
        except BaseException as err:  # the source failed (a bad chunk): stop the filters
            self._feed_error = err
            process.kill()
        finally:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def _read_log(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("PAGE:"):  # "PAGE: number copies"
                fields = line.split()
                self._impressions += (
                    int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 1
                )
            elif line.startswith("ERROR:") or (
                line.startswith("cupsfilter:") and "permissions OK" not in line
            ):
                self._errors.append(line.removeprefix("ERROR:").strip())
        process.stderr.close()
