"""The Qt binding Berth is installed with keeps Python's references straight.

PySide6 6.12.0 dropped one reference to True (or False) at every emit of a signal that carried it to a
Python slot. The window emits such signals many times a second (stats ticks, toggles), so True's count
reached zero after a few minutes and the interpreter aborted ("bool_dealloc"). pyproject.toml keeps the
binding below 6.12; this test fails on any binding with that bug, before a person's window would.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    flag = Signal(bool)
    value = Signal(object)
    number = Signal(int)


def test_signals_that_carry_a_bool_keep_its_references() -> None:
    e = _Emitter()
    seen: list[object] = []
    e.flag.connect(seen.append)
    e.value.connect(seen.append)
    e.number.connect(seen.append)
    seen_before = len(seen)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):  # 6.12.0 lost 200 of each here
        e.flag.emit(True)
        e.flag.emit(False)
        e.value.emit(True)
        e.number.emit(True)
    assert len(seen) == seen_before + 800
    seen.clear()  # the slots' own references go with the list
    assert (sys.getrefcount(True), sys.getrefcount(False)) == before
