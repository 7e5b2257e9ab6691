"""The settings file is written whole: saves that overlap (the Settings window saves as you type) never fail
and never leave a half-written or foreign file behind."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from app.config import Settings


def test_overlapping_saves_all_succeed_and_the_file_is_one_of_them(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def save(i: int) -> None:
        start.wait()
        try:
            for k in range(50):
                Settings(rpc_port=7000 + i * 100 + k).save(path)
        except BaseException as e:  # collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    port = json.loads(path.read_text())["rpc_port"]
    assert Settings.load(path).rpc_port == port and port % 100 == 49  # the last save of one of the writers
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temporary file left


def test_only_changes_are_saved_so_a_new_default_reaches_everyone(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    Settings(rpc_port=7451).save(path)
    assert json.loads(path.read_text()) == {"rpc_port": 7451}
    # A file written before (every field, with the pool's old default) gets today's default.
    path.write_text(json.dumps({"rpc_port": 7451, "pool_max_idle": 8, "pool_per_key": 2}))
    loaded = Settings.load(path)
    assert loaded.pool_max_idle == Settings().pool_max_idle != 8 and loaded.rpc_port == 7451


def test_a_failed_save_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    Settings(rpc_port=7451).save(path)
    bad = Settings(rpc_port=7452)
    bad.hidden_folders = [object()]  # type: ignore[list-item]  # not JSON: the write fails half way
    try:
        bad.save(path)
    except TypeError:
        pass
    else:
        raise AssertionError("an unserialisable setting was saved")
    assert Settings.load(path).rpc_port == 7451
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
