"""`berth`: the command line (API.md). Exit 0 on success, 1 on a user error (one line on stderr), 2 on bad usage.

`agents` and `trust` work on the data dir directly, whether or not the app runs; `approvals` talks
to the running app through its RPC port with the owner token. Nothing here imports Qt.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from app import __version__
from app.config import Paths
from app.core.display import display_text
from app.errors import BerthError
from app.model import Limits, format_size, parse_size


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _limit_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    d = Limits() if defaults else None
    p.add_argument("--cpus", type=float, default=d and d.cpus, help="CPU quota for all the agent's containers together")
    p.add_argument("--memory", type=_size, default=d and d.memory, help="memory cap of each container, e.g. 512m")
    p.add_argument("--max-containers", type=int, default=d and d.max_containers, help="containers running at once")
    p.add_argument(
        "--at-limit", choices=("queue", "reject"), default=d and d.at_limit, help="what happens at the limit"
    )
    p.add_argument(
        "--queue-timeout", type=float, default=d and d.queue_timeout_s, help="seconds a queued request waits"
    )
    net = p.add_mutually_exclusive_group()
    net.add_argument("--network", dest="network", action="store_true", default=d and d.network, help="allow bridge")
    net.add_argument("--no-network", dest="network", action="store_false", help="no network at all")
    if not defaults:
        p.set_defaults(network=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="berth", description="A safe place for AI agents to run code on your machine."
    )
    parser.add_argument("--version", action="version", version=f"berth {__version__}")
    parser.add_argument("--data-dir", help="where Berth keeps its data (env BERTH_DATA_DIR)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the core and the RPC server without a window (no Qt)")
    serve.add_argument("--rpc-port", type=int, help="port on 127.0.0.1 (default 7450, env BERTH_RPC_PORT; 0 = any)")
    app = sub.add_parser("app", help="open the desktop app (the default)")
    app.add_argument("--rpc-port", type=int)

    agents = sub.add_parser("agents", help="manage agents").add_subparsers(dest="action", required=True)
    add = agents.add_parser("add", help="create an agent and print its token (shown once)")
    add.add_argument("name")
    _limit_options(add, defaults=True)
    add.add_argument("--engine", metavar="NAME", help="the engine its containers run on (default: local)")
    agents.add_parser("list", help="list agents")
    rm = agents.add_parser(
        "remove", help="remove an agent and its containers (its workspace is kept unless --delete-workspace)"
    )
    rm.add_argument("name")
    rm.add_argument("--delete-workspace", action="store_true", help="also delete its workspace folder")
    rm.add_argument("--keep-containers", action="store_true", help="leave its containers (services) running")
    st = agents.add_parser("set", help="change an agent's limits and host folders")
    st.add_argument("name")
    _limit_options(st, defaults=False)
    st.add_argument(
        "--host-folder",
        action="append",
        default=[],
        metavar="DIR",
        help="grant a folder on this machine where its host commands may run (repeat for more)",
    )
    st.add_argument("--no-host-folders", action="store_true", help="take back every host folder granted before")
    st.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATTERN",
        help="an image it may have pulled, besides images already here, e.g. 'python:*' (repeat for more)",
    )
    st.add_argument("--no-images", action="store_true", help="take back every image pattern given before")
    st.add_argument("--engine", metavar="NAME", help="run its next containers on this engine (`berth engines list`)")
    en = st.add_mutually_exclusive_group()
    en.add_argument("--enable", dest="enabled", action="store_true", default=None)
    en.add_argument("--disable", dest="enabled", action="store_false")
    tok = agents.add_parser("token", help="print or rotate an agent's token")
    tok.add_argument("name")
    tok.add_argument("--rotate", action="store_true", help="make a new token; the old one stops working")

    engines = sub.add_parser("engines", help="the Docker engines agents run on").add_subparsers(
        dest="action", required=True
    )
    engines.add_parser("list", help="engines, whether each answers, version, containers")
    ea = engines.add_parser("add", help="add an engine (it must answer)")
    ea.add_argument("name")
    where = ea.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", metavar="URL", help="tcp://HOST:2376 (with --tls-*), ssh://USER@HOST or unix://PATH")
    where.add_argument("--context", metavar="CONTEXT", help="a Docker context's name (`docker context ls`)")
    ea.add_argument("--tls-ca", metavar="FILE", help="the CA certificate the engine's certificate is signed by")
    ea.add_argument("--tls-cert", metavar="FILE", help="Berth's client certificate")
    ea.add_argument("--tls-key", metavar="FILE", help="the client certificate's key")
    ea.add_argument(
        "--files",
        choices=("local", "sync"),
        help="local: the engine sees this machine's folders (bind mounts); sync: it does not, the workspace is "
        "copied there and back around each run (default: local for unix://, else sync)",
    )
    er = engines.add_parser("remove", help="forget an engine (refused while an agent uses it)")
    er.add_argument("name")

    appr = sub.add_parser("approvals", help="decide host shell requests").add_subparsers(dest="action", required=True)
    al = appr.add_parser("list", help="pending requests")
    al.add_argument("--all", action="store_true", help="also decided ones")
    ap = appr.add_parser("approve", help="approve a request")
    ap.add_argument("id")
    ap.add_argument("--trust", metavar="PATTERN", help="also trust this pattern for the agent from now on")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--sandbox", action="store_true", help="run a request that asked for full access in the sandbox")
    how.add_argument(
        "--full-access",
        action="store_true",
        help="run it with full access as you (and trust the pattern with full access); where no sandbox works, "
        "the only way to approve",
    )
    dn = appr.add_parser("deny", help="deny a request")
    dn.add_argument("id")

    trust = sub.add_parser("trust", help="trusted command patterns").add_subparsers(dest="action", required=True)
    trust.add_parser("list", help="list trusted patterns")
    ta = trust.add_parser("add", help="trust a pattern, e.g. 'git status' or 'ls *'")
    ta.add_argument("pattern")
    ta.add_argument("--agent", help="only for this agent (default: every agent)")
    ta.add_argument(
        "--full-access", action="store_true", help="matching commands run as you, outside the sandbox (careful)"
    )
    tr = trust.add_parser("remove", help="remove a trusted pattern by id")
    tr.add_argument("id", type=int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths.resolve(args.data_dir)
    if args.command not in (None, "app", "serve"):
        logging.basicConfig(level=logging.WARNING, format="berth: %(message)s")
    try:
        if args.command == "serve":
            from app.main import serve

            return serve(paths, args.rpc_port, verbose=args.verbose)
        if args.command in (None, "app"):
            from app.main import run_desktop

            return run_desktop(paths, getattr(args, "rpc_port", None), verbose=args.verbose)
        if args.command == "agents":
            return _agents(paths, args)
        if args.command == "engines":
            return _engines(paths, args)
        if args.command == "approvals":
            return _approvals(paths, args)
        if args.command == "trust":
            return _trust(paths, args)
    except BerthError as e:
        print(f"berth: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def _open_agents(paths: Paths) -> Any:
    from app.core.agents import Agents
    from app.core.events import EventBus
    from app.core.store import Store
    from app.core.tokens import TokenVault
    from app.core.workspace import Workspaces

    paths.ensure()
    vault = TokenVault(paths.tokens_file, paths.instance_id())
    return Agents(Store(paths.db_path), vault, Workspaces(paths.workspaces_dir), EventBus()), vault


def _limits_table(limits: Limits) -> str:
    return (
        f"cpus={limits.cpus:g} memory={format_size(limits.memory)} max_containers={limits.max_containers} "
        f"at_limit={limits.at_limit} queue_timeout={limits.queue_timeout_s:g}s "
        f"network={'on' if limits.network else 'off'}"
    )


HEALTH_WAIT_S = 30.0  # how long a running but busy Berth may take to answer before the command gives up


def _health(url: str) -> str:
    """ "ok"; "busy" (something listens there but has not answered yet); "gone" (nothing listens: a stale
    endpoint.json left by a Berth that is not running)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5):
            return "ok"
    except urllib.error.HTTPError:
        return "busy"  # it answers, but not yet with health (starting or stopping)
    except urllib.error.URLError as e:
        return "busy" if isinstance(e.reason, TimeoutError) else "gone"
    except TimeoutError:
        return "busy"
    except (OSError, ValueError):
        return "gone"


