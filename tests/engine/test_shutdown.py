"""`Application.stop()` leaves nothing of itself running: no task, no engine thread, no open stream.

A task or a thread that outlives its application keeps calling into a loop that has gone (or, under
qasync, into whichever loop runs next). Each test here stops an application in the middle of its work
and checks what is left.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from app.config import Paths
from app.core.application import Application
from tests.conftest import BUSYBOX, docker_cli


def _paths(root: Path, instance: str) -> Paths:
    paths = Paths(root, root / "state", root / "logs")
    paths.ensure()
    (root / "instance-id").write_text(instance + "\n")
    return paths


def _threads_of(instance: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(f"berth-{instance}-")]


async def test_stop_in_the_middle_of_work_leaves_no_task_thread_or_stream(instance: str, tmp_path: Path) -> None:
    app = Application(_paths(tmp_path / "data", instance), rpc_port=0)
    await app.start()
    agent, _token = await asyncio.to_thread(app.agents.add, "demo")
    svc = await app.containers.start_service(
        agent, name="talker", image=BUSYBOX, command="while :; do echo tick; sleep 0.1; done"
    )
    # A log follow that is still open, a run in flight and the event stream: all of them running at once.
    follow = app.engine.follow_logs(svc.id)
    first = await anext(follow)
    assert "tick" in first
    run = asyncio.ensure_future(app.containers.run(agent, command="sleep 30", image=BUSYBOX))
    await asyncio.sleep(0)
    assert app.running_parts(), "the application should have work in flight before it stops"
    assert any(name.endswith("-events") for name in _threads_of(instance))

    await wait_for_running_temporary(app)
    # As `berth serve` stops: the server cancels in-flight requests, the window closes its log views...
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    await follow.aclose()
    await app.stop()  # ... then the core goes

    assert app.running_parts() == []
    assert _threads_of(instance) == []  # worker, event-stream and log-follow threads all joined
    left = docker_cli(
        "ps", "-aq", "--filter", f"label=berth.instance={instance}", "--filter", "label=berth.kind=temporary"
    )
    assert left.stdout.split() == []  # the cancelled run's container was removed before stop returned


async def wait_for_running_temporary(app: Application, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not [c for c in await app.engine.list_containers({"berth.kind": "temporary"}) if c.status == "running"]:
        assert asyncio.get_running_loop().time() < deadline, "the temporary run never started"
        await asyncio.sleep(0.05)


async def test_stop_right_after_start_leaves_nothing(instance: str, tmp_path: Path) -> None:
    """The event stream is still being opened when the application stops."""
    app = Application(_paths(tmp_path / "data", instance), rpc_port=0)
    await app.start()
    await app.stop()
    assert app.running_parts() == []
    assert _threads_of(instance) == []
