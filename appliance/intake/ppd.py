"""The Secure Print queue's PPD: a driverless pass-through.

Each `*cupsFilter2` line hands PDF, Apple raster (URF), PWG raster and JPEG to the
backend as they are ("-" = no filter), so phones and computers send what they already
have and nothing is converted; CUPS' own filters turn anything else it knows (text,
PostScript, PNG …) into PDF first. From this CUPS derives what a driverless client asks
for over IPP: document-format-supported, urf-supported, pwg-raster-*, sides-supported,
print-color-mode-supported, media-supported (A4, Letter).
"""

from __future__ import annotations

MODEL = "meshprint Secure Print"
PASS_THROUGH = ("application/pdf", "image/urf", "image/pwg-raster", "image/jpeg")

_SIZES = (("A4", "A4", 595.28, 841.89), ("Letter", "US Letter", 612, 792))


def ppd_text() -> str:
    lines = [
        '*PPD-Adobe: "4.3"',
        "*% meshprint Secure Print: jobs are held for their owner until released.",
        "*% Written by 'meshprint intake install'; changes are overwritten.",
        '*FormatVersion: "4.3"',
        '*FileVersion: "1.0"',
        "*LanguageVersion: English",
        "*LanguageEncoding: ISOLatin1",
        '*PCFileName: "MESHPRNT.PPD"',
        '*Manufacturer: "meshprint"',
        '*Product: "(Secure Print)"',
        f'*ModelName: "{MODEL}"',
        f'*ShortNickName: "{MODEL}"',
        f'*NickName: "{MODEL}"',
        '*PSVersion: "(3010.000) 0"',
        '*LanguageLevel: "3"',
        "*ColorDevice: True",
        "*DefaultColorSpace: RGB",
        "*FileSystem: False",
        '*Throughput: "1"',
        "*LandscapeOrientation: Plus90",
        "*TTRasterizer: Type42",
        "*cupsVersion: 2.4",
        '*cupsLanguages: "en"',
        # Copies go to the backend as a number (a default option of the job), not
        # as copies of the document.
        "*cupsManualCopies: False",
        "*cupsIPPSupplies: False",
    ]
    lines += [f'*cupsFilter2: "{t} {t} 0 -"' for t in PASS_THROUGH]
    lines += ["*OpenUI *PageSize/Media Size: PickOne", "*OrderDependency: 10 AnySetup *PageSize"]
    lines.append("*DefaultPageSize: A4")
    for key, label, w, h in _SIZES:
        lines.append(f'*PageSize {key}/{label}: "<</PageSize[{w} {h}]>>setpagedevice"')
    lines += ["*CloseUI: *PageSize", "*OpenUI *PageRegion/Media Size: PickOne"]
    lines += ["*OrderDependency: 10 AnySetup *PageRegion", "*DefaultPageRegion: A4"]
    for key, label, w, h in _SIZES:
        lines.append(f'*PageRegion {key}/{label}: "<</PageSize[{w} {h}]>>setpagedevice"')
    lines += ["*CloseUI: *PageRegion", "*DefaultImageableArea: A4"]
    for key, label, w, h in _SIZES:
        lines.append(f'*ImageableArea {key}/{label}: "0 0 {w} {h}"')
    lines.append("*DefaultPaperDimension: A4")
    for key, label, w, h in _SIZES:
        lines.append(f'*PaperDimension {key}/{label}: "{w} {h}"')
    lines += [
        "*OpenUI *ColorModel/Color Mode: PickOne",
        "*OrderDependency: 10 AnySetup *ColorModel",
        "*DefaultColorModel: RGB",
        '*ColorModel Gray/Grayscale: "<</cupsColorSpace 18/cupsBitsPerColor 8>>setpagedevice"',
        '*ColorModel RGB/Color: "<</cupsColorSpace 19/cupsBitsPerColor 8>>setpagedevice"',
        "*CloseUI: *ColorModel",
        "*OpenUI *Duplex/2-Sided Printing: PickOne",
        "*OrderDependency: 10 AnySetup *Duplex",
        "*DefaultDuplex: None",
        '*Duplex None/Off: "<</Duplex false>>setpagedevice"',
        '*Duplex DuplexNoTumble/Long-Edge (Portrait): "<</Duplex true/Tumble false>>setpagedevice"',
        '*Duplex DuplexTumble/Short-Edge (Landscape): "<</Duplex true/Tumble true>>setpagedevice"',
        "*CloseUI: *Duplex",
    ]
    return "\n".join(lines) + "\n"
