"""The judge's side of the trust boundary: student code runs in a worker process, never here.

The graded tests (the *judge*: this pytest process, public and hidden tests, the plugin that
records points) never import, unpickle or execute student code. A test asks for a lab with
``lab = lab_fixture("lab01")`` and gets a :class:`RemoteLab`: ``lab.graph_forward(a, b)`` sends
the call to a worker process (:mod:`grader.worker.worker`) and returns plain data decoded by
:mod:`grader.worker.wire` (numbers, strings, lists, dicts, NumPy arrays, plain tensors).
Objects that cannot be data (a model, a normaliser) stay in the worker and come back as a
:class:`RemoteObject` handle; ``handle.method(...)`` is another call. Exceptions come back as
type + message + student file/line and are raised here as :class:`StudentError` subclasses that
also derive from the matching built-in exception (``pytest.raises(ValueError)`` works).

Time and crashes are the judge's business: a call that outlives its check's budget, or a worker
that dies (``os._exit()``, a segfault, out of memory), costs the running check only; the worker
is killed with its whole process group and a fresh one is forked for the next call.

Workers are forked from one *zygote* process per judge that has imported torch once (about 2 s,
overlapped with the judge's own start-up), so a worker starts in milliseconds. On an autograder
``GRADER_WORKER_USER`` names an unprivileged user: the zygote (and so every worker) runs as that
user, in a grading area root owns and, where it starts, inside bubblewrap (:mod:`grader.judge.sandbox`),
with the resource limits of ``GRADER_WORKER_LIMITS`` (JSON, ``resource.RLIMIT_*`` names) and an
environment built from an allow-list (:func:`grader.judge.sandbox.worker_env`).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from grader import textsafe
from grader.judge import context
from grader.worker import wire

WORKER_PY = Path(__file__).resolve().parent.parent / "worker" / "worker.py"
START_TIMEOUT = 180.0  # seconds for the zygote's first imports on a loaded machine
DEFAULT_CALL_LIMIT = 600.0  # backstop when no check budget is known



# --------------------------------------------------------------------------- errors


class StudentError(Exception):
    """An exception raised by student code in the worker, as data: type name, message, where."""

    type_name = "Exception"
    where = ""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


_BUILTIN_ERRORS = {
    name: getattr(builtins, name)
    for name in ("ValueError", "TypeError", "NotImplementedError", "KeyError", "IndexError", "RuntimeError",
                 "ZeroDivisionError", "AttributeError", "ArithmeticError", "OverflowError", "LookupError",
                 "ImportError", "ModuleNotFoundError", "FileNotFoundError", "OSError", "MemoryError",
                 "RecursionError", "FloatingPointError", "UnboundLocalError", "NameError", "AssertionError")
}
_error_classes: dict[str, type] = {}


def _error_class(bases: list[str]) -> type:
    base = next((_BUILTIN_ERRORS[b] for b in bases if b in _BUILTIN_ERRORS), None)
    key = base.__name__ if base else ""
    if key not in _error_classes:
        parents = (StudentError, base) if base else (StudentError,)
        _error_classes[key] = type(f"Student{key or 'Error'}", parents, {})
    return _error_classes[key]


def student_error(info: dict) -> StudentError:
    """Turn an error reply into an exception of the judge (never the student's own class)."""
    bases = [str(b) for b in info.get("bases", []) if isinstance(b, str)]
    cls = _error_class(bases)
    exc = cls(textsafe.terminal(info.get("message", "")))  # shown in tracebacks, logs and reports
    exc.type_name = textsafe.terminal(str(info.get("type", "Exception"))[:100])
    exc.where = textsafe.terminal(str(info.get("where", ""))[:300])
    return exc


class StudentExit(StudentError):
    """Student code called ``sys.exit()``."""


class WorkerDied(StudentError):
    """The worker process ended while running student code (os._exit, a crash, out of memory)."""


class StaleHandle(AssertionError):
    """A handle from a worker that has since been replaced (after a crash or a timeout)."""


class GlobalStateChanged(AssertionError):
    """Student code changed process-wide settings (reported by the worker)."""


class ProtocolError(StudentError):
    """The worker sent something outside the wire format (a tampered worker)."""


# --------------------------------------------------------------------------- options


@contextlib.contextmanager
def options(**opts):
    """Options for every call in the block: ``cuda_hidden=True``, ``capture_figures=True``, ``seed=N``."""
    ctx = context.CURRENT
    saved = dict(ctx.options)
    ctx.options.update(opts)
    try:
        yield ctx.evidence
    finally:
        ctx.options.clear()
        ctx.options.update(saved)


def last_evidence() -> dict:
    """Evidence the worker sent with the last reply (``figures``, ``out``)."""
    return context.CURRENT.evidence


# --------------------------------------------------------------------------- processes


class Zygote:
    """The process that imports torch once and forks workers (see :mod:`grader.worker.worker`)."""

    def __init__(self, cwd: Path, user: str | None = None) -> None:
        from grader.judge import sandbox

        self.ctrl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        kwargs: dict = {}
        worker_py, prefix = WORKER_PY, []
        self.user, self.area = user, None
        if user:
            # Student code runs as ``user`` in a fresh area root owns (grader.judge.sandbox): the worker
            # code and lab files are root's copies it can read, its scratch folder is its own.
            self.area = sandbox.Area(user)
            for f in sorted(WORKER_PY.parent.glob("*.py")):
                self.area.install(f, "_worker")
            worker_py, cwd = self.area.code / "_worker" / WORKER_PY.name, self.area.scratch
            env = sandbox.worker_env(home=str(self.area.scratch), tmpdir=str(self.area.tmpdir))
            env.update(USER=user, LOGNAME=user)
            kwargs = dict(user=self.area.uid, group=self.area.gid, extra_groups=[])
            if sandbox.bwrap_usable(user):
                prefix = sandbox.bwrap_prefix(self.area)
        else:
            env = sandbox.worker_env(home=None)
            env["MPLCONFIGDIR"] = os.path.join(str(cwd), ".mplconfig")
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-I", str(worker_py), "--zygote", str(child.fileno())],
            pass_fds=[child.fileno()], cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, start_new_session=True, **kwargs,
        )
        child.close()
        if user:
            sandbox.cpu_group(user, self.proc.pid)  # where cgroups can be written: CPU shared fairly between slots
        self.ready = False
        self.owner = os.getpid()  # a forked judge (python -m grader batch) borrows the zygote

    def install_lab(self, path: Path) -> Path:
        """Root's copy of the graded file ``path`` in this zygote's area (user switch only)."""
        return self.area.install(path, "labs")

    def _recv(self, timeout: float) -> dict:
        self.ctrl.settimeout(timeout)
        try:
            msg = self.ctrl.recv(4096)
        finally:
            self.ctrl.settimeout(None)
        if not msg:
            raise RuntimeError("the grader's worker process (zygote) ended; see the error above")
        return json.loads(msg)

    def wait_ready(self) -> None:
        """Block until the zygote has imported torch (raises RuntimeError if it died)."""
        if not self.ready:
            try:
                self._recv(START_TIMEOUT)
            except RuntimeError:
                if self.user:  # say why in one line: usually a folder the user cannot pass through
                    from grader.judge import sandbox

                    try:
                        sandbox.check_user(self.user)
                    except SystemExit as exc:
                        raise RuntimeError(str(exc)) from None
                raise
            self.ready = True

    def spawn(self, config: dict) -> tuple[socket.socket, int]:
        self.wait_ready()
        mine, theirs = socket.socketpair()
        socket.send_fds(self.ctrl, [json.dumps(config).encode()], [theirs.fileno()])
        theirs.close()
        reply = self._recv(60)
        return mine, int(reply["pid"])

    def alive(self) -> bool:
        if os.getpid() != self.owner:  # not our child: Popen.poll() cannot tell
            try:
                os.kill(self.proc.pid, 0)
            except ProcessLookupError:
                return False
            return True
        return self.proc.poll() is None

    def close(self) -> None:
        """Stop the zygote; as its owner with a user switch, also end everything the students left:
        the user's processes, its files in the shared temporary folders, and the area."""
        with contextlib.suppress(OSError):
            self.ctrl.close()
        if os.getpid() != self.owner:
            return  # a borrower closes its copy of the socket; the owner stops the zygote
        with contextlib.suppress(OSError, ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.wait(5)
        if self.user:
            from grader.judge import sandbox

            left = sandbox.end_of_student(self.user)
            if left:
                print(f"grader: processes of {self.user} survived SIGKILL for 10 s: {left}", file=sys.stderr)
            self.area.remove()
            sandbox.remove_cpu_group(self.user)


_zygote: Zygote | None = None


def zygote() -> Zygote:
    """The judge's zygote, started on first use (the plugin starts it early to overlap imports)."""
    global _zygote
    if _zygote is None or not _zygote.alive():
        if _zygote is not None:
            _zygote.close()
        from grader.registry import REPO_ROOT

        _zygote = Zygote(cwd=REPO_ROOT, user=os.environ.get("GRADER_WORKER_USER") or None)
    return _zygote


def close_zygote() -> None:
    global _zygote
    if _zygote is not None:
        _zygote.close()
        _zygote = None


_all_workers: list = []


@atexit.register
def _close_all() -> None:
    for worker in _all_workers:
        worker.kill()
    if _zygote is not None:
        _zygote.close()  # only the process that started it stops it (see Zygote.close)


def _may_kill(pid: int) -> bool:
    """Whether the judge may SIGKILL ``pid``, a pid the zygote reported (so, the worker's word).

    With a worker user the zygote runs as that user, and a worker could tamper with it: the judge
    (root) then kills only processes of that user, never one of root's or another user's.
    """
    if pid <= 1:
        return False
    user = _zygote.user if _zygote is not None else None
    if not user:
        return True
    try:
        return os.stat(f"/proc/{pid}").st_uid == _zygote.area.uid
    except OSError:
        return False


class Worker:
    """One lab's worker process: import the lab, answer calls; restarted after a crash or timeout."""

    def __init__(self, lab_id: str, config: dict, import_request: dict) -> None:
        self.lab_id = lab_id
        self.config = config
        self.import_request = import_request
        self.sock: socket.socket | None = None
        self.pid: int | None = None
        self.generation = 0
        self.seeded_for = -1
        _all_workers.append(self)

    # ---- life cycle

    def start(self) -> None:
        self.sock, self.pid = zygote().spawn(self.config)
        self.generation += 1
        reply = self._roundtrip(self.import_request, limit=120.0, what="importing the lab")
        if "error" in reply:
            err = reply["error"]
            self.kill()
            raise ImportFailed(err)

    def kill(self) -> None:
        if self.pid is not None and _may_kill(self.pid):
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock, self.pid = None, None

    # ---- requests

    def request(self, req: dict, what: str):
        if self.sock is None:
            self.start()
        ctx = context.CURRENT
        opts = dict(ctx.options)
        if ctx.seed is not None and self.seeded_for != ctx.check:
            # The first call of each check seeds the worker's RNGs with the check's seed, as the
            # judge's own are seeded: results do not depend on the order of the checks.
            if opts.get("seed") is None:
                opts["seed"] = ctx.seed
            self.seeded_for = ctx.check
        req = dict(req, opts=opts)
        reply = self._roundtrip(req, limit=None, what=what)
        ctx.evidence.clear()
        ctx.evidence.update({k: reply.get(k) for k in ("figures", "out") if k in reply})
        out = reply.get("out")
        if out:  # the student's output, without escape sequences, to pytest's capture and the log
            out = textsafe.terminal(out)
            print(out, end="" if out.endswith("\n") else "\n")
        if reply.get("state_changed"):
            changed = [str(c) for c in reply["state_changed"]][:5]
            raise GlobalStateChanged(
                "your code changed global state that other code relies on: " + ", ".join(changed)
                + ". Functions must not change process-wide settings (restored by the grader)"
            )
        if "exit" in reply:
            raise StudentExit(f"your code called sys.exit({reply['exit']}) while being graded: return a value instead")
        if "error" in reply:
            info = reply["error"]
            raise student_error(info if isinstance(info, dict) else {})
        return reply.get("ok")

    def _roundtrip(self, req: dict, limit: float | None, what: str) -> dict:
        deadline = context.CURRENT.deadline
        backstop = time.monotonic() + (limit or DEFAULT_CALL_LIMIT)
        deadline = backstop if deadline is None else min(deadline + 5.0, backstop)
        try:
            wire.send(self.sock, req, handle_of=self._handle_of)
            text, payload = wire.recv_frame(self.sock, deadline, max_payload=wire.MAX_REPLY_PAYLOAD)
            reply = wire.decode(text, payload, handle=self._new_handle)
        except EOFError:
            self.kill()
            raise WorkerDied(
                f"your code ended the worker process while {what} (os._exit(), a crash, or running out of "
                "memory); the lab's other checks run in a new worker"
            ) from None
        except TimeoutError:
            self.kill()
            raise WorkerTimeout(what) from None
        except wire.WireError as exc:
            self.kill()
            raise ProtocolError(f"the worker's reply while {what} broke the wire format ({exc}): not graded") from None
        except BaseException:
            # pytest-timeout's signal, KeyboardInterrupt, ...: the worker is in an unknown state.
            self.kill()
            raise
        if not isinstance(reply, dict):
            self.kill()
            raise ProtocolError(f"the worker's reply while {what} is not a reply: not graded")
        return reply

    def _handle_of(self, obj):
        if isinstance(obj, RemoteObject):
            if obj._worker is not self or obj._generation != self.generation:
                raise StaleHandle(
                    f"{obj._desc} was lost when the worker process was restarted (after a crash or a timeout "
                    "in an earlier call)"
                )
            return wire.Handle(obj._id)
        if isinstance(obj, RemoteAttr):
            raise TypeError("grader bug: a remote function cannot be sent as an argument")
        import torch

        if isinstance(obj, torch.nn.Module):
            raise TypeError("grader bug: send a grader-made model with lab.grader.to_worker(model)")
        raise TypeError(f"grader bug: cannot send {type(obj).__name__} to the worker")

    def _new_handle(self, hid: int, type_name: str, is_callable: bool):
        return RemoteObject(self, hid, type_name, is_callable)


class ImportFailed(Exception):
    def __init__(self, info: dict) -> None:
        super().__init__(str(info.get("message", "")) if isinstance(info, dict) else "")
        self.info = info if isinstance(info, dict) else {}


class WorkerTimeout(Exception):
    """A call outlived its check's budget; the worker was killed."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"Timeout: {what} took longer than the check's time budget and was stopped (the worker was killed)"
        )


# --------------------------------------------------------------------------- files student code writes


def worker_folder(tmp_path: Path) -> tuple[Path, int | None]:
    """(folder, owner) where a check lets student code write a file, and whose file the judge reads.

    With a worker user it is the zygote's scratch folder and ``owner`` its uid (files there are
    read with :func:`read_worker_file`, never through their path); locally ``tmp_path`` and None.
    """
    if not os.environ.get("GRADER_WORKER_USER"):
        return Path(tmp_path), None
    area = zygote().area
    return area.scratch, area.uid


def read_worker_file(folder: Path, rel: str, owner: int | None, limit: int = 50_000_000) -> bytes | None:
    """The bytes of ``folder/rel`` written by student code, or None when there is no such file.

    No link is followed and, with ``owner``, the file must be the worker's own (not a hard link to
    a file of root's): see :func:`grader.judge.ingest.read_beneath`.

    Raises:
        AssertionError: the path is a link, not a regular file, too long or someone else's (the
            message is for the student: write the file itself).
    """
    from grader.judge.ingest import IngestError, Missing, read_beneath

    try:
        return read_beneath(Path(folder), rel, limit=limit, owner=owner)
    except Missing:
        return None
    except IngestError as exc:
        raise AssertionError(f"the file your code wrote cannot be graded: {exc}") from None


# --------------------------------------------------------------------------- proxies


class RemoteAttr:
    """A function, class or method in the worker, named by its path: ``lab.train``, ``h.transform``."""

    def __init__(self, worker: Worker, root, path: tuple[str, ...], desc: str, generation: int | None = None) -> None:
        self._worker, self._root, self._path, self._desc = worker, root, path, desc
        self._generation = generation

    def __getattr__(self, name: str) -> "RemoteAttr":
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteAttr(self._worker, self._root, self._path + (name,), f"{self._desc}.{name}", self._generation)

    @property
    def qualname(self) -> str:
        """``"Normalizer.transform"``: where to find the source in the student file."""
        return ".".join(self._path)

    def _target(self):
        root = self._root
        if isinstance(root, RemoteObject):
            root = self._worker._handle_of(root).id
        return [root, *self._path]

    def __call__(self, *args, **kwargs):
        return self._worker.request(
            {"op": "call", "target": self._target(), "args": list(args), "kwargs": kwargs}, what=f"running {self._desc}()"
        )

    def keep(self, *args, **kwargs) -> "RemoteObject":
        """Call, and keep the result in the worker as a handle even if it is plain data."""
        with options(keep=True):
            return self(*args, **kwargs)

    def fetch(self):
        """The attribute's value as data (or a handle)."""
        return self._worker.request({"op": "getattr", "target": self._target()}, what=f"reading {self._desc}")

    def __repr__(self) -> str:
        return f"<{self._desc} in the worker>"


