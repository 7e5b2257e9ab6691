"""Background runs (API.md "Background runs"): a temporary container an agent starts now and asks about later.

A run is a core object with an id, the agent that owns it, its output so far and, once it has ended, its
result, kept for an hour. A blocking `containers.run` is a background run that its caller waits on, so both go
one way: `Containers.run` (admission, limits, timeout, output caps, removal, history).

Output so far: `Engine.output_so_far` of the run's container, which the core learns from the `run.container`
event that `Containers.run` emits once the container is there (the exec buffers of a pooled run, the log of a
run in its own container; stdout and stderr apart either way).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from app.core.containers import Containers
from app.core.events import Event, EventBus
from app.errors import BerthError, NotFound
from app.model import OUTPUT_CAP, Agent, RunResult

logger = logging.getLogger(__name__)

KEEP_S = 3600.0  # a finished background run's result is kept this long (API.md)
KEEP_PER_AGENT = 100  # ... and at most this many finished runs per agent: memory stays bounded (oldest go first)


@dataclass(eq=False)
class BackgroundRun:
    """One run: its task (a `Containers.run`), its container once known, and when it ended."""

    id: str
    agent: str
    background: bool  # False: a blocking run, forgotten as soon as its caller has the result
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[RunResult] = field(init=False, repr=False)
    container_id: str | None = None
    ended: float | None = None
    output_at_cancel: tuple[str, str] = ("", "")
    # Resolved when the run is admitted or queued for a slot: the checks before that are behind it.
    under_way: asyncio.Future[None] = field(init=False, repr=False)


# The run being served by the current task. `Containers.run` announces a run's container with an event emitted
# from that task, synchronously, so the event's context says which run it is (one agent may have several).
_CURRENT: contextvars.ContextVar[BackgroundRun | None] = contextvars.ContextVar("berth_background_run", default=None)


class BackgroundRuns:
    """Every run of this application, blocking or not; results of background runs kept for `KEEP_S`."""

    def __init__(self, containers: Containers, events: EventBus, *, keep_s: float = KEEP_S) -> None:
        self._containers = containers
        self._keep_s = keep_s
        self._runs: dict[str, BackgroundRun] = {}
        self._closed = False
        events.subscribe(self._on_container, "run.container")
        events.subscribe(self._on_admission, "run.started")
        events.subscribe(self._on_admission, "admission.queued")

    # -- starting ----------------------------------------------------------------------------------

    async def run(self, agent: Agent, **kw: Any) -> RunResult:
        """A blocking run: a background run whose caller waits for it. A caller that goes away (its task is
        cancelled) cancels the run, as awaiting a task passes the cancel on; its container is removed."""
        run = self._launch(agent, kw, background=False)
        try:
            return await run.task
        finally:
            self._runs.pop(run.id, None)

    async def start(self, agent: Agent, **kw: Any) -> BackgroundRun:
        """Start a run and return once it is under way: admitted (its container is being made) or waiting in
        its agent's queue for a slot. What `Containers.run` refuses before that (a network or an image not
        allowed, the agent at its limit with `at_limit=reject`) is this call's error; anything later is the
        run's, reported by `wait`."""
        self._prune()
        run = self._launch(agent, kw, background=True)
        try:
            either: set[asyncio.Future[Any]] = {run.task, run.under_way}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            run.task.cancel()  # the caller went before it had the run_id: nobody could ever ask for this run
            raise
        if run.task.done() and not run.task.cancelled() and (error := run.task.exception()) is not None:
            self._runs.pop(run.id, None)
            raise error
        return run

    def _launch(self, agent: Agent, kw: dict[str, Any], *, background: bool) -> BackgroundRun:
        if self._closed:
            raise BerthError("Berth is stopping", hint="start the run again once Berth is back")
        run = BackgroundRun(f"run-{secrets.token_hex(8)}", agent.name, background)
        context = contextvars.copy_context()
        context.run(_CURRENT.set, run)
        loop = asyncio.get_running_loop()
        run.under_way = loop.create_future()
        run.task = loop.create_task(self._containers.run(agent, **kw), name=f"berth-{run.id}", context=context)
        run.task.add_done_callback(lambda task: self._ended(run, task))
        self._runs[run.id] = run
        return run

    def _on_container(self, event: Event) -> None:
        run = _CURRENT.get()
        data = event.data
        if run is not None and isinstance(data, dict) and data.get("agent") == run.agent:
            run.container_id = str(data["id"])

    def _on_admission(self, event: Event) -> None:
        """`run.started` (a slot taken) or `admission.queued` (waiting for one), emitted by the current run."""
        run = _CURRENT.get()
        if run is not None and not run.under_way.done():
            run.under_way.set_result(None)

    def _ended(self, run: BackgroundRun, task: asyncio.Task[RunResult]) -> None:
        run.ended = time.monotonic()
        if not run.under_way.done():
            run.under_way.cancel()
        if task.cancelled():
            return
        error = task.exception()  # retrieved here, so an unwaited failure is never "never retrieved"
        if error is not None and run.background and not isinstance(error, BerthError):
            logger.error("background run %s of %s failed", run.id, run.agent, exc_info=error)

    # -- asking --------------------------------------------------------------------------------------

    async def wait(self, agent: Agent, run_id: str, wait_s: float = 0) -> dict[str, Any]:
        """The run's result once it has ended (within `wait_s`), else its output so far.

        A run that failed raises its error here, as the blocking call would have, at every wait."""
        self._prune()
        run = self._own(agent, run_id)
        if not run.task.done() and wait_s > 0:
            await asyncio.wait({run.task}, timeout=wait_s)  # never cancels the run, also when this caller goes
        if run.task.done():
            return self._result(run)
        stdout, stderr = await self.output_so_far(run)
        return {"run_id": run.id, "status": "running", "stdout_so_far": stdout, "stderr_so_far": stderr}

    async def cancel(self, agent: Agent, run_id: str) -> dict[str, Any]:
        """Stop the run (its container is killed and removed) and return its result; a run that has already
        ended is left as it is and its result returned."""
        self._prune()
        run = self._own(agent, run_id)
        if not run.task.done():
            run.output_at_cancel = await self.output_so_far(run)
            run.task.cancel()
            await asyncio.wait({run.task})
        return self._result(run)

    async def output_so_far(self, run: BackgroundRun) -> tuple[str, str]:
        """(stdout, stderr) the run has written so far, apart: from the engine's buffers of a pooled run (an
        exec), else from the container's log."""
        if run.container_id is None:  # still queued for a slot, or its container is being made
            return "", ""
        try:
            return await self._containers.engine.output_so_far(run.container_id, cap=OUTPUT_CAP)
        except BerthError:  # gone in the meantime: the run is ending
            return "", ""

    def _own(self, agent: Agent, run_id: str) -> BackgroundRun:
        run = self._runs.get(run_id) if isinstance(run_id, str) else None
        if run is None or not run.background or run.agent != agent.name:
            # Another agent's run is "not found", like its containers.
            raise NotFound(
                f"no background run {run_id!r} for agent {agent.name!r}",
                hint="use the run_id that starting the run returned; a result is kept for an hour after the run ends",
            )
        return run

    def _result(self, run: BackgroundRun) -> dict[str, Any]:
        """A finished run as the API gives it: the blocking result with `run_id` and `status`, or its error."""
        if run.task.cancelled():
            stdout, stderr = run.output_at_cancel
            return {
                "run_id": run.id,
                "status": "cancelled",
                "id": run.container_id,
                "exit_code": None,
                "stdout": stdout,
                "stderr": stderr,
                "timed_out": False,
                "oom_killed": False,
                "duration_ms": int(((run.ended or time.monotonic()) - run.started) * 1000),
                "truncated": False,
            }
        error = run.task.exception()
        if error is not None:
            raise error.with_traceback(None)  # the same error at every wait, not a growing traceback
        return {"run_id": run.id, "status": "done", **run.task.result().to_json()}

    def _prune(self) -> None:
        """Forget results older than `KEEP_S`, and an agent's oldest beyond `KEEP_PER_AGENT`."""
        now = time.monotonic()
        finished: dict[str, list[BackgroundRun]] = {}
        for run in list(self._runs.values()):
            if run.ended is None or not run.background:
                continue
            if now - run.ended > self._keep_s:
                del self._runs[run.id]
            else:
                finished.setdefault(run.agent, []).append(run)
        for runs in finished.values():
            runs.sort(key=lambda r: r.ended or 0.0)
            for run in runs[:-KEEP_PER_AGENT]:
                del self._runs[run.id]

    # -- life cycle ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Cancel every run still going and wait until each has ended (its container removal is under way)."""
        self._closed = True
        tasks = [run.task for run in self._runs.values() if not run.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def tasks(self) -> list[asyncio.Task[RunResult]]:
        """The runs' tasks (for shutdown checks)."""
        return [run.task for run in self._runs.values()]
