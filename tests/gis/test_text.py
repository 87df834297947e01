"""Tests of gis.text: NFC, TCVN3 and VNI conversion, encoding detection (no database needed)."""

from __future__ import annotations

import unicodedata

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gis.errors import GisError, InputError
from gis.text import (
    ENCODINGS,
    decode_tcvn3,
    decode_vni,
    detect_encoding,
    encode_tcvn3,
    encode_vni,
    fix_text,
    nfc_array,
    to_nfc,
)

TONES = ("", "\u0301", "\u0300", "\u0309", "\u0303", "\u0323")  # none, sắc, huyền, hỏi, ngã, nặng
BASES = ("a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y", "đ")


def _alphabet() -> list[str]:
    """Every Vietnamese letter, lowercase then uppercase, built from Unicode base + tone."""
    lower = []
    for base in BASES:
        for tone in TONES if base != "đ" else ("",):
            lower.append(unicodedata.normalize("NFC", base + tone))
    return lower + [c.upper() for c in lower]


ALPHABET = _alphabet()
NON_ASCII = [c for c in ALPHABET if not c.isascii()]

NAMES = [
    "Thành phố Hồ Chí Minh",
    "Phường Bến Nghé",
    "Quận Bình Thạnh",
    "Thủ Đức",
    "Đất ở tại đô thị",
    "Quận 1",
    "Phường Tân Định",
    "Đường Nguyễn Huệ",
    "Gò Vấp",
    "Phú Nhuận",
    "Hóc Môn",
    "Nhà Bè",
    "Cần Giờ",
    "Đất trồng lúa",
    "Chợ Bến Thành",
    "Bệnh viện Chợ Rẫy",
    "Sông Sài Gòn",
    "Kênh Nhiêu Lộc - Thị Nghè",
]


def _latin1(b: bytes) -> str:
    return b.decode("latin-1")


# --- the alphabet -------------------------------------------------------------------------------


def test_alphabet_has_all_134_non_ascii_letters():
    assert len(ALPHABET) == 146  # 73 per case, 6 of them plain ASCII vowels
    assert len(set(NON_ASCII)) == 134
    assert all(len(c) == 1 for c in ALPHABET)  # all precomposed


@pytest.mark.parametrize("letter", ALPHABET)
def test_tcvn3_round_trip_each_letter(letter):
    raw = encode_tcvn3(letter)
    assert len(raw) == 1  # TCVN3 is single-byte
    assert decode_tcvn3(_latin1(raw)) == letter


@pytest.mark.parametrize("letter", ALPHABET)
def test_vni_round_trip_each_letter(letter):
    raw = encode_vni(letter)
    assert 1 <= len(raw) <= 2
    assert decode_vni(_latin1(raw)) == letter
    assert decode_vni(raw.decode("cp1252")) == letter  # VNI bytes are all in 0xC0-0xFF


def test_tcvn3_codes_are_distinct():
    codes = [encode_tcvn3(c) for c in ALPHABET]
    assert len(set(codes)) == len(codes)


def test_vni_codes_are_distinct():
    codes = [encode_vni(c) for c in ALPHABET]
    assert len(set(codes)) == len(codes)


def test_round_trip_whole_alphabet_as_text():
    text = " ".join(ALPHABET) + " " + "".join(ALPHABET)
    assert decode_tcvn3(_latin1(encode_tcvn3(text))) == text
    assert decode_vni(_latin1(encode_vni(text))) == text


def test_round_trip_from_nfd_input_gives_nfc():
    text = " ".join(NAMES)
    nfd = unicodedata.normalize("NFD", text)
    assert nfd != text
    assert encode_tcvn3(nfd) == encode_tcvn3(text)
    assert encode_vni(nfd) == encode_vni(text)
    assert decode_tcvn3(_latin1(encode_tcvn3(nfd))) == text
    assert decode_vni(_latin1(encode_vni(nfd))) == text


# --- known answers (bytes written by hand from the published TCVN3 / VNI-Windows tables) --------

