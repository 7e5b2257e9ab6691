"""Trusted-pattern matcher: decides whether a host command may run without a person's approval.

A command matched here runs on the host with the person's rights and nobody looks at it, so the
rule is *refuse unless proven literal*: the command must parse (tree-sitter-bash) into simple
commands joined only by ``;``, newlines, ``&&``, ``||`` and ``|``, and every word must be a plain
literal whose argv value we compute ourselves, the way ``/bin/sh`` (dash) would. Any node type,
character or quoting form not explicitly whitelisted sends the command to the queue.

Deliberate refusals: any character other than printable ASCII, space, tab and newline (tab and
newline only as separators or inside quotes); comments; unquoted globs, braces, `!`, `#`, `\\`, and
`~` at a word start or after `=`/`:`; `$`/backtick/`!` even inside double quotes; a program name that
is quoted or has a path.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

MAX_COMMAND_LENGTH = 100_000
MAX_PATTERN_LENGTH = 1_000

# The program (first word) of a pattern or command: a bare name, no path, no quoting.
_PROGRAM_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")
# Characters allowed unquoted in a command word (and in pattern words): none is special to dash.
_SAFE_UNQUOTED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./,:=+@%^~")
# Words that are shell syntax (dash or bash) when they come first; never a trusted program.
_RESERVED_WORDS = "! { } [[ ]] case coproc do done elif else esac fi for function if in select then time until while"
_RESERVED = frozenset(_RESERVED_WORDS.split())
# A second word that looks like a subcommand (`git diff`), used by propose_pattern.
_SUBCOMMAND_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
# Inside double quotes dash treats a backslash as an escape only before these characters.
_ESCAPED_IN_DQ = re.compile(r'\\[$`"\\]')

# Why a node type is refused, in words for the person (any type not listed gets a generic reason).
_REASON_TYPES = {
    "contains a command substitution": ("command_substitution",),
    "contains a process substitution": ("process_substitution",),
    "expands a variable": ("simple_expansion", "expansion", "$"),
    "contains an arithmetic expansion": ("arithmetic_expansion",),
    "sets, exports or unsets a variable": ("variable_assignment", "declaration_command", "unset_command"),
    "redirects input or output": ("redirected_statement", "file_redirect"),
    "contains a here-document or here-string": ("heredoc_redirect", "herestring_redirect"),
    "runs a subshell `( ... )` or a group `{ ...; }`": ("subshell", "compound_statement"),
    "defines a function": ("function_definition",),
    "contains an `if` or `case` statement": ("if_statement", "case_statement"),
    "contains a `for`, `while` or `until` loop": ("for_statement", "c_style_for_statement", "while_statement"),
    "contains `;;` outside a case statement": (";;",),
    "negates a command with `!`": ("negated_command",),
    "contains a `[[ ... ]]` test": ("test_command",),
    "runs a command in the background with `&`": ("&",),
    "pipes standard error with `|&`": ("|&",),
    "contains a comment": ("comment",),
    "uses a `$'...'` or `$\"...\"` string, which dash does not support": ("ansi_c_string", "translated_string"),
}
_REASONS = {node_type: reason for reason, types in _REASON_TYPES.items() for node_type in types}

# Which child node types each structural node may contain (anything else is refused).
_STRUCTURE = {
    "program": frozenset({"command", "list", "pipeline", ";"}),
    "list": frozenset({"command", "list", "pipeline", "&&", "||"}),
    "pipeline": frozenset({"command", "|"}),
}
# Node types a word may be built from; its value is then computed from its text by _word_value.
_LITERAL_NODES = frozenset({"word", "number", "raw_string", "string", "concatenation", "string_content", '"'})


class PatternError(ValueError):
    """An invalid pattern, or a command that is not a plain literal command (message says why)."""


@dataclass(frozen=True)
class Pattern:
    """A parsed trusted pattern: ``text`` is normalised, ``words[0]`` is the literal program."""

    text: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """Outcome of check_command: ``pattern`` holds the matching pattern text(s), joined by ``; ``."""

    allowed: bool
    pattern: str | None
    reason: str


_CHAR_NAMES = {"\0": "NUL", "\r": "carriage return", "\x1b": "escape", "\x7f": "delete", "\x0b": "vertical tab"}

_local = threading.local()


def _parser() -> Parser:
    """One tree-sitter parser per thread (parser objects are not thread safe)."""
    parser: Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = Parser(Language(tree_sitter_bash.language()))
        _local.parser = parser
    return parser


def _describe_char(ch: str) -> str:
    name = _CHAR_NAMES.get(ch) or unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def _check_chars(command: str) -> None:
    """Only printable ASCII, space, tab and newline get past this: no controls, no look-alikes."""
    for ch in command:
        if ch in "\t\n" or " " <= ch <= "~":
            continue
        if ord(ch) < 0x80 or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            raise PatternError(f"contains the control or invisible character {_describe_char(ch)}")
        raise PatternError(f"contains the non-ASCII character {_describe_char(ch)}, which may be a look-alike")


def _refuse(node: Node) -> PatternError:
    if node.type == "ERROR" or node.is_missing:
        return PatternError("cannot be parsed (unbalanced quotes or a syntax error)")
    return PatternError(_REASONS.get(node.type, f"contains shell syntax that is not allowed ({node.type})"))


def _check_gaps(node: Node, src: bytes, allowed: bytes, start: int, end: int, need_gap: bool = False) -> None:
    """Everything between ``node``'s children must be whitespace from ``allowed`` (tree-sitter skips it)."""
    pos = start
    for child in node.children:
        gap = src[pos : child.start_byte]
        if any(b not in allowed for b in gap) or (need_gap and pos != start and not gap):
            raise PatternError("cannot be parsed (unexpected text between words)")
        pos = child.end_byte
    if any(b not in allowed for b in src[pos:end]):
        raise PatternError("cannot be parsed (unexpected text between words)")