def _running_owner(paths: Paths) -> Any:
    """A client of the Berth running on this data dir, as the owner; None when none runs.

    A Berth that runs but is slow to answer is waited for, never gone around: a change written to the store
    behind its back would not reach its window (and two writers would race)."""
    from app.rpc.client import BerthClient, find_url

    try:
        url = find_url(paths.data_dir)
    except (BerthError, OSError, ValueError):
        return None
    deadline = time.monotonic() + HEALTH_WAIT_S
    while (state := _health(url)) == "busy":
        if time.monotonic() > deadline:
            raise BerthError(
                f"the Berth running on {paths.data_dir} ({url}) did not answer in {HEALTH_WAIT_S:g} s",
                hint="try again in a moment; if it stays so, quit Berth and run the command again",
            )
        time.sleep(0.2)
    if state == "gone":
        return None
    agents, _vault = _open_agents(paths)
    token = agents.owner_token()
    return BerthClient(url, token, timeout=600) if token else None


def _owner_call(paths: Paths, method: str, **params: Any) -> Any:
    """Call an owner method: through the running Berth when one runs (so it, and its window, see the change at
    once), else on the data dir with the same core, built here and closed again."""
    client = _running_owner(paths)
    if client is not None:
        return client.call(method, **params)
    return asyncio.run(_local_call(paths, method, params))


