"""XMP packets: their orientation, and copies made fit for an output, holding imgtrans's record.

The source's XMP packet is carried byte for byte, except for two edits made
with regular expressions (no XML parser touches untrusted data):
tiff:Orientation is set to 1 (the pixels are already upright), and in
JPEG/WebP/TIFF outputs imgtrans's provenance record is one rdf:Description
of its own namespace, ``imgtrans:provenance="<JSON>"``, added before
``</rdf:RDF>`` (replacing an earlier imgtrans record).  The record never
touches EXIF ImageDescription, UserComment or any other field a user or
camera may have filled.  PNG keeps the record in its ``imgtrans`` text chunk.
"""

from __future__ import annotations

import html
import logging
import re

from PIL import Image as PILImage

_log = logging.getLogger(__name__)

#: XMP: imgtrans's own namespace (the provenance record) and those it reads.
XMP_NS = b"http://ns.imgtrans.invalid/xmp/1.0/"
_XMP_TIFF_NS = b"http://ns.adobe.com/tiff/1.0/"
_XMP_EXIF_NS = b"http://ns.adobe.com/exif/1.0/"
_XMP_RDF_NS = b"http://www.w3.org/1999/02/22-rdf-syntax-ns#"
PNG_XMP_KEY = "XML:com.adobe.xmp"
#: Largest XMP packet one JPEG APP1 segment holds (65533 minus the namespace header).
JPEG_XMP_LIMIT = 65533 - len(b"http://ns.adobe.com/xap/1.0/\x00")


def _xmp_prefixes(xmp: bytes, namespace: bytes) -> set[bytes]:
    """The XML prefixes bound to *namespace* anywhere in the packet."""
    quoted = rb"(?:\"" + re.escape(namespace) + rb"\"|'" + re.escape(namespace) + rb"')"
    return set(re.findall(rb"xmlns:([\w.-]+)\s*=\s*" + quoted, xmp))


def _xmp_set_values(xmp: bytes, values: dict[tuple[bytes, bytes, bytes], int]) -> bytes:
    """*xmp* with each property given as (namespace, usual prefix, name) -> integer set to that value
    wherever it appears (attribute or element form, any prefix bound to the namespace)."""
    for (namespace, usual, prop), value in values.items():
        new = str(value).encode()
        for prefix in _xmp_prefixes(xmp, namespace) | {usual}:
            name = re.escape(prefix) + b":" + re.escape(prop)
            xmp = re.sub(rb"(\s" + name + rb"\s*=\s*)([\"'])\s*\d+\s*\2", rb"\g<1>\g<2>" + new + rb"\g<2>", xmp)
            element = rb"(<" + name + rb"(?:\s[^>]*)?>)\s*\d+\s*(</" + name + rb"\s*>)"
            xmp = re.sub(element, rb"\g<1>" + new + rb"\g<2>", xmp)
    return xmp


def _xmp_reset_orientation(xmp: bytes) -> bytes:
    """*xmp* with every tiff:Orientation value (attribute or element form) set to 1."""
    return _xmp_set_values(xmp, {(_XMP_TIFF_NS, b"tiff", b"Orientation"): 1})


def _xmp_set_size(xmp: bytes, size: tuple[int, int]) -> bytes:
    """*xmp* with the image-size properties (exif:PixelX/YDimension, tiff:ImageWidth/Length) set to
    ``size`` (width, height) where they appear."""
    w, h = size
    return _xmp_set_values(xmp, {
        (_XMP_EXIF_NS, b"exif", b"PixelXDimension"): w, (_XMP_EXIF_NS, b"exif", b"PixelYDimension"): h,
        (_XMP_TIFF_NS, b"tiff", b"ImageWidth"): w, (_XMP_TIFF_NS, b"tiff", b"ImageLength"): h,
    })


def _xmp_record_patterns(xmp: bytes) -> list[re.Pattern[bytes]]:
    """Patterns of the imgtrans:provenance attribute / element (value in group "a", "b" or "e")."""
    patterns = []
    for prefix in _xmp_prefixes(xmp, XMP_NS):
        name = re.escape(prefix) + rb":provenance"
        patterns.append(re.compile(rb"\s" + name + rb"\s*=\s*(?:\"(?P<a>[^\"]*)\"|'(?P<b>[^']*)')"))
        patterns.append(re.compile(rb"<" + name + rb"(?:\s[^>]*)?>(?P<e>.*?)</" + name + rb"\s*>", re.DOTALL))
    return patterns


def _xmp_strip_record(xmp: bytes) -> bytes:
    """*xmp* without imgtrans's provenance record (and without the rdf:Description written for it)."""
    for pattern in _xmp_record_patterns(xmp):
        xmp = pattern.sub(b"", xmp)
    ns = re.escape(XMP_NS)
    return re.sub(rb"<([\w.-]+):Description\s+\1:about=\"[^\"]*\"\s+xmlns:imgtrans=\"" + ns + rb"\"\s*/>\s*", b"", xmp)


