"""The run history (app/core/history.py) on a real SQLite store: search by words, filters, retention."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.history import History, fts_query
from app.core.store import Store


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(Store(tmp_path / "db.sqlite3"))


def add(h: History, command: str, stdout: str = "", *, agent: str = "a", exit_code: int | None = 0, finished: float = 0,
        stderr: str = "", timed_out: bool = False) -> int:  # fmt: skip
    finished = finished or time.time()
    return h._store.add_run(agent, "cid", "img", command, exit_code, stdout, stderr, timed_out, False, False,
                            finished - 1, finished)  # fmt: skip


def test_search_finds_a_word_of_the_output_or_the_command(history: History) -> None:
    a = add(history, "python3 train.py", "epoch 1 loss 0.3\nsaved model.bin\n")
    b = add(history, "ls /workspace", "data.csv\nnotes.txt\n", agent="b")
    c = add(history, "make", "", stderr="error: missing config.toml\n", exit_code=2)
    assert [r.id for r in history.search("model").runs] == [a]
    assert [r.id for r in history.search("mod").runs] == [a]  # the word being typed: a prefix
    assert [r.id for r in history.search("workspace").runs] == [b]
    assert [r.id for r in history.search("config.toml").runs] == [c]  # as typed, punctuation and all
    assert [r.id for r in history.search("CONFIG").runs] == [c]  # case aside
    assert history.search("config.tom1").runs == []
    assert {r.id for r in history.search("").runs} == {a, b, c}
    assert "missing config.toml" in history.search("missing").runs[0].snippet


def test_search_text_is_never_an_fts_expression(history: History) -> None:
    """What the person types is words, never FTS5 syntax: quotes, NEAR, colons, a lone `*` or `-` do not
    raise and do not change what matches."""
    add(history, "echo hi", 'say "NEAR" the -x col:1 *\n')
    for text in ('"NEAR"', "NEAR(", "col:1", "*", "-x", "a OR", '"', "'", "((", "^"):
        history.search(text)  # no error
    assert len(history.search('"NEAR"').runs) == 1
    assert len(history.search("col:1").runs) == 1
    assert fts_query("  ") is None and fts_query("a-b") == '"a" AND "b"*'


def test_filters_by_agent_and_exit(history: History) -> None:
    ok = add(history, "true", agent="a")
    bad = add(history, "false", agent="b", exit_code=1)
    slow = add(history, "sleep 99", agent="a", exit_code=None, timed_out=True)
    assert [r.id for r in history.search(agent="a").runs] == [slow, ok]
    assert [r.id for r in history.search(exit="ok").runs] == [ok]
    assert {r.id for r in history.search(exit="failed").runs} == {bad, slow}
    assert [r.id for r in history.search(exit=1).runs] == [bad]
    assert history.exit_codes() == [0, 1] and history.agents() == ["a", "b"]


def test_retention_by_age_and_by_count(history: History) -> None:
    now = time.time()
    for i in range(30):
        add(history, f"echo {i}", f"out {i}\n", finished=now - 86400 * (29 - i))  # one a day, the newest now
    assert history.prune(max_age_s=7 * 86400 + 60, max_runs=10_000, now=now) == 22
    assert history.count() == 8
    assert history.prune(max_age_s=0, max_runs=5, now=now) == 3
    left = history.search("").runs
    assert [r.command for r in left] == [f"echo {i}" for i in range(29, 24, -1)]
    assert history.search("out").total == 5  # the full-text index forgot the pruned runs too
    assert history.search("22").runs == []


def test_pruning_many_runs_goes_in_batches(history: History) -> None:
    now = time.time()
    for i in range(1000):
        add(history, "echo", f"line {i}\n", finished=now - 1000 + i)
    assert history.prune(max_age_s=0, max_runs=10, now=now) == 990
    assert history.count() == 10


def test_clearing_the_panel_keeps_the_history(history: History) -> None:
    first = add(history, "echo 1")
    add(history, "echo 2")
    assert len(history.recent(50)) == 2
    history.clear_recent()
    assert history.recent(50) == []
    third = add(history, "echo 3")
    assert [r.id for r in history.recent(50)] == [third]
    assert history.get(first) is not None and history.search("").total == 3