TCVN3_KNOWN = [
    # à=B5 ố=E8 ồ=E5 í=DD
    ("Thành phố Hồ Chí Minh", b"Th\xb5nh ph\xe8 H\xe5 Ch\xdd Minh"),
    # ư=AD ờ=EA ế=D5 é=D0
    ("Phường Bến Nghé", b"Ph\xad\xeang B\xd5n Ngh\xd0"),
    # ậ=CB ì=D7 ạ=B9
    ("Quận Bình Thạnh", b"Qu\xcbn B\xd7nh Th\xb9nh"),
    # ủ=F1 Đ=A7 ứ=F8
    ("Thủ Đức", b"Th\xf1 \xa7\xf8c"),
    # Đ=A7 ấ=CA ở=EB ạ=B9 đ=AE ô=AB ị=DE
    ("Đất ở tại đô thị", b"\xa7\xcat \xeb t\xb9i \xae\xab th\xde"),
]

VNI_KNOWN = [
    # à=a+F8 ố=o+E1 ồ=o+E0 í=ED
    ("Thành phố Hồ Chí Minh", b"Tha\xf8nh pho\xe1 Ho\xe0 Ch\xed Minh"),
    # ư=F6 ờ=F4+F8 ế=e+E1 é=e+F9
    ("Phường Bến Nghé", b"Ph\xf6\xf4\xf8ng Be\xe1n Nghe\xf9"),
    # ậ=a+E4 ì=EC ạ=a+EF
    ("Quận Bình Thạnh", b"Qua\xe4n B\xecnh Tha\xefnh"),
    # ủ=u+FB Đ=D1 ứ=F6+F9
    ("Thủ Đức", b"Thu\xfb \xd1\xf6\xf9c"),
    # Đ=D1 ấ=a+E1 ở=F4+FB ạ=a+EF đ=F1 ô=o+E2 ị=F2
    ("Đất ở tại đô thị", b"\xd1a\xe1t \xf4\xfb ta\xefi \xf1o\xe2 th\xf2"),
]


@pytest.mark.parametrize(("text", "raw"), TCVN3_KNOWN)
def test_tcvn3_known_answers(text, raw):
    assert encode_tcvn3(text) == raw
    assert decode_tcvn3(_latin1(raw)) == text


@pytest.mark.parametrize(("text", "raw"), VNI_KNOWN)
def test_vni_known_answers(text, raw):
    assert encode_vni(text) == raw
    assert decode_vni(_latin1(raw)) == text


def test_familiar_mojibake_decodes():
    # What a DBF without .cpg shows in a GIS when read as Latin-1.
    assert decode_tcvn3("Thµnh phè Hå ChÝ Minh") == "Thành phố Hồ Chí Minh"
    assert decode_tcvn3("Céng hoµ x· héi chñ nghÜa ViÖt Nam") == (
        "Cộng hoà xã hội chủ nghĩa Việt Nam"
    )
    assert decode_vni("Thaønh phoá Hoà Chí Minh") == "Thành phố Hồ Chí Minh"
    assert decode_vni("Coäng hoøa xaõ hoäi chuû nghóa Vieät Nam") == (
        "Cộng hòa xã hội chủ nghĩa Việt Nam"
    )


def test_tcvn3_uppercase_known_answers():
    # Ă Â Ê Ô Ơ Ư Đ are in VN3 (ABC) at 0xA1-0xA7.
    assert encode_tcvn3("ĂÂÊÔƠƯĐ") == bytes(range(0xA1, 0xA8))
    # Uppercase toned letters take their TCVN 5712 VN1 codes.
    assert encode_tcvn3("Á") == b"\x83"
    assert encode_tcvn3("Ố") == b"\xff"
    assert encode_tcvn3("Ú") == b"\x01"
    assert encode_tcvn3("PHƯỜNG") == b"PH\xa6\x98NG"
    assert decode_tcvn3("PH\xa6\x98NG") == "PHƯỜNG"


def test_tcvn3_abc_style_capitals_decode_lowercase():
    # ABC documents write a capital with the lowercase code and an uppercase (.VnTimeH) font.
    raw = encode_tcvn3("HỒ CHÍ MINH", vn1=False)
    assert raw == b"H\xe5 CH\xdd MINH"
    assert decode_tcvn3(_latin1(raw)) == "Hồ CHí MINH"


