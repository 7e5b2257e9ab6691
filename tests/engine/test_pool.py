"""The warm pool: its sizing with a fake engine (fast), and single use, labels and cleanup with the real one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from itertools import count

import pytest

from app.engine import Engine
from app.engine.pool import MAX_CONCURRENT_FILLS, PoolKey, Warm, WarmPool
from app.model import ContainerSpec, CpuGroup, MiB, PoolConfig, RunSpec
from tests.conftest import BUSYBOX, PYTHON, docker_cli

# -- sizing, with a fake engine --------------------------------------------------------------------


class FakeEngine:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.made: list[str] = []
        self.removed: list[str] = []
        self.specs: list[ContainerSpec] = []
        self._ids = count(1)

    async def create(self, spec: ContainerSpec) -> Warm:
        await asyncio.sleep(self.delay)
        cid = f"c{next(self._ids)}"
        self.made.append(cid)
        self.specs.append(spec)
        return Warm(cid)

    async def remove(self, cid: str) -> None:
        self.removed.append(cid)

    @property
    def alive(self) -> set[str]:
        return set(self.made) - set(self.removed)


def key(agent: str = "a", image: str = "img", memory: int = 512 * MiB, cpus: float = 1.0) -> PoolKey:
    return PoolKey.of(ContainerSpec(agent=agent, image=image, memory=memory, cpu_group=CpuGroup(agent, cpus)))


def make_pool(**config: float) -> tuple[WarmPool, FakeEngine]:
    fake = FakeEngine()
    return WarmPool(fake.create, fake.remove, PoolConfig(**config)), fake  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_used_key_keeps_one_ready_and_a_short_one_two() -> None:
    pool, _ = make_pool(per_key=2)
    k = key()
    assert pool.take(k) is None  # nothing ready yet: the caller goes cold ...
    pool.done(k)
    await pool.settle()
    assert pool.status().idle == 2  # ... and the miss taught the pool that one was not enough
    pool._slots[k].short_at = -1e18  # demand calmed down: a used key keeps one ready
    warm = pool.take(k)
    assert warm is not None
    pool.done(k)
    await pool.settle()
    assert pool.status().idle == 1 and pool.target(k) == 1  # one left: enough, no refill
    again = pool.take(k)
    assert again is not None and again != warm  # a container is handed out once, never again
    pool.done(k)
    await pool.settle()
    assert pool.status().idle == 1  # refilled to the target behind the run
    await pool.close()


async def test_a_burst_teaches_the_pool_its_size_up_to_the_global_cap() -> None:
    pool, _ = make_pool(per_key=2, max_idle=8)
    k = key()
    for _ in range(5):  # five runs at once, nothing ready: all go cold
        assert pool.take(k) is None
    for _ in range(5):
        pool.done(k)
    await until(lambda: pool.status().idle == 5)  # made several at a time; the reaper makes the rest
    assert pool.target(k) == 5  # the next burst of five finds them ready
    for _ in range(12):
        pool.take(k)
    for _ in range(12):
        pool.done(k)
    await until(lambda: pool.status().idle == 8)
    assert pool.target(k) == 8  # never more than the global budget
    assert pool.status().filling == 0
    await pool.close()


async def test_refills_after_a_burst_are_made_several_at_once_and_never_more() -> None:
    """One fill at a time left a burst of 20 mostly cold: refilling took longer than the gap to the next burst."""
    made_at_once, most = [0], [0]
    fake = FakeEngine()

    async def create(spec: ContainerSpec) -> Warm:
        made_at_once[0] += 1
        most[0] = max(most[0], made_at_once[0])
        try:
            await asyncio.sleep(0.05)
            return await fake.create(spec)
        finally:
            made_at_once[0] -= 1

    pool = WarmPool(create, fake.remove, PoolConfig(max_idle=20, per_key=1))
    k = key()
    for _ in range(20):
        assert pool.take(k) is None
    for _ in range(20):
        pool.done(k)
    await until(lambda: pool.status().idle == 20)
    assert most[0] == MAX_CONCURRENT_FILLS >= 2
    await pool.close()
    assert fake.alive == set()


async def test_an_idle_key_drains_after_its_timeout() -> None:
    pool, fake = make_pool(idle_s=0.2)
    k = key()
    await pool.warm(ContainerSpec(agent="a", image="img", memory=512 * MiB, cpu_group=CpuGroup("a", 1.0)))
    assert pool.status().idle == 1
    await until(lambda: pool.status().keys == 0)
    await pool.settle()
    assert fake.alive == set()
    assert pool.take(k) is None


async def test_the_budget_is_shared_and_no_key_evicts_another() -> None:
    """Under load, per-key targets used to add up to more than the budget, so each key's refill evicted another
    key's ready container: made, started and removed without ever serving a run. Now the keys share it."""
    pool, fake = make_pool(max_idle=3, per_key=2, idle_s=60)
    keys = [key(image=f"img{i}") for i in range(3)]
    for k in keys:
        pool.take(k)  # a miss each: every key wants two
        pool.done(k)
    await until(lambda: all(len(pool._slots[k].ready) == 1 for k in keys))  # a fair share: one each
    assert pool.status().idle == 3
    removed_before, hits_before = len(fake.removed), pool.hits
    for _ in range(10):  # the keys take turns, as three agents at work would
        for k in keys:
            await until(lambda k=k: len(pool._slots[k].ready) == 1)
            warm = pool.take(k)
            assert warm is not None
            await fake.remove(warm.id)  # the run's container goes after it
            pool.done(k)
    assert pool.hits - hits_before == 30
    assert len(fake.removed) - removed_before == 30  # only the containers that served a run: no eviction
    await pool.close()
    assert fake.alive == set()


