"""A feed document's raw bytes: sniffing, byte-order marks, declared encodings and the
character references that would break the parser, read before and around feedparser."""

from __future__ import annotations

import codecs
import re
import xml.sax

_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16-LE: it starts with the same bytes
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_XML_DECL_STARTS = tuple(
    "<?xml".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)
# A numeric character reference, digits only (after "&#"), in an ASCII-compatible encoding.
_CHAR_REF = re.compile(rb"&#([xX][0-9A-Fa-f]+|[0-9]+)")


def head(content: bytes) -> bytes:
    """The start of the body, for sniffing: bounded so a sniffing regex stays linear."""
    return strip_bom(content[:4096])


def strip_bom(content: bytes) -> bytes:
    for bom, _ in _BOMS:
        if content.startswith(bom):
            return content[len(bom) :]
    return content


def replace_bad_char_refs(content: bytes) -> bytes:
    """Turn references to surrogates or past U+10FFFF ("&#xD800;") into U+FFFD.

    They are not well-formed XML, and feedparser's fallback parser calls chr() on them and
    encodes the result: one such reference raised there and lost the whole feed.
    """

    def replace(match: re.Match[bytes]) -> bytes:
        return b"&#xFFFD" if _is_bad_code_point(match.group(1)) else match.group()

    return _CHAR_REF.sub(replace, content) if b"&#" in content else content


def _is_bad_code_point(digits: bytes) -> bool:
    hexadecimal = digits[:1] in (b"x", b"X")
    number = (digits[1:] if hexadecimal else digits).lstrip(b"0") or b"0"
    if len(number) > 7:  # past U+10FFFF in either base (and int() refuses huge strings)
        return True
    code = int(number, 16 if hexadecimal else 10)
    return 0xD800 <= code <= 0xDFFF or code > 0x10FFFF


def xml_error(error: xml.sax.SAXParseException, content: bytes) -> str:
    # feedparser prepends its own XML declaration line when the document does not start
    # with one; take it off again so the line number matches the bytes we were given.
    shift = 0 if strip_bom(content).startswith(_XML_DECL_STARTS) else 1
    line = max((error.getLineNumber() or 1) - shift, 1)
    return f"line {line}, column {error.getColumnNumber() or 0}: {error.getMessage()}"


def encoding_note(content: bytes, http_charset: str | None, used: str) -> str | None:
    """Say so when the bytes did not decode in the declared charset and another was guessed."""
    if not used:
        return None  # feedparser reports CharacterEncodingUnknown itself
    if _codec_name(used).startswith(("utf-16", "utf-32", "ascii")):
        # UTF-16/32 are only ever chosen from a BOM or the byte pattern of "<?xml", never
        # guessed; ASCII decoding means any ASCII-compatible declaration reads the same.
        return None
    declared = http_charset or _bom_encoding(content) or _xml_encoding(content) or "utf-8"
    if _same_codec(declared, used):
        return None
    return f"declared encoding {declared} does not fit the bytes; decoded as {used}"


def _bom_encoding(content: bytes) -> str | None:
    return next((name for bom, name in _BOMS if content.startswith(bom)), None)


def _xml_encoding(content: bytes) -> str | None:
    match = _XML_ENCODING.match(content[:512])
    return match.group(1).decode("ascii").lower() if match else None


def _same_codec(first: str, second: str) -> bool:
    return _codec_name(first) == _codec_name(second)


def _codec_name(name: str) -> str:
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return name.lower()
    # feedparser decodes gb2312 as its superset gb18030 (expat has no gb2312 codec).
    return "gb18030" if canonical == "gb2312" else canonical
