"""The worker: the only process that imports and runs student code.

Started by the judge (:mod:`grader.judge.remote`) as ``python -I worker.py --zygote FD``. The *zygote*
imports torch, NumPy and matplotlib once, then forks one worker per lab on request, so each
worker starts in milliseconds with a clean copy of that state. A worker answers requests from the
judge over its own socket (:mod:`wire`): import the lab, call a function or method, read an
attribute, build a grader probe. Everything it returns is plain data, or a handle for an object
that stays here.

Nothing this process says is trusted: the judge re-checks outcomes with its own code, and what it
reports about *how* the code ran (probes, global state, figures) is evidence that a student who
rewrites this process in memory could fake. This file imports nothing from ``grader`` but its
siblings, which are readable by the worker's user on an autograder.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import wire  # noqa: E402  (sibling module, imported by path on purpose)

OUT_LIMIT = 20_000  # characters of printed output sent back per call


# --------------------------------------------------------------------------- zygote


def preload() -> None:
    """Import what every lab needs once, before forking (saves ~2 s per worker)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import numpy  # noqa: F401 - preloaded for the forked workers
    import torch

    torch.set_num_threads(1)
    # torch imports torch._dynamo lazily at the first optimizer (about 1 s); do it here once.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except Exception:  # noqa: BLE001 - labs without plots still work
        pass


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (no orphan spinning in student code)."""
    try:
        import ctypes

        parent = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)
    except (OSError, AttributeError):
        pass


def zygote(ctrl_fd: int) -> None:
    die_with_parent()
    ctrl = socket.socket(fileno=ctrl_fd)
    preload()
    # Student code runs as this process's user: it could open /proc/<zygote>/fd/2 and write
    # escape sequences to the judge's terminal. Import errors above still reach it; after them
    # nothing of the zygote's is printed (its workers also write to /dev/null, see Worker.setup).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    ctrl.send(json.dumps({"ready": os.getpid()}).encode())
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(ctrl, 1 << 16, 1)
        except OSError:
            return
        if not msg:
            return
        config = json.loads(msg)
        pid = os.fork()
        if pid == 0:
            try:
                ctrl.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()  # its own process group: the judge kills the worker and what it spawned
                die_with_parent()
                Worker(socket.socket(fileno=fds[0]), config).serve()
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        ctrl.send(json.dumps({"pid": pid}).encode())


# --------------------------------------------------------------------------- worker


class _CappedText(io.TextIOBase):
    """A stdout replacement that keeps the first ``OUT_LIMIT`` characters of what is printed."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s) -> int:
        s = str(s)
        if self.size < OUT_LIMIT:
            keep = s[: OUT_LIMIT - self.size]
            self.parts.append(keep)
            self.size += len(keep)
            self.dropped += len(s) - len(keep)
        else:
            self.dropped += len(s)
        return len(s)

    def text(self) -> str:
        out = "".join(self.parts)
        return out + (f"\n[... {self.dropped} more characters]" if self.dropped else "")