class RemoteObject:
    """A handle to an object that stays in the worker; attribute access names worker methods."""

    def __init__(self, worker: Worker, hid: int, type_name: str, is_callable: bool) -> None:
        self._worker, self._id, self._type, self._callable = worker, hid, type_name, is_callable
        self._generation = worker.generation
        self._desc = f"the {type_name.rsplit('.', 1)[-1]} object"

    @property
    def type_name(self) -> str:
        """Class name in the worker (as reported by the worker: evidence, not proof)."""
        return self._type.rsplit(".", 1)[-1]

    def __getattr__(self, name: str) -> RemoteAttr:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteAttr(self._worker, self, (name,), f"{self.type_name}.{name}")

    def __call__(self, *args, **kwargs):
        return RemoteAttr(self._worker, self, (), self.type_name)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<worker object #{self._id}: {self._type}>"


class WorkerTools:
    """The grader's own requests to a lab's worker: probes, model data, grader-made models."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def probe(self, name: str, *args, **kwargs):
        """Run the grader probe ``name`` (``"parameters"``, ``"lab03.order_probe"``) in the worker."""
        return RemoteAttr(self._worker, "probe", (name,), f"the grader's probe {name}")(*args, **kwargs)

    make = probe

    def keep(self, value) -> "RemoteObject":
        """Send ``value`` (data) once and keep it in the worker: pass the handle to many calls."""
        return RemoteAttr(self._worker, "probe", ("tensor",), "the grader's data").keep(value)

    def parameters(self, model) -> list:
        """[(name, tensor, requires_grad)] of ``model`` (reported by the worker)."""
        return self.probe("parameters", model)

    def seed(self, value: int) -> None:
        """Seed ``random``, NumPy and torch in the worker (``torch.manual_seed`` here does not reach it)."""
        self.probe("seed", int(value))

    def tensors(self, model) -> list:
        """The parameter tensors of ``model`` in order (reported by the worker)."""
        return [t for _, t, _ in self.probe("parameters", model)]

    def modules(self, model) -> list[dict]:
        return self.probe("modules", model)

    def forward(self, model, x, train_mode: bool | None = None):
        return self.probe("forward", model, x, train_mode)

    def to_worker(self, model):
        """A copy of the grader's ``nn.Sequential`` in the worker, as a handle (parameters and grads)."""
        layers, state, grads = sequential_spec(model)
        return self.probe("sequential", layers, state, grads, bool(model.training))


def sequential_spec(model) -> tuple[list, list, list]:
    """(layers, parameters, gradients) of a grader-made ``nn.Sequential`` of standard layers."""
    import torch

    layers = []
    for m in model.children():
        name = type(m).__name__
        args: dict = {}
        for a in ("in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride", "padding",
                  "dim", "start_dim", "end_dim", "p", "output_size"):
            if hasattr(m, a):
                v = getattr(m, a)
                args[a] = list(v) if isinstance(v, tuple) else v
        if hasattr(m, "bias") and isinstance(getattr(m, "bias"), (torch.Tensor, type(None))):
            args["bias"] = m.bias is not None
        layers.append([name, args])
    params = [p.detach().clone() for p in model.parameters()]
    grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
    return layers, params, grads


class RemoteLab:
    """The ``lab`` fixture: ``lab.func(...)`` runs ``func`` of the graded file in the worker."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self.grader = WorkerTools(worker)

    def __getattr__(self, name: str) -> RemoteAttr:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteAttr(self._worker, "lab", (name,), name)

    def close(self) -> None:
        self._worker.kill()
