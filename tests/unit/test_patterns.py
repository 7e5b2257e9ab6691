"""Tests for app.core.patterns: the trusted-pattern matcher that lets host commands skip approval.

The TABLE below is the contract: every row is a command and whether the fixed pattern set lets it
run unattended (ALLOW) or sends it to the person's queue (QUEUE). Every ALLOW row is also run through
the real /bin/sh (dash) with fake programs that record their argv, to prove the matcher judged the
same argv dash builds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.core.patterns import (
    Pattern,
    PatternError,
    Verdict,
    check_command,
    explain_pattern,
    parse_literal_commands,
    parse_pattern,
    pattern_matches,
    propose_pattern,
)

PATTERN_TEXTS = [
    "ls *",
    "git status",
    "git diff *",
    "git log *",
    "cat *",
    "echo *",
    "pytest *",
    "grep *",
    "wc *",
    "find *",
]
PATTERNS = [parse_pattern(t) for t in PATTERN_TEXTS]
PROGRAMS = sorted({p.words[0] for p in PATTERNS})
DASH_BUILTINS = {"echo"}  # dash runs its builtin, not a PATH program, so the argv check skips these rows

ALLOW, QUEUE = True, False
LONG_ARGS = "ls " + " ".join(f"file{i}.txt" for i in range(3000))
LONG_CHAIN = " && ".join(["git status"] * 1500)

TABLE = [
    # --- plain commands the patterns cover ---
    pytest.param("ls", ALLOW, id="ls-bare"),
    pytest.param("ls -la", ALLOW, id="ls-flags"),
    pytest.param("ls -la /tmp", ALLOW, id="ls-path-arg"),
    pytest.param("ls   -la  ", ALLOW, id="extra-spaces"),
    pytest.param("ls\t-la", ALLOW, id="tab-separator"),
    pytest.param("ls --color=auto", ALLOW, id="option-with-equals"),
    pytest.param("ls -- -x", ALLOW, id="double-dash"),
    pytest.param("ls 12", ALLOW, id="numeric-arg"),
    pytest.param("ls a~b", ALLOW, id="tilde-mid-word"),
    pytest.param("ls ''", ALLOW, id="empty-single-quoted-arg"),
    pytest.param('ls ""', ALLOW, id="empty-double-quoted-arg"),
    pytest.param("git status", ALLOW, id="git-status-exact"),
    pytest.param("git diff", ALLOW, id="git-diff-no-args"),
    pytest.param("git diff --stat", ALLOW, id="git-diff-stat"),
    pytest.param("git diff HEAD~1 -- app/core", ALLOW, id="git-diff-head-tilde"),
    pytest.param("git log --oneline -n 5", ALLOW, id="git-log"),
    pytest.param("git log HEAD^..main", ALLOW, id="git-log-caret"),
    pytest.param("git diff -- 'file with spaces.txt'", ALLOW, id="quoted-arg-with-spaces"),
    pytest.param("cat README.md", ALLOW, id="cat"),
    pytest.param("cat a\"b\"'c'", ALLOW, id="concatenated-quotes-arg"),
    pytest.param("echo hello world", ALLOW, id="echo"),
    pytest.param("echo a=b", ALLOW, id="assignment-like-arg"),
    pytest.param("echo 'multi\nline'", ALLOW, id="newline-inside-quotes"),
    pytest.param("pytest tests/unit -q", ALLOW, id="pytest"),
    pytest.param("pytest -k 'not slow'", ALLOW, id="pytest-quoted-expr"),
    pytest.param("grep -rn TODO app", ALLOW, id="grep"),
    pytest.param("grep -n '#' app.py", ALLOW, id="quoted-hash"),
    pytest.param("grep 'it''s' x", ALLOW, id="adjacent-single-quotes-arg"),
    pytest.param('grep "say \\"hi\\"" x', ALLOW, id="escaped-dquote-in-dquotes"),
    pytest.param("grep 'a;b|c&d>e' x", ALLOW, id="metachars-single-quoted"),
    pytest.param("grep '$HOME' x", ALLOW, id="dollar-single-quoted"),
    pytest.param('grep "\\$HOME" x', ALLOW, id="escaped-dollar-in-dquotes"),
    pytest.param('grep -e "a\\\\b" -e "c\\.d" x', ALLOW, id="backslashes-in-dquotes"),
    pytest.param("grep '*.py' x", ALLOW, id="glob-single-quoted"),
    pytest.param("grep '~' x", ALLOW, id="tilde-quoted"),
    pytest.param("wc -l README.md", ALLOW, id="wc"),
    pytest.param("find . -name '*.py'", ALLOW, id="find-name-quoted-glob"),
    # The person trusted `find *`: that accepts ANY find arguments, including -delete and -exec.
    # This is their choice; it is why propose_pattern never proposes a bare `*` or a broader pattern.
    pytest.param("find . -delete", ALLOW, id="find-delete-accepted-by-find-star"),
    pytest.param("find . -exec rm -rf / ';'", ALLOW, id="find-exec-accepted-by-find-star"),
    # Unquoted `;` ends the find command (find gets `-exec rm -rf /`); still only find runs.
    pytest.param("find . -exec rm -rf / ;", ALLOW, id="find-exec-unquoted-semicolon"),
    # --- chaining where every part is covered ---
    pytest.param("ls; git status", ALLOW, id="semicolon-both-trusted"),
    pytest.param("ls;", ALLOW, id="trailing-semicolon"),
    pytest.param("ls && git status", ALLOW, id="and-both-trusted"),
    pytest.param("ls&&git status", ALLOW, id="and-no-spaces"),
    pytest.param("ls || echo none", ALLOW, id="or-both-trusted"),
    pytest.param("ls | wc -l", ALLOW, id="pipe-both-trusted"),
    pytest.param("cat x | grep y | wc -l", ALLOW, id="pipeline-three"),
    pytest.param("ls\ngit status", ALLOW, id="newline-both-trusted"),
    pytest.param("ls &&\ngit status", ALLOW, id="and-newline"),
    pytest.param("git diff && pytest -q || echo failed", ALLOW, id="and-or-mix"),
    pytest.param(LONG_ARGS, ALLOW, id="very-long-args"),
    pytest.param(LONG_CHAIN, ALLOW, id="very-long-chain"),
    # --- programs or arguments not covered ---
    pytest.param("rm -rf /", QUEUE, id="untrusted-program"),
    pytest.param("git push", QUEUE, id="git-push"),
    pytest.param("git status --short", QUEUE, id="exact-pattern-extra-arg"),
    pytest.param("git difftool", QUEUE, id="git-difftool-not-diff"),
    pytest.param("git -C /tmp diff", QUEUE, id="git-option-before-subcommand"),
    pytest.param("ls; rm -rf /", QUEUE, id="semicolon-rm"),
    pytest.param("ls && rm x", QUEUE, id="and-rm"),
    pytest.param("ls || rm x", QUEUE, id="or-rm"),
    pytest.param("ls | sh", QUEUE, id="pipe-to-sh"),
    pytest.param("ls\nrm x", QUEUE, id="newline-rm"),
    pytest.param("exec ls", QUEUE, id="exec-prefix"),
    pytest.param("eval ls", QUEUE, id="eval-prefix"),
    pytest.param("sudo ls", QUEUE, id="sudo-prefix"),
    pytest.param("env ls", QUEUE, id="env-prefix"),
    pytest.param("xargs rm < list", QUEUE, id="xargs"),
    pytest.param("sh -c 'ls'", QUEUE, id="sh-c"),
    pytest.param("time ls", QUEUE, id="time-keyword"),
    pytest.param("echo a; then", QUEUE, id="keyword-as-program"),
    # --- path-prefixed and disguised program names ---
    pytest.param("./ls", QUEUE, id="dot-slash-program"),
    pytest.param("/bin/ls", QUEUE, id="absolute-program"),
    pytest.param("../ls", QUEUE, id="parent-program"),
    pytest.param("bin/ls -la", QUEUE, id="relative-program"),
    pytest.param("'l''s'", QUEUE, id="program-split-quotes"),
    pytest.param('"ls"', QUEUE, id="program-double-quoted"),
    pytest.param("\\ls", QUEUE, id="program-backslash-alias-bypass"),
    pytest.param("l\\s", QUEUE, id="program-inner-backslash"),
    pytest.param("ls\\\n -la", QUEUE, id="backslash-newline"),
    pytest.param("ls a\\ b", QUEUE, id="escaped-space-arg"),
    # --- substitutions and expansions ---
    pytest.param("ls $(rm x)", QUEUE, id="command-substitution"),
    pytest.param("ls `rm x`", QUEUE, id="backticks"),
    pytest.param('ls "$(rm x)"', QUEUE, id="command-substitution-in-dquotes"),
    pytest.param('ls "`rm x`"', QUEUE, id="backticks-in-dquotes"),
    pytest.param("$(echo ls)", QUEUE, id="substituted-program"),
    pytest.param("cat <(rm x)", QUEUE, id="process-substitution"),
    pytest.param("ls $HOME", QUEUE, id="variable"),
    pytest.param("ls ${HOME}", QUEUE, id="braced-variable"),
    pytest.param('ls "$HOME"', QUEUE, id="variable-in-dquotes"),
    pytest.param("ls $", QUEUE, id="lone-dollar"),
    pytest.param("echo $((1+1))", QUEUE, id="arithmetic"),
    pytest.param("echo $'\\x41'", QUEUE, id="ansi-c-string"),
    pytest.param('echo $"x"', QUEUE, id="translated-string"),
    # --- assignments and redirections ---
    pytest.param("PATH=/tmp ls", QUEUE, id="env-assignment-prefix"),
    pytest.param("LD_PRELOAD=/tmp/x.so ls", QUEUE, id="ld-preload"),
    pytest.param("export A=1", QUEUE, id="export"),
    pytest.param("ls > out", QUEUE, id="redirect-out"),
    pytest.param("ls >> out", QUEUE, id="redirect-append"),
    pytest.param("cat < in", QUEUE, id="redirect-in"),
    pytest.param("ls 2>err", QUEUE, id="redirect-stderr"),
    pytest.param("ls 2>&1", QUEUE, id="redirect-dup"),
    pytest.param("ls &> out", QUEUE, id="redirect-both"),
    pytest.param("ls>out", QUEUE, id="redirect-no-space"),
    pytest.param("cat <<EOF\nx\nEOF", QUEUE, id="heredoc"),
    pytest.param("cat <<< x", QUEUE, id="herestring"),
    # --- grouping, background, control flow ---
    pytest.param("(ls)", QUEUE, id="subshell"),
    pytest.param("{ ls; }", QUEUE, id="brace-group"),
    pytest.param("ls &", QUEUE, id="background"),
    pytest.param("ls & rm x", QUEUE, id="background-then-rm"),
    pytest.param("ls |& wc", QUEUE, id="pipe-stderr"),
    pytest.param("if true; then ls; fi", QUEUE, id="if"),
    pytest.param("for f in a; do ls; done", QUEUE, id="for"),
    pytest.param("while ls; do ls; done", QUEUE, id="while"),
    pytest.param("case x in x) ls;; esac", QUEUE, id="case"),
    pytest.param("f(){ ls; }; f", QUEUE, id="function"),
    pytest.param("! ls", QUEUE, id="negation"),
    pytest.param("[[ -f x ]]", QUEUE, id="double-bracket-test"),
    # Comments are refused for simplicity, even though a trailing comment would be harmless.
    pytest.param("ls # list", QUEUE, id="comment"),
    pytest.param("ls a#b", QUEUE, id="hash-in-word"),
    # --- globs, braces, tilde, history ---
    pytest.param("ls *.py", QUEUE, id="glob-star"),
    pytest.param("ls ?", QUEUE, id="glob-question"),
    pytest.param("ls [ab]", QUEUE, id="glob-bracket"),
    pytest.param("ls {a,b}", QUEUE, id="brace-expansion"),
    pytest.param("ls ~", QUEUE, id="tilde"),
    pytest.param("ls ~/x", QUEUE, id="tilde-path"),
    pytest.param("ls --dir=~/x", QUEUE, id="tilde-after-equals"),
    pytest.param("echo hi!", QUEUE, id="bang-unquoted"),
    pytest.param('echo "hi!"', QUEUE, id="bang-in-dquotes"),
    # --- parse errors and empty input ---
    pytest.param("ls 'unbalanced", QUEUE, id="unbalanced-single-quote"),
    pytest.param('ls "unbalanced', QUEUE, id="unbalanced-double-quote"),
    pytest.param("", QUEUE, id="empty"),
    pytest.param("   ", QUEUE, id="whitespace-only"),
    pytest.param("\n", QUEUE, id="newline-only"),
    pytest.param("; ls", QUEUE, id="leading-semicolon"),
    pytest.param("ls;;", QUEUE, id="double-semicolon"),
    pytest.param("ls &&", QUEUE, id="dangling-and"),
    pytest.param("ls\n| wc", QUEUE, id="pipe-after-newline"),
    pytest.param("ls " + "a" * 100_000, QUEUE, id="over-length-limit"),
    # --- control characters, invisible and look-alike characters ---
    pytest.param("ls\r", QUEUE, id="carriage-return"),
    pytest.param("ls\rrm -rf /", QUEUE, id="carriage-return-hides-rm"),
    pytest.param("ls\x00rm", QUEUE, id="nul"),
    pytest.param("echo \x1b[31mred", QUEUE, id="escape-sequence"),
    pytest.param("ls\x0b-la", QUEUE, id="vertical-tab"),
    pytest.param("ls\x7f", QUEUE, id="delete-char"),
    pytest.param("ls\x85", QUEUE, id="c1-next-line"),
    pytest.param("l\u0455", QUEUE, id="cyrillic-dze-lookalike"),
    pytest.param("\u0441at x", QUEUE, id="cyrillic-es-lookalike"),
    pytest.param("\uff4c\uff53", QUEUE, id="fullwidth-ls"),
    pytest.param("ls '\u202etxt.exe'", QUEUE, id="bidi-override-in-quotes"),
    pytest.param("ls \u2066x\u2069", QUEUE, id="bidi-isolate"),
    pytest.param("ls\u200b", QUEUE, id="zero-width-space"),
    pytest.param("git\u200bstatus", QUEUE, id="zero-width-between-words"),
    pytest.param("ls\ufeff", QUEUE, id="bom"),
    pytest.param("ls\u2028rm x", QUEUE, id="line-separator"),
    pytest.param("ls\u00a0-la", QUEUE, id="no-break-space"),
    # Non-ASCII text is refused even when quoted: a person checks it.
    pytest.param("grep 'caf\u00e9' x", QUEUE, id="non-ascii-quoted-arg"),
]


def _command_ids() -> list[str]:
    return [str(p.id) for p in TABLE]


def test_table_is_large_and_ids_unique() -> None:
    assert len(TABLE) >= 100
    assert len(set(_command_ids())) == len(TABLE)


@pytest.mark.parametrize(("command", "expected"), TABLE)
def test_table(command: str, expected: bool) -> None:
    verdict = check_command(command, PATTERNS)
    assert isinstance(verdict, Verdict)
    assert verdict.allowed is expected, verdict.reason
    assert verdict.reason
    if expected:
        assert verdict.pattern is not None
    else:
        assert verdict.pattern is None


ALLOWED_ROWS = [p for p in TABLE if p.values[1] is ALLOW]

FAKE_PROGRAM = """#!{python}
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
sys.exit(int(os.environ["FAKE_STATUS"]))
"""


@pytest.fixture(scope="module")
def fake_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PATH directory holding one fake program per trusted program; each logs its argv."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for name in PROGRAMS:
        script = bin_dir / name
        script.write_text(FAKE_PROGRAM.format(python=sys.executable))
        script.chmod(0o755)
    return bin_dir


def _run_dash(command: str, bin_dir: Path, work: Path, status: int) -> list[list[str]]:
    log = work / f"argv-{status}.log"
    log.write_text("")
    env = {"PATH": str(bin_dir), "ARGV_LOG": str(log), "FAKE_STATUS": str(status), "HOME": str(work)}
    subprocess.run(["/bin/sh", "-c", command], env=env, cwd=work, timeout=60, check=False, capture_output=True)
    return [json.loads(line) for line in log.read_text().splitlines()]


def _runnable_by_dash(row: object) -> bool:
    """Rows whose programs /bin/sh really starts (not its own builtins), and not hundreds of them."""
    computed = parse_literal_commands(str(row.values[0]))  # type: ignore[attr-defined]
    return not any(argv[0] in DASH_BUILTINS for argv in computed) and len(computed) <= 50


DASH_ROWS = [p for p in ALLOWED_ROWS if _runnable_by_dash(p)]


@pytest.mark.parametrize(("command", "expected"), DASH_ROWS)
def test_allowed_rows_match_argv_built_by_dash(command: str, expected: bool, fake_bin: Path, tmp_path: Path) -> None:
    """The argv the matcher judged is exactly the argv /bin/sh passes to each program it runs."""
    computed = parse_literal_commands(command)
    # With every program exiting 0, all `&&` branches run; exiting 1, all `||` branches run.
    seen = _run_dash(command, fake_bin, tmp_path, 0) + _run_dash(command, fake_bin, tmp_path, 1)
    expected_set = {json.dumps(argv) for argv in computed}
    assert {json.dumps(argv) for argv in seen} == expected_set


def test_dash_check_covers_most_allowed_rows() -> None:
    assert len(DASH_ROWS) >= 40


# --- reasons ---


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ("rm -rf /", "`rm` is not covered by any trusted pattern"),
        ("git push origin", "`git push origin` is not covered by any trusted pattern"),
        ("ls $(rm x)", "command substitution"),
        ("ls $HOME", "expands a variable"),
        ("ls > f", "redirects"),
        ("ls &", "background"),
        ("./ls", "by path"),
        ("'l''s'", "quoted"),
        ("ls 'x", "cannot be parsed"),
        ("ls\r", "U+000D"),
        ("l\u0455", "U+0455"),
        ("ls *.py", "glob"),
        ("echo $'a'", "dash"),
        ("", "empty"),
    ],
)
def test_refusal_reasons(command: str, fragment: str) -> None:
    verdict = check_command(command, PATTERNS)
    assert not verdict.allowed
    assert fragment in verdict.reason


def test_allowed_verdict_names_patterns() -> None:
    verdict = check_command("ls | wc -l && git status", PATTERNS)
    assert verdict.allowed
    assert verdict.pattern == "ls *; wc *; git status"
    assert "`ls *`" in verdict.reason


def test_no_patterns_allows_nothing() -> None:
    assert not check_command("ls", []).allowed


# --- parse_literal_commands ---


def test_parse_literal_commands_values() -> None:
    assert parse_literal_commands("git diff -- 'a b' c\"d\"'e' \"x\\\"y\" '' ; ls\nwc -l") == [
        ["git", "diff", "--", "a b", "cde", 'x"y', ""],
        ["ls"],
        ["wc", "-l"],
    ]


def test_parse_literal_commands_raises_with_reason() -> None:
    with pytest.raises(PatternError, match="command substitution"):
        parse_literal_commands("ls $(x)")


# --- parse_pattern ---


def test_parse_pattern_normalises() -> None:
    pattern = parse_pattern("  git   diff  * ")
    assert pattern == Pattern(text="git diff *", words=("git", "diff", "*"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("*", "literal"),
        ("* foo", "literal"),
        ("./ls *", "bare name"),
        ("/bin/ls", "bare name"),
        ("'ls' *", "bare name"),
        ("ls*", "bare name"),
        ("git diff*", "whole word"),
        ("ls a*b", "whole word"),
        ("ls ;", "`;`"),
        ("ls | wc", "`|`"),
        ("ls $HOME", "`$`"),
        ("ls `x`", "`"),
        ("ls 'x'", "`'`"),
        ("ls {a}", "`{`"),
        ("ls !", "`!`"),
        ("ls ~", "`~`"),
        ("ls ?", "`?`"),
        ("ls\t*", "control"),
        ("ls\n*", "control"),
        ("ls \u200b", "U+200B"),
        ("\uff4c\uff53 *", "non-ASCII"),
        ("if *", "keyword"),
        ("ls " + "a" * 2000, "longer"),
    ],
)
def test_parse_pattern_errors(text: str, fragment: str) -> None:
    with pytest.raises(PatternError, match=None) as info:
        parse_pattern(text)
    assert fragment in str(info.value)


def test_pattern_error_is_value_error() -> None:
    assert issubclass(PatternError, ValueError)


# --- pattern_matches ---


@pytest.mark.parametrize(
    ("pattern", "command", "expected"),
    [
        ("git diff *", "git status", False),
        ("git diff *", "git diff", True),
        ("git diff *", "git diff a b c", True),
        ("git status", "git status", True),
        ("git status", "git status -s", False),
        ("git status", "git", False),
        ("git * --stat", "git diff --stat", True),
        ("git * --stat", "git --stat", False),
        ("git * --stat", "git diff x --stat", False),
        ("git * --stat", "git 'a b' --stat", True),
        ("git * *", "git diff", True),
        ("git * *", "git", False),
        ("ls *", "lsof", False),
        ("ls *", "/bin/ls", False),
        ("ls", "ls -la", False),
        ("ls -la", "ls '-la'", True),
    ],
)
def test_pattern_matches(pattern: str, command: str, expected: bool) -> None:
    assert pattern_matches(parse_pattern(pattern), command) is expected


# --- propose_pattern ---


@pytest.mark.parametrize(
    ("command", "proposal"),
    [
        ("git diff --stat", "git diff --stat"),
        ("git status", "git status"),
        ("ls -la /tmp", "ls -la /tmp"),
        ("ls", "ls"),
        ("python -m pytest", "python -m pytest"),
        ("sh -c true", "sh -c true"),
        ("git -C sub status", "git -C sub status"),
        ("git 'diff' x", "git diff x"),
        ("make -j4", "make -j4"),
    ],
)
def test_approve_and_trust_proposes_the_exact_command(command: str, proposal: str) -> None:
    """Attack (finding 7): "Approve & trust" on `python -m pytest` proposed `python *`, on `sh -c true` `sh *`,
    on `git -C sub status` `git *` -- each a pattern that lets the agent run anything. The proposal is the
    exact command: it allows that command and no other."""
    assert propose_pattern(command) == proposal
    pattern = parse_pattern(proposal)
    assert "*" not in pattern.words
    assert pattern_matches(pattern, command)
    assert not pattern_matches(pattern, command + " --extra")


@pytest.mark.parametrize(
    "command", ["", "ls $(x)", "./ls", "ls > f", "'l''s'", "l\u0455", "ls | wc -l", "echo '*'", "echo 'a b'"]
)
def test_propose_pattern_refuses_what_no_exact_pattern_can_hold(command: str) -> None:
    with pytest.raises(PatternError):
        propose_pattern(command)


@pytest.mark.parametrize(("command", "expected"), ALLOWED_ROWS)
def test_a_proposal_allows_exactly_its_command(command: str, expected: bool) -> None:
    try:
        proposal = parse_pattern(propose_pattern(command))
    except PatternError:
        return  # several commands or words no pattern can hold: nothing is proposed
    assert "*" not in proposal.words
    assert check_command(command, [proposal]).allowed


# --- explain_pattern ---


@pytest.mark.parametrize(
    ("pattern", "sentence"),
    [
        ("git diff *", "Allows `git diff` followed by any arguments (including none)."),
        ("git status", "Allows exactly `git status` with no other arguments."),
        ("ls *", "Allows `ls` followed by any arguments (including none)."),
        ("git * --stat", "Allows `git`, then any one argument, then `--stat`, with no other arguments."),
        (
            "git log * -n *",
            "Allows `git log`, then any one argument, then `-n`, then any further arguments (including none).",
        ),
    ],
)
def test_explain_pattern(pattern: str, sentence: str) -> None:
    assert explain_pattern(parse_pattern(pattern)) == sentence


# --- threads ---


def test_check_command_is_thread_safe() -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(200):
                assert check_command("git diff --stat && ls | wc -l", PATTERNS).allowed
                assert not check_command("ls; rm -rf /", PATTERNS).allowed
        except BaseException as exc:  # collected, asserted empty below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
