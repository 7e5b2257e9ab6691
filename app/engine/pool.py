"""A warm pool: containers created and started ahead of time, so a temporary run skips create and start.

A pooled container is made for one key — everything fixed at creation (agent, image, memory, CPU
group, network, user, workspace mount, pids limit) — and idles under `init` until a run takes it.
The run execs its command there; the container is then removed, never reused, and the pool refills
in the background. `take` never waits: with nothing ready the caller goes the cold way.

Sizing follows demand: a key used within `idle_s` keeps one container ready, more once it was
seen short (a miss) or used concurrently (as many as ran at once lately: a burst of 20 asks for 20);
an idle key drains. Idle containers of all keys together stay within one budget, `max_idle`, shared
fairly: a key gets what it asks for up to an equal share of what the keys asking less leave over, and
nothing is evicted to make room for another key (under load that only made containers that were never
used). The budget is memory: an idle pooled container holds about 0.4 MiB in its own cgroup and about
3 MiB more in its containerd shim on the host, so the shipped 24 cost at most about 80 MiB, and only
while a key's bursts are that large.
Refills never compete with runs: while the engine runs as many runs as there are CPUs, the pool waits,
and catches up once it is quiet, up to `MAX_CONCURRENT_FILLS` containers at once; under sustained
load it steps aside, and runs go the cold way as they would without it. A key whose limits differ
from an agent's older key drains that agent's old keys: the agent's limits changed.

This module is bookkeeping only (no docker import): the engine passes in how to make and remove a
container, so the logic is testable without an engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.model import ContainerSpec, CpuGroup, PoolConfig, PoolStatus

logger = logging.getLogger(__name__)

RETRY_AFTER_FAILURE_S = 30.0
REAP_INTERVAL_S = 0.5
# Containers being made at once, all keys together: two per CPU (more gained little: 8 at once made 20 in
# 3.1 s, 4 in 3.6 s, 2 in 5.5 s on 2 CPUs), at least 2 and at most 8 so as not to flood the engine.
MAX_CONCURRENT_FILLS = min(8, max(2, 2 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class PoolKey:
    """What fixes a container at creation; runs with equal keys can share a pool."""

    agent: str
    image: str
    memory: int | None
    cpu_group: CpuGroup | None
    network: str
    user: str | None
    workspace: str | None
    pids_limit: int
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, spec: ContainerSpec) -> PoolKey:
        return cls(
            agent=spec.agent,
            image=spec.image,
            memory=spec.memory,
            cpu_group=spec.cpu_group,
            network=spec.network,
            user=spec.user,
            workspace=spec.workspace,
            pids_limit=spec.pids_limit,
            labels=tuple(sorted(spec.labels.items())),
        )

    @property
    def limits(self) -> tuple[int | None, CpuGroup | None, int]:
        """The part that comes from the agent's limits: when it changes, the agent's old keys are stale."""
        return self.memory, self.cpu_group, self.pids_limit

    def spec(self) -> ContainerSpec:
        """A spec to create an idle container from (env and workdir come with each exec)."""
        return ContainerSpec(
            agent=self.agent,
            image=self.image,
            network="bridge" if self.network == "bridge" else "none",
            memory=self.memory,
            cpu_group=self.cpu_group,
            user=self.user,
            workspace=self.workspace,
            pids_limit=self.pids_limit,
            labels=dict(self.labels),
        )


@dataclass(frozen=True)
class Warm:
    """A started idle container, ready for one run."""

    id: str
    cpu_group: str | None = None  # its cgroup parent, where the engine reads its memory counters


@dataclass
class _Slot:
    ready: deque[Warm] = field(default_factory=deque)
    filling: int = 0
    in_flight: int = 0
    last_used: float = 0.0
    short_at: float = -1e18  # when demand last outran supply (a miss, or concurrent runs)
    failed_until: float = 0.0
    peak: int = 0  # the most runs of this key in flight at once, lately
    peak_at: float = -1e18


Create = Callable[[ContainerSpec], Awaitable[Warm]]
Remove = Callable[[str], Awaitable[None]]


class WarmPool:
    def __init__(
        self,
        create: Create,
        remove: Remove,
        config: PoolConfig | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config or PoolConfig()
        self._busy = busy or (lambda: False)
        self._create = create
        self._remove = remove
        self._slots: dict[PoolKey, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._generation = 0
        self._closed = False
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.config.enabled and self.config.max_idle > 0 and not self._closed

    # -- runs ------------------------------------------------------------------------------------

    def take(self, key: PoolKey) -> Warm | None:
        """A ready container for `key`, or None (go cold). Counts the run as in flight until `done`."""
        if not self.enabled:
            return None
        now = time.monotonic()
        self._drain_stale_limits(key)
        slot = self._slots.setdefault(key, _Slot())
        slot.last_used = now
        slot.in_flight += 1
        if slot.in_flight > 1:
            slot.short_at = now
        if slot.in_flight >= slot.peak or now - slot.peak_at > self.config.idle_s:
            slot.peak, slot.peak_at = slot.in_flight, now
        self._ensure_reaper()
        if slot.ready:
            self.hits += 1
            return slot.ready.popleft()
        self.misses += 1
        slot.short_at = now
        return None

    def done(self, key: PoolKey) -> None:
        """The run of `key` finished (either way): refill behind it."""
        slot = self._slots.get(key)
        if slot is None:
            return
        slot.in_flight = max(0, slot.in_flight - 1)
        slot.last_used = time.monotonic()
        self._top_up(key)

    def _demand(self, slot: _Slot, now: float) -> int:
        """How many ready containers a key would like: 0 when idle, 1 when used, the recent peak when short."""
        if now - slot.last_used > self.config.idle_s:
            return 0
        if now - slot.short_at <= self.config.idle_s:
            # Learned from demand: as many as ran at once lately (a burst of 20 asks for up to the whole
            # budget), at least `per_key`.
            peak = slot.peak if now - slot.peak_at <= self.config.idle_s else 0
            return max(1, self.config.per_key, min(peak, self.config.max_idle))
        return min(1, self.config.per_key)

    def targets(self) -> dict[PoolKey, int]:
        """Each key's share of the one budget: the smallest demands are met first, the rest is split evenly
        (with more keys than containers, the keys used most recently get one each)."""
        if not self.enabled:
            return {}
        now = time.monotonic()
        demands = {k: d for k, s in self._slots.items() if (d := self._demand(s, now)) > 0}
        order = sorted(demands, key=lambda k: (demands[k], -self._slots[k].last_used))
        left, out = self.config.max_idle, {}
        for i, key in enumerate(order):
            fair = left // (len(order) - i)
            out[key] = min(demands[key], fair if fair > 0 else (1 if left > 0 else 0))
            left -= out[key]
        return out

    def target(self, key: PoolKey) -> int:
        return self.targets().get(key, 0)

    async def warm(self, spec: ContainerSpec, n: int = 1, timeout_s: float = 60.0) -> PoolKey:
        """Mark `spec`'s key as in demand and wait until `n` containers are ready (tests, benchmarks)."""
        key = PoolKey.of(spec)
        slot = self._slots.setdefault(key, _Slot())
        slot.last_used = time.monotonic()
        if n > 1:
            slot.short_at = slot.last_used
        self._ensure_reaper()
        deadline = time.monotonic() + timeout_s
        while len(slot.ready) < n:
            if not self.enabled:
                raise RuntimeError("the pool is off")
            if slot.failed_until > time.monotonic():
                raise RuntimeError(f"the pool cannot make containers for {key.image}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the pool did not warm {n} container(s) for {key.image}")
            self._top_up(key, want=n)
            await asyncio.sleep(0.02)
            slot = self._slots.setdefault(key, slot)
        return key

    # -- filling ---------------------------------------------------------------------------------

    def _idle_total(self) -> int:
        return sum(len(s.ready) + s.filling for s in self._slots.values())

    def _filling_total(self) -> int:
        return sum(s.filling for s in self._slots.values())

    def _top_up(self, key: PoolKey, want: int | None = None) -> None:
        """Start making containers for `key` up to its share, several at once; never while the engine is busy
        with runs, never more than `MAX_CONCURRENT_FILLS` at once, never past the budget (nothing is evicted)."""
        slot = self._slots.get(key)
        if slot is None or not self.enabled or slot.failed_until > time.monotonic():
            return
        if want is None and self._busy():
            return  # the reaper catches up once the runs are done
        target = max(self.target(key), want or 0)
        while len(slot.ready) + slot.filling < target:
            if self._idle_total() >= self.config.max_idle and want is None:
                return
            if self._filling_total() >= MAX_CONCURRENT_FILLS:
                return
            slot.filling += 1
            self._spawn(self._fill(key, slot, self._generation))

    async def _fill(self, key: PoolKey, slot: _Slot, generation: int) -> None:
        try:
            warm = await self._create(key.spec())
        except asyncio.CancelledError:
            raise
        except Exception as e:
            slot.failed_until = time.monotonic() + RETRY_AFTER_FAILURE_S
            logger.info("the pool cannot prepare a container for %s (%s): those runs go the cold way", key.image, e)
            return
        finally:
            slot.filling -= 1
        if self._closed or generation != self._generation or self._slots.get(key) is not slot:
            self._discard(warm)
        else:
            slot.ready.append(warm)

    # -- draining --------------------------------------------------------------------------------

    def _drain_stale_limits(self, key: PoolKey) -> None:
        for other in [k for k in self._slots if k.agent == key.agent and k.limits != key.limits]:
            self._drop(other)

    def drain(self, agent: str | None = None, *, keep: Callable[[PoolKey], bool] | None = None) -> int:
        """Remove the idle containers of `agent` (all agents if None) except keys that `keep` accepts."""
        stale = [k for k in self._slots if (agent is None or k.agent == agent) and not (keep and keep(k))]
        return sum(self._drop(k) for k in stale)

    def _drop(self, key: PoolKey) -> int:
        slot = self._slots.pop(key, None)  # fills in flight see the slot gone and discard what they made
        if slot is None:
            return 0
        count = len(slot.ready)
        while slot.ready:
            self._discard(slot.ready.popleft())
        return count

    def _discard(self, warm: Warm) -> None:
        self._spawn(self._remove(warm.id))

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap())

    async def _reap(self) -> None:
        """Drain idle keys, trim keys above their share, and top up the others once the engine is quiet."""
        interval = max(0.05, min(self.config.idle_s / 4, REAP_INTERVAL_S))
        while self._slots:
            await asyncio.sleep(interval)
            now = time.monotonic()
            targets = self.targets()
            for key, slot in list(self._slots.items()):
                if slot.in_flight == 0 and now - slot.last_used > self.config.idle_s:
                    self._drop(key)
                elif len(slot.ready) > targets.get(key, 0):
                    self._discard(slot.ready.pop())  # a key that calmed down, or a share that shrank
            for key in sorted(targets, key=lambda k: -self._slots[k].last_used):
                self._top_up(key)

    def forget(self) -> None:
        """The engine removed every pooled container (reconcile after a reconnect): start over."""
        self._generation += 1
        for slot in self._slots.values():
            slot.ready.clear()

    def status(self) -> PoolStatus:
        return PoolStatus(
            enabled=self.enabled,
            idle=sum(len(s.ready) for s in self._slots.values()),
            filling=sum(s.filling for s in self._slots.values()),
            keys=len(self._slots),
            hits=self.hits,
            misses=self.misses,
        )

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def holds(self, cid: str) -> bool:
        """Is `cid` a ready container of this pool?"""
        return any(w.id == cid for s in self._slots.values() for w in s.ready)

    def tasks(self) -> list[asyncio.Task[Any]]:
        """Fills, removals and the idle reaper still in flight."""
        extra = [self._reaper] if self._reaper is not None and not self._reaper.done() else []
        return [*self._tasks, *extra]

    async def settle(self) -> None:
        """Wait until no fill or removal is in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop filling and remove every idle container (at exit)."""
        if self.hits + self.misses:
            rate = self.hits / (self.hits + self.misses)
            logger.info(
                "warm pool: %d hits, %d misses (%.0f%% of runs found a container ready)",
                self.hits,
                self.misses,
                rate * 100,
            )
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.settle()  # fills finishing now see `_closed` and discard what they made
        self.drain()
        await self.settle()
