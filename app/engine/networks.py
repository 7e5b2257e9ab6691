"""Agent networks (API.md "Agent networks"): made on first use, found again after a restart, pruned when unused."""

from __future__ import annotations

import asyncio
import logging

import docker.errors

from app.engine.connection import Connection
from app.engine.policy import network_labels, network_name
from app.errors import BerthError, NetworkUnavailable, NotFound
from app.model import LABEL_AGENT, LABEL_INSTANCE

logger = logging.getLogger(__name__)


class Networks:
    def __init__(self, conn: Connection, instance: str) -> None:
        self.conn = conn
        self.instance = instance
        self._known: set[str] = set()  # agent networks known to exist
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, agent: str) -> str:
        """The agent's network, made on first use (found again, never duplicated, after a restart)."""
        name = network_name(self.instance, agent)
        lock = self._locks.setdefault(agent, asyncio.Lock())
        async with lock:
            if name in self._known:
                return name
            found = await self.conn.call(lambda: self.conn.api.networks(names=[name]))
            if not any(n.get("Name") == name for n in found):
                labels = network_labels(self.instance, agent)

                def create() -> None:
                    try:
                        self.conn.api.create_network(name, driver="bridge", labels=labels, check_duplicate=True)
                    except docker.errors.APIError as e:
                        if e.status_code == 409:
                            return  # made meanwhile (another Berth process on this data dir cannot be; a race)
                        full = "address pool" in str(e.explanation or e)
                        raise NetworkUnavailable(
                            f"the engine could not make the network of agent {agent!r}: {e.explanation or e}",
                            hint="the engine has no address range left for another network: remove unused ones "
                            "(docker network prune) or give it more (default-address-pools in daemon.json)"
                            if full
                            else "check that the engine can make bridge networks (docker network create), or "
                            "switch network off for this agent",
                        ) from e

                await self.conn.call(create, what=f"network {name}")
                logger.info("made network %s for agent %s", name, agent)
            self._known.add(name)
            return name

    async def by_agent(self) -> dict[str, str]:
        """This instance's agent networks: agent -> network name."""
        raw = await self.conn.call(
            lambda: self.conn.api.networks(filters={"label": [f"{LABEL_INSTANCE}={self.instance}"]})
        )
        return {str((n.get("Labels") or {}).get(LABEL_AGENT)): str(n.get("Name")) for n in raw}

    async def remove(self, agent: str) -> bool:
        """Remove the agent's network; False (and it stays) while containers of the agent still use it."""
        name = network_name(self.instance, agent)
        self._known.discard(name)
        try:
            await self.conn.call(lambda: self.conn.api.remove_network(name), what=f"network {name}")
        except NotFound:
            return True
        except (BerthError, docker.errors.APIError) as e:  # 403 "has active endpoints": still in use
            logger.info("network %s stays for now: %s", name, getattr(e, "explanation", None) or e)
            return False
        logger.info("removed network %s", name)
        return True

    async def prune(self, known_agents: set[str]) -> list[str]:
        """Remove the networks of agents not in `known_agents` that no container uses any more."""
        removed = []
        for agent in await self.by_agent():
            if agent not in known_agents and await self.remove(agent):
                removed.append(agent)
        return removed
