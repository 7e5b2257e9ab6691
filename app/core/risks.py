"""What a host command could do that deserves a second look, read from its parse tree: the risk chips.

The trusted-pattern matcher (patterns.py) refuses anything it cannot prove literal; this module reads the
same tree-sitter-bash tree the other way round: it accepts every command, walks every simple command in it
(inside pipelines, lists, subshells, `$(...)`, `<(...)`, `sh -c '...'`, after `sudo`, `env`, `xargs`,
`find -exec`), and names what it sees:

- ``root``: `sudo`, `doas`, `pkexec`, `su`, `run0` -- "sudo: runs as root";
- ``deletes``: `rm`, `rmdir`, `unlink`, `shred`, `find -delete`, `git clean -f`, `rsync --delete`, `mkfs`...;
- ``download-exec``: a downloader (`curl`, `wget`...) piped into, substituted into or saved for a shell or
  interpreter (`curl x | sh`, `sh -c "$(curl x)"`, `bash <(curl x)`, `wget -O i.sh x && sh i.sh`);
- ``writes-outside``: a redirection, `tee`, `cp`/`mv`/`ln`/`install` target, `touch`, `mkdir`, `dd of=`,
  `chmod`/`chown` or deletion whose path leaves the folder it runs in (absolute elsewhere, `..`, `~`, or
  an expansion such as `$HOME` that cannot be known before it runs); a `cd` elsewhere moves later paths;
- ``hidden``: look-alike or hidden characters in the command or its folder (display.py).

A chip is a reason to read carefully, never a verdict: the list is best effort (a program can delete files
under any name) and is shown beside the exact command, not instead of it. Pure and Qt-free; the Approval
Queue shows the chips and `approvals.list` returns them as `risks`.
"""

from __future__ import annotations

import functools
import itertools
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from tree_sitter import Node

from app.core.display import describe_suspicious, needs_warning
from app.core.patterns import _parser as shell_parser  # the one tree-sitter-bash grammar of the core

__all__ = ["RISK_KINDS", "Risk", "command_risks"]

# In the order the chips are shown: the gravest first.
RISK_KINDS = ("hidden", "download-exec", "root", "deletes", "writes-outside")

ROOT_PROGRAMS = frozenset({"sudo", "doas", "pkexec", "su", "run0", "sudoedit"})
DELETERS = frozenset({"rm", "rmdir", "unlink", "shred", "srm", "wipe", "wipefs"})
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "https", "xh", "lwp-download", "lynx"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "ash", "busybox"})
INTERPRETERS = SHELLS | frozenset(
    {"python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "deno", "bun", "Rscript"}
)
RUNS_TEXT = frozenset({"eval", "source", "."})
# Programs that run the rest of their arguments as a command (after their own options).
WRAPPERS = frozenset(
    {"env", "nice", "nohup", "time", "exec", "command", "builtin", "timeout", "stdbuf", "ionice", "xargs", "setsid",
     "chrt", "taskset", "flock", "unbuffer", "watch", "strace", "ltrace", "catchsegv", "chroot", "runuser", "sg",
     "fakeroot", "proot", "firejail", "systemd-run", "script"}
)  # fmt: skip


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Options of a wrapper (or of sudo) that take a value as the next word.
_WRAPPER_VALUE_OPTIONS = {
    "sudo": _words("-u -g -C -h -p -U -r -t -D -T --user --group --host --prompt --chdir --role --type"),
    "doas": _words("-u -C"),
    "su": _words("-g -G -s --group --supp-group --shell -w --whitelist-environment"),
    "pkexec": _words("--user"),
    "run0": _words("-u -g -D --user --group --chdir --setenv --property --unit --slice --nice"),
    "env": _words("-u -C -S --unset --chdir --split-string"),
    "nice": _words("-n --adjustment"),
    "timeout": _words("-s -k --signal --kill-after"),
    "ionice": _words("-c -n -p -P -u --class --classdata"),
    "xargs": _words("-a -d -E -e -I -i -L -l -n -P -s --arg-file --delimiter --max-args --max-procs"),
    "stdbuf": _words("-i -o -e"),
    "flock": _words("-w -E --timeout --conflict-exit-code"),
    "watch": _words("-n -d --interval"),
    "chrt": _words("-p"),
    "taskset": _words("-p -c"),
    "strace": _words("-e -o -p -s -u"),
    "systemd-run": _words("-u -p -E --unit --property --setenv --uid --gid"),
    "runuser": _words("-u -g -G -s --user --group --shell"),
}
# Program -> the options after which the next word is a file it writes.
_OUTPUT_OPTIONS = {
    "curl": frozenset({"-o", "--output"}),
    "wget": frozenset({"-O", "--output-document"}),
    "sort": frozenset({"-o", "--output"}),
    "aria2c": frozenset({"-o", "--out"}),
}
_COPIERS = frozenset({"cp", "mv", "ln", "install", "rsync", "scp"})
_MAKERS = frozenset({"touch", "mkdir", "mkfifo", "truncate", "tee"})
_CHANGERS = frozenset({"chmod", "chown", "chgrp", "setfacl", "chattr"})  # the first word is a mode or owner
_SAFE_DEVICES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero", "/dev/full"})
_MAX_DEPTH = 4  # `sh -c "sh -c '...'"` nesting followed at most this deep


@dataclass(frozen=True)
class Risk:
    """One chip: ``kind`` (RISK_KINDS), ``label`` (the chip's text), ``detail`` (why, naming the part)."""

    kind: str
    label: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "label": self.label, "detail": self.detail}


