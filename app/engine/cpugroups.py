"""CPU quota shared by a group of containers (an agent's `cpus` limit for all its containers).

Where the engine runs here with cgroup v1 and the cgroupfs driver (and we may write the cgroup
tree), every container of a group gets `--cgroup-parent=/<group>` and the quota is written on the
parent, so the group as a whole is capped. Elsewhere (cgroup v2/systemd, Docker Desktop, a remote
engine) each container gets the whole quota for itself, and `mechanism` says so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from app.model import CpuGroup

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
PARENT = "parent"
PER_CONTAINER = "per-container"


def _set_quota(directory: Path, cpus: float) -> None:
    (directory / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (directory / "cpu.cfs_quota_us").write_text(str(max(1000, int(cpus * PERIOD_US))))


class CpuGroups:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # e.g. "berth-<instance>"
        self.mechanism = PER_CONTAINER
        self.reason = "not detected yet"

    def detect(self, info: dict[str, Any], endpoint: str) -> str:
        """Choose the mechanism from `docker info` and what this process may write."""
        cpu_dir = CGROUP_ROOT / "cpu"
        if not endpoint.startswith("unix://"):
            self.mechanism, self.reason = PER_CONTAINER, "the engine is not on this machine's cgroup tree"
        elif str(info.get("CgroupVersion", "1")) != "1" or info.get("CgroupDriver") != "cgroupfs":
            self.mechanism, self.reason = PER_CONTAINER, "the engine uses cgroup v2 or the systemd driver"
        elif not (cpu_dir / "cpu.cfs_quota_us").exists() or not os.access(cpu_dir, os.W_OK):
            self.mechanism, self.reason = PER_CONTAINER, f"{cpu_dir} is not writable by Berth"
        else:
            self.mechanism, self.reason = PARENT, "a shared parent cgroup carries the quota"
        logger.info("CPU quota mechanism: %s (%s)", self.mechanism, self.reason)
        return self.mechanism

    def parent_name(self, group: CpuGroup) -> str:
        return f"{self.prefix}-{group.name}"

    def host_config(self, group: CpuGroup | None) -> dict[str, Any]:
        """Keyword arguments for `create_host_config` that put a container under the group's quota."""
        if group is None:
            return {}
        if self.mechanism == PARENT:
            directory = CGROUP_ROOT / "cpu" / self.parent_name(group)
            try:
                directory.mkdir(exist_ok=True)
                _set_quota(directory, group.cpus)
                return {"cgroup_parent": "/" + self.parent_name(group)}
            except OSError as e:
                logger.warning("cannot write the CPU group %s (%s); using a per-container quota", directory, e)
        return {"nano_cpus": int(group.cpus * 1e9)}

    def cgroup_dir(self, hierarchy: str, group: str | None, container_id: str) -> Path:
        parent = group or "docker"
        return CGROUP_ROOT / hierarchy / parent.strip("/") / container_id

    def remove_empty(self) -> None:
        """rmdir the parent cgroups Docker left behind once no container is in them."""
        if self.mechanism != PARENT:
            return
        for hierarchy in CGROUP_ROOT.iterdir():
            try:
                candidates = [p for p in hierarchy.iterdir() if p.is_dir() and p.name.startswith(self.prefix + "-")]
            except OSError:
                continue
            for d in candidates:
                try:
                    d.rmdir()  # fails while a container is inside: that is the point
                except OSError:
                    pass
