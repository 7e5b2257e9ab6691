"""The only package that talks to Docker (DESIGN.md): an async facade over the docker SDK."""

from app.engine.engine import Engine, argv_of, host_user

__all__ = ["Engine", "argv_of", "host_user"]
