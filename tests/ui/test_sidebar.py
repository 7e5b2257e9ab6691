"""The sidebar: the views are pages one click apart; Settings… is a button that opens the Settings window.

Issue #20: Settings sat among the pages drawn like one, but opened a window and never showed as selected.
It is now drawn as a button, and clicking it leaves the page the person was on.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.ui.desktop import Desktop
from app.ui.main_window import VIEWS
from app.ui.settings_dialog import SettingsDialog
from tests.ui.conftest import wait_until


async def test_views_are_pages_and_settings_is_a_button_that_opens_the_settings_window(
    offline_desktop: tuple[Desktop, int],
) -> None:
    desktop, _port = offline_desktop
    window = desktop.window
    for i, (key, _text, _icon) in enumerate(VIEWS):  # each view is a page: a click shows it and marks it
        window.nav[key].click()
        assert window.current_view() == key and window.stack.currentIndex() == i
        assert window.nav[key].isChecked()
    window.show_view("agents")

    button = window.settings_button
    assert button not in window.group.buttons()  # not one of the pages
    assert not button.isCheckable()
    assert button.objectName() == "sidebarAction"  # the style sheet draws it as a button (a border)
    assert button.objectName() != window.nav["agents"].objectName()
    assert button.text() == "Settings…"  # "…": it opens a window
    assert button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon
    assert "Ctrl+," in button.toolTip()
    assert button.isVisible() and button.width() <= window.nav["agents"].width()
    label = button.iconSize().width() + button.fontMetrics().horizontalAdvance(button.text())
    assert button.width() >= label + 12  # "Settings…" is written out in full, not elided

    button.click()
    await wait_until(lambda: desktop.wiring.settings_dialog is not None, what="the Settings window")
    dialog = desktop.wiring.settings_dialog
    assert isinstance(dialog, SettingsDialog)
    await wait_until(dialog.isVisible, what="the Settings window to show")
    assert window.current_view() == "agents" and window.nav["agents"].isChecked()  # the page stays
    assert not button.isChecked()
    dialog.reject()
    await wait_until(lambda: desktop.wiring.settings_dialog is None, what="the Settings window to close")