def test_tcvn3_accepts_cp1252_view():
    # Byte 0x83 (Á in VN1) is "ƒ" when the reader used Windows-1252 instead of Latin-1.
    assert decode_tcvn3("ƒ") == "Á"
    assert decode_tcvn3("\x83") == "Á"
    raw = encode_tcvn3("ÁO ĐÓ")
    assert decode_tcvn3(raw.decode("cp1252")) == "ÁO ĐÓ"


def test_tcvn3_vn1_combining_marks():
    # VN1 also has combining tone marks at 0xB0-0xB4; NFC composes them with the base.
    assert decode_tcvn3("a\xb3") == "á"
    assert decode_tcvn3("\xa9\xb4") == "ậ"


def test_vni_uppercase_known_answers():
    assert encode_vni("HỒ CHÍ MINH") == b"HO\xc0 CH\xcd MINH"
    assert encode_vni("PHƯỜNG") == b"PH\xd6\xd4\xd8NG"
    assert encode_vni("ĐỨC") == b"\xd1\xd6\xd9C"
    assert decode_vni("HOÀ CHÍ MINH") == "HỒ CHÍ MINH"


def test_vni_lenient_mark_case():
    assert decode_vni("Aù") == "Á"
    assert decode_vni("aÙ") == "á"
    assert decode_vni("THAØNH PHOÁ") == "THÀNH PHỐ"
    assert decode_vni("yï") == "ỵ"


def test_vni_punctuation_bytes():
    # 0x93 and 0x96 are a left double quote and an en dash in Windows-1252.
    assert decode_vni("\x93Nh\x96") == "\u201cNh\u2013"  # Latin-1 view
    assert decode_vni("\u201cNh\u2013") == "\u201cNh\u2013"  # Windows-1252 view
    assert encode_vni("\u201cBà\u201d \u2013 25°") == b"\x93Ba\xf8\x94 \x96 25\xb0"


def test_ascii_unchanged():
    text = "Lot 12/3, Street 5 (A-B)"
    assert decode_tcvn3(text) == text
    assert decode_vni(text) == text
    assert encode_tcvn3(text) == text.encode("ascii")
    assert encode_vni(text) == text.encode("ascii")


def test_encode_errors():
    with pytest.raises(UnicodeEncodeError):
        encode_tcvn3("Chợ 中")
    with pytest.raises(UnicodeEncodeError):
        encode_vni("Chợ 中")
    with pytest.raises(UnicodeEncodeError):
        encode_tcvn3("“x”")  # 0x93/0x94 are VN1 capitals
    assert encode_tcvn3("a中b", errors="replace") == b"a?b"
    assert encode_vni("a中b", errors="ignore") == b"ab"
    with pytest.raises(ValueError):
        encode_vni("a", errors="bogus")


# --- NFC -----------------------------------------------------------------------------------------


def test_nfd_becomes_nfc():
    for name in NAMES:
        nfd = unicodedata.normalize("NFD", name)
        assert to_nfc(nfd) == name
        assert fix_text(nfd, "unicode") == name
        assert fix_text(nfd, "utf-8") == name
    assert to_nfc("a\u0300") == "à"
    assert to_nfc("u\u031b\u0300") == "ừ"


def test_none_passes_through():
    assert to_nfc(None) is None
    assert decode_tcvn3(None) is None
    assert decode_vni(None) is None
    for enc in ENCODINGS:
        assert fix_text(None, enc) is None


# --- detection -----------------------------------------------------------------------------------


def test_detect_unicode():
    assert detect_encoding(NAMES) == "unicode"
    assert detect_encoding([unicodedata.normalize("NFD", n) for n in NAMES]) == "unicode"
    assert detect_encoding([n.upper() for n in NAMES]) == "unicode"


