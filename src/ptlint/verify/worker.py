"""The code that runs one variant of a scenario, inside its own process.

`python -m ptlint.verify.worker FILE --device cpu --steps N --json-out OUT [--werror]` runs one variant.
`python -m ptlint.verify.worker --serve` imports torch once, then forks a fresh child per job read
from stdin (one JSON object per line) and answers one JSON line per job: every variant still runs in
a process of its own, without paying for torch's import each time.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import inspect
import json
import math
import os
import random
import signal
import sys
import time
import traceback
import warnings
from typing import Any

MODULE_NAME = "ptlint_scenario"
MIN_RUN_TIME = 0.1  # seconds of timing per run of a variant; kept small so CI stays fast (each variant runs 3 times)


def settle(device: str) -> None:
    """Fixed seeds and deterministic settings for one variant."""
    import torch

    random.seed(0)
    torch.manual_seed(0)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(0)
    torch.set_num_threads(1)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=not device.startswith("cuda"))


def fresh_entropy() -> None:
    """Reseed from the OS, as a fresh interpreter would be: a forked child inherits its parent's state."""
    import torch

    random.seed()
    torch.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # so that pickling classes of the scenario works
    spec.loader.exec_module(module)
    return module


def encode(value: Any) -> Any:
    """A JSON-able form of a result value; tensors keep their exact bytes."""
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach()
        device = str(t.device)
        t = t.cpu().contiguous().clone()
        raw = bytes(t.reshape(-1).clone().view(torch.uint8).untyped_storage()) if t.numel() else b""
        return {
            "__tensor__": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "device": device,
            "data": base64.b64encode(raw).decode("ascii"),
        }
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalars
        return encode(value.item())
    return {"__repr__": repr(value)}


def _steps_of(run: Any) -> tuple[bool, int | None]:
    """Whether `run` takes `steps`, and its default."""
    params = inspect.signature(run).parameters
    if "steps" not in params:
        return False, None
    default = params["steps"].default
    return True, default if isinstance(default, int) else None


