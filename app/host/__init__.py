"""The only code that starts processes on the host: the sandbox and the runner (see runner.py)."""

from app.host.runner import ACCESS_LEVELS, Access, Folder, HostRunner, SandboxUnavailable, ShellResult, open_folder
from app.host.sandbox import SandboxStatus, bwrap_argv, detect, sandbox_env

__all__ = [
    "ACCESS_LEVELS",
    "Access",
    "Folder",
    "HostRunner",
    "SandboxStatus",
    "SandboxUnavailable",
    "ShellResult",
    "bwrap_argv",
    "detect",
    "open_folder",
    "sandbox_env",
]