def test_detect_ascii_and_empty():
    assert detect_encoding(["District 1", "Ben Nghe Ward", "Nguyen Hue", "123"]) == "unicode"
    assert detect_encoding(["Thanh pho Ho Chi Minh", "Quan Binh Thanh"]) == "unicode"
    assert detect_encoding([]) == "unicode"
    assert detect_encoding([None, "", "  "]) == "unicode"


def test_detect_tcvn3():
    assert detect_encoding([_latin1(encode_tcvn3(n)) for n in NAMES]) == "tcvn3"
    assert detect_encoding([_latin1(encode_tcvn3(n.upper())) for n in NAMES]) == "tcvn3"
    assert detect_encoding([_latin1(encode_tcvn3(n.upper(), vn1=False)) for n in NAMES]) == "tcvn3"
    assert detect_encoding([_latin1(encode_tcvn3(n)) for n in NAMES[:5]]) == "tcvn3"
    assert detect_encoding(["Thµnh phè Hå ChÝ Minh", "QuËn 1", None]) == "tcvn3"


def test_detect_vni():
    assert detect_encoding([_latin1(encode_vni(n)) for n in NAMES]) == "vni"
    assert detect_encoding([encode_vni(n).decode("cp1252") for n in NAMES]) == "vni"
    assert detect_encoding([_latin1(encode_vni(n.upper())) for n in NAMES]) == "vni"
    assert detect_encoding([_latin1(encode_vni(n)) for n in NAMES[:5]]) == "vni"
    assert detect_encoding(["Thaønh phoá Hoà Chí Minh", "Quaän 1", None]) == "vni"


def test_detect_single_values():
    for name in NAMES[:5]:
        assert detect_encoding([name]) == "unicode", name
        assert detect_encoding([_latin1(encode_tcvn3(name))]) == "tcvn3", name
        assert detect_encoding([_latin1(encode_vni(name))]) == "vni", name


def test_detect_unicode_with_latin1_only_letters_stays_unicode():
    # Every letter here is also a Latin-1 character, so each legacy decoding is possible.
    names = ["Tân Bình", "Cà Mau", "Nhà Bè", "Sông Sài Gòn", "Hóc Môn"]
    assert detect_encoding(names) == "unicode"


def test_detect_then_fix():
    for form, raw in (
        ("unicode", NAMES),
        ("tcvn3", [_latin1(encode_tcvn3(n)) for n in NAMES]),
        ("vni", [_latin1(encode_vni(n)) for n in NAMES]),
    ):
        enc = detect_encoding(raw)
        assert enc == form
        assert [fix_text(v, enc) for v in raw] == NAMES


# --- fix_text ------------------------------------------------------------------------------------


def test_fix_text_each_encoding():
    assert fix_text("Thµnh phè", "tcvn3") == "Thành phố"
    assert fix_text("Thaønh phoá", "vni") == "Thành phố"
    assert fix_text("Thành phố", "unicode") == "Thành phố"
    assert fix_text("Thaønh phoá", " VNI ") == "Thành phố"  # case and spaces ignored
    assert fix_text("Thµnh phè", "TCVN3") == "Thành phố"
    assert fix_text("Thành phố", "UTF-8") == "Thành phố"


def test_fix_text_unknown_encoding():
    with pytest.raises(InputError) as info:
        fix_text("x", "viscii")
    err = info.value
    assert isinstance(err, GisError)
    assert "viscii" in err.message
    for name in ENCODINGS:
        assert name in err.message


def test_encodings_tuple():
    assert ENCODINGS == ("unicode", "utf-8", "tcvn3", "vni")


# --- the syllable check behind detection ---------------------------------------------------------