def run_variant(path: str, device: str, steps: int | None, werror: bool, needs: list[str] | None = None) -> dict[str, Any]:
    """Run one variant: result, invariant, metrics. Never raises."""
    out: dict[str, Any] = {"status": "ok", "metrics": {}, "warnings": []}
    try:
        import torch

        from ptlint.verify import metrics
        from ptlint.verify.compare import spread
    except Exception as exc:  # pragma: no cover - checked by the caller first
        return {"status": "error", "error": f"cannot import torch: {exc}"}
    broken = import_needs(list(needs or ()))
    if broken:
        return {"status": "unavailable", "error": broken}
    if werror:
        warnings.resetwarnings()
        warnings.simplefilter("error")
    try:
        fresh_entropy()
        module = load(path)  # import-time code draws like in a fresh process (PTL023's unseeded script)
        settle(device)  # run() itself runs from fixed seeds
        run = module.run
        takes_steps, default = _steps_of(run)
        n = (steps or default or 1) if takes_steps else 1

        def call(k: int = n) -> Any:
            return run(device, k) if takes_steps else run(device)

    except Exception as exc:
        out.update(status="raised", error=_error(exc), phase="load")
        return out
    out["steps"] = n
    cuda = device.startswith("cuda")
    counter = metrics.SyncCounter()
    rss_before, peak_before = metrics.rss_bytes(), metrics.max_rss_bytes()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=not werror) as recorded:
            if not werror:
                warnings.simplefilter("always")
            with counter:
                result = call()
            if recorded is not None:
                caught = list(recorded)
        if cuda:
            torch.cuda.synchronize(device)
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a scenario is a failure too
        out.update(status="raised", error=_error(exc), phase="run")
        return out
    out["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})[:10]
    if not isinstance(result, dict):
        out.update(status="raised", error=f"run() returned {type(result).__name__}, not a dict", phase="run")
        return out
    out["result"] = {k: encode(v) for k, v in result.items() if not str(k).startswith("_")}
    out["diagnostics"] = {str(k): encode(v) for k, v in result.items() if str(k).startswith("_")}
    out["invariant"] = _invariant(module, result)
    m = out["metrics"]
    if cuda:
        m["peak_mem"] = max(0, torch.cuda.max_memory_allocated(device) - base)
        m["syncs"] = metrics.cuda_syncs(call)
        if takes_steps:
            # Warm runs of N and 2N steps: the first run also paid for one-off allocations (cuBLAS).
            try:
                single = metrics.cuda_peak(lambda: call(n), device)
                double = metrics.cuda_peak(lambda: call(2 * n), device)
                m["peak_mem"] = single
                m["mem_growth"] = (double - single) / n
            except Exception as exc:
                out["warnings"].append(f"memory growth runs failed: {_error(exc)}")
    else:
        m["syncs"] = counter.count
        m["peak_mem"] = max(0, metrics.max_rss_bytes() - max(rss_before, peak_before))
    nodes = result.get("_graph_nodes")
    if isinstance(nodes, list) and len(nodes) >= 2 and all(isinstance(v, (int, float)) for v in nodes):
        m["graph_nodes"] = nodes[-1]
        m["graph_growth"] = metrics.slope([float(v) for v in nodes])
    if isinstance(result.get("_syncs"), int):
        m["syncs"] = result["_syncs"]
    try:
        per_step = [t / n for t in metrics.time_per_call(call, MIN_RUN_TIME)]
        out["spread"] = {"time_per_step": spread(per_step, over="blocks")}
        m["time_per_step"] = out["spread"]["time_per_step"]["median"]
    except Exception as exc:
        out["warnings"].append(f"timing failed: {_error(exc)}")
    return out


def import_needs(needs: list[str]) -> str | None:
    """Import the modules the scenario declares in NEEDS; why one of them does not import, or None.

    They are imported before the scenario, with warnings ignored: a dependency's own import-time
    warnings are not the scenario's (under -W error they would fail both variants alike).
    """
    import importlib
    from importlib.metadata import PackageNotFoundError, version

    for name in needs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(name)
        except Exception as exc:
            try:
                installed = f"{name} {version(name)}"
            except (PackageNotFoundError, ValueError):
                installed = name
            import torch

            return f"{installed} is installed but does not import with torch {torch.__version__}: {_error(exc)}"
    return None


def _invariant(module: Any, result: dict) -> bool | None:
    check = getattr(module, "invariant", None)
    if check is None:
        return None
    try:
        return bool(check(result))
    except Exception:
        return False


def _error(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    first = lines[0].split(". ")[0].rstrip(".")
    return f"{type(exc).__name__}: {first if len(first) <= 100 else first[:97] + '...'}"


def probe() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "cuda": cuda,
        "gpus": torch.cuda.device_count() if cuda else 0,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cuda_build": torch.version.cuda,
    }


def _child(job: dict[str, Any]) -> None:
    """In a freshly forked child: run the job and write its answer; never returns."""
    code = 0
    try:
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        signal.alarm(max(1, int(job.get("timeout", 60))))
        if job.get("cwd"):
            os.chdir(job["cwd"])
        if job.get("probe"):
            answer = probe()
        else:
            answer = run_variant(job["path"], job["device"], job.get("steps"), bool(job.get("werror")), job.get("needs"))
        with open(job["out"], "w") as handle:
            json.dump(answer, handle)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def warm() -> None:
    """Import torch and what every variant needs once, before forking: it saves seconds per variant.

    Nothing here starts a thread pool or touches CUDA, so forking afterwards is safe: CUDA availability
    checks go through NVML (PYTORCH_NVML_BASED_CUDA_CHECK), since asking the CUDA runtime would make
    every forked child fail with "Cannot re-initialize CUDA in forked subprocess".
    """
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    import torch

    torch.set_num_threads(1)
    # Its first call imports torch._inductor and torch._dynamo (seconds), which optimizers need too.
    torch.use_deterministic_algorithms(False)
    import torch.optim  # noqa: F401

    if torch.version.cuda is None:
        # On CUDA builds this import asks the CUDA runtime whether a GPU is there (torch.utils.cpp_extension)
        # where NVML is missing: each child imports it when it times its variant instead.
        import torch.utils.benchmark  # noqa: F401

    import ptlint.verify.metrics  # noqa: F401


def serve() -> int:
    """Import torch once, then fork one child per job line on stdin."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        warm()
    except Exception as exc:
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 3
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _child(job)
        _, status = os.waitpid(pid, 0)
        answer: dict[str, Any] = {"wall": time.perf_counter() - start}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            answer["ended"] = "timeout" if sig == signal.SIGALRM else f"signal {sig}"
        else:
            answer["ended"] = f"exit {os.WEXITSTATUS(status)}"
        print(json.dumps(answer), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptlint.verify.worker")
    parser.add_argument("file", nargs="?")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--werror", action="store_true")
    parser.add_argument("--json-out")
    parser.add_argument("--needs", action="append", default=[], help="a module the scenario needs (repeatable)")
    args = parser.parse_args(argv)
    if args.serve:
        return serve()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if not args.probe:
        try:
            warm()  # the same state as a forked child, so that metrics compare across modes
        except Exception:
            pass  # run_variant reports the missing torch
    answer = probe() if args.probe else run_variant(args.file, args.device, args.steps, args.werror, args.needs)
    text = json.dumps(answer)
    if args.json_out:
        with open(args.json_out, "w") as handle:
            handle.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
