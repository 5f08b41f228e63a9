"""Image sizes from file headers, without decoding pixels (no PIL: the standard library only).

:func:`read_header` knows JPEG, PNG, BMP, GIF, WebP, TIFF and PNM (PBM/PGM/PPM). It returns
the size *as the image is shown*: when the file's EXIF orientation (JPEG APP1, PNG ``eXIf``,
WebP ``EXIF``, TIFF tag 274) is 5, 6, 7 or 8 the width and height are swapped, as OpenCV's
decoder rotates such images. For another format, or a header it cannot make sense of, it
returns None and the caller decodes the image instead.
"""

import struct
from collections import namedtuple

__all__ = ["ImageHeader", "read_header"]

ImageHeader = namedtuple("ImageHeader", "format width height orientation")
# width and height as shown (after the EXIF orientation); orientation 1..8 (1 when absent)

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_MAX_CHUNKS = 1_000_000  # PNG / WebP chunks walked before giving up (a damaged file)


class _Bad(Exception):
    """The header is truncated or not what its signature promises."""


def _read(fh, n):
    data = fh.read(n)
    if len(data) != n:
        raise _Bad("truncated")
    return data


def _shown(fmt, width, height, orientation):
    if width <= 0 or height <= 0:
        raise _Bad("empty size")
    if orientation not in range(1, 9):
        orientation = 1
    if orientation >= 5:  # transposed: OpenCV rotates the pixels, the shown size swaps
        width, height = height, width
    return ImageHeader(fmt, width, height, orientation)


def exif_orientation(tiff):
    """Orientation (tag 0x0112) of IFD0 in a TIFF-structured EXIF block; 1 when absent or unreadable.

    Read as OpenCV's EXIF reader does: the 16-bit value of the entry whatever its declared
    type, the last such entry winning, so that header sizes agree with the decoded image.
    """
    if tiff[:1] == b"I":  # OpenCV tells the byte order by the first byte alone
        e = "<"
    elif tiff[:1] == b"M":
        e = ">"
    else:
        return 1
    orientation = 1
    try:
        if struct.unpack_from(e + "H", tiff, 2)[0] != 42:  # the TIFF magic number: OpenCV reads no EXIF without it
            return 1
        (ifd,) = struct.unpack_from(e + "I", tiff, 4)
        (count,) = struct.unpack_from(e + "H", tiff, ifd)
        for k in range(count):
            entry = ifd + 2 + 12 * k
            if struct.unpack_from(e + "H", tiff, entry)[0] == 0x0112:
                orientation = struct.unpack_from(e + "H", tiff, entry + 8)[0]
    except struct.error:
        pass
    return orientation


def _jpeg(fh):
    _read(fh, 2)  # SOI
    orientation = 1
    seen_exif = False
    while True:
        byte = _read(fh, 1)
        if byte != b"\xff":
            raise _Bad("no marker")
        marker = 0xFF
        while marker == 0xFF:  # fill bytes
            marker = _read(fh, 1)[0]
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length
        if marker in (0xD9, 0xDA):
            raise _Bad("no frame header before the scan")
        (length,) = struct.unpack(">H", _read(fh, 2))
        if length < 2:
            raise _Bad("bad segment length")
        if marker in _JPEG_SOF:
            _, height, width = struct.unpack(">BHH", _read(fh, 5))
            return _shown("JPEG", width, height, orientation)
        if marker == 0xE1 and not seen_exif and length >= 8:
            payload = _read(fh, length - 2)
            if payload[:6] == b"Exif\x00\x00":
                seen_exif = True
                orientation = exif_orientation(payload[6:])
        else:
            fh.seek(length - 2, 1)


def _png(fh, orientation=True):
    _read(fh, 8)
    n, kind = struct.unpack(">I4s", _read(fh, 8))
    if kind != b"IHDR" or n < 8:
        raise _Bad("no IHDR")
    width, height = struct.unpack(">II", _read(fh, 8))
    if not orientation:  # the pixel count alone: no need to walk the chunks for an eXIf
        return ImageHeader("PNG", width, height, 1)
    fh.seek(n - 8 + 4, 1)  # rest of IHDR and its CRC
    orientation = 1
    for _ in range(_MAX_CHUNKS):  # OpenCV applies an eXIf chunk before or after the pixel data
        head = fh.read(8)
        if len(head) < 8:
            break
        n, kind = struct.unpack(">I4s", head)
        if kind == b"eXIf":
            orientation = exif_orientation(fh.read(min(n, 1 << 20)))
            break
        if kind == b"IEND":
            break
        fh.seek(n + 4, 1)
    return _shown("PNG", width, height, orientation)