async def _local_call(paths: Paths, method: str, params: dict[str, Any]) -> Any:
    from app.core.agents import Principal
    from app.core.application import Application
    from app.rpc import owner_methods
    from app.rpc.methods import Dispatcher

    assert owner_methods.__name__  # imported for the owner methods it registers

    core = Application(paths)  # not started: no server; the engine is reached only by what needs it
    try:
        return await Dispatcher(core).call(Principal(None), method, params)
    finally:
        await core.stop()


def _limit_params(args: argparse.Namespace) -> dict[str, Any]:
    names = {
        "cpus": "cpus",
        "memory": "memory",
        "max_containers": "max_containers",
        "at_limit": "at_limit",
        "queue_timeout": "queue_timeout_s",
        "network": "network",
    }
    return {field: getattr(args, opt) for opt, field in names.items() if getattr(args, opt, None) is not None}


def _agents(paths: Paths, args: argparse.Namespace) -> int:
    if args.action == "add":
        extra = {"engine": args.engine} if args.engine else {}
        agent = _owner_call(paths, "agents.add", name=args.name, **_limit_params(args), **extra)
        on = f" on engine {agent['engine']}" if agent.get("engine", "local") != "local" else ""
        print(f"agent {agent['name']}{on}: {_limits_table(Limits(**agent['limits']))}")
        print("its token (shown once; keep it secret):")
        print(agent["token"])
    elif args.action == "list":
        rows = _owner_call(paths, "agents.list")
        if not rows:
            print("no agents yet: add one with `berth agents add NAME`")
        for a in rows:
            limits = _limits_table(Limits(**a["limits"]))
            on = f" engine={a['engine']}" if a.get("engine", "local") != "local" else ""
            print(f"{a['name']:<20} {'enabled ' if a['enabled'] else 'disabled'} {limits}{on}")
            for folder in a.get("host_folders") or []:
                print(f"{'':<20} host folder: {display_text(folder)}")
    elif args.action == "remove":
        done = _owner_call(
            paths,
            "agents.remove",
            name=args.name,
            containers=not args.keep_containers,
            workspace=args.delete_workspace,
        )
        failed = done.get("containers_not_removed", 0)
        print(f"removed agent {args.name}" + (f" ({failed} container(s) could not be removed)" if failed else ""))
    elif args.action == "set":
        params = _limit_params(args)
        if args.enabled is not None:
            params["enabled"] = args.enabled
        if args.host_folder or args.no_host_folders:
            current = [] if args.no_host_folders else list(_agent(paths, args.name).host_folders)
            params["host_folders"] = current + args.host_folder
        if args.image or args.no_images:
            current = [] if args.no_images else list(_agent(paths, args.name).images)
            params["images"] = current + args.image
        if args.engine:
            params["engine"] = args.engine
        agent = _owner_call(paths, "agents.set", name=args.name, **params)
        on = f" on engine {agent['engine']}" if agent.get("engine", "local") != "local" else ""
        print(
            f"agent {agent['name']}{on}: {_limits_table(Limits(**agent['limits']))}"
            + ("" if agent["enabled"] else " (disabled)")
        )
        for folder in agent["host_folders"]:
            print(f"  host folder: {display_text(folder)}")
        for pattern in agent.get("images") or []:
            print(f"  may pull: {display_text(pattern)}")
    elif args.action == "token":
        if args.rotate:
            print(_owner_call(paths, "agents.rotate_token", name=args.name)["token"])
        else:
            agents, _vault = _open_agents(paths)
            agents.get(args.name)
            token = agents.token(args.name)
            if token is None:
                print(
                    f"berth: the token of {args.name} is not stored here; make a new one with --rotate", file=sys.stderr
                )
                return 1
            print(token)
    return 0


