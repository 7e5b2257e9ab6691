"""Render a command for a person so that what they read is what runs.

Characters that are invisible, that move or reorder text (bidi controls), or that look like a plain
space are shown as visible escapes such as ``\\u202e``, ``\\x07``, ``\\r`` or ``\\t``. A newline stays
a real newline so a multi-line command is shown whole; printable non-ASCII letters (``é``, CJK) stay
readable.

Ambiguity: a literal backslash is shown unchanged, so a command that really contains the six
characters ``\\u202e`` looks the same as one holding U+202E. Callers resolve this with
has_hidden_characters(): when it returns False, every escape on screen was typed literally.
"""

from __future__ import annotations

import unicodedata

__all__ = ["display_command", "has_hidden_characters"]

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
_SHORT_ESCAPES = {"\t": "\\t", "\r": "\\r"}


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


def display_command(command: str) -> str:
    """Return ``command`` with every hidden character replaced by a visible escape."""
    return "".join(_escape(ch) if _is_hidden(ch) else ch for ch in command)


def has_hidden_characters(command: str) -> bool:
    """True if display_command would escape anything (including a tab): warn the person then."""
    return any(_is_hidden(ch) for ch in command)