@dataclass
class _Command:
    """One simple command as the shell would roughly see it: the program's base name and its words."""

    program: str
    args: list[str]
    text: str
    path: str = ""  # the program word as written (`./install.sh`, `/bin/rm`)


@dataclass
class _Scan:
    cwd: str | None
    here: str | None  # where relative paths point now (a `cd` moves it); `.`: the folder; None: unknown
    found: dict[str, Risk] = field(default_factory=dict)
    downloaded: set[str] = field(default_factory=set)  # files a downloader wrote (run later: download-exec)

    def add(self, kind: str, label: str, detail: str) -> None:
        self.found.setdefault(kind, Risk(kind, label, detail))


@functools.lru_cache(maxsize=1024)  # the queue lists the same requests again at every reload
def command_risks(command: str, cwd: str | None = None) -> tuple[Risk, ...]:
    """The risks of ``command`` run in ``cwd`` (a real absolute path; None: paths are judged without it)."""
    scan = _Scan(cwd, cwd or ".")
    for what, text in (("command", command), ("folder", cwd or "")):
        if text and needs_warning(text):
            found = describe_suspicious(text)
            scan.add("hidden", "hidden characters", f"The {what} has {found[0].lower()}{found[1:]}")
            break
    try:
        _scan_source(command, scan, 0)
    except RecursionError:  # thousands of nested `(`: judge the bare words (never a crash in the queue)
        _scan_source(command, scan, _MAX_DEPTH + 1)
    return tuple(scan.found[k] for k in RISK_KINDS if k in scan.found)


# -- the tree ----------------------------------------------------------------------------------------


def _scan_source(source: str, scan: _Scan, depth: int) -> None:
    if not source.strip():
        return
    if depth > _MAX_DEPTH:  # nested deeper than anyone writes by hand: look at the bare words instead
        words = set(re.findall(r"[A-Za-z0-9_.+-]+", source))
        for program in sorted(words & ROOT_PROGRAMS):
            scan.add("root", f"{program}: runs as root", f"`{program}` runs a command as root, deep in nested shells.")
        if words & DELETERS:
            scan.add("deletes", "deletes files", "A command deep in nested shells deletes files.")
        return
    src = source.encode("utf-8", errors="surrogatepass")
    root = shell_parser().parse(src).root_node
    _walk(root, src, scan, depth)


