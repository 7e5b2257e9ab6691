"""Render a command for a person so that what they read is what runs.

Characters that are invisible, that move or reorder text (bidi controls), or that look like a plain
space are shown as visible escapes such as ``\\u202e``, ``\\x07``, ``\\r`` or ``\\t``. A newline stays
a real newline so a multi-line command is shown whole; printable non-ASCII letters (``\xe9``, CJK) stay
readable. display_text() is the same for a single-line value such as a folder path: there a newline
is escaped too (``\\n``), so a value can never add a fake line to a label or a terminal.

Ambiguity: a literal backslash is shown unchanged, so a command that really contains the six
characters ``\\u202e`` looks the same as one holding U+202E. Callers resolve this with
has_hidden_characters(): when it returns False, every escape on screen was typed literally.

Look-alikes: a character can be shown as itself and still be misread, such as ``git`` spelled with
a Cyrillic i (U+0456), ``rm`` in fullwidth (U+FF52 U+FF4D) or mathematical bold letters, or a ``/``
with a combining overlay (U+0338). suspicious_characters() names every character a person could
misread: the hidden ones above; every combining mark; characters from blocks that imitate ASCII
(fullwidth, mathematical, letterlike, enclosed, superscript, small capital, phonetic and modifier
letters) and a short table of single look-alikes (curly quotes, division slash, minus sign...);
every character of a script with Latin look-alikes (Cyrillic, Greek, Armenian, Cherokee...); and
any non-Latin letter, digit or punctuation mark in a word that also holds ASCII letters (mixed
script). A word here is a run of characters between whitespace and ASCII punctuation, so a CJK name
followed by ``.txt`` is not mixed while ``github.com`` with a Cyrillic i is. Latin letters of their
own (``caf\xe9``, ``na\xefve``) are read correctly and are not named; the same letters written as a
base letter plus a combining mark are (the mark is named). needs_warning() says whether to warn and
describe_suspicious() words the warning.
"""

from __future__ import annotations

import string
import unicodedata

__all__ = [
    "describe_suspicious",
    "display_command",
    "display_text",
    "has_hidden_characters",
    "needs_warning",
    "suspicious_characters",
]

# Categories that are never shown as themselves: controls, format (bidi, zero-width), surrogates,
# private use, unassigned, line/paragraph separators, and every space separator except U+0020.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
# Invisible or blank-looking characters whose category is a letter, mark or symbol.
_INVISIBLE = frozenset(
    {
        0x034F,  # combining grapheme joiner
        0x115F,  # hangul choseong filler
        0x1160,  # hangul jungseong filler
        0x17B4,  # khmer vowel inherent aq
        0x17B5,  # khmer vowel inherent aa
        0x180B,  # mongolian free variation selectors
        0x180C,
        0x180D,
        0x180E,  # mongolian vowel separator
        0x180F,
        0x2800,  # braille pattern blank
        0x3164,  # hangul filler
        0xFFA0,  # halfwidth hangul filler
    }
)
_SHORT_ESCAPES = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}

# Blocks whose characters imitate ASCII letters, digits or punctuation: every code point in them is
# named, whatever the word around it.
_ASCII_IMITATING_BLOCKS: tuple[tuple[int, int, str], ...] = (
    (0x0250, 0x02AF, "IPA extensions: script a and g, small capitals"),
    (0x02B0, 0x02FF, "spacing modifier letters and symbols: < - : look-alikes"),
    (0x1D00, 0x1DBF, "phonetic extensions: small capitals, modifier letters"),
    (0x2070, 0x209F, "superscripts and subscripts"),
    (0x2100, 0x214F, "letterlike symbols: KELVIN SIGN, script l"),
    (0x2150, 0x218F, "number forms: roman numerals I V X"),
    (0x2460, 0x24FF, "enclosed alphanumerics"),
    (0x2C60, 0x2C7F, "Latin extended-C: subscript j, modifier V"),
    (0xA700, 0xA71F, "modifier tone letters"),
    (0xA720, 0xA7FF, "Latin extended-D: small capitals, colon and apostrophe look-alikes"),
    (0xAB30, 0xAB6F, "Latin extended-E"),
    (0xFB00, 0xFB17, "Latin and Armenian ligatures: fi, fl"),
    (0xFE10, 0xFE1F, "vertical forms"),
    (0xFE30, 0xFE4F, "CJK compatibility forms"),
    (0xFE50, 0xFE6F, "small form variants: small . - \\"),
    (0xFF00, 0xFFEF, "halfwidth and fullwidth forms"),
    (0x10780, 0x107BF, "Latin extended-F (modifier letters)"),
    (0x1D400, 0x1D7FF, "mathematical alphanumeric symbols"),
    (0x1DF00, 0x1DFFF, "Latin extended-G"),
    (0x1F100, 0x1F1E5, "enclosed alphanumeric supplement (not the flag letters)"),
    (0x1FBF0, 0x1FBF9, "segmented digits"),
)