async def test_refills_wait_while_the_engine_is_busy_with_runs() -> None:
    busy, asked = [True], [0]

    def is_busy() -> bool:
        asked[0] += 1
        return busy[0]

    fake = FakeEngine()
    pool = WarmPool(fake.create, fake.remove, PoolConfig(max_idle=4), busy=is_busy)  # type: ignore[arg-type]
    k = key()
    pool.take(k)
    pool.done(k)
    await until(lambda: asked[0] >= 3)  # the run's end and two reaper rounds asked, and were told to wait
    assert fake.made == []  # nothing made while runs keep the engine busy
    busy[0] = False
    await until(lambda: pool.status().idle >= 1)
    await pool.close()


async def test_changed_limits_drain_the_agents_old_keys_only() -> None:
    pool, fake = make_pool()
    old, other_agent = key(memory=512 * MiB), key(agent="b")
    for k in (old, other_agent):
        pool.take(k)
        pool.done(k)
    await pool.settle()
    old_ids = {w.id for w in pool._slots[old].ready}
    b_ids = {w.id for w in pool._slots[other_agent].ready}
    assert pool.take(key(memory=256 * MiB)) is None  # the agent's memory cap changed
    await pool.settle()
    assert old not in pool._slots
    assert old_ids <= set(fake.removed) and not (b_ids & set(fake.removed))
    assert pool.take(key(image="other", memory=256 * MiB)) is None  # another image, same limits: kept
    assert key(memory=256 * MiB) in pool._slots
    await pool.close()


async def test_close_removes_what_was_ready_and_what_was_still_being_made() -> None:
    pool, fake = make_pool()
    fake.delay = 0.2
    k = key()
    pool.take(k)
    pool.done(k)  # fills start
    await asyncio.sleep(0.05)
    await pool.close()
    assert fake.made and fake.alive == set()
    assert not pool.enabled and pool.take(k) is None


async def test_forget_after_reconcile_discards_fills_in_flight() -> None:
    pool, fake = make_pool()
    fake.delay = 0.1
    k = key()
    pool.take(k)
    pool.done(k)
    pool.forget()  # the engine just removed every pooled container
    await pool.settle()
    assert pool.status().idle == 0 and fake.alive == set()
    await pool.close()


async def test_off_means_off() -> None:
    pool, fake = make_pool(enabled=False)
    assert pool.take(key()) is None
    pool.done(key())
    await pool.settle()
    assert fake.made == []


# -- with the real engine --------------------------------------------------------------------------


@pytest.fixture
async def engine(instance: str) -> AsyncIterator[Engine]:
    e = Engine(instance, pool=PoolConfig(max_idle=4))
    yield e
    await e.aclose()