REAL_SYLLABLES = (
    "gì",
    "giữa",
    "gió",
    "gia",
    "giường",
    "quốc",
    "quý",
    "quyền",
    "quẹo",
    "khuya",
    "khuỷu",
    "nguyễn",
    "thuở",
    "xoong",
    "oanh",
    "ngoằn",
    "ngoèo",
    "khuấy",
    "yêu",
    "yến",
    "ưng",
    "ừ",
    "ơi",
    "ạ",
    "ấy",
    "ở",
    "uống",
    "huých",
    "huỳnh",
    "quỳnh",
    "nghiêng",
    "nghĩa",
    "kìa",
    "ký",
    "kỹ",
    "lý",
    "thủy",
    "thuỷ",
    "hòa",
    "hoà",
    "khỏe",
    "khoẻ",
    "xuân",
    "luật",
    "chuyện",
    "tuyết",
    "khuynh",
    "boong",
    "của",
    "được",
    "người",
    "trường",
    "những",
    "nhiều",
    "điều",
    "biết",
    "việt",
    "đông",
    "tây",
    "nam",
    "bắc",
    "đồng",
    "cầu",
    "cửa",
    "hẻm",
    "ngõ",
    "ngách",
    "kiệt",
    "tỉnh",
    "xã",
    "ấp",
    "thôn",
    "làng",
    "khóm",
    "đảo",
    "kênh",
    "rạch",
    "suối",
    "đèo",
    "núi",
    "chùa",
    "đình",
    "miếu",
    "thờ",
    "bưu",
    "điện",
    "uỷ",
    "ủy",
    "hội",
    "đoàn",
    "đảng",
    "quảng",
    "siêu",
    "chợ",
    "bến",
    "cảng",
    "sân",
    "bãi",
    "đỗ",
    "xưởng",
    "rừng",
    "ruộng",
    "vườn",
    "đầm",
    "vịnh",
    "mũi",
    "ghềnh",
    "thác",
    "giếng",
    "khoan",
    "bờ",
    "kè",
    "đê",
    "đập",
    "cống",
    "mương",
    "nhơn",
    "trạch",
    "thạnh",
    "lộc",
    "bửu",
    "phước",
    "thuận",
    "hưng",
    "thới",
    "quới",
    "xuyên",
    "khuê",
    "huế",
    "ngoạn",
    "thoại",
    "nhuận",
    "khánh",
    "huyền",
    "toàn",
    "oai",
    "hươu",
    "đắk",
    "lắk",
)


def test_syllable_check_accepts_real_syllables():
    from gis.text import _is_syllable

    rejected = [w for w in REAL_SYLLABLES if not _is_syllable(w)]
    assert rejected == []
    assert all(_is_syllable(w.upper()) for w in REAL_SYLLABLES)


def test_syllable_check_rejects_mojibake():
    from gis.text import _is_syllable

    for word in ("thµnh", "hå", "thaønh", "ñöôøng", "quën", "thổnh", "bỡnh", "cầ", "tháng̀"):
        assert not _is_syllable(word), word


# -- nfc_array: NFC of an Arrow column, normalising only what may not be NFC ----------------------
def _nfc_cases() -> list[str | None]:
    """Every BMP character alone, after a starter, before a combining mark, after a Hangul leading
    consonant, and a few sequences the quick check must not take for NFC."""
    chars = [chr(c) for c in range(0x20, 0x10000) if not 0xD800 <= c <= 0xDFFF]
    cases: list[str | None] = [None, "", "abc", "Phường", "Nguyễn Thị Trang"]
    cases += chars + ["a" + c for c in chars] + [c + "\u0301" for c in chars] + ["\u1100" + c for c in chars]
    cases += ["Phu\u031bo\u031b\u0300ng", "e\u0323\u0301", "e\u0301\u0323", "\u212b", "\u0958", "\u0b47\u0b3e",
              "x\U0001D15E", "\U0002F800", "\u1100\u1161\u11a8", "a\u0345\u0300", "co\u0301 "]
    return cases


def test_nfc_array_equals_arrow_utf8_normalize():
    arr = pa.array(_nfc_cases(), pa.string())
    assert nfc_array(arr).equals(pc.utf8_normalize(arr, "NFC"))
    nfd = pa.array(["Phường", "Đường Phan Đăng Lưu", None], pa.string())
    assert nfc_array(pc.utf8_normalize(nfd, "NFD")).to_pylist() == ["Phường", "Đường Phan Đăng Lưu", None]
    nfc = pa.array(["Phường", "abc", None], pa.string())
    assert nfc_array(nfc) is nfc  # nothing to normalise: the array as it was
