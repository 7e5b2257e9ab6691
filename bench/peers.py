"""The Python one-liner `print(1+1)` in berth/python:3: Berth (JSON-RPC, pool on) vs llm-sandbox vs `docker run --rm`.

llm-sandbox is installed into a throwaway venv (its Docker backend, `init=True`), pointed at an image
derived from berth/python:3 with the `python` and `/sandbox/.sandbox-venv/bin/python` links it
expects (built locally; no registry needed). It runs as a worker process of that venv, each session
fresh (open, run, close), and the three ways are alternated in one loop. If llm-sandbox cannot be
installed or fails, the script says so and skips its row. Ends with `name: value` lines;
`vs_llm_sandbox_ratio` is Berth's p50 over llm-sandbox's (lower is better).

    .venv/bin/python bench/peers.py [-n 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rpc.client import BerthClient
from bench.common import PYTHON, BerthServer, docker_run_once, percentile, summary, timed

DERIVED = "berth/llm-sandbox-python:bench"
CODE = "print(1+1)"

DOCKERFILE = f"""FROM {PYTHON}
RUN ln -sf /usr/bin/python3 /usr/bin/python && mkdir -p /sandbox/.sandbox-venv/bin \\
    && ln -sf /usr/bin/python3 /sandbox/.sandbox-venv/bin/python && chmod -R a+rwx /sandbox
WORKDIR /sandbox
"""

# Runs in the throwaway venv: one fresh llm-sandbox session per line read, its time in ms on stdout.
WORKER = r"""
import inspect, json, sys, time
from llm_sandbox import SandboxSession
params = inspect.signature(SandboxSession).parameters
image = sys.argv[1]
kwargs = {"lang": "python", "image": image, "keep_template": True, "verbose": False,
          "runtime_configs": {"init": True, "network_mode": "none"}}
if "skip_environment_setup" in params or "kwargs" in params:
    kwargs["skip_environment_setup"] = True
print(json.dumps({"ready": True}), flush=True)
for _ in sys.stdin:
    t = time.perf_counter()
    try:
        with SandboxSession(**kwargs) as session:
            out = session.run("print(1+1)")
        ok = (getattr(out, "stdout", "") or "").strip() == "2"
        print(json.dumps({"ms": (time.perf_counter() - t) * 1000, "ok": ok, "out": str(out)[:300]}), flush=True)
    except Exception as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"[:500]}), flush=True)
"""


def build_derived_image() -> None:
    with tempfile.TemporaryDirectory(prefix="berth-peers-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(DOCKERFILE)
        subprocess.run(["docker", "build", "-q", "-t", DERIVED, tmp], check=True, capture_output=True)


class LlmSandbox:
    """llm-sandbox in a venv of its own, driven one session per request."""

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.proc: subprocess.Popen[str] | None = None

    def install(self) -> str | None:
        """None on success, else why it failed."""
        try:
            subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True, capture_output=True)
            pip = [str(self.venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            subprocess.run([*pip, "llm-sandbox[docker]"], check=True, capture_output=True, text=True, timeout=600)
        except subprocess.CalledProcessError as e:
            return f"pip install llm-sandbox failed: {(e.stderr or '')[-500:]}"
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"pip install llm-sandbox failed: {e}"
        script = self.venv / "worker.py"
        script.write_text(WORKER)
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "python"), str(script), DERIVED],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            return "llm-sandbox would not import"
        return None

    def run_once(self) -> float:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline() or '{"error": "the worker died"}')
        if "error" in reply:
            raise RuntimeError(reply["error"])
        if not reply["ok"]:
            raise RuntimeError(f"unexpected output: {reply['out']}")
        return float(reply["ms"])

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def main(n: int) -> None:
    build_derived_image()
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        sandbox = LlmSandbox(Path(tmp) / "llm-sandbox-venv")
        problem = sandbox.install()
        if problem is None:
            try:
                sandbox.run_once()
            except RuntimeError as e:
                problem = f"llm-sandbox failed: {e}"
        if problem:
            print(f"skipping the llm-sandbox row: {problem}")
        server = BerthServer(Path(tmp) / "berth", pool=True).start()
        client = BerthClient(server.url, server.token)
        berth = lambda: client.run(["python3", "-c", CODE], image=PYTHON)  # noqa: E731
        times: dict[str, list[float]] = {"berth": [], "llm_sandbox": [], "docker": []}
        try:
            for _ in range(3):
                assert berth()["stdout"] == "2\n"
                docker_run_once(PYTHON, "python3", "-c", CODE)
            for _ in range(n):
                times["berth"].append(timed(berth))
                if not problem:
                    try:
                        times["llm_sandbox"].append(sandbox.run_once())
                    except RuntimeError as e:
                        problem = f"llm-sandbox failed: {e}"
                        print(f"skipping the llm-sandbox row: {problem}")
                        times["llm_sandbox"].clear()
                times["docker"].append(docker_run_once(PYTHON, "python3", "-c", CODE))
                time.sleep(0.05)
        finally:
            server.stop()
            sandbox.close()
    print(summary("berth RPC run (pool on)", times["berth"]))
    if times["llm_sandbox"]:
        print(summary("llm-sandbox session", times["llm_sandbox"]))
    print(summary("docker run --rm", times["docker"]))
    berth_p50 = percentile(times["berth"], 50)
    print(f"peers_berth_p50_ms: {berth_p50:.1f}")
    print(f"peers_docker_p50_ms: {percentile(times['docker'], 50):.1f}")
    print(f"vs_docker_run_ratio: {berth_p50 / percentile(times['docker'], 50):.2f}")
    if times["llm_sandbox"]:
        print(f"peers_llm_sandbox_p50_ms: {percentile(times['llm_sandbox'], 50):.1f}")
        print(f"vs_llm_sandbox_ratio: {berth_p50 / percentile(times['llm_sandbox'], 50):.2f}")
    else:
        print("vs_llm_sandbox_ratio: skipped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20, help="runs of each (default 20)")
    main(parser.parse_args().n)
