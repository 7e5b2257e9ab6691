"""The person at the desk as a principal: what the window, the CLI and the RPC owner methods do, in one place.

The person is not limited like an agent, but goes through the same rules: a restart is admitted like an
agent's (so a service the panel restarts still counts against the agent's `max_containers`), every
action is audited (actor "you"), and nothing here reaches past the core into Docker labels. Front ends
call these methods and never the engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from app.config import PREFERRED_IMAGES, Settings
from app.core.engine_start import EngineStarter, StartPlan, StartResult
from app.core.history import ExitFilter, SearchResult
from app.core.images import check_pattern
from app.core.terminal import TerminalPlan, plan_terminal
from app.engine.registry import check_engine, copy_image
from app.errors import BerthError, Conflict, EngineUnavailable, InvalidParams, NotFound
from app.host import Folder, ShellResult
from app.model import (
    ENGINE_NAME_RE,
    FILES_LOCAL,
    LABEL_AGENT,
    LABEL_POOL_AGENT,
    LOCAL_ENGINE,
    Agent,
    ContainerDetail,
    ContainerInfo,
    EngineConfig,
    EngineInfo,
    Kind,
    Limits,
    RunRecord,
    Stats,
    StatsSample,
)

if TYPE_CHECKING:
    from app.core.application import Application

logger = logging.getLogger(__name__)

ACTOR = "you"


class Owner:
    def __init__(self, app: Application) -> None:
        self._app = app
        self._settings_lock = asyncio.Lock()  # one settings change at a time: each compares with the last
        # Start Docker (the engine-down banner): tests replace its `run` and `facts`, so nothing is started.
        self.engine_starter = EngineStarter(
            app.engine.endpoint, run=self._run_on_host, audit=self._audit_engine_start, reconnect=app.reconnect
        )

    # -- containers ------------------------------------------------------------------------------

    async def containers(self, *, all: bool = True) -> list[ContainerInfo]:
        """Every container of this Berth (agents' services and runs, and the warm pool)."""
        return await self._app.engine.list_containers(all=all)

    async def inspect(self, ref: str) -> ContainerInfo:
        return await self._app.engine.inspect(ref)

    async def inspect_detail(self, ref: str) -> ContainerDetail:
        """What the detail pane shows: the inspect in plain terms. A container that shares its agent's CPU
        group gets the agent's quota as its `cpus` reference (`cpu_group` says it is shared)."""
        detail = await self._app.engine.inspect_detail(ref)
        if detail.cpus is None:
            agent = await self._agent_of(detail.info)
            if agent is not None:
                detail = replace(detail, cpus=agent.limits.cpus)
        return detail

    async def stats(self, containers: list[ContainerInfo]) -> dict[str, Stats]:
        """CPU and memory of the running ones now; every reading is kept for the graphs (`stats_history`)."""
        stats = await self._app.engine.stats(containers)
        self._app.stats_history.record(stats, time.time())
        return stats

    def stats_history(self, container_id: str) -> list[StatsSample]:
        """The container's readings of the last five minutes, oldest first (kept while Berth runs)."""
        return self._app.stats_history.samples(container_id)

    def follow_logs(self, ref: str, *, tail: int | None = None, timestamps: bool = True) -> AsyncGenerator[str, None]:
        """A container's log text as it comes (close it with `aclosing`)."""
        return self._app.engine.follow_logs(ref, tail=tail, timestamps=timestamps)

    def follow_log_streams(
        self, ref: str, *, tail: int | None = None, timestamps: bool = True
    ) -> AsyncGenerator[tuple[str, str], None]:
        """The same, each piece with its stream ("stdout" or "stderr")."""
        return self._app.engine.follow_log_streams(ref, tail=tail, timestamps=timestamps)

    def terminal_plan(self, container_id: str) -> TerminalPlan:
        """What Open terminal would run for this container here (or why it cannot): nothing is started."""
        return plan_terminal(container_id, self._app.engine.endpoint)

    async def open_terminal(self, ref: str, start: Callable[[list[str]], bool]) -> TerminalPlan:
        """A shell in a running container, in the person's terminal emulator: audited as the person's action,
        then `start(argv)` (the window starts it detached). Conflict if it is not running, BerthError if no
        terminal or no docker command is found or the emulator would not start."""
        info = await self.inspect(ref)
        if info.status != "running":
            raise Conflict(f"{info.name} is {info.status}: a terminal needs a running container")
        plan = self.terminal_plan(info.id)
        if not plan.possible:
            raise BerthError(f"cannot open a terminal: {plan.reason}")
        await asyncio.to_thread(
            self._app.store.audit,
            "container.terminal",
            info.id,
            agent=info.agent or None,
            actor=ACTOR,
            detail={"name": info.name, "terminal": plan.terminal, "argv": plan.argv},
        )
        if not start(plan.argv):
            raise BerthError(f"{plan.terminal} did not start", hint="check that it opens from a shell")
        return plan

    async def agents_containers(self, name: str) -> list[ContainerInfo]:
        return await self._app.engine.list_containers({LABEL_AGENT: name}, all=True)

    async def stop(self, ref: str, timeout_s: float = 10) -> ContainerInfo:
        info = await self.inspect(ref)
        agent = await self._agent_of(info)
        if agent is not None:
            after = await self._app.containers.stop(agent, info.id, timeout_s, actor=ACTOR)
        else:
            after = await self._app.engine.stop(info.id, timeout_s)
            await self._audit("container.stop", info)
        return after

    async def restart(self, ref: str, timeout_s: float = 10) -> ContainerInfo:
        """Restart through admission: at the agent's limit it queues or is refused, as the agent's own would."""
        info = await self.inspect(ref)
        agent = await self._agent_of(info)
        if agent is None:
            raise InvalidParams(f"container {info.name} belongs to no agent Berth knows: remove it instead")
        return await self._app.containers.restart(agent, info.id, timeout_s, actor=ACTOR)

    async def remove(self, ref: str, *, force: bool = True) -> None:
        info = await self.inspect(ref)
        agent = await self._agent_of(info)
        if agent is not None and info.kind in (Kind.SERVICE, Kind.TEMPORARY):
            await self._app.containers.remove(agent, info.id, force=force, actor=ACTOR)
        else:
            await self._app.engine.remove(info.id, force=force)
            await self._audit("container.remove", info)

    async def _agent_of(self, info: ContainerInfo) -> Agent | None:
        name = info.agent or info.labels.get(LABEL_POOL_AGENT, "")
        if not name:
            return None
        try:
            return await asyncio.to_thread(self._app.agents.get, name)
        except NotFound:
            return None

    async def _audit(self, action: str, info: ContainerInfo) -> None:
        await asyncio.to_thread(
            self._app.store.audit, action, info.id, agent=info.agent or None, actor=ACTOR, detail={"name": info.name}
        )

    # -- the run history -------------------------------------------------------------------------

    async def search_history(
        self, text: str = "", *, agent: str | None = None, exit: ExitFilter = "any", limit: int = 500
    ) -> SearchResult:
        return await asyncio.to_thread(self._app.history.search, text, agent=agent, exit=exit, limit=limit)

    async def history_facets(self) -> tuple[list[int], list[str], int]:
        """For the history's filters: the exit codes and agents present, and how many runs are kept."""
        h = self._app.history
        return await asyncio.to_thread(lambda: (h.exit_codes(), h.agents(), h.count()))

    async def run(self, run_id: int) -> RunRecord | None:
        """One finished run with its whole output."""
        return await asyncio.to_thread(self._app.history.get, run_id)

    async def recent_runs(self, limit: int) -> list[RunRecord]:
        """The newest finished runs the panel shows (those since the person last cleared them)."""
        return await asyncio.to_thread(self._app.history.recent, limit)

    async def clear_finished_runs(self) -> int:
        """Take the finished runs so far off the panel; the history keeps them. The newest id cleared."""
        return await asyncio.to_thread(self._app.history.clear_recent)

    async def prune_history(self) -> int:
        """Bring the run history within the retention setting (in a worker thread); how many runs went."""
        s = self._app.settings
        return await asyncio.to_thread(
            self._app.history.prune, max_age_s=float(s.history_days) * 86400, max_runs=int(s.history_max_runs)
        )

    # -- the engine ------------------------------------------------------------------------------

    async def engine_info(self) -> EngineInfo:
        return await self._app.engine.info()

    async def images(self) -> list[str]:
        return await self._app.engine.images()

    async def reconnect(self) -> bool:
        """Check the engine now (the core reconnects by itself; this makes it sooner). True if it answers."""
        return await self._app.reconnect()

    def engine_start_plan(self) -> StartPlan:
        """What Start Docker would run here, or why it cannot (nothing is started)."""
        return self.engine_starter.plan()

    async def start_engine(self) -> StartResult:
        """Start the Docker engine as this platform allows (audited as the person's action), then reconnect.
        A failed command comes back in the result, with its output's tail and what to do."""
        return await self.engine_starter.start()

    async def _run_on_host(self, argv: Sequence[str], timeout_s: float) -> ShellResult:
        return await self._app.host.run(shlex.join(argv), Folder("/"), timeout_s, access="host")

    async def _audit_engine_start(self, argv: Sequence[str]) -> None:
        endpoint = self.engine_starter.endpoint
        await asyncio.to_thread(
            self._app.store.audit, "engine.start", endpoint, actor=ACTOR, detail={"argv": list(argv)}
        )

    # -- agents ----------------------------------------------------------------------------------

    async def add_agent(
        self, name: str, limits: Limits | None = None, *, engine: str = LOCAL_ENGINE
    ) -> tuple[Agent, str]:
        return await asyncio.to_thread(lambda: self._app.agents.add(name, limits, engine=engine))

    async def set_engine(self, name: str, engine: str) -> Agent:
        return await asyncio.to_thread(self._app.agents.set_engine, name, engine)

    # -- engines -----------------------------------------------------------------------------------

    def engine_names(self) -> list[str]:
        """The engines Berth drives now, `local` first (cheap: for the window's column and filter)."""
        return self._app.engine.names()

    async def engines(self) -> list[dict[str, Any]]:
        """Every engine: name, endpoint, whether it answers, version, this Berth's containers there, how the
        workspace reaches it (API.md `engines.list`)."""
        engines = self._app.engine
        infos = await engines.infos()
        out = []
        for info in infos:
            count: int | None = None
            if info.available:
                try:
                    count = len(await engines.get(info.name).list_containers(all=True))
                except BerthError:
                    count = None
            config = engines.config(info.name)
            out.append(
                info.to_json()
                | {
                    "containers": count,
                    "files": config.files if config else FILES_LOCAL,
                    "hint": None if info.available else info.hint,
                    "agents": sorted(
                        a.name for a in await asyncio.to_thread(self._app.agents.list) if a.engine == info.name
                    ),
                }
            )
        return out

    async def add_engine(self, config: EngineConfig) -> dict[str, Any]:
        """Add an engine: checked first (it must answer), then stored and driven; Berth's base images are copied
        to it from the local engine when it lacks them (no registry needed)."""
        if not ENGINE_NAME_RE.fullmatch(config.name) or config.name == LOCAL_ENGINE:
            raise InvalidParams(
                f"name: {config.name!r} is not a valid engine name (lower-case letters, digits, '-' and '_', at most "
                "32; not 'local')"
            )
        if bool(config.host) == bool(config.context):
            raise InvalidParams(
                "give the engine's address (--host URL) or a Docker context (--context NAME), one of them"
            )
        if config.host and not config.host.startswith(("tcp://", "ssh://", "unix://", "https://")):
            raise InvalidParams(f"host: {config.host!r} is not an engine address (tcp://, ssh:// or unix://)")
        if (
            config.host
            and config.host.startswith("tcp://")
            and not (config.tls_ca and config.tls_cert and config.tls_key)
        ):
            raise InvalidParams(
                "a tcp:// engine needs TLS: give --tls-ca, --tls-cert and --tls-key (an engine on plain TCP lets "
                "anyone on the network run containers as root there)"
            )
        for path in (config.tls_ca, config.tls_cert, config.tls_key):
            if path and not await asyncio.to_thread(os.path.isfile, path):
                raise InvalidParams(f"no such file: {path}")
        if any(n == config.name for n in self._app.engine.names()):
            raise Conflict(f"engine {config.name!r} already exists")
        probe, identity = await check_engine(self._app.instance, config)
        if not probe.available:
            raise EngineUnavailable(
                f"engine {config.name!r} does not answer at {probe.endpoint}", hint=probe.hint, engine=config.name
            )
        same = [n for n, i in (await self._app.engine.identities()).items() if identity and i == identity]
        if same:  # its containers would show twice, and its limits count twice
            raise Conflict(
                f"{probe.endpoint} is engine {same[0]!r} already, reached another way",
                hint="add an engine on another machine, or use the one Berth has",
            )
        stored = await asyncio.to_thread(self._app.store.add_engine, config)
        await asyncio.to_thread(
            self._app.store.audit,
            "engine.add",
            config.name,
            actor=ACTOR,
            detail=stored.to_json() | {"version": probe.version},
        )
        info = await self._app.add_engine(stored)
        copied = await self.copy_base_images(config.name)
        return info.to_json() | {"files": stored.files, "images_copied": copied}

    async def test_engine(self, config: EngineConfig) -> EngineInfo:
        """Whether an engine answers, without adding it (Settings' Test connection): its version, or a hint."""
        info, _identity = await check_engine(self._app.instance, config)
        return info

    async def copy_base_images(self, name: str) -> list[str]:
        """Copy Berth's base images (and the default image) from the local engine to `name` where missing."""
        engines = self._app.engine
        wanted = dict.fromkeys([*PREFERRED_IMAGES, self._app.containers.default_image])
        copied = []
        for image in wanted:
            if await engines.local.has_image(image) and not await engines.get(name).has_image(image):
                await copy_image(engines.local, engines.get(name), image)
                copied.append(image)
        return copied

    async def remove_engine(self, name: str) -> None:
        """Forget an engine (refused while an agent is placed on it); its containers stay where they are."""
        if name == LOCAL_ENGINE:
            raise InvalidParams("the local engine cannot be removed")
        await asyncio.to_thread(self._app.store.remove_engine, name)
        await asyncio.to_thread(self._app.store.audit, "engine.remove", name, actor=ACTOR)
        await self._app.remove_engine(name)

    async def set_limits(self, name: str, **changes: Any) -> Agent:
        return await asyncio.to_thread(self._app.agents.set_limits, name, **changes)

    async def set_enabled(self, name: str, enabled: bool) -> Agent:
        return await asyncio.to_thread(self._app.agents.set_enabled, name, enabled)

    async def set_host_folders(self, name: str, folders: Sequence[str]) -> Agent:
        return await asyncio.to_thread(self._app.set_host_folders, name, list(folders))

    async def set_images(self, name: str, patterns: Sequence[str]) -> Agent:
        return await asyncio.to_thread(self._app.agents.set_images, name, list(patterns))

    async def rotate_token(self, name: str) -> str:
        return await asyncio.to_thread(self._app.agents.rotate_token, name)

    async def remove_agent(self, name: str, *, containers: bool, workspace: bool) -> int:
        """Remove an agent; with `containers`, its containers first (the count that could not be removed is
        returned); with `workspace`, its files too. The window and `berth agents remove` both come here."""
        agent = await asyncio.to_thread(self._app.agents.get, name)
        failed = 0
        if containers:
            found = await self.agents_containers(name)
            results = await asyncio.gather(
                *(self._app.containers.remove(agent, c.id, force=True, actor=ACTOR) for c in found),
                return_exceptions=True,
            )
            failed = sum(1 for r in results if isinstance(r, BaseException))
        await asyncio.to_thread(self._app.agents.remove, name, delete_workspace=workspace)
        return failed

    # -- settings --------------------------------------------------------------------------------

    async def apply_settings(self, new: Settings) -> list[str]:
        """Save and apply settings; what applies at once does (default image, approval expiry -- waiting
        requests included --, notifications, hidden folders). Returns what needs a restart."""
        async with self._settings_lock:
            return await self._apply_settings(new)

    async def _apply_settings(self, new: Settings) -> list[str]:
        app = self._app
        old = app.settings
        new = replace(new, image_patterns=[check_pattern(p) for p in new.image_patterns])
        await asyncio.to_thread(new.save, app.paths.settings_file)
        app.settings = new
        app.approvals.expiry_s = new.approval_expiry_s
        if new.default_image:
            app.containers.default_image = new.default_image
        elif app.engine_available:
            app.containers.default_image = await self._automatic_image()
        await asyncio.to_thread(app.store.audit, "settings.change", "settings", actor=ACTOR, detail=_changes(old, new))
        if (new.history_days, new.history_max_runs) != (old.history_days, old.history_max_runs):
            app.spawn_history_prune()
        return [
            what
            for what, changed in (
                ("the RPC port", new.rpc_port != old.rpc_port),
                ("the engine endpoint", new.engine_endpoint != old.engine_endpoint),
            )
            if changed
        ]

    async def _automatic_image(self) -> str:
        for image in PREFERRED_IMAGES:
            try:
                if await self._app.engine.has_image(image):
                    return image
            except BerthError:
                break
        return PREFERRED_IMAGES[0]


def _changes(old: Settings, new: Settings) -> dict[str, Any]:
    before, after = old.to_json(), new.to_json()
    return {k: after[k] for k in after if before.get(k) != after[k]}


__all__ = ["ACTOR", "Owner"]
