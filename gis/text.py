"""Vietnamese text from ingest files: Unicode normalisation and the legacy 8-bit encodings.

Attribute text reaches the platform (Shapefile DBF attributes, CSV) in one of three forms:

``unicode``
    Proper Unicode (UTF-8 on disk), possibly decomposed (NFD: base letter + combining marks, as
    written by macOS and some GIS tools). It is stored NFC (:func:`to_nfc`).
``tcvn3``
    TCVN 5712:1993 "VN3", better known as TCVN3 or ABC (``.VnTime`` / ``.VnArial`` fonts): one
    byte per letter (:func:`decode_tcvn3`).
``vni``
    VNI-Windows (``VNI-Times`` ... fonts): a base letter followed by a byte that the font draws as
    the diacritic, so most letters take two bytes (:func:`decode_vni`).

A DBF without a ``.cpg`` file is read by GDAL as ISO-8859-1, so each legacy byte arrives as the
Latin-1 character of the same number (``raw.decode("latin-1")``): ``"Thµnh phè"`` is TCVN3 and
``"Thaønh phoá"`` is VNI for "Thành phố". The decoders take that Latin-1 view and also the
Windows-1252 view of the same bytes (bytes 0x80-0x9F read as the euro sign, curly quotes,
dashes ...); the two views differ only in 0x80-0x9F. :func:`detect_encoding` tells the three
forms apart from a sample of values, and :func:`fix_text` applies the conversion named by an
ingest option.

What the tables cover
---------------------
TCVN3
    * The standard ABC (VN3) table as used by common converters (Unikey's ``TCVN3``): the 67
      lowercase non-ASCII letters (ă â ê ô ơ ư đ and the 60 toned vowels) at 0xA8-0xAE and
      0xB5-0xFE, and the seven uppercase letters Ă Â Ê Ô Ơ Ư Đ at 0xA1-0xA7.
    * Uppercase toned letters (À, Ấ, Ố ...) have no code of their own in VN3: ABC documents write
      them with the lowercase codes and show them with a separate uppercase font (``.VnTimeH``).
      Such text therefore decodes to *lowercase* (the case lived in the font, not in the bytes).
    * For the 60 uppercase toned letters this module uses the code points of the full standard,
      TCVN 5712:1993 "VN1" (the same as glibc/libiconv ``TCVN5712-1``): 0x01, 0x02, 0x04-0x06,
      0x11-0x17, 0x80-0x9F and the sixteen bytes VN3 leaves unused in 0xA0-0xFF (0xAF, 0xBA,
      0xBF, 0xC0-0xC5, 0xCD, 0xD9-0xDB, 0xE0, 0xF0, 0xFF). The VN1 combining tone marks at
      0xB0-0xB4 are decoded too. With these, all 134 letters round-trip through
      :func:`encode_tcvn3` / :func:`decode_tcvn3`. ``encode_tcvn3(..., vn1=False)`` writes
      uppercase toned letters the ABC way (lowercase code) instead.
    * Difference from Unikey: Unikey reads 0x80-0x9F as Windows-1252 punctuation (smart quotes,
      dashes); here they are VN1 capitals, so a ``.VnTime`` text with curly quotes (0x93/0x94)
      decodes them as the letters Ỏ and Õ. Letters are unaffected.
VNI
    * The VNI-Windows table (as in Unikey's ``VNI-WIN``): every Vietnamese letter, both cases. Base
      vowels a e o u y, ơ (0xD4/0xF4) and ư (0xD6/0xF6) take a following mark byte; đ, ơ, ư, the
      toned i and ỵ are single bytes. All VNI bytes are in 0xC0-0xFF, where Latin-1 and
      Windows-1252 agree, so both views decode alike.
    * Decoding is lenient about the case of the mark byte (``"Aù"`` and ``"aÙ"`` decode as
      ``"Á"`` and ``"á"``: the case comes from the base letter) and accepts ``y`` + dot below
      written with the mark byte (``"yï"``) as ``ỵ``. Encoding writes the canonical form.
    * Bytes 0x80-0x9F are Windows-1252 punctuation in VNI fonts and decode as such.

Every decoder returns NFC text and passes ``None`` through unchanged.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from gis.errors import InputError

__all__ = [
    "ENCODINGS",
    "decode_tcvn3",
    "decode_vni",
    "detect_encoding",
    "encode_tcvn3",
    "encode_vni",
    "fix_text",
    "to_nfc",
]

ENCODINGS: tuple[str, ...] = ("unicode", "utf-8", "tcvn3", "vni")
"""Encoding names accepted by :func:`fix_text` (case-insensitive)."""

# --------------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------------

# Combining tone marks, in the traditional order: sắc (acute), huyền (grave), hỏi (hook above),
# ngã (tilde), nặng (dot below).
_ACUTE, _GRAVE, _HOOK, _TILDE, _DOT = "\u0301", "\u0300", "\u0309", "\u0303", "\u0323"
_TONE_NAMES = {_ACUTE: "acute", _GRAVE: "grave", _HOOK: "hook", _TILDE: "tilde", _DOT: "dot"}
# Combining marks that make the modified vowels: circumflex (â ê ô), breve (ă), horn (ơ ư).
_MODIFIERS = frozenset("\u0302\u0306\u031b")

# Windows-1252 characters of bytes 0x80-0x9F (0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined there).
_CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)
_CP1252_HIGH: dict[int, str] = {
    b: bytes([b]).decode("cp1252") for b in range(0x80, 0xA0) if b not in _CP1252_UNDEFINED
}
_CP1252_BYTE: dict[str, int] = {ch: b for b, ch in _CP1252_HIGH.items()}


def _byte_of(ch: str) -> int | None:
    """The byte a character of a Latin-1 or Windows-1252 view stands for, or None."""
    o = ord(ch)
    if o < 0x100:
        return o
    return _CP1252_BYTE.get(ch)


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


@functools.cache
def _not_nfc_pattern() -> str:
    """An RE2 character class matching every character that can make a string not NFC.

    By the Unicode normalization quick check, a string of characters that all have canonical
    combining class 0 and ``NFC_Quick_Check=Yes`` is in NFC. Left out of the class, so taken as
    safe: the BMP characters with class 0 that are their own NFC (``No`` is never its own NFC) and
    that never follow a starter in a canonical composition (``Maybe``: the second character of a
    two-character canonical decomposition, and the Hangul vowels and final consonants). Everything
    else matches: marks, those characters, code points this Python does not know (a newer Unicode
    may assign them), and every character beyond the BMP (rare: normalised the slow way).
    """
    chars = [chr(c) for c in range(0x80, 0x10000) if not 0xD800 <= c <= 0xDFFF]
    second = set()
    for c in chars:
        decomposition = unicodedata.decomposition(c).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            second.add(int(decomposition[1], 16))
    unsafe = {ord(c) for c in chars if unicodedata.combining(c) or not unicodedata.is_normalized("NFC", c)
              or unicodedata.category(c) == "Cn" or ord(c) in second}
    unsafe |= set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul V and T jamo
    ranges: list[list[int]] = []
    for c in sorted(unsafe):
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    body = "".join(f"\\x{{{a:04X}}}" if a == b else f"\\x{{{a:04X}}}-\\x{{{b:04X}}}" for a, b in ranges)
    return f"[{body}\\x{{10000}}-\\x{{10FFFF}}]"


def nfc_array(arr: pa.Array) -> pa.Array:
    """An Arrow string array in Unicode Normalization Form C, as ``pyarrow.compute.utf8_normalize``
    writes it, at a fraction of its cost: only the values that may not be NFC already (see
    :func:`_not_nfc_pattern`: in practice, text with decomposed accents) are normalised.

    Parameters
    ----------
    arr : pyarrow.Array
        A string array (NULLs stay NULL).

    Examples
    --------
    >>> nfc_array(pa.array(["Phu\u031bo\u031b\u0300ng", "Phường", None])).to_pylist()
    ['Phường', 'Phường', None]
    """
    suspect = pc.fill_null(pc.match_substring_regex(arr, _not_nfc_pattern()), False)
    n = pc.sum(suspect).as_py() or 0
    if n == 0:
        return arr
    if n == len(arr):
        return pc.utf8_normalize(arr, "NFC")
    return pc.replace_with_mask(arr, suspect, pc.utf8_normalize(arr.filter(suspect), "NFC"))


def to_nfc(s: str | None) -> str | None:
    """Return ``s`` in Unicode Normalization Form C (precomposed letters).

    Decomposed Vietnamese (``"a\\u0300"``) becomes precomposed (``"à"``), the form the database
    stores and indexes.

    Parameters
    ----------
    s : str or None
        Any Unicode text.

    Returns
    -------
    str or None
        The NFC form of ``s``; ``None`` when ``s`` is ``None``.
    """
    if s is None:
        return None
    return _nfc(s)


# --------------------------------------------------------------------------------------------------
# TCVN3 (ABC, TCVN 5712:1993 VN3) with the VN1 capitals
# --------------------------------------------------------------------------------------------------

# VN3 (ABC): what .VnTime fonts and common converters use.
_TCVN3_VN3: dict[int, str] = {
    0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ",
    0xA8: "ă", 0xA9: "â", 0xAA: "ê", 0xAB: "ô", 0xAC: "ơ", 0xAD: "ư", 0xAE: "đ",
    0xB5: "à", 0xB6: "ả", 0xB7: "ã", 0xB8: "á", 0xB9: "ạ",
    0xBB: "ằ", 0xBC: "ẳ", 0xBD: "ẵ", 0xBE: "ắ", 0xC6: "ặ",
    0xC7: "ầ", 0xC8: "ẩ", 0xC9: "ẫ", 0xCA: "ấ", 0xCB: "ậ",
    0xCC: "è", 0xCE: "ẻ", 0xCF: "ẽ", 0xD0: "é", 0xD1: "ẹ",
    0xD2: "ề", 0xD3: "ể", 0xD4: "ễ", 0xD5: "ế", 0xD6: "ệ",
    0xD7: "ì", 0xD8: "ỉ", 0xDC: "ĩ", 0xDD: "í", 0xDE: "ị",
    0xDF: "ò", 0xE1: "ỏ", 0xE2: "õ", 0xE3: "ó", 0xE4: "ọ",
    0xE5: "ồ", 0xE6: "ổ", 0xE7: "ỗ", 0xE8: "ố", 0xE9: "ộ",
    0xEA: "ờ", 0xEB: "ở", 0xEC: "ỡ", 0xED: "ớ", 0xEE: "ợ",
    0xEF: "ù", 0xF1: "ủ", 0xF2: "ũ", 0xF3: "ú", 0xF4: "ụ",
    0xF5: "ừ", 0xF6: "ử", 0xF7: "ữ", 0xF8: "ứ", 0xF9: "ự",
    0xFA: "ỳ", 0xFB: "ỷ", 0xFC: "ỹ", 0xFD: "ý", 0xFE: "ỵ",
}  # fmt: skip

# VN1 positions of the 60 uppercase toned letters (TCVN 5712:1993 VN1, glibc TCVN5712-1).
_TCVN3_VN1_UPPER: dict[int, str] = {
    0x01: "Ú", 0x02: "Ụ", 0x04: "Ừ", 0x05: "Ử", 0x06: "Ữ",
    0x11: "Ứ", 0x12: "Ự", 0x13: "Ỳ", 0x14: "Ỷ", 0x15: "Ỹ", 0x16: "Ý", 0x17: "Ỵ",
    0x80: "À", 0x81: "Ả", 0x82: "Ã", 0x83: "Á", 0x84: "Ạ", 0x85: "Ặ", 0x86: "Ậ", 0x87: "È",
    0x88: "Ẻ", 0x89: "Ẽ", 0x8A: "É", 0x8B: "Ẹ", 0x8C: "Ệ", 0x8D: "Ì", 0x8E: "Ỉ", 0x8F: "Ĩ",
    0x90: "Í", 0x91: "Ị", 0x92: "Ò", 0x93: "Ỏ", 0x94: "Õ", 0x95: "Ó", 0x96: "Ọ", 0x97: "Ộ",
    0x98: "Ờ", 0x99: "Ở", 0x9A: "Ỡ", 0x9B: "Ớ", 0x9C: "Ợ", 0x9D: "Ù", 0x9E: "Ủ", 0x9F: "Ũ",
    0xAF: "Ằ", 0xBA: "Ẳ", 0xBF: "Ẵ", 0xC0: "Ắ", 0xC1: "Ầ", 0xC2: "Ẩ", 0xC3: "Ẫ", 0xC4: "Ấ",
    0xC5: "Ề", 0xCD: "Ể", 0xD9: "Ễ", 0xDA: "Ế", 0xDB: "Ồ", 0xE0: "Ổ", 0xF0: "Ỗ", 0xFF: "Ố",
}  # fmt: skip

# VN1 combining tone marks (composed with the preceding letter by NFC).
_TCVN3_VN1_COMBINING: dict[int, str] = {
    0xB0: _GRAVE, 0xB1: _HOOK, 0xB2: _TILDE, 0xB3: _ACUTE, 0xB4: _DOT,
}  # fmt: skip

_TCVN3_DECODE: dict[int, str] = {**_TCVN3_VN3, **_TCVN3_VN1_UPPER, **_TCVN3_VN1_COMBINING}

# str.translate table over both views: U+00xx (Latin-1) and the Windows-1252 characters of
# 0x80-0x9F.
_TCVN3_TRANSLATE: dict[int, str] = dict(_TCVN3_DECODE)
for _b, _ch in _CP1252_HIGH.items():
    if _b in _TCVN3_DECODE:
        _TCVN3_TRANSLATE[ord(_ch)] = _TCVN3_DECODE[_b]

_TCVN3_ENCODE: dict[str, int] = {ch: b for b, ch in _TCVN3_DECODE.items()}
_TCVN3_ENCODE["\u00a0"] = 0xA0
# The ABC way for capitals: the lowercase code (the uppercase font draws it as a capital).
_TCVN3_ENCODE_ABC: dict[str, int] = dict(_TCVN3_ENCODE)
for _b, _ch in _TCVN3_VN1_UPPER.items():
    _TCVN3_ENCODE_ABC[_ch] = _TCVN3_ENCODE[_ch.lower()]


def decode_tcvn3(s: str | None) -> str | None:
    """Decode TCVN3 (ABC) text read as Latin-1 (or Windows-1252) into NFC Unicode.

    Parameters
    ----------
    s : str or None
        Text whose characters are the TCVN3 bytes, as ``raw_bytes.decode("latin-1")`` gives (what
        GDAL returns for a DBF without ``.cpg``). The Windows-1252 view of the same bytes is also
        accepted. Characters that are not a byte of either view (already-Unicode letters) are
        kept as they are.

    Returns
    -------
    str or None
        NFC Unicode; ``None`` when ``s`` is ``None``.

    Notes
    -----
    Uppercase toned letters written in ABC style (lowercase code, ``.VnTimeH`` font) decode to
    lowercase; those written at their TCVN 5712 VN1 positions decode to uppercase. See the module
    documentation for the exact coverage.

    Examples
    --------
    >>> decode_tcvn3("Thµnh phè Hå ChÝ Minh")
    'Thành phố Hồ Chí Minh'
    """
    if s is None:
        return None
    return _nfc(s.translate(_TCVN3_TRANSLATE))


def _encode(s: str, table: dict[str, int], name: str, errors: str) -> bytes:
    if errors not in ("strict", "replace", "ignore"):
        raise ValueError(f"errors must be 'strict', 'replace' or 'ignore', not {errors!r}")
    out = bytearray()
    for i, ch in enumerate(s):
        code = table.get(ch)
        if code is not None:
            out.append(code)
        elif errors == "replace":
            out.append(0x3F)  # "?"
        elif errors == "strict":
            raise UnicodeEncodeError(name, s, i, i + 1, f"character {ch!r} has no {name} code")
    return bytes(out)


# ASCII control bytes that VN1 uses for capitals cannot stand for themselves.
_TCVN3_ASCII = {chr(b): b for b in range(0x80) if b not in _TCVN3_VN1_UPPER}


def encode_tcvn3(s: str, errors: str = "strict", *, vn1: bool = True) -> bytes:
    """Encode Unicode text as TCVN3 (ABC) bytes.

    Parameters
    ----------
    s : str
        Unicode text, in any normal form (it is normalised to NFC first).
    errors : {"strict", "replace", "ignore"}, optional
        What to do with a character TCVN3 cannot represent: raise :class:`UnicodeEncodeError`
        (default), write ``?``, or drop it. Representable are ASCII (except the control bytes
        VN1 uses for capitals), no-break space and the Vietnamese letters.
    vn1 : bool, optional
        ``True`` (default): uppercase toned letters take their TCVN 5712 VN1 codes, so that
        ``decode_tcvn3(encode_tcvn3(s).decode("latin-1")) == to_nfc(s)``. ``False``: write them with
        the lowercase code, as ABC documents do (they decode back to lowercase).

    Returns
    -------
    bytes
        The TCVN3 bytes.

    Raises
    ------
    UnicodeEncodeError
        With ``errors="strict"``, for a character TCVN3 cannot represent.
    """
    table = _TCVN3_ENCODE if vn1 else _TCVN3_ENCODE_ABC
    return _encode(_nfc(s), {**_TCVN3_ASCII, **table}, "tcvn3", errors)


# --------------------------------------------------------------------------------------------------
# VNI-Windows
# --------------------------------------------------------------------------------------------------

# Mark bytes (uppercase form, lowercase form) for each tone: for plain vowels, for the circumflex
# (â ê ô) with that tone and for the breve (ă) with that tone. "" = no tone.
_VNI_TONE = {"": None, _ACUTE: ("Ù", "ù"), _GRAVE: ("Ø", "ø"), _HOOK: ("Û", "û"),
             _TILDE: ("Õ", "õ"), _DOT: ("Ï", "ï")}  # fmt: skip
_VNI_CIRCUMFLEX = {"": ("Â", "â"), _ACUTE: ("Á", "á"), _GRAVE: ("À", "à"), _HOOK: ("Å", "å"),
                   _TILDE: ("Ã", "ã"), _DOT: ("Ä", "ä")}  # fmt: skip
_VNI_BREVE = {"": ("Ê", "ê"), _ACUTE: ("É", "é"), _GRAVE: ("È", "è"), _HOOK: ("Ú", "ú"),
              _TILDE: ("Ü", "ü"), _DOT: ("Ë", "ë")}  # fmt: skip
# Single-byte letters: (uppercase, lowercase) in VNI for the given Unicode lowercase letter.
_VNI_SINGLE = {"đ": ("Ñ", "ñ"), "ơ": ("Ô", "ô"), "ư": ("Ö", "ö"),
               "í": ("Í", "í"), "ì": ("Ì", "ì"), "ỉ": ("Æ", "æ"), "ĩ": ("Ó", "ó"), "ị": ("Ò", "ò"),
               "ỵ": ("Î", "î")}  # fmt: skip


def _build_vni() -> tuple[dict[str, str], dict[str, str]]:
    """Return (Unicode letter -> canonical VNI text, VNI pair -> Unicode letter)."""
    encode: dict[str, str] = {}
    pairs: dict[str, str] = {}

    def add(lower_letter: str, upper_vni: str, lower_vni: str) -> None:
        encode[lower_letter] = lower_vni
        encode[lower_letter.upper()] = upper_vni

    for letter, (up, low) in _VNI_SINGLE.items():
        add(letter, up, low)
    # Plain vowels with a tone mark byte: a e o u y, ơ and ư (their VNI base is a single byte).
    for base, (vni_up, vni_low) in {"a": ("A", "a"), "e": ("E", "e"), "o": ("O", "o"),
                                    "u": ("U", "u"), "y": ("Y", "y"), "ơ": ("Ô", "ô"),
                                    "ư": ("Ö", "ö")}.items():  # fmt: skip
        for tone, marks in _VNI_TONE.items():
            if marks is None:
                continue
            letter = _nfc(base + tone)
            for mark in marks:  # lenient on the case of the mark byte
                pairs[vni_up + mark] = letter.upper()
                pairs[vni_low + mark] = letter
            if letter not in encode:  # ỵ stays the single byte Î/î
                add(letter, vni_up + marks[0], vni_low + marks[1])
    # â ê ô (+ tone) and ă (+ tone): base letter + one mark byte.
    for base, family, modifier in (
        ("a", _VNI_CIRCUMFLEX, "\u0302"),
        ("e", _VNI_CIRCUMFLEX, "\u0302"),
        ("o", _VNI_CIRCUMFLEX, "\u0302"),
        ("a", _VNI_BREVE, "\u0306"),
    ):
        for tone, marks in family.items():
            letter = _nfc(base + modifier + tone)
            for mark in marks:
                pairs[base.upper() + mark] = letter.upper()
                pairs[base + mark] = letter
            add(letter, base.upper() + marks[0], base + marks[1])
    return encode, pairs


_VNI_ENCODE, _VNI_PAIRS = _build_vni()
_VNI_SINGLE_DECODE: dict[str, str] = {}
for _letter, (_up, _low) in _VNI_SINGLE.items():
    _VNI_SINGLE_DECODE[_up] = _letter.upper()
    _VNI_SINGLE_DECODE[_low] = _letter
# Pairs first (all two characters long), then single-byte letters.
_VNI_PATTERN = re.compile(
    "|".join(re.escape(k) for k in sorted(_VNI_PAIRS))
    + "|["
    + "".join(re.escape(k) for k in sorted(_VNI_SINGLE_DECODE))
    + "]"
)
_VNI_LOOKUP: dict[str, str] = {**_VNI_PAIRS, **_VNI_SINGLE_DECODE}
# Latin-1 view of 0x80-0x9F -> the Windows-1252 punctuation VNI fonts show there.
_C1_TO_CP1252: dict[int, str] = dict(_CP1252_HIGH)

# Byte encoding of what is not a letter: ASCII, and the Windows-1252 symbols below 0xC0 (VNI
# letters use 0xC0-0xFF only).
_VNI_OTHER: dict[str, int] = {chr(b): b for b in range(0x80)}
_VNI_OTHER.update({ch: b for b, ch in _CP1252_HIGH.items()})
_VNI_OTHER.update({chr(b): b for b in range(0xA0, 0xC0)})


def decode_vni(s: str | None) -> str | None:
    """Decode VNI-Windows text read as Latin-1 (or Windows-1252) into NFC Unicode.

    Parameters
    ----------
    s : str or None
        Text whose characters are the VNI bytes, as ``raw_bytes.decode("latin-1")`` or
        ``raw_bytes.decode("cp1252")`` gives; all VNI letter bytes lie in 0xC0-0xFF where the two
        agree. Bytes 0x80-0x9F read as Latin-1 become the Windows-1252 punctuation VNI fonts show.

    Returns
    -------
    str or None
        NFC Unicode; ``None`` when ``s`` is ``None``.

    Examples
    --------
    >>> decode_vni("Thaønh phoá Hoà Chí Minh")
    'Thành phố Hồ Chí Minh'
    """
    if s is None:
        return None
    s = s.translate(_C1_TO_CP1252)
    return _nfc(_VNI_PATTERN.sub(lambda m: _VNI_LOOKUP[m.group(0)], s))


def encode_vni(s: str, errors: str = "strict") -> bytes:
    """Encode Unicode text as VNI-Windows bytes.

    Parameters
    ----------
    s : str
        Unicode text, in any normal form (it is normalised to NFC first).
    errors : {"strict", "replace", "ignore"}, optional
        What to do with a character VNI cannot represent: raise :class:`UnicodeEncodeError`
        (default), write ``?``, or drop it. Representable are ASCII, the Windows-1252 symbols of
        bytes 0x80-0xBF and the Vietnamese letters.

    Returns
    -------
    bytes
        The VNI bytes; ``decode_vni(encode_vni(s).decode("latin-1")) == to_nfc(s)``.

    Raises
    ------
    UnicodeEncodeError
        With ``errors="strict"``, for a character VNI cannot represent.
    """
    if errors not in ("strict", "replace", "ignore"):
        raise ValueError(f"errors must be 'strict', 'replace' or 'ignore', not {errors!r}")
    s = _nfc(s)
    out = bytearray()
    for i, ch in enumerate(s):
        vni = _VNI_ENCODE.get(ch)
        if vni is not None:
            out += vni.encode("latin-1")
        elif ch in _VNI_OTHER:
            out.append(_VNI_OTHER[ch])
        elif errors == "replace":
            out.append(0x3F)
        elif errors == "strict":
            raise UnicodeEncodeError("vni", s, i, i + 1, f"character {ch!r} has no VNI code")
    return bytes(out)


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------

_ONSETS = ("ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "qu", "th", "tr",
           "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x",
           "")  # fmt: skip
# "k" only in names from minority languages (Đắk Lắk, Krông Búk).
_FINALS = ("ch", "ng", "nh", "c", "k", "m", "n", "p", "t", "")
# Vowel nuclei (without tone): those that may or may not take a final consonant, those that need
# one, and those that end in a semivowel (or are ia/ua/ưa) and take none.
_NUCLEI_OPEN = frozenset(("a", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y", "oa", "oe", "uê", "uy"))
_NUCLEI_CLOSED = frozenset(("ă", "â", "iê", "yê", "uô", "ươ", "uâ", "oă", "uyê", "oo"))
_NUCLEI_NO_FINAL = frozenset(
    ("ai", "ao", "au", "ay", "âu", "ây", "eo", "êu", "ia", "iu", "oi", "ôi", "ơi", "ui", "ưi", "ưu",
     "ua", "ưa", "uơ", "ya", "iêu", "yêu", "oai", "oay", "oao", "oeo", "uây", "uôi", "ươi", "ươu",
     "uya", "uyu")
)  # fmt: skip
_NUCLEI_BEFORE_CH_NH = frozenset(("a", "ê", "i", "y", "oa", "uê", "uy"))
_TOKEN_SPLIT = re.compile(r"[\s!-/:-@\[-`{-~0-9]+")


def _toneless(word: str) -> tuple[str, str | None] | None:
    """Split a word into (letters without tone mark, tone name) or None if it has two tones."""
    tone = None
    kept = []
    for ch in unicodedata.normalize("NFD", word.lower()):
        if ch in _TONE_NAMES:
            if tone is not None:
                return None
            tone = _TONE_NAMES[ch]
        elif unicodedata.combining(ch) and ch not in _MODIFIERS:
            return None
        else:
            kept.append(ch)
    return _nfc("".join(kept)), tone


def _is_syllable(word: str) -> bool:
    """Whether ``word`` is spelled like one Vietnamese syllable (onset + vowel + final + tone)."""
    split = _toneless(word)
    if split is None:
        return False
    base, tone = split
    for onset in _ONSETS:
        if not base.startswith(onset):
            continue
        rest = base[len(onset) :]
        for final in _FINALS:
            if not rest.endswith(final):
                continue
            nucleus = rest[: len(rest) - len(final)]
            if _rhyme_ok(onset, nucleus, final, tone):
                return True
    return False


def _rhyme_ok(onset: str, nucleus: str, final: str, tone: str | None) -> bool:
    if nucleus in _NUCLEI_NO_FINAL:
        if final:
            return False
    elif nucleus in _NUCLEI_CLOSED:
        if not final:
            return False
    elif nucleus not in _NUCLEI_OPEN:
        return False
    if final in ("ch", "nh") and nucleus not in _NUCLEI_BEFORE_CH_NH:
        return False
    if final in ("c", "ch", "k", "p", "t") and tone not in ("acute", "dot"):
        return False
    if onset in ("k", "gh", "ngh") and nucleus[0] not in "ieêy":
        return False
    return not (onset in ("c", "ng") and nucleus[0] in "ieê")


def _score(samples: list[str]) -> dict[str, int]:
    decoders = {"unicode": _nfc, "tcvn3": decode_tcvn3, "vni": decode_vni}
    scores = dict.fromkeys(decoders, 0)
    for sample in samples:
        legacy_possible = all(_byte_of(ch) is not None for ch in sample)
        for name, decode in decoders.items():
            if name != "unicode" and not legacy_possible:
                # Characters no byte can stand for: this value cannot be legacy-encoded.
                scores[name] -= sum(
                    1 for tok in _TOKEN_SPLIT.split(_nfc(sample)) if tok and not tok.isascii()
                )
                continue
            for tok in _TOKEN_SPLIT.split(decode(sample)):
                if not tok or tok.isascii():
                    continue
                scores[name] += 1 if _is_syllable(tok) else -1
    return scores


def detect_encoding(samples: Iterable[str | None]) -> str:
    """Guess whether attribute values are Unicode, TCVN3 or VNI text.

    Each value is decoded each way; every word that has a non-ASCII character after decoding scores
    +1 when it is spelled like a Vietnamese syllable (onset, vowel cluster, final consonant and a
    tone that fits it) and -1 otherwise. A value holding characters that no byte can stand for
    (such as ``ư`` or a combining mark) counts only against the legacy encodings. The legacy
    encoding with the best score wins if it beats Unicode; ties go to Unicode.

    Parameters
    ----------
    samples : iterable of str
        Attribute values as the reader decoded them: the Latin-1 (or Windows-1252) view of legacy
        bytes, or proper Unicode (NFC or NFD). ``None`` and non-text values are skipped.

    Returns
    -------
    str
        ``"unicode"``, ``"tcvn3"`` or ``"vni"``. Plain ASCII text, an empty sample and text that
        looks Vietnamese in no decoding give ``"unicode"``.

    Notes
    -----
    A value whose letters all lie in Latin-1 (``"Tân Bình"``, ``"Nhà Bè"``) can read as valid
    Vietnamese in more than one decoding; such ties go to Unicode, so pass a sample of many values
    (a few dozen is plenty) rather than one. Words from other languages count against every
    decoding alike.
    """
    texts = [s for s in samples if isinstance(s, str)]
    if all(s.isascii() for s in texts):
        return "unicode"
    scores = _score(texts)
    best = max(("tcvn3", "vni"), key=lambda name: scores[name])  # tcvn3 first on a tie
    if scores[best] > scores["unicode"] and scores[best] > 0:
        return best
    return "unicode"


def fix_text(s: str | None, encoding: str) -> str | None:
    """Convert ``s`` from the named encoding to NFC Unicode.

    Parameters
    ----------
    s : str or None
        Text as read (see :func:`decode_tcvn3` / :func:`decode_vni` for the legacy forms).
    encoding : str
        One of :data:`ENCODINGS` (case-insensitive): ``"unicode"`` or ``"utf-8"`` (NFC
        normalisation only), ``"tcvn3"`` or ``"vni"``.

    Returns
    -------
    str or None
        NFC Unicode; ``None`` when ``s`` is ``None``.

    Raises
    ------
    gis.errors.InputError
        If ``encoding`` is not one of :data:`ENCODINGS`.
    """
    name = encoding.strip().lower() if isinstance(encoding, str) else encoding
    if name in ("unicode", "utf-8"):
        return to_nfc(s)
    if name == "tcvn3":
        return decode_tcvn3(s)
    if name == "vni":
        return decode_vni(s)
    raise InputError(f"Unknown text encoding {encoding!r}: use one of {', '.join(ENCODINGS)}.")
