"""The Approval Queue's detail pane: one request in full, its decision buttons, and the "Approve & trust"
pattern editor.

The pane shows the agent, the access it asks for in words (a sandbox, or full access as you), the whole
folder it runs in (`display_text`), its age, every warning the core has for it (look-alike or hidden
characters named one by one, a program that reads code from a folder the agent can write, full access),
and the exact command in a monospace block through `display_command` (hidden characters as escapes, every
line shown, long lines wrapped — never elided). Whatever the agent chose is shown as plain text, never
as rich text; the two rich labels (the agent's name in bold) escape it with `html.escape`.
"""

from __future__ import annotations

import html
import time
from typing import Any

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QTextCharFormat, QTextCursor, QTextOption
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.core.approvals import ShellRequest
from app.core.display import describe_suspicious, display_command, display_text, needs_warning
from app.core.host_access import ACCESS_WORDS, pattern_warnings
from app.core.patterns import PatternError, explain_pattern, parse_pattern, pattern_matches
from app.host import Access, SandboxStatus
from app.ui import format as fmt
from app.ui.approval_model import at_text, outcome_sentence
from app.ui.chips import RiskChips
from app.ui.resources import icon
from app.ui.widgets import mono_font, plain

OUTPUT_STYLE = (
    "QPlainTextEdit#outputBlock { background: #111827; color: #e5e7eb; border: 1px solid #0b1220;"
    " border-radius: 6px; padding: 4px; selection-background-color: #2563eb; selection-color: white; }"
)
MAIN_DENY_STYLE = "QPushButton { background: #b3261e; color: white; border-color: #b3261e; font-weight: 600; }"
MAIN_APPROVE_STYLE = "QPushButton { background: #1e6b41; color: white; border-color: #1e6b41; font-weight: 600; }"
ESCAPE_COLOR = "#fbbf24"  # on the dark command block: an escape that stands for a hidden character
ESCAPE_BACKGROUND = "#4a2a04"
WARNING_STYLE = "background: #fff4e5; border: 1px solid #f5c98b; border-radius: 6px; padding: 5px 8px; color: #7c2d12;"
FULL_ACCESS_STYLE = "color: #b3261e; font-weight: 600;"
SANDBOX_STYLE = "color: #1e6b41;"
NEVER_RAN_STYLE = "color: #6b7280;"


def command_block(object_name: str = "commandBlock", *, line_ends: bool = False) -> QPlainTextEdit:
    """A read-only monospace block that shows every line of a command (wrapped, never elided)."""
    block = QPlainTextEdit()
    block.setObjectName(object_name)
    block.setReadOnly(True)
    block.setFont(mono_font())
    # Wrap between words (a word is cut only when it alone is longer than the line): `| sh` never splits.
    block.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    block.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    if line_ends:  # a mark at the end of each real line, so that a wrapped line never looks like two
        option = block.document().defaultTextOption()
        option.setFlags(option.flags() | QTextOption.Flag.ShowLineAndParagraphSeparators)
        block.document().setDefaultTextOption(option)
    block.setTextInteractionFlags(
        Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
    )
    return block