def _text(node: Node, src: bytes) -> str:
    return src[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _walk(node: Node, src: bytes, scan: _Scan, depth: int) -> None:
    """Every statement in source order (so a `cd` applies to what follows); pipelines as a whole."""
    kind = node.type
    if kind == "pipeline":
        _pipeline(node, src, scan, depth)
        return
    if kind == "command":
        _command_node(node, src, scan, depth)
        return
    if kind == "file_redirect":
        _redirect(node, src, scan)
        return
    for child in node.children:
        _walk(child, src, scan, depth)


def _pipeline(node: Node, src: bytes, scan: _Scan, depth: int) -> None:
    stages = [c for c in node.children if c.is_named]
    seen_download: str | None = None
    for stage in stages:
        commands = list(_commands_in(stage, src))
        first = commands[0] if commands else None
        if first is not None and seen_download and _runs_code(first):
            scan.add(
                "download-exec",
                "downloads and runs code",
                f"`{seen_download}` downloads code and `{first.program}` runs it, unseen by you.",
            )
        if any(c.program in DOWNLOADERS for c in commands):
            seen_download = next(c.program for c in commands if c.program in DOWNLOADERS)
        _walk(stage, src, scan, depth)


def _commands_in(node: Node, src: bytes) -> Iterator[_Command]:
    """The simple commands at the top of a pipeline stage (a `cmd > file` or a `( ... )` too)."""
    if node.type == "command":
        cmd = _to_command(node, src)
        if cmd is not None:
            yield from _unwrapped(cmd)
        return
    for child in node.children:
        if child.type in ("command", "redirected_statement", "subshell", "compound_statement", "list"):
            yield from _commands_in(child, src)


def _to_command(node: Node, src: bytes) -> _Command | None:
    name = node.child_by_field_name("name")
    if name is None:
        return None
    words: list[str] = []
    for child in node.children:
        if child.type in ("command_name", "variable_assignment", "file_redirect", "herestring_redirect"):
            continue
        if child.is_named:
            words.append(_word(child, src))
    program_word = _word(name, src)
    return _Command(posixpath.basename(program_word), words, _text(node, src), program_word)


def _word(node: Node, src: bytes) -> str:
    """A word roughly as the shell passes it: quotes and backslashes gone, expansions kept as written."""
    text = _text(node, src)
    out: list[str] = []
    i, n, double = 0, len(text), False
    while i < n:
        ch = text[i]
        if double:
            if ch == '"':
                double = False
            elif ch == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                i += 1
                out.append(text[i])
            else:
                out.append(ch)
            i += 1
        elif ch == "'":
            end = text.find("'", i + 1)
            end = n if end < 0 else end
            out.append(text[i + 1 : end])
            i = end + 1
        elif ch == '"':
            double = True
            i += 1
        elif ch == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _unwrapped(cmd: _Command) -> Iterator[_Command]:
    """The command itself, then what a wrapper (`sudo`, `env`, `xargs`, `find -exec`) runs, recursively."""
    yield cmd
    program, args = cmd.program, cmd.args
    if program in ROOT_PROGRAMS or program in WRAPPERS:
        if program == "su":  # su [options] [user] -c COMMAND
            inner = _option_value(args, ("-c", "--command"))
            if inner is not None:
                yield _Command("sh", ["-c", inner], cmd.text)
            return
        values = _WRAPPER_VALUE_OPTIONS.get(program, frozenset())
        i = 0
        while i < len(args):
            word = args[i]
            if word == "--":
                i += 1
                break
            if word.startswith("-") or (program == "env" and "=" in word and not word.startswith("=")):
                i += 2 if word in values else 1
                continue
            if program == "timeout" and re.fullmatch(r"[0-9.]+[smhd]?", word):
                i += 1
                continue
            break
        rest = args[i:]
        if rest:
            yield from _unwrapped(_Command(posixpath.basename(rest[0]), rest[1:], cmd.text, rest[0]))
    elif program == "find":
        for i, word in enumerate(args):
            if word in ("-exec", "-execdir", "-ok", "-okdir") and i + 1 < len(args):
                end = next((j for j in range(i + 1, len(args)) if args[j] in (";", "+")), len(args))
                run = args[i + 1 : end]
                if run:
                    yield from _unwrapped(_Command(posixpath.basename(run[0]), run[1:], cmd.text, run[0]))


def _option_value(args: list[str], names: tuple[str, ...]) -> str | None:
    for i, word in enumerate(args):
        if word in names and i + 1 < len(args):
            return args[i + 1]
    return None


def _runs_code(cmd: _Command) -> bool:
    """Does this command run what it reads (a shell or interpreter reading stdin or text, `eval`, `source`)?"""
    return any(c.program in INTERPRETERS or c.program in RUNS_TEXT for c in _unwrapped(cmd))


# -- one simple command ------------------------------------------------------------------------------


def _command_node(node: Node, src: bytes, scan: _Scan, depth: int) -> None:
    # Substitutions inside the words run first: `sh -c "$(curl x)"`, `bash <(curl x)`.
    for child in node.children:
        if child.type != "command_name":
            _walk_substitutions(child, src, scan, depth)
    cmd = _to_command(node, src)
    if cmd is None:
        for child in node.children:  # a bare assignment `X=$(...)`
            _walk(child, src, scan, depth)
        return
    for child in node.children:
        if child.type == "file_redirect":
            _redirect(child, src, scan)
    substituted_download = _downloads_in_words(node, src)
    for c in _unwrapped(cmd):
        _judge(c, scan, depth)
        if substituted_download and (c.program in INTERPRETERS or c.program in RUNS_TEXT):
            scan.add(
                "download-exec",
                "downloads and runs code",
                f"`{c.program}` runs what `{substituted_download}` downloads, unseen by you.",
            )


def _walk_substitutions(node: Node, src: bytes, scan: _Scan, depth: int) -> None:
    if node.type in ("command_substitution", "process_substitution"):
        for child in node.children:
            _walk(child, src, scan, depth)
        return
    for child in node.children:
        _walk_substitutions(child, src, scan, depth)


def _downloads_in_words(node: Node, src: bytes) -> str | None:
    """The downloader inside a `$(...)`, backticks or `<(...)` among the command's words, if any."""
    stack = [c for c in node.children if c.type != "command_name"]
    while stack:
        current = stack.pop()
        if current.type in ("command_substitution", "process_substitution"):
            for cmd_node in _descendants(current, "command"):
                cmd = _to_command(cmd_node, src)
                if cmd is not None:
                    for c in _unwrapped(cmd):
                        if c.program in DOWNLOADERS:
                            return c.program
            continue
        stack.extend(current.children)
    return None


def _descendants(node: Node, kind: str) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == kind:
            yield current
        stack.extend(current.children)


def _judge(c: _Command, scan: _Scan, depth: int) -> None:
    program, args = c.program, c.args
    if program in ROOT_PROGRAMS:
        scan.add("root", f"{program}: runs as root", f"`{program}` runs the command as root: it can change anything.")
    if program in DELETERS or program.startswith("mkfs"):
        scan.add("deletes", "deletes files", f"`{program}` deletes files.")
        _targets(c, [a for a in args if not a.startswith("-")], scan)
    elif program == "find" and ("-delete" in args or _find_execs_deleter(args)):
        how = "-delete" if "-delete" in args else "-exec rm"
        scan.add("deletes", "deletes files", f"`find {how}` deletes every file it finds.")
        roots = [a for a in args[: next((i for i, a in enumerate(args) if a.startswith("-")), len(args))]]
        _targets(c, roots or ["."], scan)
    elif program == "git" and "clean" in args and any(re.fullmatch(r"-[a-zA-Z]*f[a-zA-Z]*|--force", a) for a in args):
        scan.add("deletes", "deletes files", "`git clean -f` deletes the files git does not track.")
    elif program == "rsync" and any(a.startswith("--delete") or a == "--remove-source-files" for a in args):
        scan.add("deletes", "deletes files", "`rsync --delete` deletes files at the destination.")
    if program in _COPIERS:
        words = [a for a in args if not a.startswith("-")]
        target = _option_value(args, ("-t", "--target-directory"))
        if target is not None:
            _targets(c, [target], scan)
        elif len(words) >= 2:
            _targets(c, [words[-1]] + (words[:-1] if program == "mv" else []), scan)
    elif program in _MAKERS:
        _targets(c, [a for a in args if not a.startswith("-")], scan)
    elif program in _CHANGERS:
        _targets(c, [a for a in args if not a.startswith("-")][1:], scan)
    elif program == "dd":
        _targets(c, [a[3:] for a in args if a.startswith("of=")], scan)
    elif program == "sed" and any(a == "-i" or a.startswith(("-i", "--in-place")) for a in args):
        words = [a for a in args if not a.startswith("-")]
        _targets(c, words[1:], scan)
    if program in _OUTPUT_OPTIONS:
        out = _option_value(args, tuple(_OUTPUT_OPTIONS[program]))
        if out is not None and out != "-":
            _targets(c, [out], scan)
            if program in DOWNLOADERS:
                scan.downloaded.add(_norm(out))
    if program == "wget" and _option_value(args, ("-O", "--output-document")) is None:
        scan.downloaded.update(_norm(posixpath.basename(a.split("?")[0])) for a in args if "://" in a)
    if program == "cd":
        words = [a for a in args if not a.startswith("-")]
        scan.here = _resolve(scan.here, words[0] if words else "~")
    _runs_download(c, scan)
    if program in SHELLS or program in ("su",):
        inner = _option_value(args, ("-c",))
        if inner is not None:
            _scan_source(inner, scan, depth + 1)


def _find_execs_deleter(args: list[str]) -> bool:
    execs = ("-exec", "-execdir", "-ok", "-okdir")
    following = itertools.pairwise(args)
    return any(word in execs and posixpath.basename(program) in DELETERS for word, program in following)


def _runs_download(c: _Command, scan: _Scan) -> None:
    """`sh install.sh`, `./install.sh`, `source install.sh` after a downloader saved it."""
    if not scan.downloaded:
        return
    candidates = [c.path] if "/" in c.path or c.path in scan.downloaded else []
    if c.program in INTERPRETERS or c.program in RUNS_TEXT:
        candidates += [a for a in c.args if not a.startswith("-")][:1]
    for word in candidates:
        if _norm(word) in scan.downloaded:
            scan.add(
                "download-exec", "downloads and runs code", f"`{word}` is downloaded, then run without you reading it."
            )


def _norm(word: str) -> str:
    return posixpath.normpath(word.removeprefix("./")) if word else word


# -- paths ---------------------------------------------------------------------------------------------


def _redirect(node: Node, src: bytes, scan: _Scan) -> None:
    operator = next((c.type for c in node.children if not c.is_named), "")
    if ">" not in operator:
        return  # input only
    dest = node.child_by_field_name("destination")
    if dest is None or dest.type == "number" or (operator in (">&", "<&") and _text(dest, src) == "-"):
        return
    target = _word(dest, src)
    if _outside(scan, target):
        scan.add("writes-outside", "writes outside its folder", f"`{operator} {target}` writes outside its folder.")


def _targets(c: _Command, words: list[str], scan: _Scan) -> None:
    for word in words:
        if _outside(scan, word):
            detail = f"`{c.program}` changes `{word}`, outside its folder."
            scan.add("writes-outside", "writes outside its folder", detail)
            return


def _resolve(here: str | None, word: str) -> str | None:
    """Where `word` points from `here` (`.` stands for the folder when its path is not known); None when it
    cannot be known before the command runs (an expansion, `~`, after a `cd` to such a place)."""
    if not word or word[0] in "~$`" or "$" in word or "`" in word:
        return None
    if word.startswith("/"):
        return posixpath.normpath(word)
    return None if here is None else posixpath.normpath(posixpath.join(here, word))


def _outside(scan: _Scan, word: str) -> bool:
    """Does writing `word` leave the folder the command runs in?"""
    if word in _SAFE_DEVICES or word.startswith("/dev/fd/") or word in ("-", ""):
        return False
    for prefix in ("$PWD/", "${PWD}/"):
        if word.startswith(prefix):
            word = word[len(prefix) :] or "."
    target = _resolve(scan.here, word)
    if target is None:
        return True  # `$HOME/x`, `~/x`: it may be anywhere
    root = scan.cwd or "."
    if root == ".":
        return target == ".." or target.startswith(("../", "/"))
    return not (target == root or target.startswith(root.rstrip("/") + "/"))
