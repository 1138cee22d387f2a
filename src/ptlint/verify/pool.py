"""Running variants in worker processes: a fork server per slot (POSIX), or one process per variant."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import ptlint

WORKER = "ptlint.verify.worker"
JOBS_PER_SERVER = 8


class TorchMissing(RuntimeError):
    """torch cannot be imported in the worker."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(ptlint.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def use_fork() -> bool:
    return hasattr(os, "fork") and os.environ.get("PTLINT_VERIFY_ISOLATION", "fork") != "spawn"


class Server:
    """A worker process that imports torch once and forks a fresh child for every job."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", WORKER, "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(),
        )
        self.ready: dict[str, Any] | None = None

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.ready = json.loads(line) if line.strip() else {"ready": False, "error": "the worker exited"}
        if not self.ready.get("ready"):
            self.close()
            raise TorchMissing(str(self.ready.get("error", "")))

    def submit(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line.strip():
            return {"ended": "the worker process died"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _spawn(job: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", WORKER, "--json-out", job["out"]]
    if job.get("probe"):
        cmd.append("--probe")
    else:
        cmd += [job["path"], "--device", job["device"]]
        if job.get("steps"):
            cmd += ["--steps", str(job["steps"])]
        if job.get("werror"):
            cmd.append("--werror")
        for need in job.get("needs") or ():
            cmd += ["--needs", need]
    with open(job["log"], "w") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=log, env=_env(), cwd=job.get("cwd"), timeout=job["timeout"])
        except subprocess.TimeoutExpired:
            return {"ended": "timeout"}
    return {"ended": f"exit {proc.returncode}"}


def probe(job: dict[str, Any]) -> dict[str, Any]:
    """torch's version and the GPUs, from a short-lived process (nothing here touches CUDA)."""
    return read_answer(job, _spawn(job))


def read_answer(job: dict[str, Any], ended: dict[str, Any]) -> dict[str, Any]:
    """The variant's outcome: its JSON answer, or why there is none."""
    how = ended.get("ended", "")
    path = Path(job["out"])
    if how == "exit 0" and path.is_file():
        answer = json.loads(path.read_text())
        if "wall" in ended:
            answer["wall"] = ended["wall"]
        return answer
    if how == "timeout":
        return {"status": "timeout", "error": f"no result within {job['timeout']} s"}
    tail = ""
    log = Path(job["log"])
    if log.is_file():
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        tail = lines[-1] if lines else ""
    return {"status": "crashed", "error": f"the worker ended with {how}" + (f": {tail}" if tail else "")}


class Pool:
    """Runs jobs on `size` slots in parallel; a slot is a fork server or a plain subprocess per job."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.fork = use_fork()
        self.servers: "queue.Queue[Server]" = queue.Queue()
        self._started: list[Server] = []
        self._pending: list[Server] = []
        self._lock = threading.RLock()

    def __enter__(self) -> "Pool":
        return self

    def start(self, count: int) -> None:
        """Start (without waiting for them) fork servers up to `count`, at most `size`."""
        if not self.fork:
            return
        with self._lock:
            for _ in range(min(count, self.size) - len(self._started) - len(self._pending)):
                self._pending.append(Server())

    def _grow(self, count: int) -> None:
        """Have `count` (at most `size`) fork servers ready; they import torch in parallel."""
        self.start(count)
        with self._lock:
            fresh, self._pending = self._pending, []
            self._started += fresh
            try:
                for server in fresh:
                    server.wait_ready()
            except TorchMissing:
                self.close()
                raise
            for server in fresh:
                self.servers.put(server)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for server in self._pending:  # never used: stop it rather than wait for its import
            server.proc.kill()
        for server in self._started + self._pending:
            server.close()
        self._started, self._pending = [], []

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        if not self.fork:
            return read_answer(job, _spawn(job))
        if not self._started:
            self._grow(1)
        server = self.servers.get()
        try:
            ended = server.submit(job)
            if ended.get("ended") == "the worker process died":
                server = self._replace(server)
        finally:
            self.servers.put(server)
        return read_answer(job, ended)

    def _replace(self, dead: Server) -> Server:
        with self._lock:
            dead.close()
            self._started = [s for s in self._started if s is not dead]
            fresh = Server()
            fresh.wait_ready()
            self._started.append(fresh)
            return fresh

    def map(self, jobs: Sequence[dict[str, Any]], done: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Every job's outcome, in order."""
        results: list[dict[str, Any]] = [{} for _ in jobs]
        # A server costs torch's import (seconds of CPU); a variant costs well under one: one per 8 jobs.
        self._grow(-(-len(jobs) // JOBS_PER_SERVER))

        def one(i: int) -> None:
            results[i] = self.run(jobs[i])
            if done is not None:
                done(i)

        with ThreadPoolExecutor(max_workers=self.size) as executor:
            list(executor.map(one, range(len(jobs))))
        return results
