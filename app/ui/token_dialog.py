"""An agent's new token, shown once, with a copy button and a ready snippet for the agent's side.

The snippet has what an agent needs: `BERTH_URL` and `BERTH_TOKEN`, a Python client call, a curl
call to the JSON-RPC endpoint, and the MCP configuration (docs/mcp.md) for MCP clients.
"""

from __future__ import annotations

import json
import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.resources import icon
from app.ui.widgets import mono_font

logger = logging.getLogger(__name__)


def agent_snippet(base_url: str, token: str) -> str:
    """What to paste into the agent's environment or configuration."""
    mcp = {
        "mcpServers": {
            "berth": {"type": "http", "url": f"{base_url}/mcp", "headers": {"Authorization": f"Bearer {token}"}}
        }
    }
    return "\n".join(
        [
            "# Environment for the agent",
            f"export BERTH_URL={base_url}",
            f"export BERTH_TOKEN={token}",
            "",
            "# Python (Berth's client, app/rpc/client.py: reads BERTH_URL and BERTH_TOKEN)",
            "from app.rpc.client import BerthClient",
            "berth = BerthClient()",
            'print(berth.run("python3 -c \'print(6*7)\'")["stdout"])',
            "",
            "# Any language: JSON-RPC 2.0 over HTTP",
            'curl -s -H "Authorization: Bearer $BERTH_TOKEN" $BERTH_URL/rpc \\',
            '  -d \'{"jsonrpc": "2.0", "id": 1, "method": "containers.run",',
            '       "params": {"command": "echo hello"}}\'',
            "",
            "# MCP clients (Streamable HTTP)",
            json.dumps(mcp, indent=2),
        ]
    )


class TokenDialog(QDialog):
    """Shows `token` for `agent` once; the person copies it (or the snippet) before closing."""

    def __init__(self, agent: str, token: str, base_url: str, *, rotated: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tokenDialog")
        self.setWindowTitle(f"Token for {agent}")
        self.token = token
        what = "new token" if rotated else "token"
        heading = QLabel(f"<b>{agent}</b>'s {what}")
        heading.setObjectName("dialogTitle")
        note = QLabel(
            "Copy it now and give it to the agent: it is how Berth knows the agent. "
            + ("The old token stops working at once. " if rotated else "")
            + "Anyone with this token can run containers as this agent, so keep it private."
        )
        note.setWordWrap(True)
        self.token_field = QLineEdit(token)
        self.token_field.setObjectName("token")
        self.token_field.setReadOnly(True)
        self.token_field.setFont(mono_font())
        self.token_field.setMinimumWidth(420)
        self.copy_button = QPushButton(icon("copy"), "Copy token")
        self.copy_button.setObjectName("copyToken")
        self.copy_button.clicked.connect(lambda: self._copy(token, self.copy_button, "Token copied"))
        token_row = QHBoxLayout()
        token_row.addWidget(self.token_field, 1)
        token_row.addWidget(self.copy_button)

        snippet_label = QLabel("Ready to paste for the agent:")
        self.snippet = QPlainTextEdit(agent_snippet(base_url, token))
        self.snippet.setObjectName("snippet")
        self.snippet.setReadOnly(True)
        self.snippet.setFont(mono_font())
        self.snippet.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.snippet.setMinimumHeight(300)
        self.copy_snippet = QPushButton(icon("copy"), "Copy snippet")
        self.copy_snippet.clicked.connect(
            lambda: self._copy(self.snippet.toPlainText(), self.copy_snippet, "Snippet copied")
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.addButton(self.copy_snippet, QDialogButtonBox.ButtonRole.ActionRole)

        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(note)
        layout.addLayout(token_row)
        layout.addSpacing(6)
        layout.addWidget(snippet_label)
        layout.addWidget(self.snippet, 1)
        layout.addWidget(buttons)
        self.resize(720, 560)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    @staticmethod
    def _copy(text: str, button: QPushButton, done: str) -> None:
        QGuiApplication.clipboard().setText(text)
        button.setText(done)