class TrustBox(QFrame):
    """The pattern editor of "Approve & trust": pre-filled with the exact command, parsed and checked against
    it as it changes, with what the pattern really allows (`pattern_warnings`) and, where full access is on
    offer, a "Full access" checkbox (unchecked) for the pattern and this approval."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trustBox")
        self.command = ""
        self.agent = ""
        self.sandbox_works = True
        self.offered = False  # whether full access is on offer for this request
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)  # the agent's name is escaped (html.escape)
        self.pattern = QLineEdit()
        self.pattern.setObjectName("trustPattern")
        self.pattern.setFont(mono_font())
        self.pattern.setPlaceholderText("e.g.  git diff --stat")
        self.verdict = QLabel()
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.PlainText)
        self.warnings = WarningList("patternWarning")
        self.full_access = QCheckBox("Full access")
        self.full_access.setObjectName("trustFullAccess")
        self.full_note = plain_label("hint")
        self.confirm = QPushButton(icon("trust"), "Approve and trust")
        self.confirm.setObjectName("primary")
        self.cancel = QPushButton("Cancel")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.confirm)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.pattern)
        layout.addWidget(self.verdict)
        layout.addWidget(self.full_access)
        layout.addWidget(self.full_note)
        layout.addWidget(self.warnings)
        layout.addLayout(buttons)
        self.pattern.textChanged.connect(self.check)
        self.full_access.toggled.connect(self._full_toggled)
        self.hide()

    def _full_toggled(self, on: bool) -> None:
        self.full_note.setVisible(self.offered and not on)  # ticked: the warning says it all
        self.check()

    def open_for(self, req: ShellRequest, proposal: str | None, why_not: str | None, sandbox_works: bool) -> None:
        self.command, self.agent, self.sandbox_works = req.command, req.agent, sandbox_works
        self.title.setText(
            f"Approve this command and from now on let <b>{html.escape(display_text(req.agent))}</b> run every "
            "command the pattern allows without asking. The exact command is proposed; a <b>*</b> allows more:"
        )
        # Full access is on offer where the agent asked for it, and where no sandbox works (then it is required).
        offered = self.offered = req.access == "host" or not sandbox_works
        self.full_access.setVisible(offered)
        self.full_access.setChecked(False)
        if not sandbox_works:
            self.full_note.setText(
                "No sandbox works here: a trusted pattern approves only with full access, so tick it to go on."
            )
        elif req.access == "host":
            self.full_note.setText("Unticked, this command and every command the pattern allows run in the sandbox.")
        self.full_note.setVisible(offered)
        self.pattern.setText(proposal or "")
        if why_not:
            self.pattern.setEnabled(False)
            self.full_access.setEnabled(False)
            self.warnings.set_warnings([])
            self.set_verdict(False, f"No pattern can trust this command: {why_not}.")
        else:
            self.pattern.setEnabled(True)
            self.full_access.setEnabled(True)
            self.check()
        self.show()
        self.pattern.setFocus()

    def access(self) -> Access:
        """What the approval and the pattern get: full access only when ticked."""
        return "host" if self.offered and self.full_access.isChecked() else "sandbox"

    def set_verdict(self, ok: bool, text: str) -> None:
        self.verdict.setText(text)
        self.verdict.setProperty("ok", ok)
        self.verdict.setStyleSheet("color: #2e7d4f;" if ok else "color: #b3261e;")
        self.confirm.setEnabled(ok and (self.sandbox_works or self.access() == "host"))
        self.confirm.setText("Approve and trust with full access" if self.access() == "host" else "Approve and trust")

    def check(self) -> bool:
        """Parse the pattern and check it allows this command; say in words what it will allow, and what
        it really allows beyond that (`pattern_warnings`)."""
        text = self.pattern.text()
        try:
            pattern = parse_pattern(text)
        except PatternError as e:
            self.warnings.set_warnings([])
            self.set_verdict(False, f"Not a valid pattern: {e}.")
            return False
        self.warnings.set_warnings([plain(w) for w in pattern_warnings(pattern, self.access())])
        if not pattern_matches(pattern, self.command):
            self.set_verdict(False, "This pattern does not allow the command above, so it cannot be trusted for it.")
            return False
        self.set_verdict(True, plain(explain_pattern(pattern)))
        return self.sandbox_works or self.access() == "host"


class WarningList(QWidget):
    """Warnings, one plain-text label each, in the warning style (empty: hidden)."""

    def __init__(self, object_name: str = "requestWarning", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.object_name = object_name
        self.labels: list[QLabel] = []
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(4)
        self.hide()

    def set_warnings(self, warnings: list[str]) -> None:
        if warnings == self.texts():
            self.setVisible(bool(warnings))
            return
        for label in self.labels:
            self.box.removeWidget(label)
            label.deleteLater()
        self.labels = []
        for text in warnings:
            label = plain_label(self.object_name, selectable=True)
            label.setText("⚠ " + text)
            label.setStyleSheet(WARNING_STYLE)
            self.box.addWidget(label)
            self.labels.append(label)
        self.setVisible(bool(warnings))

    def texts(self) -> list[str]:
        return [label.text().removeprefix("⚠ ") for label in self.labels]


def plain_label(object_name: str = "", *, selectable: bool = False) -> QLabel:
    """A word-wrapped label that shows its text as it is (never as rich text)."""
    label = QLabel()
    if object_name:
        label.setObjectName(object_name)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def access_sentence(req: ShellRequest) -> str:
    """What the request asked for, or what it ran with, in words (ACCESS_WORDS)."""
    asked = ACCESS_WORDS[req.access]
    if req.status == "pending":
        return f"Asks to run it {asked}."
    if req.granted is None:  # denied or expired
        return f"Asked to run it {asked}."
    ran = "Runs" if req.status == "running" else "Ran"
    if req.granted != req.access:
        was = "full access" if req.access == "host" else "the sandbox"
        return f"{ran} {ACCESS_WORDS[req.granted]} (it asked for {was})."
    return f"{ran} {ACCESS_WORDS[req.granted]}."


def lookalike_warnings(req: ShellRequest) -> list[str]:
    """The look-alike and hidden character warnings of a decided request (the core words pending ones)."""
    out = []
    for what, text in (("command", req.command), ("folder", req.cwd)):
        if needs_warning(text):
            found = describe_suspicious(text)
            out.append(f"The {what} has {found[0].lower()}{found[1:]}")
    return out


class RequestDetail(QWidget):
    """One request in full; the decision buttons while it is pending, its outcome and output after.

    Top to bottom: who asks, the risk chips, the folder (whole, monospace), the access in words, the time
    left, the warnings, the exact command (wrapped at word boundaries, hidden characters as escapes in a
    warning colour), then the buttons with their keys written under them -- or, once decided, the outcome
    and the output (stderr marked). With a risk chip or a warning about the characters, Deny is the main
    button, Approve asks once more and "Approve & trust" is not offered.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request: ShellRequest | None = None
        self.patterns: dict[int, str] = {}  # trusted pattern id -> text (set by the queue)
        self.sandbox = SandboxStatus(True, "bubblewrap")  # set by the queue from the core
        self.heading = QLabel()
        self.heading.setObjectName("detailTitle")
        self.heading.setWordWrap(True)
        self.heading.setTextFormat(Qt.TextFormat.RichText)  # the agent's name is escaped (html.escape)
        self.chips = RiskChips()
        self.access = plain_label("accessLine")
        self.folder_caption = plain_label("hint")
        self.folder_caption.setText("in")
        self.folder_caption.setWordWrap(False)
        self.folder = command_block("folderBlock")
        self.folder.setWordWrapMode(QTextOption.WrapMode.WrapAnywhere)  # a path has no spaces: break anywhere
        self.folder.setFrameShape(QFrame.Shape.NoFrame)
        self.folder.setStyleSheet(
            "QPlainTextEdit#folderBlock { background: transparent; border: none; padding: 0; color: #111827; }"
        )
        self.folder.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.folder.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.folder.document().setDocumentMargin(0)
        self.folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder.setToolTip("The folder it runs in, in full (hidden characters shown as escapes)")
        self.meta = plain_label("hint", selectable=True)
        self.warnings = WarningList()
        self.command = command_block(line_ends=True)
        self.command.setMinimumHeight(70)

        self.approve_button = QPushButton(icon("approve"), "Approve")
        self.approve_button.setObjectName("approve")
        self.full_button = QPushButton(icon("warning"), "Approve with full access…")
        self.full_button.setObjectName("approveFull")
        self.full_button.setToolTip("Run it as you, outside any sandbox (asks you to confirm first)")
        self.deny_button = QPushButton(icon("deny"), "Deny")
        self.deny_button.setObjectName("deny")
        self.deny_button.setToolTip("Refuse; the command never runs (Delete)")
        self.trust_button = QPushButton(icon("trust"), "Approve && trust…")
        self.trust_button.setToolTip("Approve, and trust a pattern so that matching commands run without asking")
        self.full_hint = plain_label("hint")
        self.full_hint.setText("asks you to confirm first")
        self.full_hint.setWordWrap(False)
        self.keys = plain_label("keyHints")
        self.keys.setStyleSheet("color: #6b7280; font-size: 9pt;")
        self.keys.setWordWrap(False)  # one line: a wrapped label under an aligned row was given one line and cut
        # Row one, in the platform's order (the main action last): Approve & trust on the left, apart; then
        # Deny and Approve. Row two, apart: full access (where no sandbox works, it is the only approval and
        # takes Approve's place in row one instead). Under them, the keys.
        self.decision = QWidget()
        rows = QVBoxLayout(self.decision)
        rows.setContentsMargins(0, 2, 0, 0)
        rows.setSpacing(6)
        self.main_row = QHBoxLayout()
        self.main_row.addWidget(self.trust_button)
        self.main_row.addStretch(1)
        self.main_row.addWidget(self.deny_button)
        self.main_row.addWidget(self.approve_button)
        rows.addLayout(self.main_row)
        self.full_row = QHBoxLayout()
        self.full_row.addStretch(1)
        self.full_row.addWidget(self.full_hint)
        self.full_row.addWidget(self.full_button)
        rows.addLayout(self.full_row)
        rows.addWidget(self.keys, 0, Qt.AlignmentFlag.AlignRight)
        self.trust = TrustBox()

        self.outcome = plain_label("outcome")
        self.output_label = plain_label("sectionTitle")
        self.output_label.setText("Output")
        self.output = command_block("outputBlock")
        self.output.setStyleSheet(OUTPUT_STYLE)

        folder_row = QHBoxLayout()
        folder_row.setSpacing(6)
        folder_row.addWidget(self.folder_caption, 0, Qt.AlignmentFlag.AlignTop)
        folder_row.addWidget(self.folder, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 4, 4, 4)
        layout.setSpacing(6)
        layout.addWidget(self.heading)
        layout.addWidget(self.chips)
        layout.addLayout(folder_row)
        layout.addWidget(self.access)
        layout.addWidget(self.meta)
        layout.addWidget(self.warnings)
        layout.addWidget(self.command)
        layout.addWidget(self.decision)
        layout.addWidget(self.trust)
        layout.addWidget(self.outcome)
        layout.addWidget(self.output_label)
        layout.addWidget(self.output, 1)
        layout.addStretch(0)
        self.spacer = layout.itemAt(layout.count() - 1)
        self.show_request(None)

    def fit_command(self) -> None:
        """As tall as the command (wrapped), up to half the pane; it scrolls beyond that. The folder: all of it."""
        width = self.command.viewport().width()
        fm = self.command.fontMetrics()
        laid = [b.layout().lineCount() for b in _blocks(self.command.document())] if width > 100 else []
        lines = sum(max(1, n) for n in laid) if laid and all(n > 0 for n in laid) else 0
        if not lines:
            columns = max(20, (width if width > 100 else 480) // max(1, fm.horizontalAdvance("m")) - 1)
            lines = sum(max(1, -(-len(line) // columns)) for line in self.command.toPlainText().split("\n"))
        want = lines * fm.lineSpacing() + 26
        self.command.setFixedHeight(max(64, min(want, max(120, self.height() // 2))))
        ffm = self.folder.fontMetrics()
        fwidth = self.folder.viewport().width()
        fwidth = fwidth if fwidth > 100 else 360
        flags = Qt.TextFlag.TextWrapAnywhere.value
        shown = ffm.boundingRect(QRect(0, 0, fwidth - 4, 100_000), flags, self.folder.toPlainText())
        self.folder.setFixedHeight(max(ffm.lineSpacing(), shown.height()) + 4)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.request is not None:
            self.fit_command()

    def risky(self, req: ShellRequest | None = None) -> bool:
        """A risk chip, or a look-alike or hidden character: Deny leads and Approve asks once more."""
        req = req if req is not None else self.request
        return req is not None and (bool(req.risks) or bool(lookalike_warnings(req)))

    def risk_words(self, req: ShellRequest) -> list[str]:
        words = [r.label for r in req.risks]
        if not any(r.kind == "hidden" for r in req.risks) and lookalike_warnings(req):
            words.insert(0, "hidden characters")
        return words

    def show_request(self, req: ShellRequest | None) -> None:
        same = req is not None and self.request is not None and req.request_id == self.request.request_id
        self.request = req
        top = (self.heading, self.folder_caption, self.folder, self.access, self.meta, self.command)
        if req is None:
            for w in (*top, self.chips, self.warnings, self.decision, self.trust, self.outcome, self.output_label,
                      self.output):  # fmt: skip
                w.hide()
            return
        pending = req.status == "pending"
        agent = html.escape(display_text(req.agent))
        self.heading.setText(
            f"<b>{agent}</b> asks to run this command on your computer"
            if pending
            else f"<b>{agent}</b> asked to run this command"
        )
        self.chips.set_risks(req.risks)
        self.access.setText(access_sentence(req))
        if pending or req.granted is not None:  # what it may do, or did: full access in red
            self.access.setStyleSheet(FULL_ACCESS_STYLE if req.effective_access == "host" else SANDBOX_STYLE)
        else:
            self.access.setStyleSheet(NEVER_RAN_STYLE)  # denied or expired: it never ran
        shown_folder = display_text(req.cwd)
        if self.folder.toPlainText() != shown_folder:
            self.folder.setPlainText(shown_folder)
            mark_escapes(self.folder, req.cwd, single_line=True)
        self.update_meta()
        self.warnings.set_warnings(self._warnings(req))
        shown = display_command(req.command)
        if self.command.toPlainText() != shown or not same:
            self.command.setPlainText(shown)
            mark_escapes(self.command, req.command)
        for w in top:
            w.show()
        self.fit_command()
        self._decision_buttons(req)
        self.decision.setVisible(pending)
        if not pending or not same:
            self.trust.hide()
        self.outcome.setVisible(not pending)
        has_output = not pending and req.result is not None
        self.output_label.setVisible(has_output)
        self.output.setVisible(has_output)
        spacer = self.spacer.spacerItem() if self.spacer is not None else None
        if spacer is not None:  # without output below, the free space goes under the buttons
            spacer.changeSize(
                0,
                0 if has_output else 1,
                QSizePolicy.Policy.Minimum,
                QSizePolicy.Policy.Minimum if has_output else QSizePolicy.Policy.Expanding,
            )
            self.updateGeometry()
        if not pending:
            self.outcome.setText(outcome_sentence(req, self.patterns))
            self.outcome.setStyleSheet(OUTCOME_STYLES.get(outcome_tone(req), ""))
            if req.result is not None:
                show_output(self.output, req.result.stdout, req.result.stderr)

    def _warnings(self, req: ShellRequest) -> list[str]:
        if req.status != "pending":
            return lookalike_warnings(req)
        warnings = [plain(w) for w in req.warnings]
        if req.access == "host" and not self.sandbox.available:
            warnings.append(f"No sandbox works here ({plain(self.sandbox.reason or 'unknown reason')}).")
        return warnings

    def _decision_buttons(self, req: ShellRequest) -> None:
        """Approve (in the sandbox: lowers a full-access request), Approve with full access (where the agent
        asked for it, or where no sandbox works), Deny. A risky request: Deny leads, Approve asks again, no
        trusting it."""
        works = self.sandbox.available
        risky = self.risky(req)
        self.approve_button.setVisible(works)
        label = "Approve in sandbox" if req.access == "host" else "Approve"
        self.approve_button.setText(label + ("…" if risky else ""))
        again = " (asks you once more: it has risks)" if risky else ""
        self.approve_button.setToolTip(
            "Run it in a sandbox instead of with full access: it reads your files, writes only its folder and "
            f"has no network, so it may fail if it needs more (Ctrl+Enter){again}"
            if req.access == "host"
            else f"Run it now {ACCESS_WORDS['sandbox']} (Ctrl+Enter){again}"
        )
        # The main button: filled, and the default. Deny where there is a risk, else the safe approval.
        main, other = (self.deny_button, self.approve_button) if risky else (self.approve_button, self.deny_button)
        main.setDefault(True)
        other.setDefault(False)
        main.setStyleSheet(MAIN_DENY_STYLE if main is self.deny_button else MAIN_APPROVE_STYLE)
        other.setStyleSheet("")
        self.trust_button.setVisible(not risky)
        offered = req.access == "host" or not works
        in_main = self.main_row.indexOf(self.full_button) >= 0
        if not works and not in_main:
            self.main_row.addWidget(self.full_button)  # the only approval: Approve's place, beside Deny
        elif works and in_main:
            self.full_row.addWidget(self.full_button)
        self.full_button.setVisible(offered)
        self.full_hint.setVisible(offered and works)
        self.full_button.setToolTip(
            "Run it as you, outside any sandbox (asks you to confirm first)"
            + ("" if works else f". No sandbox works here: {self.sandbox.reason}")
        )
        approve = "approve" + (" (asks again)" if risky else "") if works else "approve with full access (asks first)"
        self.keys.setText(f"Ctrl+Enter  {approve}    ·    Delete  deny")

    def update_meta(self) -> None:
        """The time left to decide (or when it was asked), and how long it may run."""
        req = self.request
        if req is None:
            return
        parts = []
        if req.status == "pending" and req.expires_at:
            left = req.expires_at - time.time()
            parts.append(f"{time_left(left)} left to decide" if left > 0 else "expiring now")
            parts.append(f"asked {fmt.age(req.created)} ago")
        else:
            parts.append(f"asked {at_text(req.created)}")
        parts.append(f"may run for {fmt.duration_ms(req.timeout_s * 1000)}")
        self.meta.setText(" · ".join(parts))


def time_left(seconds: float) -> str:
    """`9 min 40 s`, `40 s`, `1 h 5 min`: precise enough to act on."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s < 600 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _blocks(doc: Any) -> list[Any]:
    out, block = [], doc.begin()
    while block.isValid():
        out.append(block)
        block = block.next()
    return out


def mark_escapes(block: QPlainTextEdit, raw: str, *, single_line: bool = False) -> None:
    """Colour every escape that stands for a hidden character (what `display_command` wrote for it), so that
    `\\u202e` typed by the agent as six letters reads differently from a real U+202E."""
    escape = display_text if single_line else display_command
    spans, pos = [], 0
    for ch in raw:
        shown = escape(ch)
        if shown != ch:
            spans.append((pos, len(shown)))
        pos += len(shown)
    if not spans:
        return
    fmt_ = QTextCharFormat()
    fmt_.setForeground(QColor(ESCAPE_COLOR))
    fmt_.setBackground(QColor(ESCAPE_BACKGROUND))
    fmt_.setFontWeight(QFont.Weight.Bold)
    cursor = QTextCursor(block.document())
    for start, length in spans:
        cursor.setPosition(start)
        cursor.setPosition(start + length, QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(fmt_)


def show_output(block: QPlainTextEdit, stdout: str, stderr: str) -> None:
    """A run's output in the dark block: stdout, then stderr under a marker and in red (escaped as displayed)."""
    block.clear()
    cursor = QTextCursor(block.document())
    plain_fmt = QTextCharFormat()
    plain_fmt.setForeground(QColor("#e5e7eb"))
    if not stdout and not stderr:
        dim = QTextCharFormat()
        dim.setForeground(QColor("#9ca3af"))
        cursor.insertText("(no output)", dim)
        return
    if stdout:
        cursor.insertText(display_command(stdout), plain_fmt)
    if stderr:
        mark = QTextCharFormat()
        mark.setForeground(QColor("#fca5a5"))
        mark.setFontWeight(QFont.Weight.Bold)
        sep = "" if not stdout or stdout.endswith("\n") else "\n"
        cursor.insertText(f"{sep}── stderr ──\n", mark)
        err = QTextCharFormat()
        err.setForeground(QColor("#fca5a5"))
        cursor.insertText(display_command(stderr), err)


def outcome_tone(req: ShellRequest) -> str:
    if req.status in ("denied", "expired"):
        return "never"
    if req.result is not None and (req.result.timed_out or (req.result.exit_code or 0) != 0):
        return "bad"
    return "good" if req.status == "done" else ""


OUTCOME_STYLES = {"never": "color: #92400e;", "bad": "color: #b3261e;", "good": "color: #1e6b41;"}