def _engines(paths: Paths, args: argparse.Namespace) -> int:
    if args.action == "list":
        for e in _owner_call(paths, "engines.list"):
            state = f"Docker {e['version']}" if e["available"] else "not answering"
            count = "" if e["containers"] is None else f", {e['containers']} container(s)"
            agents = f", agents: {', '.join(e['agents'])}" if e.get("agents") else ""
            print(f"{e['name']:<16} {display_text(e['endpoint']):<40} {state}{count}, files: {e['files']}{agents}")
            if not e["available"] and e.get("hint"):
                print(f"{'':<16} {display_text(e['hint'])}")
    elif args.action == "add":
        params = {
            "name": args.name,
            "host": args.host,
            "context": args.context,
            "tls_ca": _absolute(args.tls_ca),
            "tls_cert": _absolute(args.tls_cert),
            "tls_key": _absolute(args.tls_key),
            "files": args.files,
        }
        e = _owner_call(paths, "engines.add", **params)
        print(f"engine {e['name']}: Docker {e['version']} at {display_text(e['endpoint'])}, files: {e['files']}")
        for image in e.get("images_copied") or []:
            print(f"  copied {image} from the local engine")
        print(f"place an agent there with `berth agents set NAME --engine {e['name']}`")
    elif args.action == "remove":
        _owner_call(paths, "engines.remove", name=args.name)
        print(f"removed engine {args.name} (its containers, if any, are still there)")
    return 0


def _absolute(path: str | None) -> str | None:
    """A file given on the command line, as the running Berth (another working folder) finds it."""
    import os

    return os.path.abspath(path) if path else None


def _agent(paths: Paths, name: str) -> Any:
    agents, _vault = _open_agents(paths)
    return agents.get(name)


def _grant_check(paths: Paths) -> Any:
    from app.config import Settings
    from app.core.host_access import check_grant, hidden_paths

    hidden = hidden_paths(paths, Settings.load(paths.settings_file).hidden_folders)
    return lambda folder: check_grant(folder, paths, hidden)


def _owner_client(paths: Paths) -> Any:
    from app.rpc.client import BerthClient, find_url

    agents, _vault = _open_agents(paths)
    token = agents.owner_token()
    if token is None:
        print("berth: no owner token yet: start Berth once (`berth` or `berth serve`)", file=sys.stderr)
        raise SystemExit(1)
    return BerthClient(find_url(paths.data_dir), token)


def _approvals(paths: Paths, args: argparse.Namespace) -> int:
    from app.core.display import display_command
    from app.core.host_access import ACCESS_WORDS

    client = _owner_client(paths)
    if args.action == "list":
        rows = client.approvals(None if args.all else "pending")
        if not rows:
            print("nothing waits for approval")
        for r in rows:
            # Everything the agent chose goes through the display escapes: a newline or an ESC sequence in a
            # folder name can neither add a line nor hide one.
            how = ACCESS_WORDS.get(str(r.get("granted") or r.get("access")), "?")
            print(f"{display_text(r['request_id'])}  {r['status']:<8} agent={display_text(r['agent'])}")
            print(f"    in {display_text(r['cwd'])}, {how}")
            for line in display_command(r["command"]).split("\n"):
                print(f"    $ {line}")
            for warning in r.get("warnings") or []:
                print(f"    ! {display_text(warning)}")
    else:
        decision = "approve" if args.action == "approve" else "deny"
        access: str | None = None
        if getattr(args, "sandbox", False):
            access = "sandbox"
        elif getattr(args, "full_access", False):
            access = "host"
        r = client.decide(args.id, decision, getattr(args, "trust", None), access=access)
        ran = f" ({ACCESS_WORDS.get(str(r.get('granted')), '')})" if r.get("granted") else ""
        print(f"{r['request_id']}: {r['status']}{ran}")
    return 0


def _trust(paths: Paths, args: argparse.Namespace) -> int:
    from app.core.host_access import ACCESS_WORDS, pattern_warnings
    from app.core.patterns import parse_pattern

    if args.action == "list":
        rows = _owner_call(paths, "trust.list")
        if not rows:
            print("no trusted patterns: every host command waits for your approval")
        for p in rows:
            full = "  FULL ACCESS" if p["access"] == "host" else ""
            print(f"{p['id']:>4}  {p['agent'] or '(all agents)':<20} {p['pattern']}{full}")
    elif args.action == "add":
        access = "host" if args.full_access else "sandbox"
        p = _owner_call(paths, "trust.add", pattern=args.pattern, agent=args.agent, access=access)
        print(f"{p['id']}: trusted {p['pattern']!r} for {p['agent'] or 'all agents'}, {ACCESS_WORDS[p['access']]}")
        for warning in pattern_warnings(parse_pattern(p["pattern"]), p["access"]):
            print(f"warning: {warning}", file=sys.stderr)
    elif args.action == "remove":
        _owner_call(paths, "trust.remove", id=args.id)
        print(f"removed pattern {args.id}")
    return 0
