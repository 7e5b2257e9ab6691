"""Tests for app.core.display: what a person reads must be what runs."""

from __future__ import annotations

import pytest

from app.core.display import display_command, has_hidden_characters


@pytest.mark.parametrize(
    "command",
    [
        "ls -la /tmp",
        "git diff --stat && pytest -q | tail -n 5",
        "echo 'a;b' \"$HOME\" `x` $(y) \\ls ~ *",
        "",
        " ",
    ],
)
def test_plain_ascii_is_unchanged(command: str) -> None:
    assert display_command(command) == command
    assert not has_hidden_characters(command)


@pytest.mark.parametrize(
    "command", ["cat caf\u00e9.txt", "echo \u65e5\u672c\u8a9e", "grep \u00fcber x", "ls \u0441\u0430\u0442"]
)
def test_readable_non_ascii_letters_stay_readable(command: str) -> None:
    # Look-alike letters (Cyrillic) are shown as themselves: the matcher refuses them, a person reads them.
    assert display_command(command) == command
    assert not has_hidden_characters(command)


def test_multi_line_command_keeps_real_newlines() -> None:
    command = "ls\ngit status\n"
    assert display_command(command) == command
    assert not has_hidden_characters(command)


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("ls '\u202etxt.exe'", "ls '\\u202etxt.exe'"),  # right-to-left override
        ("ls \u202ax\u202c", "ls \\u202ax\\u202c"),  # left-to-right embedding, pop
        ("echo \u2066a\u2069", "echo \\u2066a\\u2069"),  # isolates
        ("a\u200eb\u200fc\u061cd", "a\\u200eb\\u200fc\\u061cd"),  # direction marks
        ("git\u200bstatus", "git\\u200bstatus"),  # zero-width space
        ("a\u200cb\u200dc", "a\\u200cb\\u200dc"),  # zero-width non-joiner / joiner
        ("a\u2060b\u2063c", "a\\u2060b\\u2063c"),  # word joiner, invisible separator
        ("\ufeffls", "\\ufeffls"),  # byte order mark
        ("rm\u00ad-rf", "rm\\xad-rf"),  # soft hyphen
        ("a\u180eb", "a\\u180eb"),  # mongolian vowel separator
        ("ls\u3164x", "ls\\u3164x"),  # hangul filler
        ("a\ufe0fb", "a\\ufe0fb"),  # variation selector
        ("a\U000e0041b", "a\\U000e0041b"),  # tag character
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line / paragraph separators
        ("ls\u00a0-la", "ls\\xa0-la"),  # no-break space
        ("ls\u3000-la", "ls\\u3000-la"),  # ideographic space
        ("ls\u2009-la", "ls\\u2009-la"),  # thin space
        ("ls\rrm -rf /", "ls\\rrm -rf /"),  # carriage return
        ("ls\x00rm", "ls\\x00rm"),  # NUL
        ("echo \x1b[2K\x1b[1Ahi", "echo \\x1b[2K\\x1b[1Ahi"),  # ANSI escape sequences
        ("a\tb", "a\\tb"),  # tab
        ("a\x07b\x7fc", "a\\x07b\\x7fc"),  # bell, delete
        ("a\x85b\x9bc", "a\\x85b\\x9bc"),  # C1 controls
        ("a\ue000b", "a\\ue000b"),  # private use
        ("a\U0010ffffb", "a\\U0010ffffb"),  # noncharacter / unassigned
        ("a\ud800b", "a\\ud800b"),  # lone surrogate
    ],
)
def test_hidden_characters_are_escaped(command: str, shown: str) -> None:
    assert display_command(command) == shown
    assert has_hidden_characters(command)


def test_displayed_text_is_printable() -> None:
    command = "".join(chr(c) for c in range(0x0, 0x3000))
    shown = display_command(command)
    assert all(ch == "\n" or ch.isprintable() for ch in shown)


def test_literal_backslash_is_kept_and_flag_disambiguates() -> None:
    # A typed `\u202e` looks like an escaped U+202E; has_hidden_characters tells them apart.
    typed = "echo \\u202e"
    assert display_command(typed) == typed
    assert not has_hidden_characters(typed)
    real = "echo \u202e"
    assert display_command(real) == typed
    assert has_hidden_characters(real)
