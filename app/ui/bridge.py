"""Core events as Qt signals: the one place where the Qt-free core's EventBus meets the widgets.

The core emits on the event loop's thread, which under qasync is the GUI thread, so the signals
are emitted directly (no queued hop) and arrive in the order the core published them. A few core
calls made through `asyncio.to_thread` (adding an agent, a trusted pattern) emit from a worker
thread: Qt's automatic connection then queues the signal to the GUI thread.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.events import Event, EventBus

logger = logging.getLogger(__name__)


class CoreBridge(QObject):
    containerEvent = Signal(object)  # app.model.ContainerEvent
    engineChanged = Signal(object)  # app.model.EngineInfo of the local engine
    otherEngineChanged = Signal(object)  # app.model.EngineInfo of an engine the person added
    runStarted = Signal(object)  # {"agent", "image", "key"}
    runContainer = Signal(object)  # {"agent", "id", "image", "command", "key"}: the container serving a run
    runFinished = Signal(object)  # run id in the store
    admissionQueued = Signal(str)  # agent name
    imageProgress = Signal(object)  # {"agent", "image", "message"}
    agentsChanged = Signal()
    approvalEvent = Signal(str, object)  # topic ("approval.pending", ...), the request
    patternsChanged = Signal(object)  # the trusted pattern added or removed
    alert = Signal(str, object)  # "alert.service_exited" / "alert.queueing", app.core.alerts.ServiceExited / Queueing

    def __init__(self, events: EventBus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._unsubscribe = events.subscribe(self._on_event)

    def _on_event(self, ev: Event) -> None:
        topic, data = ev.topic, ev.data
        if topic == "engine.changed" and getattr(data, "name", "local") != "local":
            self.otherEngineChanged.emit(data)
            return
        signal: Any = {
            "container.event": self.containerEvent,
            "engine.changed": self.engineChanged,
            "run.started": self.runStarted,
            "run.container": self.runContainer,
            "run.finished": self.runFinished,
            "image.progress": self.imageProgress,
        }.get(topic)
        if signal is not None:
            signal.emit(data)
        elif topic == "admission.queued":
            self.admissionQueued.emit(str(data))
        elif topic == "agents.changed":
            self.agentsChanged.emit()
        elif topic.startswith("approval."):
            self.approvalEvent.emit(topic, data)
        elif topic == "patterns.changed":
            self.patternsChanged.emit(data)
        elif topic.startswith("alert."):
            self.alert.emit(topic, data)

    def close(self) -> None:
        self._unsubscribe()