# Scripts with letters that look like Latin ones (Cyrillic a e o p c y x i, Greek o v p, Armenian o u,
# Cherokee A C, ...): every code point of their blocks is named.
_LOOKALIKE_SCRIPT_BLOCKS: tuple[tuple[int, int, str], ...] = (
    (0x0370, 0x03FF, "Greek and Coptic"),
    (0x0400, 0x052F, "Cyrillic"),
    (0x0530, 0x058F, "Armenian"),
    (0x13A0, 0x13FF, "Cherokee"),
    (0x1400, 0x167F, "Canadian syllabics"),
    (0x16A0, 0x16FF, "Runic"),
    (0x18B0, 0x18FF, "Canadian syllabics extended"),
    (0x1C80, 0x1C8F, "Cyrillic extended-C"),
    (0x1F00, 0x1FFF, "Greek extended"),
    (0x2C80, 0x2CFF, "Coptic"),
    (0x2D30, 0x2D7F, "Tifinagh"),
    (0x2DE0, 0x2DFF, "Cyrillic extended-A"),
    (0xA4D0, 0xA4FF, "Lisu"),
    (0xA640, 0xA69F, "Cyrillic extended-B"),
    (0xAB70, 0xABBF, "Cherokee supplement"),
    (0x10280, 0x1029F, "Lycian"),
    (0x102A0, 0x102DF, "Carian"),
    (0x10300, 0x1034F, "Old Italic and Gothic"),
    (0x10400, 0x1044F, "Deseret"),
    (0x104B0, 0x104FF, "Osage"),
    (0x118A0, 0x118FF, "Warang Citi"),
    (0x11AB0, 0x11ABF, "Canadian syllabics extended-A"),
    (0x1E030, 0x1E08F, "Cyrillic extended-D"),
)

# Single characters outside those blocks that a person reads as an ASCII one (value: what they
# imitate). Mostly punctuation that changes what the shell does: a curly quote that does not quote,
# a division slash that is not a path separator, a minus sign that does not start an option.
_LOOKALIKE_CHARACTERS: dict[int, str] = {
    0x00AA: "a",  # feminine ordinal indicator
    0x00B2: "2",  # superscript two
    0x00B3: "3",  # superscript three
    0x00B8: ",",  # cedilla
    0x00B9: "1",  # superscript one
    0x00BA: "o",  # masculine ordinal indicator
    0x00D7: "x",  # multiplication sign
    0x0131: "i",  # latin small letter dotless i
    0x0138: "k",  # latin small letter kra
    0x017F: "f",  # latin small letter long s
    0x01C0: "|",  # latin letter dental click
    0x01C1: "||",  # latin letter lateral click
    0x01C3: "!",  # latin letter retroflex click
    0x0237: "j",  # latin small letter dotless j
    0x05C0: "|",  # hebrew punctuation paseq
    0x05C3: ":",  # hebrew punctuation sof pasuq
    0x0660: ".",  # arabic-indic digit zero
    0x06D4: ".",  # arabic full stop
    0x2010: "-",  # hyphen
    0x2011: "-",  # non-breaking hyphen
    0x2012: "-",  # figure dash
    0x2013: "-",  # en dash
    0x2014: "-",  # em dash
    0x2015: "-",  # horizontal bar
    0x2018: "'",  # left single quotation mark
    0x2019: "'",  # right single quotation mark
    0x201A: ",",  # single low-9 quotation mark
    0x201B: "'",  # single high-reversed-9 quotation mark
    0x201C: '"',  # left double quotation mark
    0x201D: '"',  # right double quotation mark
    0x201E: '"',  # double low-9 quotation mark
    0x201F: '"',  # double high-reversed-9 quotation mark
    0x2024: ".",  # one dot leader
    0x2032: "'",  # prime
    0x2033: '"',  # double prime
    0x2039: "<",  # single left-pointing angle quotation mark
    0x203A: ">",  # single right-pointing angle quotation mark
    0x2044: "/",  # fraction slash
    0x204E: "*",  # low asterisk
    0x2212: "-",  # minus sign
    0x2215: "/",  # division slash
    0x2216: "\\",  # set minus
    0x2217: "*",  # asterisk operator
    0x2223: "|",  # divides
    0x2236: ":",  # ratio
    0x223C: "~",  # tilde operator
    0x2502: "|",  # box drawings light vertical
    0x2571: "/",  # box drawings light diagonal upper right to lower left
    0x2572: "\\",  # box drawings light diagonal upper left to lower right
    0x29F5: "\\",  # reverse solidus operator
    0x29F8: "/",  # big solidus
    0x29F9: "\\",  # big reverse solidus
    0x3003: '"',  # ditto mark
}

_COMBINING_CATEGORIES = frozenset({"Mn", "Me"})
# Categories named when they appear in a mixed-script word: letters, digits and punctuation (a
# symbol such as an arrow or an emoji is not read as an ASCII letter).
_MIXED_SCRIPT_CATEGORIES = frozenset("LNP")
_ASCII_LETTERS = frozenset(string.ascii_letters)


