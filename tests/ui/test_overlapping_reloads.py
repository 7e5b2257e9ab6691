"""Views show the newest data when their reloads overlap (the Agents view, Settings' trusted patterns).

Seen in a fresh-clone run: the view kept an agent's old container limit (4 instead of the 2 just set), because a
reload started before the change (the agent being added) finished after the one started after it. Reloads run
their store read in a thread, so they can finish in any order; only the latest one started may show."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from app.ui.desktop import Desktop
from app.ui.patterns_editor import PatternsEditor
from tests.ui.conftest import wait_until


async def test_an_older_reload_finishing_last_does_not_bring_old_limits_back(
    offline_desktop: tuple[Desktop, int],
) -> None:
    desktop, _port = offline_desktop
    app, view = desktop.app, desktop.wiring.agents
    await asyncio.to_thread(app.agents.add, "demo")
    real_list = app.agents.list
    release = threading.Event()
    calls = [0]

    def slow_first_list() -> Any:
        calls[0] += 1
        if calls[0] == 1:
            agents = real_list()  # read before the change...
            release.wait(10)  # ...and held until the newer reload has shown its list
            return agents
        return real_list()

    app.agents.list = slow_first_list  # type: ignore[method-assign]
    try:
        old = asyncio.ensure_future(view.reload())
        await wait_until(lambda: calls[0] == 1, what="the first reload reading", timeout=5)
        await asyncio.to_thread(app.agents.set_limits, "demo", max_containers=2)
        await view.reload()
        release.set()
        await old
    finally:
        app.agents.list = real_list  # type: ignore[method-assign]
    shown = {a.name: a for a in view.model.agents()}
    assert shown["demo"].limits.max_containers == 2


async def test_an_older_pattern_list_finishing_last_does_not_hide_a_new_pattern(
    offline_desktop: tuple[Desktop, int],
) -> None:
    """The same in Settings' trusted patterns, seen in a fresh-clone run: `berth trust add` while the dialog opened
    (the test_agents CLI test); the opening reload, slow on a loaded machine, put the list without it back."""
    desktop, _port = offline_desktop
    app = desktop.app
    real_list = app.approvals.list_patterns
    release = threading.Event()
    calls = [0]

    def slow_first_list(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            patterns = real_list(*args, **kw)  # read before the pattern is added...
            release.wait(10)  # ...and held until the newer reload has shown its list
            return patterns
        return real_list(*args, **kw)

    app.approvals.list_patterns = slow_first_list  # type: ignore[method-assign]
    editor = PatternsEditor(app, None)
    try:
        opening = asyncio.ensure_future(editor.reload())  # as the dialog opening does: the slow one
        await wait_until(lambda: calls[0] >= 1, what="the opening reload reading", timeout=5)
        await asyncio.to_thread(lambda: app.approvals.add_pattern("uname -a", None, actor="you"))
        await editor.reload()
        release.set()
        await opening
    finally:
        release.set()
        app.approvals.list_patterns = real_list  # type: ignore[method-assign]
    assert any(p.pattern == "uname -a" for p in editor.model.patterns())
    editor.deleteLater()
