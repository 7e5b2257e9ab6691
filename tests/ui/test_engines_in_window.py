"""The window with more than one engine: an Engine column and filter, and an engine that does not answer named in
the status bar (issue #18). No engine answers here (`offline_desktop`): the rows are the core's ContainerInfo as an
engine reports them; tests/engines/test_multi_engine.py has the same against two real engines."""

from __future__ import annotations

import time

from app.model import ContainerInfo, EngineConfig, Kind
from app.ui.container_model import COL_ENGINE, COL_NAME, row_from_info
from app.ui.desktop import Desktop
from tests.ui.conftest import _free_port, wait_until


def _info(cid: str, name: str, engine: str) -> ContainerInfo:
    return ContainerInfo(
        id=cid,
        name=name,
        full_name=f"berth.x.demo.{name}",
        agent="demo",
        kind=Kind.SERVICE,
        status="running",
        image="berth/busybox:latest",
        created=time.time(),
        engine=engine,
    )


async def test_the_engine_column_and_filter_come_with_a_second_engine(offline_desktop: tuple[Desktop, int]) -> None:
    desktop, _port = offline_desktop
    panel, window = desktop.panel, desktop.window
    panel.update_engines()
    # One engine: no Engine column, no engine filter (noise for most people).
    assert panel.table.isColumnHidden(COL_ENGINE) and not panel.engine_box.isVisible()

    gone = f"tcp://127.0.0.1:{_free_port()}"
    config = EngineConfig(name="gpu-box", host=gone, tls_ca=None, files="sync")
    await desktop.app.add_engine(config)
    # It does not answer: only its own agents wait, and the status bar says which engine.
    await wait_until(lambda: window.other_engines_label.isVisible(), what="the engine named in the status bar")
    assert "gpu-box" in window.other_engines_label.text()
    assert gone in window.other_engines_label.toolTip()
    assert not panel.table.isColumnHidden(COL_ENGINE) and panel.engine_box.isVisible()
    assert [panel.engine_box.itemData(i) for i in range(panel.engine_box.count())] == ["", "local", "gpu-box"]

    desktop.model.upsert(row_from_info(_info("a" * 64, "here", "local")))
    desktop.model.upsert(row_from_info(_info("b" * 64, "there", "gpu-box")))
    proxy = panel.proxy
    engines = {proxy.index(r, COL_NAME).data(): proxy.index(r, COL_ENGINE).data() for r in range(proxy.rowCount())}
    assert engines == {"here": "local", "there": "gpu-box"}
    panel.engine_box.setCurrentIndex(panel.engine_box.findData("gpu-box"))
    assert [proxy.index(r, COL_NAME).data() for r in range(proxy.rowCount())] == ["there"]
    panel.clear_filter()
    assert proxy.rowCount() == 2

    await desktop.app.remove_engine("gpu-box")
    panel.update_engines()
    assert panel.table.isColumnHidden(COL_ENGINE) and not panel.engine_box.isVisible()