def _xmp_add_record(xmp: bytes | None, text: str) -> bytes | None:
    """*xmp* (or a new packet) with the provenance *text* as an rdf:Description of its own."""
    value = html.escape(text, quote=True).encode("utf-8")
    if not xmp:
        desc = b'<rdf:Description rdf:about="" xmlns:imgtrans="' + XMP_NS + b'" imgtrans:provenance="' + value + b'"/>'
        return (
            b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            b'<rdf:RDF xmlns:rdf="' + _XMP_RDF_NS + b'">\n' + desc + b"\n</rdf:RDF>\n</x:xmpmeta>\n"
            b'<?xpacket end="w"?>'
        )
    for rdf in sorted(_xmp_prefixes(xmp, _XMP_RDF_NS)):
        ends = list(re.finditer(rb"</" + re.escape(rdf) + rb":RDF\s*>", xmp))
        if ends:
            at = ends[-1].start()
            # every top-level rdf:about must be the same (Adobe's XMPCore rejects the packet otherwise)
            about = re.search(rb"<" + re.escape(rdf) + rb":Description\s[^>]*?" + re.escape(rdf)
                              + rb":about\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", xmp)
            subject = (about.group(1) if about.group(1) is not None else about.group(2)) if about else b""
            subject = html.escape(html.unescape(subject.decode("utf-8", "replace")), quote=True).encode("utf-8")
            desc = (b"<" + rdf + b":Description " + rdf + b':about="' + subject + b'" xmlns:imgtrans="' + XMP_NS
                    + b'" imgtrans:provenance="' + value + b'"/>\n')
            return xmp[:at] + desc + xmp[at:]
    _log.warning("XMP packet has no rdf:RDF element; the imgtrans record is not stored")
    return xmp


def xmp_read_record(xmp: bytes) -> str | None:
    for pattern in _xmp_record_patterns(xmp):
        m = pattern.search(xmp)
        if m:
            raw = next(g for g in (m.group(k) for k in m.re.groupindex) if g is not None)
            return html.unescape(raw.decode("utf-8", "replace"))
    return None


def output_xmp(xmp: bytes | None, text: str | None, size: tuple[int, int] | None = None) -> bytes | None:
    """XMP for the output: tiff:Orientation 1, the image size set to ``size`` (width, height) where the
    packet states one, no stale imgtrans record, plus *text* as the record if given."""
    out = None
    if xmp:
        out = _xmp_strip_record(_xmp_reset_orientation(bytes(xmp)))
        if size is not None:
            out = _xmp_set_size(out, size)
    if text is not None:
        out = _xmp_add_record(out, text)
    return out or None



def _xmp_as_utf8(xmp: bytes) -> bytes:
    """A UTF-16/32 packet (allowed in TIFF and some sidecar-style writers) re-encoded as UTF-8, which the
    edits below and every output format expect; UTF-8 packets lose only trailing NUL padding."""
    for bom, _codec in ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                       (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le")):  # fmt: skip
        if xmp.startswith(bom):
            break
    else:
        head = xmp[:64]
        codec = "utf-16-be" if head[:1] == b"\x00" and head[1:2] != b"\x00" else (
            "utf-16-le" if head[1:2] == b"\x00" and head[:1] != b"\x00" else None)
        if codec is None:
            return xmp.rstrip(b"\x00")
        bom = b""
    try:
        text = xmp[len(bom):].decode(codec).rstrip("\x00")
    except UnicodeDecodeError:
        return xmp.rstrip(b"\x00")
    return text.encode("utf-8")


def xmp_orientation(xmp: bytes | None) -> int:
    """The tiff:Orientation the packet states (1-8), else 1."""
    for prefix in _xmp_prefixes(xmp or b"", _XMP_TIFF_NS):
        name = re.escape(prefix) + rb":Orientation"
        m = (re.search(rb"\s" + name + rb"\s*=\s*[\"']\s*(\d+)\s*[\"']", xmp)
             or re.search(rb"<" + name + rb"(?:\s[^>]*)?>\s*(\d+)\s*</", xmp))
        if m and 1 <= int(m.group(1)) <= 8:
            return int(m.group(1))
    return 1


def raw_xmp(im: PILImage.Image) -> bytes | None:
    """The XMP packet Pillow found (JPEG APP1, PNG iTXt, WebP chunk, TIFF tag 700), as UTF-8."""
    xmp = im.info.get("xmp")
    if isinstance(xmp, tuple) and len(xmp) == 1:
        xmp = xmp[0]
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if not isinstance(xmp, (bytes, bytearray)):
        return None
    xmp = _xmp_as_utf8(bytes(xmp))
    return xmp if xmp.strip() else None


def extract_xmp(im: PILImage.Image) -> bytes | None:
    """The XMP packet Pillow found, as UTF-8, orientation reset."""
    xmp = raw_xmp(im)
    return None if xmp is None else _xmp_reset_orientation(xmp)