def _check_literal_node(node: Node) -> None:
    """A word may only be built from literal parts: no expansion or substitution anywhere inside."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type not in _LITERAL_NODES or current.is_missing:
            raise _refuse(current)
        stack.extend(current.children)


def _double_quoted(body: str) -> str:
    """Value of the text between double quotes: only `\\` before one of $ ` " \\ is an escape in dash."""
    if "\\\n" in body:
        raise PatternError("contains a backslash line continuation")
    if any(c in _ESCAPED_IN_DQ.sub("", body) for c in "$`!"):
        raise PatternError("contains `$`, a backtick or `!` inside double quotes")
    return _ESCAPED_IN_DQ.sub(lambda m: m.group(0)[1], body)


def _word_value(text: str) -> str:
    """The argv value dash builds for one literal word; refuse anything that dash would expand."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = i + 1
            while end < n and text[end] != ch:
                end += 2 if ch == '"' and text[end] == "\\" else 1
            if end >= n:
                raise PatternError("has an unbalanced quote")
            body = text[i + 1 : end]
            out.append(body if ch == "'" else _double_quoted(body))
            i = end + 1
            continue
        if ch == "\\":
            raise PatternError("contains a backslash escape outside quotes")
        if ch == "~" and (i == 0 or text[i - 1] in "=:"):
            raise PatternError("contains an unquoted `~` that the shell may expand to a home directory")
        if ch in "*?[]":
            raise PatternError(f"contains the unquoted glob character `{ch}`, which the shell expands")
        if ch not in _SAFE_UNQUOTED:
            raise PatternError(f"contains the unquoted shell character `{ch}`")
        out.append(ch)
        i += 1
    return "".join(out)


def _command_argv(node: Node, src: bytes) -> list[str]:
    """Validate one ``command`` node and return its argv."""
    _check_gaps(node, src, b" \t", node.start_byte, node.end_byte, need_gap=True)
    children = node.children
    if not children or children[0].type != "command_name":
        raise _refuse(children[0] if children else node)
    name_parts = children[0].children
    for part in name_parts:
        _check_literal_node(part)
    program = src[children[0].start_byte : children[0].end_byte].decode("ascii")
    if len(name_parts) != 1 or name_parts[0].type not in ("word", "number") or not _PROGRAM_RE.fullmatch(program):
        if "/" in program and not any(c in program for c in "\\'\"$`*?[{~"):
            raise PatternError(f"runs `{program}` by path; only a bare program name can be trusted")
        raise PatternError("has a program name that is quoted, escaped or not a plain name")
    if program in _RESERVED:
        raise PatternError(f"uses the shell keyword `{program}` as a program name")
    argv = [program]
    for child in children[1:]:
        _check_literal_node(child)
        argv.append(_word_value(src[child.start_byte : child.end_byte].decode("ascii")))
    return argv


def parse_literal_commands(command: str) -> list[list[str]]:
    """Return the argv of every simple command in ``command`` or raise PatternError saying why not literal."""
    if not command.strip():
        raise PatternError("is empty")
    if len(command) > MAX_COMMAND_LENGTH:
        raise PatternError(f"is longer than {MAX_COMMAND_LENGTH} characters")
    _check_chars(command)
    src = command.encode("ascii")
    root = _parser().parse(src).root_node
    if root.has_error:
        raise PatternError("cannot be parsed (unbalanced quotes or a syntax error)")
    result: list[list[str]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "command":
            result.append(_command_argv(node, src))
            continue
        allowed = _STRUCTURE.get(node.type)
        if allowed is None or node.is_missing:
            raise _refuse(node)
        for child in node.children:
            if child.type not in allowed or child.is_missing:
                raise _refuse(child)
        is_root = node.type == "program"
        _check_gaps(node, src, b" \t\n", 0 if is_root else node.start_byte, len(src) if is_root else node.end_byte)
        stack.extend(reversed([c for c in node.children if c.is_named]))
    if not result:
        raise PatternError("contains no command")
    return result


def _check_pattern_word(word: str) -> None:
    if "*" in word:
        raise PatternError(f"`*` must be a whole word on its own, not part of `{word}`")
    bad = sorted({c for c in word if c not in _SAFE_UNQUOTED})
    if bad:
        shown = " ".join(f"`{c}`" for c in bad)
        raise PatternError(f"the word `{word}` contains characters the shell treats specially: {shown}")
    if word.startswith("~"):
        raise PatternError(f"the word `{word}` starts with `~`, which the shell expands to a home directory")


def parse_pattern(text: str) -> Pattern:
    """Parse and validate a trusted pattern such as ``git diff *``."""
    if len(text) > MAX_PATTERN_LENGTH:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")
    for ch in text:
        if not " " <= ch <= "~":
            raise PatternError(f"the pattern contains a control or non-ASCII character ({_describe_char(ch)})")
    words = tuple(w for w in text.split(" ") if w)
    if not words:
        raise PatternError("the pattern is empty")
    program = words[0]
    if program == "*":
        raise PatternError("the program (first word) must be a literal name, not `*`")
    if not _PROGRAM_RE.fullmatch(program):
        raise PatternError(
            f"the program `{program}` must be a bare name made of letters, digits, `.`, `_`, `+` and `-`"
            " (no path, quotes or shell characters)"
        )
    if program in _RESERVED:
        raise PatternError(f"`{program}` is a shell keyword, not a program")
    for word in words[1:]:
        if word != "*":
            _check_pattern_word(word)
    return Pattern(text=" ".join(words), words=words)


def _matches(pattern: Pattern, argv: Sequence[str]) -> bool:
    words = pattern.words
    if not words or argv[0] != words[0]:
        return False
    fixed, args = words[1:], argv[1:]
    if fixed and fixed[-1] == "*":
        fixed = fixed[:-1]
        if len(args) < len(fixed):
            return False
    elif len(args) != len(fixed):
        return False
    return all(p == "*" or p == a for p, a in zip(fixed, args[: len(fixed)], strict=True))


def _short(argv: Sequence[str]) -> str:
    text = " ".join(argv).replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."


def check_command(command: str, patterns: Sequence[Pattern]) -> Verdict:
    """Allow ``command`` only if it is literal and every simple command in it matches a pattern."""
    try:
        commands = parse_literal_commands(command)
    except PatternError as exc:
        return Verdict(False, None, f"the command {exc}")
    used: list[str] = []
    for argv in commands:
        match = next((p for p in patterns if _matches(p, argv)), None)
        if match is None:
            if any(p.words[0] == argv[0] for p in patterns):
                return Verdict(False, None, f"`{_short(argv)}` is not covered by any trusted pattern")
            return Verdict(False, None, f"`{argv[0]}` is not covered by any trusted pattern")
        if match.text not in used:
            used.append(match.text)
    shown = ", ".join(f"`{t}`" for t in used)
    noun = "pattern" if len(used) == 1 else "patterns"
    return Verdict(True, "; ".join(used), f"allowed by the trusted {noun} {shown}")


def pattern_matches(pattern: Pattern, command: str) -> bool:
    """Convenience: is ``command`` allowed by this single pattern?"""
    return check_command(command, [pattern]).allowed


def propose_pattern(command: str) -> str:
    """The pattern to offer for "approve & trust": the exact command, word for word. It allows this very
    command and nothing more; a wildcard is the person's own edit (the editor says what it would allow).
    PatternError when no pattern can hold the command exactly (several commands, quoted words with spaces
    or shell characters, a word that is `*`)."""
    try:
        commands = parse_literal_commands(command)
    except PatternError as exc:
        raise PatternError(f"cannot propose a pattern: the command {exc}") from exc
    if len(commands) != 1:
        raise PatternError("cannot propose a pattern: it is several commands; trust each of them on its own")
    argv = commands[0]
    if not _PROGRAM_RE.fullmatch(argv[0]) or argv[0] in _RESERVED:
        raise PatternError(f"cannot propose a pattern: the program `{argv[0]}` cannot start a pattern")
    for word in argv[1:]:
        if word == "*":
            raise PatternError("cannot propose a pattern: the word `*` would be a wildcard in a pattern")
        if not word:
            raise PatternError("cannot propose a pattern for it exactly: it has an empty word ('')")
        try:
            _check_pattern_word(word)
        except PatternError as exc:
            raise PatternError(f"cannot propose a pattern for it exactly: {exc}") from exc
    return " ".join(argv)


def explain_pattern(pattern: Pattern) -> str:
    """One plain-English sentence saying what the pattern allows."""
    words = pattern.words
    trailing = len(words) > 1 and words[-1] == "*"
    body = list(words[:-1] if trailing else words)
    if "*" not in body:
        prefix = " ".join(body)
        if trailing:
            return f"Allows `{prefix}` followed by any arguments (including none)."
        return f"Allows exactly `{prefix}` with no other arguments."
    parts: list[str] = []
    for word in body:
        if word == "*":
            parts.append("any one argument")
        elif parts and parts[-1].startswith("`"):
            parts[-1] = f"{parts[-1][:-1]} {word}`"
        else:
            parts.append(f"`{word}`")
    end = ", then any further arguments (including none)." if trailing else ", with no other arguments."
    return "Allows " + ", then ".join(parts) + end