def spec(command: str | list[str], **kw: object) -> RunSpec:
    return RunSpec(agent="t", image=BUSYBOX, command=command, **kw)  # type: ignore[arg-type]


def of_kind(instance: str, kind: str) -> list[str]:
    return docker_cli(
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        f"label=berth.instance={instance}",
        "--filter",
        f"label=berth.kind={kind}",
    ).stdout.split()


async def test_a_pooled_container_is_used_once(engine: Engine, instance: str) -> None:
    """A file one run leaves in /tmp is never seen by the next run (/workspace is shared by design)."""
    await engine.pool.warm(spec("true"), n=2)
    first = await engine.run_temporary(spec("echo secret > /tmp/left; ls /tmp"))
    second = await engine.run_temporary(spec("cat /tmp/left 2>&1; ls /tmp"))
    assert engine.pool.hits == 2
    assert first.stdout == "left\n"
    assert second.id != first.id
    assert "secret" not in second.stdout and "No such file" in second.stdout
    await engine.drain_cleanups()
    assert first.id not in of_kind(instance, "pool") and second.id not in of_kind(instance, "pool")


async def test_pooled_containers_are_labelled_safe_and_idle_under_init(engine: Engine, instance: str) -> None:
    await engine.pool.warm(spec("true"))
    (cid,) = of_kind(instance, "pool")
    info = json.loads(docker_cli("inspect", cid).stdout)[0]
    labels, host = info["Config"]["Labels"], info["HostConfig"]
    assert labels["berth.instance"] == instance and labels["berth.pool.agent"] == "t"
    assert "berth.agent" not in labels  # nobody's container until a run takes it
    assert info["Name"].startswith(f"/berth.{instance}.t.pool-")
    assert host["Init"] is True and host["CapDrop"] == ["ALL"] and host["NetworkMode"] == "none"
    assert "no-new-privileges" in host["SecurityOpt"] and host["PidsLimit"] == 256
    assert host["Memory"] == host["MemorySwap"] == 512 * MiB
    assert info["State"]["Running"] is True
    # The agent never sees it: it is not among its containers.
    assert [c for c in await engine.list_containers({"berth.agent": "t"})] == []


async def test_nothing_ready_goes_cold_and_the_pool_refills_behind(engine: Engine, instance: str) -> None:
    r = await engine.run_temporary(spec("echo cold"))
    assert r.stdout == "cold\n" and engine.pool.misses == 1 and engine.pool.hits == 0
    await engine.pool.settle()
    assert len(of_kind(instance, "pool")) == 2  # the miss asked for two
    r = await engine.run_temporary(spec("echo warm"))
    assert r.stdout == "warm\n" and engine.pool.hits == 1


async def test_a_pooled_container_that_vanished_is_replaced_by_a_cold_run(engine: Engine, instance: str) -> None:
    await engine.pool.warm(spec("true"))
    docker_cli("rm", "-f", *of_kind(instance, "pool"))
    r = await engine.run_temporary(spec("echo still"))
    assert (r.exit_code, r.stdout) == (0, "still\n")


async def test_a_missing_workdir_behaves_as_cold(engine: Engine) -> None:
    """Exec cannot chdir to a missing folder; the cold path creates it: the pool hands over."""
    await engine.pool.warm(spec("true"))
    r = await engine.run_temporary(spec("pwd", workdir="/made/by/docker"))
    assert (r.exit_code, r.stdout) == (0, "/made/by/docker\n")


async def test_close_removes_every_pooled_container(engine: Engine, instance: str) -> None:
    await engine.pool.warm(spec("true"), n=2)
    await engine.pool.warm(RunSpec(agent="t", image=PYTHON, command="true"))
    assert len(of_kind(instance, "pool")) == 3
    await engine.aclose()
    assert of_kind(instance, "pool") == []


async def test_reconcile_removes_pooled_containers_and_the_pool_forgets_them(engine: Engine, instance: str) -> None:
    await engine.pool.warm(spec("true"))
    before = of_kind(instance, "pool")
    removed = await engine.reconcile()
    # The key is still in demand, so the pool may already be making a new one: only the old one must be gone.
    assert removed == before and not set(before) & set(of_kind(instance, "pool"))
    assert not engine.pool.holds(before[0])
    r = await engine.run_temporary(spec("echo after"))
    assert r.stdout == "after\n"
