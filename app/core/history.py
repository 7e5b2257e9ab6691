"""The history of finished temporary runs: search it, read one run, keep it within the person's retention.

Search goes through the store's full-text index (migration 5): the words of the query must all be in a
run's command or output (the last one may be the start of a word), then the query as typed must appear
in it, case aside. A query with no word in it (`$?`, `->`) is looked for the slow way, in the newest
runs only. Pruning deletes in small batches, each its own short transaction, so a run being recorded
never waits long for the database; it runs in a worker thread and never on the loop.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from app.core.store import Store
from app.model import RunRecord

logger = logging.getLogger(__name__)

ExitFilter = Literal["any", "ok", "failed"] | int
PRUNE_BATCH = 200
SCAN_LIMIT = 2000  # runs looked at by a query with no word in it
CLEARED_KEY = "panel.runs_cleared_through"
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class RunSummary:
    """A finished run as the history list shows it: no output, only a line of it."""

    id: int
    agent: str
    image: str
    command: str
    exit_code: int | None
    timed_out: bool
    oom_killed: bool
    truncated: bool
    started: float
    finished: float
    snippet: str  # the first line of output, or the text around the match
    output_bytes: int

    @property
    def failed(self) -> bool:
        return self.timed_out or self.oom_killed or self.exit_code not in (0, None)

    @property
    def duration_s(self) -> float:
        return max(0.0, self.finished - self.started)


@dataclass(frozen=True)
class SearchResult:
    runs: list[RunSummary]
    total: int  # how many runs match (the list holds at most `limit`)
    took_ms: float


def fts_query(text: str) -> str | None:
    """The full-text query for what the person typed: every word, the last one also as a prefix; None when
    the text has no word at all. Words are quoted, so FTS operators typed by the person are plain words."""
    words = _WORD.findall(text)
    if not words:
        return None
    parts = [f'"{w}"' for w in words[:-1]]
    last = words[-1]
    parts.append(f'"{last}"*' if text.endswith(last) else f'"{last}"')  # still being typed: a prefix
    return " AND ".join(parts)


_SUMMARY_COLUMNS = (
    "r.id, r.agent, r.image, r.command, r.exit_code, r.timed_out, r.oom_killed, r.truncated, r.started, r.finished,"
    " length(r.stdout) + length(r.stderr) AS output_bytes"
)


class History:
    """Blocking methods (call them through `asyncio.to_thread`), over the store's runs table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- reading ---------------------------------------------------------------------------------

    def search(
        self,
        text: str = "",
        *,
        agent: str | None = None,
        exit: ExitFilter = "any",
        limit: int = 500,
    ) -> SearchResult:
        """Runs whose command or output holds `text` (all of them when empty), newest first."""
        start = time.perf_counter()
        text = text.strip()
        where: list[str] = []
        params: list[Any] = []
        if agent:
            where.append("r.agent = ?")
            params.append(agent)
        if exit == "ok":
            where.append("r.exit_code = 0 AND NOT r.timed_out AND NOT r.oom_killed")
        elif exit == "failed":
            where.append("(r.exit_code IS NULL OR r.exit_code != 0 OR r.timed_out OR r.oom_killed)")
        elif isinstance(exit, int):
            where.append("r.exit_code = ?")
            params.append(exit)
        source = "runs AS r"
        snippet = "substr(r.stdout, 1, 300) AS snippet, substr(r.stderr, 1, 300) AS snippet_err"
        if text:
            query = fts_query(text)
            needle = text.lower()
            if query is not None:
                # CROSS JOIN keeps the index as the outer loop: the words are looked up once. With a plain JOIN
                # and an agent or exit filter, SQLite walked the runs and ran the full-text query for each
                # (bench/history_search.py, a common word among 10 000 runs: 724 ms, now ~35 ms).
                source = "runs_fts CROSS JOIN runs AS r ON r.id = runs_fts.rowid"
                where.insert(0, "runs_fts MATCH ?")
                params.insert(0, query)
                snippet = "snippet(runs_fts, -1, '', '', '…', 12) AS snippet, '' AS snippet_err"
            else:
                source = f"(SELECT * FROM runs ORDER BY finished DESC, id DESC LIMIT {SCAN_LIMIT}) AS r"
            # The words matched; the text as typed must be there too (case aside).
            where.append("instr(lower(r.command || char(10) || r.stdout || char(10) || r.stderr), ?) > 0")
            params.append(needle)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._store.query(
            f"SELECT {_SUMMARY_COLUMNS}, {snippet} FROM {source} {clause} ORDER BY r.finished DESC, r.id DESC LIMIT ?",
            (*params, limit),
        )
        if len(rows) < limit:
            total = len(rows)
        else:
            total = int(self._store.query(f"SELECT count(*) FROM {source} {clause}", params)[0][0])
        runs = [self._summary(r) for r in rows]
        return SearchResult(runs, total, (time.perf_counter() - start) * 1000)

    @staticmethod
    def _summary(row: Any) -> RunSummary:
        snippet = " ".join(str(row["snippet"] or row["snippet_err"] or "").split())
        return RunSummary(
            id=row["id"],
            agent=row["agent"],
            image=row["image"],
            command=row["command"],
            exit_code=row["exit_code"],
            timed_out=bool(row["timed_out"]),
            oom_killed=bool(row["oom_killed"]),
            truncated=bool(row["truncated"]),
            started=row["started"],
            finished=row["finished"],
            snippet=snippet[:200],
            output_bytes=int(row["output_bytes"] or 0),
        )

    def get(self, run_id: int) -> RunRecord | None:
        return self._store.get_run(run_id)

    def exit_codes(self) -> list[int]:
        """The exit codes present in the history, for the filter."""
        rows = self._store.query("SELECT DISTINCT exit_code FROM runs WHERE exit_code IS NOT NULL ORDER BY exit_code")
        return [int(r[0]) for r in rows]

    def agents(self) -> list[str]:
        return [str(r[0]) for r in self._store.query("SELECT DISTINCT agent FROM runs ORDER BY agent")]

    def count(self) -> int:
        return int(self._store.query("SELECT count(*) FROM runs")[0][0])

    # -- the panel's recent runs -----------------------------------------------------------------

    def recent(self, limit: int) -> list[RunRecord]:
        """The newest runs the panel shows: those finished since the person last cleared them."""
        cleared = int(self._store.get_meta(CLEARED_KEY) or 0)
        rows = self._store.query(
            "SELECT * FROM runs WHERE id > ? ORDER BY finished DESC, id DESC LIMIT ?", (cleared, limit)
        )
        return [Store._run(r) for r in rows]

    def cleared_through(self) -> int:
        return int(self._store.get_meta(CLEARED_KEY) or 0)

    def clear_recent(self) -> int:
        """Hide the finished runs so far from the panel (the history keeps them); the newest id hidden."""
        newest = int(self._store.query("SELECT COALESCE(MAX(id), 0) FROM runs")[0][0])
        self._store.set_meta(CLEARED_KEY, str(newest))
        return newest

    # -- retention -------------------------------------------------------------------------------

    def prune(self, *, max_age_s: float, max_runs: int, now: float | None = None) -> int:
        """Delete runs older than `max_age_s` and all but the `max_runs` newest; how many went. Batches of
        PRUNE_BATCH rows, one short transaction each, so writers in other threads get in between."""
        now = time.time() if now is None else now
        removed = 0
        if max_age_s > 0:
            removed += self._delete_batches("finished < ?", (now - max_age_s,))
        if max_runs > 0:
            rows = self._store.query(
                "SELECT finished, id FROM runs ORDER BY finished DESC, id DESC LIMIT 1 OFFSET ?", (max_runs,)
            )
            if rows:
                finished, rid = rows[0]
                removed += self._delete_batches(
                    "(finished < ? OR (finished = ? AND id <= ?))", (finished, finished, rid)
                )
        if removed:
            logger.info("run history: removed %d old runs", removed)
        return removed

    def _delete_batches(self, condition: str, params: tuple[Any, ...]) -> int:
        removed = 0
        while True:
            with self._store.transaction() as conn:
                n = conn.execute(
                    f"DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE {condition} LIMIT {PRUNE_BATCH})",
                    params,
                ).rowcount
            removed += n
            if n < PRUNE_BATCH:
                return removed