def _bmp(fh):
    head = _read(fh, 26)
    (dib,) = struct.unpack_from("<I", head, 14)
    if dib == 12:
        width, height = struct.unpack_from("<HH", head, 18)
    elif dib >= 40:
        width, height = struct.unpack_from("<ii", head, 18)
    else:
        raise _Bad("unknown DIB header")
    return _shown("BMP", width, abs(height), 1)


def _gif(fh):
    head = _read(fh, 10)
    width, height = struct.unpack_from("<HH", head, 6)
    return _shown("GIF", width, height, 1)


def _webp(fh):
    head = _read(fh, 12)
    (riff_size,) = struct.unpack_from("<I", head, 4)
    size = None
    orientation = 1
    end = 8 + riff_size
    pos = 12
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > end:
            break
        fh.seek(pos)
        chunk = fh.read(8)
        if len(chunk) < 8:
            break
        kind, n = struct.unpack("<4sI", chunk)
        if kind == b"VP8X":
            data = _read(fh, 10)
            size = (1 + int.from_bytes(data[4:7], "little"), 1 + int.from_bytes(data[7:10], "little"))
        elif kind == b"VP8 " and size is None:
            data = _read(fh, 10)
            if data[3:6] != b"\x9d\x01\x2a":
                raise _Bad("no VP8 start code")
            w, h = struct.unpack_from("<HH", data, 6)
            size = (w & 0x3FFF, h & 0x3FFF)
        elif kind == b"VP8L" and size is None:
            data = _read(fh, 5)
            if data[0] != 0x2F:
                raise _Bad("no VP8L signature")
            bits = int.from_bytes(data[1:5], "little")
            size = (1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
        elif kind == b"EXIF":
            exif = fh.read(min(n, 1 << 20))
            if exif[:6] == b"Exif\x00\x00":
                exif = exif[6:]
            orientation = exif_orientation(exif)
        pos += 8 + n + (n & 1)
    if size is None:
        raise _Bad("no image chunk")
    return _shown("WebP", size[0], size[1], orientation)


def _tiff(fh):
    head = _read(fh, 8)
    e = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(e + "I", head, 4)
    fh.seek(ifd)
    (count,) = struct.unpack(e + "H", _read(fh, 2))
    entries = _read(fh, 12 * count)
    values = {}
    for k in range(count):
        tag, typ, n = struct.unpack_from(e + "HHI", entries, 12 * k)
        if tag in (256, 257, 274) and n >= 1:
            if typ == 3:
                values[tag] = struct.unpack_from(e + "H", entries, 12 * k + 8)[0]
            elif typ == 4:
                values[tag] = struct.unpack_from(e + "I", entries, 12 * k + 8)[0]
    if 256 not in values or 257 not in values:
        raise _Bad("no ImageWidth / ImageLength")
    return _shown("TIFF", values[256], values[257], values.get(274, 1))


def _pnm(fh):
    data = fh.read(1024)
    tokens, k = [], 2
    while len(tokens) < 2 and k < len(data):
        c = data[k:k + 1]
        if c == b"#":
            while k < len(data) and data[k:k + 1] not in (b"\n", b"\r"):
                k += 1
        elif c.isspace():
            k += 1
        elif c.isdigit():
            start = k
            while k < len(data) and data[k:k + 1].isdigit():
                k += 1
            tokens.append(int(data[start:k]))
        else:
            raise _Bad("not a number")
    if len(tokens) < 2:
        raise _Bad("truncated")
    return _shown("PNM", tokens[0], tokens[1], 1)


def read_header(fh, orientation=True):
    """The :class:`ImageHeader` of the open binary file ``fh``, or None for an unknown format.

    None also for a known signature whose header is damaged: the caller then decodes the
    file (and reports it if it cannot). ``fh`` is left at an unspecified position. With
    ``orientation=False`` the EXIF orientation may be left unread (width and height then
    as stored; their product, the pixel count, is the same): a PNG's chunks are not walked.
    """
    fh.seek(0)
    sig = fh.read(16)
    fh.seek(0)
    if sig[:3] == b"\xff\xd8\xff":
        parse = _jpeg
    elif sig[:8] == b"\x89PNG\r\n\x1a\n":
        parse = _png
    elif sig[:2] == b"BM":
        parse = _bmp
    elif sig[:6] in (b"GIF87a", b"GIF89a"):
        parse = _gif
    elif sig[:4] == b"RIFF" and sig[8:12] == b"WEBP":
        parse = _webp
    elif sig[:4] in (b"II*\x00", b"MM\x00*"):
        parse = _tiff
    elif sig[:1] == b"P" and sig[1:2] in b"123456" and sig[2:3].isspace():
        parse = _pnm
    else:
        return None
    try:
        return parse(fh, orientation=False) if parse is _png and not orientation else parse(fh)
    except (_Bad, struct.error, ValueError, OSError, OverflowError):
        return None
