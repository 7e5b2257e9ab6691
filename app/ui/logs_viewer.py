"""The logs viewer: a container's logs as they come, or a finished run's output.

Lines are kept in a Python list and reach the document in batches from a short timer, so 100 000
lines arrive without freezing the window and never one document rebuild per line. Follow mode
keeps the view at the end and pauses by itself while the person scrolls up (scrolling back to the
end resumes it). Timestamps come from the engine with every line; showing or hiding them rebuilds
the document once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontDatabase, QKeySequence, QShortcut, QTextCharFormat, QTextCursor, QTextDocument
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
from app.ui.resources import icon
from app.ui.tasks import TaskSet

logger = logging.getLogger(__name__)

TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?Z ")
BATCH_LINES = 2000  # lines per document insert: a few ms each, so input and painting get in between
FLUSH_MS = 40
MAX_HIGHLIGHTS = 2000


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
        self._partial = ""
        self._pending: list[str] = []
        self._shown = 0  # lines already in the document
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
        return len(self._lines) + (1 if self._partial else 0)

    def append(self, text: str) -> None:
        """Add raw text (any chunking); complete lines reach the document in the next batch."""
        data = self._partial + text
        parts = data.split("\n")
        self._partial = parts.pop()
        if parts:
            self._lines.extend(parts)
            self._pending.extend(parts)
            if not self._flush_timer.isActive():
                self._flush_timer.start(FLUSH_MS)

    def finish(self) -> None:
        """No more text will come: show an unfinished last line too."""
        if self._partial:
            self._lines.append(self._partial)
            self._pending.append(self._partial)
            self._partial = ""
        if self._pending and not self._flush_timer.isActive():
            self._flush_timer.start(0)

    def set_text(self, text: str) -> None:
        self.clear()
        self.append(text)
        self.finish()

    def clear(self) -> None:
        self._lines.clear()
        self._pending.clear()
        self._partial = ""
        self._shown = 0
        self.text.clear()

    def plain_text(self) -> str:
        return "\n".join(self._display(line) for line in [*self._lines, *([self._partial] if self._partial else [])])

    def pending(self) -> int:
        return len(self._pending)

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

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending[:BATCH_LINES], self._pending[BATCH_LINES:]
        text = "\n".join(self._display(line) for line in batch)
        self._auto_scrolling = True
        try:
            self.text.appendPlainText(text)
            self._shown += len(batch)
            if self.following:
                self._to_end()
        finally:
            self._auto_scrolling = False
        if self._pending:
            self._flush_timer.start(0)  # let input and painting in between batches
        elif self._needle:
            self._highlight()

    def rebuild(self) -> None:
        """Show every line again (after the timestamps toggle): one clear, then batches."""
        self.text.clear()
        self._shown = 0
        self._pending = list(self._lines)
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
        if self._needle:
            self._find(backward=False, from_start=True)

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
        return True

    def _highlight(self) -> None:
        """Mark every match (up to MAX_HIGHLIGHTS) and say how many there are."""
        needle = self._needle
        if not needle:
            self.text.setExtraSelections([])
            self.match_label.setText("")
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
        self.match_label.setText("no match" if count == 0 else "1 match" if count == 1 else f"{count:,} matches")

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


class LogsWindow(QWidget):
    """A window for one container's logs (followed live) or one finished run's output."""

    def __init__(
        self,
        app: Application,
        title: str,
        *,
        subtitle: str = "",
        live: bool = True,
        parent: QWidget | None = None,
    ):
        super().__init__(parent, Qt.WindowType.Window)
        self.app = app
        self.setWindowTitle(title)
        self.setObjectName("page")
        self.setWindowIcon(icon("logs"))
        self.resize(980, 640)
        self.view = LogsView(self, timestamps=live)
        if not live:  # a finished run's output: nothing new comes, no engine timestamps
            self.view.follow_button.hide()
            self.view.timestamps_button.hide()
        heading = QLabel(title)
        heading.setObjectName("pageTitle")
        heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle = QLabel(subtitle)
        self.subtitle.setObjectName("hint")
        self.state = QLabel("")
        self.state.setObjectName("hint")
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 8)
        layout.addWidget(heading)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.state)
        self.view.status.connect(self.state.setText)
        self.tasks = TaskSet()
        self.ended = asyncio.Event()
        close = QShortcut(QKeySequence("Esc"), self)
        close.activated.connect(self.close)

    def follow_container(self, container_id: str, name: str) -> None:
        self.state.setText(f"Loading the logs of {name}…")
        self.tasks.spawn(self._follow(container_id, name))

    async def _follow(self, container_id: str, name: str) -> None:
        try:
            self.state.setText(f"Following {name}: new lines appear as they come.")
            follow = self.app.owner.follow_logs(container_id, tail=None, timestamps=True)
            async with contextlib.aclosing(follow) as chunks:
                async for chunk in chunks:
                    self.view.append(chunk)
            self.view.finish()
            self.state.setText(f"{name} is not running: these are its last logs.")
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

    def show_run(self, run_id: int) -> None:
        self.state.setText("Loading the run's output…")
        self.tasks.spawn(self._load_run(run_id))

    async def _load_run(self, run_id: int) -> None:
        try:
            run = await asyncio.to_thread(self.app.store.get_run, run_id)
            if run is None:
                self.state.setText(f"Run #{run_id} is no longer in the history.")
                return
            parts = [f"$ {run.command}", ""]
            if run.stdout:
                parts.append(run.stdout.rstrip("\n"))
            if run.stderr:
                parts += ["", "── stderr ──", run.stderr.rstrip("\n")]
            if not run.stdout and not run.stderr:
                parts.append("(no output)")
            self.view.set_text("\n".join(parts))
            bits = [f"exit code {run.exit_code}", f"{run.finished - run.started:.1f} s", run.image, run.agent]
            if run.timed_out:
                bits.insert(0, "timed out")
            if run.oom_killed:
                bits.insert(0, "killed: out of memory")
            if run.truncated:
                bits.append("output was cut at the size limit")
            self.state.setText(" · ".join(bits))
        except Exception as e:
            logger.exception("could not load run %s", run_id)
            self.state.setText(f"Could not read run #{run_id} from the history: {e}")
        finally:
            self.ended.set()

    def closeEvent(self, event: Any) -> None:
        self.tasks.cancel()
        self.view.tasks.cancel()
        with contextlib.suppress(RuntimeError):
            super().closeEvent(event)