class Worker:
    def __init__(self, sock: socket.socket, config: dict) -> None:
        self.sock = sock
        self.config = config
        self.objects: dict[int, object] = {}
        self.next_id = 1
        self.lab = None
        self.impl_dir = os.path.realpath(config["impl_dir"])
        self.display_dir = config.get("display_dir", "labs")

    # ---- set-up

    def setup(self) -> None:
        import resource

        for name, value in (self.config.get("rlimits") or {}).items():
            res = getattr(resource, f"RLIMIT_{name.upper()}")
            try:
                resource.setrlimit(res, (int(value), int(value)))
            except (ValueError, OSError):
                pass
        # C-level output (printf from extensions) goes nowhere; Python's print is captured per call.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        for path in reversed(self.config.get("sys_path", [])):
            if path not in sys.path:
                sys.path.insert(0, path)
        if self.config.get("cwd"):
            os.chdir(self.config["cwd"])
        if self.config.get("block_solutions"):
            sys.meta_path.insert(0, _BlockSolutions(self))
        import probes

        self.probes = probes
        self.state = probes.GlobalState()

    def serve(self) -> None:
        self.setup()
        while True:
            try:
                text, payload = wire.recv_frame(self.sock)
            except (EOFError, OSError):
                return
            reply = self.handle(text, payload)
            try:
                wire.send(self.sock, reply, handle_of=self.keep)
            except wire.WireError as exc:
                wire.send(self.sock, {"error": _error_info(exc, self)}, handle_of=self.keep)
            except OSError:
                return

    # ---- objects

    def keep(self, obj) -> wire.Handle:
        hid = self.next_id
        self.next_id += 1
        self.objects[hid] = obj
        t = type(obj)
        return wire.Handle(hid, f"{t.__module__}.{t.__qualname__}", callable(obj))

    def lookup(self, hid: int):
        try:
            return self.objects[hid]
        except KeyError:
            raise LookupError(f"no object #{hid} in this worker") from None

    def make(self, name: str, args: list):
        return self.probe(name)(*args)

    def probe(self, name: str):
        lab, _, func = name.rpartition(".")
        module = self.probes
        if lab:
            import importlib

            module = importlib.import_module(f"probes_{lab}")
        return getattr(module, func)

    # ---- requests

    def handle(self, text: bytes, payload: bytes) -> dict:
        out = _CappedText()
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        figures: list = []
        try:
            req = wire.decode(text, payload, handle=lambda hid, *_: self.lookup(hid), make=self.make)
            op = req["op"]
            opts = req.get("opts") or {}
            with self.probes.call_options(opts, figures):
                value = getattr(self, f"op_{op}")(req)
            reply = {"ok": self.keep(value) if opts.get("keep") else value}
        except SystemExit as exc:
            reply = {"exit": repr(exc.code)}
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the judge as data
            reply = {"error": _error_info(exc, self)}
        finally:
            sys.stdout, sys.stderr = saved
        changed = self.state.restore_and_diff() if self.lab is not None else []
        reply["out"] = out.text()
        if changed:
            reply["state_changed"] = changed
        if figures:
            reply["figures"] = figures
        return reply

    def op_import(self, req) -> str:
        import importlib
        import importlib.util

        path = req["path"]
        package = req.get("package")
        if package:
            self.lab = importlib.import_module(f"{package}.{req['module']}")
        else:
            name = f"graded_{req['module']}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            self.lab = module
        return "ok"

    def resolve(self, target):
        root, *attrs = target
        obj = self.lab if root == "lab" else self.probe(attrs.pop(0)) if root == "probe" else self.lookup(root)
        for name in attrs:
            obj = getattr(obj, name)
        return obj

    def op_call(self, req):
        func = self.resolve(req["target"])
        return func(*req.get("args", ()), **dict(req.get("kwargs", {})))

    def op_getattr(self, req):
        return self.resolve(req["target"])

    def op_release(self, req) -> None:
        for hid in req.get("ids", []):
            self.objects.pop(hid, None)

    def op_ping(self, req) -> str:
        return "pong"


def _error_info(exc: BaseException, worker: Worker) -> dict:
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001
        message = "(the exception's message could not be read)"
    bases = [c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"]
    where = ""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if _inside(f.filename, worker.impl_dir)]
        if frames:
            f = frames[-1]
            rel = os.path.relpath(os.path.realpath(f.filename), worker.impl_dir)
            where = f"{worker.display_dir}/{rel}, line {f.lineno}, in {f.name}"
    except Exception:  # noqa: BLE001
        pass
    if isinstance(exc, SyntaxError) and exc.filename and _inside(exc.filename, worker.impl_dir):
        rel = os.path.relpath(os.path.realpath(exc.filename), worker.impl_dir)
        where = f"{worker.display_dir}/{rel}, line {exc.lineno}"
        message = str(exc.msg)
    return {"type": type(exc).__name__, "bases": bases, "message": message[:4000], "where": where}


def _inside(filename: str, folder: str) -> bool:
    try:
        return os.path.commonpath([os.path.realpath(filename), folder]) == folder
    except ValueError:
        return False


class _BlockSolutions:
    """Import hook: student code may not import the reference solutions."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def find_spec(self, name, path=None, target=None):
        if name != "solutions" and not name.startswith("solutions."):
            return None
        frame = sys._getframe(1)
        while frame is not None:
            if _inside(frame.f_code.co_filename, self.worker.impl_dir):
                rel = os.path.relpath(os.path.realpath(frame.f_code.co_filename), self.worker.impl_dir)
                raise ImportError(
                    f"{self.worker.display_dir}/{rel} imports {name}: graded code must not import the reference solutions"
                )
            frame = frame.f_back
        return None


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--zygote":
        zygote(int(sys.argv[2]))
    else:
        sys.exit("usage: worker.py --zygote FD (started by the grader)")
