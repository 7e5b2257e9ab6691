"""The logs viewer: a container's logs as they come, or a finished run's output.

Lines are kept in a Python list and reach the document in batches from a short timer, so 100 000
lines arrive without freezing the window and never one document rebuild per line. Follow mode
keeps the view at the end and pauses by itself while the person scrolls up (scrolling back to the
end resumes it). Timestamps come from the engine with every line; showing or hiding them rebuilds
the document once. Lines that went to stderr, and lines that say WARN or ERROR, are coloured as they
go in (one insert per run of lines of the same colour); search says which match is the current one.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QKeySequence,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.application import Application
from app.errors import BerthError
from app.model import RunRecord
from app.ui import format as fmt
from app.ui.resources import icon
from app.ui.tasks import TaskSet

logger = logging.getLogger(__name__)

TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?Z ")
BATCH_LINES = 2000  # lines per document insert: a few ms each, so input and painting get in between
FLUSH_MS = 40
MAX_HIGHLIGHTS = 2000
_TS = r"(?:\d{4}-\d\d-\d\dT\S+Z )?"  # the engine's timestamp before a line, when there is one
ERROR_LINE = re.compile(
    rf"\b(?:ERROR|FATAL|CRITICAL|PANIC)\b|^{_TS}\W*(?:error|fatal|panic)\b|Traceback \(most recent", re.M
)
WARN_LINE = re.compile(rf"\b(?:WARN|WARNING)\b|^{_TS}\W*warning\b", re.M)
LEVEL_LINE = re.compile(rf"(?P<error>{ERROR_LINE.pattern})|(?P<warn>{WARN_LINE.pattern})", re.M)
# On the dark log background: plain, a warning, an error, and what went to stderr.
LINE_COLORS = {"": "#e5e7eb", "warn": "#fcd34d", "error": "#f87171", "stderr": "#fca5a5"}


def line_class(line: str, stderr: bool = False) -> str:
    """How one log line is coloured: "error", "warn", "stderr" or "" (plain). (The view classifies whole
    batches at once with LEVEL_LINE; this is the same rule for one line.)"""
    if ERROR_LINE.search(line):
        return "error"
    if WARN_LINE.search(line):
        return "warn"
    return "stderr" if stderr else ""


def _formats() -> dict[str, QTextCharFormat]:
    out = {}
    for cls, color in LINE_COLORS.items():
        f = QTextCharFormat()
        f.setForeground(QColor(color))
        if cls == "error":
            f.setFontWeight(QFont.Weight.DemiBold)
        out[cls] = f
    return out


def _action(tip: str, icon_name: str, text: str = "", checkable: bool = False) -> QToolButton:
    b = QToolButton()
    b.setObjectName("action")
    b.setIcon(icon(icon_name))
    b.setToolTip(tip)
    if text:
        b.setText(text)
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    b.setCheckable(checkable)
    b.setAutoRaise(False)
    return b


class LogsView(QWidget):
    """Toolbar (follow, timestamps, wrap, search, copy, save) over a read-only monospace text."""

    followChanged = Signal(bool)
    status = Signal(str)  # messages for the owner's status line

    def __init__(self, parent: QWidget | None = None, *, timestamps: bool = True) -> None:
        super().__init__(parent)
        self._lines: list[str] = []
        self._stderr: set[int] = set()  # indexes of the lines that went to stderr
        self._partials = {"stdout": "", "stderr": ""}
        self._shown = 0  # lines already in the document (the rest are pending)
        self._formats = _formats()
        self._match_starts: list[int] = []  # where the highlighted matches start in the document
        self._find_pending = False
        self._match_count = 0
        self._auto_scrolling = False
        self._has_timestamps = timestamps
        self._needle = ""
        self.tasks = TaskSet()

        self.follow_button = _action("Follow new lines (End)", "follow", "Follow", checkable=True)
        self.follow_button.setChecked(True)
        self.timestamps_button = _action("Show the time of each line (Ctrl+T)", "clock", "Timestamps", checkable=True)
        self.timestamps_button.setEnabled(timestamps)
        self.wrap_button = _action("Wrap long lines (Ctrl+W)", "wrap", "Wrap", checkable=True)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the logs (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.search.setMinimumWidth(220)
        self.prev_button = _action("Previous match (Shift+F3)", "up")
        self.next_button = _action("Next match (F3, Enter)", "down")
        self.match_label = QLabel("")
        self.match_label.setObjectName("hint")
        self.match_label.setMinimumWidth(90)
        self.match_label.setToolTip("The current match and how many there are")
        self.copy_button = _action("Copy the selection, or everything when nothing is selected", "copy", "Copy")
        self.save_button = _action("Save the logs to a file (Ctrl+S)", "save", "Save…")

        bar = QHBoxLayout()
        bar.setSpacing(6)
        for w in (self.follow_button, self.timestamps_button, self.wrap_button):
            bar.addWidget(w)
        bar.addSpacing(12)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.prev_button)
        bar.addWidget(self.next_button)
        bar.addWidget(self.match_label)
        bar.addStretch(0)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.save_button)

        self.text = QPlainTextEdit()
        self.text.setObjectName("logText")
        self.text.setReadOnly(True)
        self.text.setUndoRedoEnabled(False)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.text, 1)

        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self._flush)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)
        self._search_timer.timeout.connect(self._search_changed)

        self.follow_button.toggled.connect(self._on_follow_toggled)
        self.timestamps_button.toggled.connect(lambda _on: self.rebuild())
        self.wrap_button.toggled.connect(self._on_wrap)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.search.returnPressed.connect(self.find_next)
        self.next_button.clicked.connect(self.find_next)
        self.prev_button.clicked.connect(self.find_previous)
        self.copy_button.clicked.connect(self.copy)
        self.save_button.clicked.connect(self.save)
        self.text.verticalScrollBar().valueChanged.connect(self._on_scroll)

        for keys, slot in (
            ("Ctrl+F", self._focus_search),
            ("F3", self.find_next),
            ("Shift+F3", self.find_previous),
            ("Ctrl+T", self.timestamps_button.toggle),
            ("Ctrl+W", self.wrap_button.toggle),
            ("Ctrl+S", self.save),
            ("End", lambda: self.follow_button.setChecked(True)),
        ):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

    # -- content -----------------------------------------------------------------------------------

    @property
    def following(self) -> bool:
        return self.follow_button.isChecked()

    def line_count(self) -> int:
        return len(self._lines) + sum(1 for p in self._partials.values() if p)

    def append(self, text: str, stream: str = "stdout") -> None:
        """Add raw text (any chunking) of one stream ("stdout" or "stderr"); complete lines reach the document
        in the next batch. Each stream keeps its own unfinished line, so interleaved chunks never mix."""
        key = "stderr" if stream == "stderr" else "stdout"
        data = self._partials[key] + text
        parts = data.split("\n")
        self._partials[key] = parts.pop()
        if parts:
            self._add_lines(parts, key == "stderr")

    def _add_lines(self, lines: list[str], stderr: bool) -> None:
        if stderr:
            self._stderr.update(range(len(self._lines), len(self._lines) + len(lines)))
        self._lines.extend(lines)
        if not self._flush_timer.isActive():
            self._flush_timer.start(FLUSH_MS)

    def finish(self) -> None:
        """No more text will come: show an unfinished last line too."""
        for key, partial in self._partials.items():
            if partial:
                self._partials[key] = ""
                self._add_lines([partial], key == "stderr")
        if self.pending() and not self._flush_timer.isActive():
            self._flush_timer.start(0)

    def set_text(self, text: str, stderr: str = "") -> None:
        """Show a finished run's output: `text` (stdout), then `stderr` coloured as such."""
        self.clear()
        self.append(text)
        self.finish()
        if stderr:
            self.append(stderr, "stderr")
            self.finish()

    def clear(self) -> None:
        self._lines.clear()
        self._stderr.clear()
        self._partials = {"stdout": "", "stderr": ""}
        self._shown = 0
        self.text.clear()

    def is_stderr(self, line_index: int) -> bool:
        return line_index in self._stderr

    def line_classes(self) -> list[str]:
        """The colour class of every line (for tests and the legend)."""
        classes = self._classes(0, len(self._lines))
        return [classes.get(i, "") for i in range(len(self._lines))]

    def plain_text(self) -> str:
        partials = [p for p in self._partials.values() if p]
        return "\n".join(self._display(line) for line in [*self._lines, *partials])

    def pending(self) -> int:
        return len(self._lines) - self._shown

    @staticmethod
    def _body(line: str) -> str:
        m = TIMESTAMP.match(line)
        return line[m.end() :] if m else line

    def _display(self, line: str) -> str:
        if not self._has_timestamps:
            return line
        m = TIMESTAMP.match(line)
        if not m:
            return line
        if self.timestamps_button.isChecked():
            frac = (m.group(3) or ".000")[:4].ljust(4, "0")
            return f"{m.group(1)} {m.group(2)}{frac}  {line[m.end() :]}"
        return line[m.end() :]

    def _classes(self, start: int, end: int) -> dict[int, str]:
        """The coloured lines among start..end (index -> class); plain lines are not in it. One regex pass over
        the batch's text finds the WARN and ERROR lines, so a batch without any costs almost nothing."""
        out = {i: "stderr" for i in self._stderr if start <= i < end} if self._stderr else {}
        raw = "\n".join(self._lines[start:end])
        hits = [(m.start(), "error" if m.lastgroup == "error" else "warn") for m in LEVEL_LINE.finditer(raw)]
        if hits:
            starts = [0]
            for line in self._lines[start : end - 1]:
                starts.append(starts[-1] + len(line) + 1)
            for pos, cls in hits:
                i = start + bisect.bisect_right(starts, pos) - 1
                if out.get(i) != "error":
                    out[i] = cls
        return out

    def _runs(self, start: int, end: int) -> list[tuple[str, str]]:
        """Lines start..end as (colour class, text) runs: one insert per run of lines of the same colour."""
        classes = self._classes(start, end)
        display = self._display
        if not classes:
            return [("", "\n".join(display(line) for line in self._lines[start:end]))]
        runs: list[tuple[str, str]] = []
        cls_now, texts = "", list[str]()
        for i in range(start, end):
            cls = classes.get(i, "")
            if cls != cls_now and texts:
                runs.append((cls_now, "\n".join(texts)))
                texts = []
            cls_now = cls
            texts.append(display(self._lines[i]))
        if texts:
            runs.append((cls_now, "\n".join(texts)))
        return runs

    def _flush(self) -> None:
        start = self._shown
        end = min(len(self._lines), start + BATCH_LINES)
        if end <= start:
            return
        self._auto_scrolling = True
        try:
            cursor = QTextCursor(self.text.document())
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.beginEditBlock()
            first = start == 0
            for cls, text in self._runs(start, end):
                cursor.insertText(text if first else "\n" + text, self._formats[cls])
                first = False
            cursor.endEditBlock()
            self._shown = end
            if self.following:
                self._to_end()
        finally:
            self._auto_scrolling = False
        if self.pending():
            self._flush_timer.start(0)  # let input and painting in between batches
        elif self._needle:
            self._highlight()
            if self._find_pending:
                self._find_pending = not self._find(backward=False, from_start=True)

    def rebuild(self) -> None:
        """Show every line again (after the timestamps toggle): one clear, then batches."""
        self.text.clear()
        self._shown = 0
        self._flush_timer.start(0)

    # -- follow, wrap ------------------------------------------------------------------------------

    def _to_end(self) -> None:
        sb = self.text.verticalScrollBar()
        sb.setValue(sb.maximum())

    def _on_scroll(self, value: int) -> None:
        if self._auto_scrolling:
            return
        sb = self.text.verticalScrollBar()
        at_end = value >= sb.maximum()
        if at_end != self.following:
            self.follow_button.setChecked(at_end)

    def _on_follow_toggled(self, on: bool) -> None:
        if on:
            self._auto_scrolling = True
            try:
                self._to_end()
            finally:
                self._auto_scrolling = False
        self.followChanged.emit(on)

    def _on_wrap(self, on: bool) -> None:
        mode = QPlainTextEdit.LineWrapMode.WidgetWidth if on else QPlainTextEdit.LineWrapMode.NoWrap
        self.text.setLineWrapMode(mode)

    # -- search ------------------------------------------------------------------------------------

    def _focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def _search_changed(self) -> None:
        self._needle = self.search.text()
        self._highlight()
        # Typed before the text arrived (a run's output still loading): go to the first match once it is there.
        self._find_pending = bool(self._needle) and not self._find(backward=False, from_start=True)

    def find_text(self, text: str) -> None:
        """Search for `text` now (not after the typing pause), or as soon as it arrives."""
        self._search_timer.stop()
        self.search.blockSignals(True)
        self.search.setText(text)
        self.search.blockSignals(False)
        self._search_changed()

    def find_next(self) -> bool:
        if self.search.text() != self._needle:
            self._search_timer.stop()
            self._needle = self.search.text()
            self._highlight()
        return self._find(backward=False)

    def find_previous(self) -> bool:
        if self.search.text() != self._needle:
            self._search_timer.stop()
            self._needle = self.search.text()
            self._highlight()
        return self._find(backward=True)

    def _find(self, *, backward: bool, from_start: bool = False) -> bool:
        if not self._needle:
            return False
        doc = self.text.document()
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        cursor = self.text.textCursor()
        if from_start:
            cursor = QTextCursor(doc)
        found = doc.find(self._needle, cursor, flags)
        if found.isNull():  # wrap around
            start = QTextCursor(doc)
            if backward:
                start.movePosition(QTextCursor.MoveOperation.End)
            found = doc.find(self._needle, start, flags)
        if found.isNull():
            return False
        self.follow_button.setChecked(False)  # the person is reading: stop jumping to the end
        self._auto_scrolling = True
        try:
            self.text.setTextCursor(found)
            self.text.centerCursor()
        finally:
            self._auto_scrolling = False
        self._show_position(found.selectionStart())
        return True

    def _show_position(self, start: int) -> None:
        """ "3 / 42": which match the cursor is on, of how many."""
        i = bisect.bisect_left(self._match_starts, start)
        total = f"{self._match_count:,}"
        if i < len(self._match_starts) and self._match_starts[i] == start:
            self.match_label.setText(f"{i + 1:,} / {total}")
        else:  # past the highlighted ones (a very common word): the count only
            self.match_label.setText(f"{total} matches")

    def current_match(self) -> int | None:
        """The 1-based number of the current match, if the cursor is on one."""
        start = self.text.textCursor().selectionStart()
        i = bisect.bisect_left(self._match_starts, start)
        return i + 1 if i < len(self._match_starts) and self._match_starts[i] == start else None

    def _highlight(self) -> None:
        """Mark every match (up to MAX_HIGHLIGHTS) and say how many there are."""
        needle = self._needle
        if not needle:
            self.text.setExtraSelections([])
            self.match_label.setText("")
            self._match_starts, self._match_count = [], 0
            return
        low = needle.lower()
        count = sum(self._display(line).lower().count(low) for line in self._lines)
        doc = self.text.document()
        fmt = QTextCharFormat()
        fmt.setBackground(QColor("#facc15"))
        fmt.setForeground(QColor("#111827"))
        selections: list[QTextEdit.ExtraSelection] = []
        cursor = QTextCursor(doc)
        while len(selections) < MAX_HIGHLIGHTS:
            cursor = doc.find(needle, cursor)
            if cursor.isNull():
                break
            sel = QTextEdit.ExtraSelection()
            sel.cursor = cursor
            sel.format = fmt
            selections.append(sel)
        self.text.setExtraSelections(selections)
        self._match_starts = [s.cursor.selectionStart() for s in selections]
        self._match_count = count
        current = self.current_match()
        if count == 0:
            self.match_label.setText("no match")
        elif current is not None:
            self.match_label.setText(f"{current:,} / {count:,}")
        else:
            self.match_label.setText("1 match" if count == 1 else f"{count:,} matches")

    # -- copy, save --------------------------------------------------------------------------------

    def copy(self) -> None:
        cursor = self.text.textCursor()
        text = cursor.selectedText().replace("\u2029", "\n") if cursor.hasSelection() else self.plain_text()
        QApplication.clipboard().setText(text)
        self.status.emit("Copied the selection." if cursor.hasSelection() else f"Copied {self.line_count():,} lines.")

    def save(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save logs", str(Path.home() / "logs.txt"), "Text (*.txt *.log)")
        if name:
            self.save_to(Path(name))

    def save_to(self, path: Path) -> asyncio.Task[Any]:
        return self.tasks.spawn(self._write(path, self.plain_text() + "\n"))

    async def _write(self, path: Path, text: str) -> None:
        try:
            await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        except OSError as e:
            self.status.emit(f"Could not save to {path}: {e.strerror or e}")
            return
        self.status.emit(f"Saved {self.line_count():,} lines to {path}.")


def exit_chip(
    exit_code: int | None, *, timed_out: bool = False, oom: bool = False, stopped: bool = False
) -> tuple[str, bool]:
    """The label a finished run or container gets in the logs header ("Exited (2)"), and whether it is bad news."""
    if oom:
        return "Out of memory", True
    if timed_out:
        return "Timed out", True
    if stopped:
        return "Stopped", False
    if exit_code is None:
        return "Finished", False
    return f"Exited ({exit_code})", exit_code != 0


class LogsWindow(QWidget):
    """A window for one container's logs (followed live) or one finished run's output; `embedded` makes it a
    plain widget (the detail pane's Logs tab) without the window's own heading."""

    def __init__(
        self,
        app: Application,
        title: str,
        *,
        subtitle: str = "",
        live: bool = True,
        embedded: bool = False,
        parent: QWidget | None = None,
    ):
        super().__init__(parent, Qt.WindowType.Widget if embedded else Qt.WindowType.Window)
        self.app = app
        self.setWindowTitle(title)
        self.setObjectName("page")
        self.setWindowIcon(icon("logs"))
        if not embedded:
            self.resize(980, 640)
        self.view = LogsView(self, timestamps=live)
        if not live:  # a finished run's output: nothing new comes, no engine timestamps
            self.view.follow_button.hide()
            self.view.timestamps_button.hide()
        heading = QLabel(title)
        heading.setObjectName("pageTitle")
        heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chip = QLabel("")
        self.chip.setObjectName("exitChip")
        self.chip.hide()
        self.subtitle = QLabel(subtitle)
        self.subtitle.setObjectName("hint")
        self.state = QLabel("")
        self.state.setObjectName("hint")
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        if embedded:
            layout.setContentsMargins(0, 6, 0, 0)
            heading.hide()
            self.subtitle.hide()
            layout.addWidget(self.view, 1)
            row = QHBoxLayout()
            row.addWidget(self.chip)
            row.addWidget(self.state, 1)
            layout.addLayout(row)
        else:
            layout.setContentsMargins(14, 12, 14, 8)
            top = QHBoxLayout()
            top.addWidget(heading)
            top.addWidget(self.chip)
            top.addStretch(1)
            layout.addLayout(top)
            layout.addWidget(self.subtitle)
            layout.addWidget(self.view, 1)
            layout.addWidget(self.state)
            close = QShortcut(QKeySequence("Esc"), self)
            close.activated.connect(self.close)
        self.view.status.connect(self.state.setText)
        self.embedded = embedded
        self.tasks = TaskSet()
        self.ended = asyncio.Event()

    def set_chip(self, text: str, bad: bool) -> None:
        """The red "Exited (2)" (or a calm "Exited (0)") beside the heading; empty hides it. Embedded, the
        pane around it shows its own."""
        if self.embedded:
            return
        self.chip.setText(text)
        self.chip.setProperty("bad", bad)
        self.chip.style().unpolish(self.chip)
        self.chip.style().polish(self.chip)
        self.chip.setVisible(bool(text))

    def follow_container(self, container_id: str, name: str) -> None:
        self.state.setText(f"Loading the logs of {name}…")
        self.tasks.spawn(self._follow(container_id, name))

    def stop_following(self) -> None:
        self.tasks.cancel()

    async def _follow(self, container_id: str, name: str) -> None:
        self.ended.clear()
        self.set_chip("", False)
        try:
            self.state.setText(f"Following {name}: new lines appear as they come; stderr in red.")
            follow = self.app.owner.follow_log_streams(container_id, tail=None, timestamps=True)
            async with contextlib.aclosing(follow) as chunks:
                async for stream, chunk in chunks:
                    self.view.append(chunk, stream)
            self.view.finish()
            self.state.setText(f"{name} is not running: these are its last logs.")
            await self._show_end(container_id)
        except asyncio.CancelledError:
            raise
        except BerthError as e:
            self.view.finish()
            self.state.setText(f"The logs stopped: {e}")
        except Exception as e:
            logger.exception("following the logs of %s failed", name)
            self.state.setText(f"The logs stopped (internal error: {e}); the log file has details.")
        finally:
            self.ended.set()

    async def _show_end(self, container_id: str) -> None:
        """The container stopped: say how ("Exited (2)" in red, "Out of memory", "Stopped")."""
        try:
            d = await self.app.owner.inspect_detail(container_id)
        except BerthError:
            return
        if d.info.status in ("exited", "dead"):
            stopped = d.exit_code in (137, 143) and not d.oom_killed
            self.set_chip(*exit_chip(d.exit_code, oom=d.oom_killed, stopped=stopped))

    def show_run(self, run_id: int) -> None:
        self.state.setText("Loading the run's output…")
        self.tasks.spawn(self._load_run(run_id))

    async def _load_run(self, run_id: int) -> None:
        self.ended.clear()
        try:
            run = await self.app.owner.run(run_id)
            if run is None:
                self.state.setText(f"Run #{run_id} is no longer in the history.")
                return
            self.show_record(run)
        except Exception as e:
            logger.exception("could not load run %s", run_id)
            self.state.setText(f"Could not read run #{run_id} from the history: {e}")
        finally:
            self.ended.set()

    def show_record(self, run: RunRecord) -> None:
        """A finished run: `$ command`, its stdout, then its stderr in red; the exit label and the facts."""
        out = f"$ {run.command}\n"
        if run.stdout:
            out += run.stdout.rstrip("\n")
        elif not run.stderr:
            out += "(no output)"
        self.view.set_text(out, run.stderr.rstrip("\n"))
        self.set_chip(*exit_chip(run.exit_code, timed_out=run.timed_out, oom=run.oom_killed))
        bits = [f"exit code {run.exit_code}", f"took {duration(run.finished - run.started)}", run.image, run.agent]
        if run.stderr:
            bits.append("stderr in red")
        if run.truncated:
            bits.append("output was cut at the size limit")
        self.state.setText(" · ".join(bits))

    def closeEvent(self, event: Any) -> None:
        self.tasks.cancel()
        self.view.tasks.cancel()
        with contextlib.suppress(RuntimeError):
            super().closeEvent(event)


def duration(seconds: float) -> str:
    return fmt.duration_ms(seconds * 1000)
