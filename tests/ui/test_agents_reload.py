"""The Agents view shows the newest list of agents when reloads overlap.

Seen in a fresh-clone run: the view kept an agent's old container limit (4 instead of the 2 just set), because a
reload started before the change (the agent being added) finished after the one started after it. Reloads run
their store read in a thread, so they can finish in any order; only the latest one started may show."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from app.ui.desktop import Desktop
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