def _is_hidden(ch: str) -> bool:
    code = ord(ch)
    if ch == "\n":
        return False
    if 0x20 <= code < 0x7F:
        return False
    if code in _INVISIBLE or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return True  # also variation selectors, which change a glyph without being visible
    return unicodedata.category(ch) in _HIDDEN_CATEGORIES


def _escape(ch: str) -> str:
    short = _SHORT_ESCAPES.get(ch)
    if short is not None:
        return short
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _in_blocks(code: int, blocks: tuple[tuple[int, int, str], ...]) -> bool:
    return any(first <= code <= last for first, last, _ in blocks)


def _is_suspicious(ch: str) -> bool:
    """True if ``ch`` alone could be misread, wherever it stands (rules a to d)."""
    code = ord(ch)
    if 0x20 <= code < 0x7F or ch == "\n":
        return False
    return (
        _is_hidden(ch)
        or unicodedata.category(ch) in _COMBINING_CATEGORIES
        or code in _LOOKALIKE_CHARACTERS
        or _in_blocks(code, _ASCII_IMITATING_BLOCKS)
        or _in_blocks(code, _LOOKALIKE_SCRIPT_BLOCKS)
    )


def _is_latin(ch: str) -> bool:
    # Below U+0250 are ASCII, Latin-1 and Latin extended-A/B; beyond, Latin letters say so in their name.
    return ord(ch) < 0x250 or "LATIN" in unicodedata.name(ch, "")


def _is_word_break(ch: str) -> bool:
    return ch.isspace() or (ord(ch) < 0x80 and not ch.isalnum())


def _mixed_script_positions(text: str) -> set[int]:
    """Positions of non-Latin letters, digits and punctuation in words that hold ASCII letters (rule e).

    A word is a maximal run between whitespace and ASCII punctuation, so a CJK name then ``.txt`` holds
    two words, neither of them mixed.
    """
    positions: set[int] = set()
    start = 0
    for end in range(len(text) + 1):
        if end < len(text) and not _is_word_break(text[end]):
            continue
        word = text[start:end]
        if any(ch in _ASCII_LETTERS for ch in word):
            positions.update(
                start + i
                for i, ch in enumerate(word)
                if ord(ch) >= 0x80 and unicodedata.category(ch)[0] in _MIXED_SCRIPT_CATEGORIES and not _is_latin(ch)
            )
        start = end + 1
    return positions


# Controls have no Unicode name; these are their usual (alias) names.
_CONTROL_NAMES = {
    0x00: "NULL",
    0x07: "BELL",
    0x08: "BACKSPACE",
    0x09: "CHARACTER TABULATION (TAB)",
    0x0A: "LINE FEED",
    0x0B: "LINE TABULATION",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE (starts terminal control sequences)",
    0x7F: "DELETE",
    0x85: "NEXT LINE",
    0x9B: "CONTROL SEQUENCE INTRODUCER",
}


def _describe(ch: str) -> str:
    code = ord(ch)
    name = unicodedata.name(ch, "") or _CONTROL_NAMES.get(code) or ("CONTROL" if code < 0xA0 else "<unnamed>")
    return f"U+{code:04X} {name}"


def display_command(command: str) -> str:
    """Return ``command`` with every hidden character replaced by a visible escape."""
    return "".join(_escape(ch) if _is_hidden(ch) else ch for ch in command)


def display_text(text: str) -> str:
    """Like display_command, for a single-line value (a folder path): a newline is escaped too."""
    return "".join(_escape(ch) if ch == "\n" or _is_hidden(ch) else ch for ch in text)


def has_hidden_characters(command: str) -> bool:
    """True if display_command would escape anything (including a tab): warn the person then."""
    return any(_is_hidden(ch) for ch in command)


def suspicious_characters(text: str) -> list[str]:
    """Name every character of ``text`` a person could misread, once each, in order of first appearance.

    Each is ``"U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I"``: the code point, then its
    Unicode name or ``<unnamed>`` (controls have none). A plain newline and printable ASCII are
    never named.
    """
    mixed = _mixed_script_positions(text)
    found: dict[str, None] = {}  # an ordered set
    for i, ch in enumerate(text):
        if ch not in found and (i in mixed or _is_suspicious(ch)):
            found[ch] = None
    return [_describe(ch) for ch in found]


def needs_warning(text: str) -> bool:
    """True if ``text`` holds a look-alike or hidden character: warn, and do not trust it automatically."""
    return bool(suspicious_characters(text))


def describe_suspicious(text: str, limit: int = 5) -> str:
    """One sentence naming up to ``limit`` suspicious characters of ``text``; ``""`` if there are none."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    names = suspicious_characters(text)
    if not names:
        return ""
    more = len(names) - limit
    tail = f" (and {more} more)" if more > 0 else ""
    return f"Look-alike or hidden characters: {', '.join(names[:limit])}{tail}."
