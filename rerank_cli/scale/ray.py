"""Ray Data: `RerankPredictor`, the actor class for `Dataset.map_batches`, and the `rerank batch --ray` pipeline.

Each actor loads the model once and answers whole requests with `pipeline.answer_stream`, the code
`rerank batch` runs in one process, so a pair gets the same float from either. (A pair's score does not
depend on the other pairs of its batch: measured bit-equal alone, in batches of 7 and of 60, with 1 and 2
threads; tests/test_ray.py holds the Ray path to the one-process output byte for byte.) Ray is imported
lazily: the rest of the package works without it.
"""

from __future__ import annotations

import copyreg
import inspect
import io
import logging
import os
import pickle
import re
import signal
import socket
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import InputError, NoInputError, OutputError, RerankError, ServiceUnavailable, UsageError
from ..pipeline import answer_stream
from ..records.readers import jsonl_record
from ..records.record import OnInvalid, Record, report_invalid
from ..records.requests import Answer, Request, parse_request
from ..records.trec import TrecWriter
from ..records.writers import AnswerWriter, answer_record
from ..store.registry import DEFAULT_MODEL

if TYPE_CHECKING:
    from ray.data import Dataset

INSTALL = "pip install 'rerank-cli[ray]'"
REQUESTS_PER_CALL = 16  # requests per actor call; their pairs share the engine's length-sorted windows
PART_SIZE = 4096  # answers per part written by --output
LOCAL_OBJECT_STORE = 512 * 1024 * 1024  # the cluster `--ray` starts alone holds only blocks in flight
_SEP = "\t"  # between an error's class name and its message in the `error` column


def _fragment(value: orjson.Fragment) -> tuple[type[orjson.Fragment], tuple[bytes]]:
    return orjson.Fragment, (orjson.dumps(value),)


_DISPATCH = {**copyreg.dispatch_table, orjson.Fragment: _fragment}


def dumps(value: Any) -> bytes:
    """`pickle.dumps`, also for the `orjson.Fragment`s that hold numbers as written (`1.50`, `1e400`):
    pickle cannot copy them by itself, and the writer needs them to write those numbers back exactly."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(value)
    return out.getvalue()


def require_ray() -> Any:
    """The `ray` module (with Ray Data), or a one-line error that names the install command."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ServiceUnavailable(f"--ray needs Ray Data, which is not installed: {INSTALL}") from exc
    return ray


class RerankPredictor:
    """Answers rerank requests in a Ray Data pipeline; each actor loads the model once, in `__init__`.

        ds = ray.data.from_items([{"query": "capital of france", "documents": ["Paris is...", "Berlin is..."]}])
        ds = ds.map_batches(RerankPredictor, fn_constructor_kwargs={"model": "ms-marco-minilm", "threads": 1},
                            compute=ray.data.ActorPoolStrategy(size=4), num_cpus=1)

    A batch has a `query` column (str) and a `documents` column (strings, or objects with the text under
    `field`), and may have `top_n`; the batch comes back with `results` added: each request's
    `[{"index", "relevance_score"}]` best first, as `rerank batch` answers it. The keywords are
    `Reranker`'s (`threads`, `offline`, `activation`, `max_length`, `long_docs`, ...) plus `field`, `top_n`
    and `return_documents`. A bad request raises InputError. (`rerank batch --ray` feeds the same class
    raw request lines with `errors_as_rows=True`: errors then come back as rows, in input order.)
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, field: str = "text", top_n: int | None = None,
                 return_documents: bool = False, errors_as_rows: bool = False, **options: Any) -> None:
        from ..engine.engine import Reranker

        self.field, self.top_n, self.return_documents = field, top_n, return_documents
        self.failure = ""  # why the model did not load, with errors_as_rows (every batch then reports it)
        try:
            self.engine = Reranker(model, **options)
        except RerankError as err:
            if not errors_as_rows:
                raise
            self.failure = encode_error(err)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one batch of requests (a dict of columns, as `map_batches` passes it)."""
        if "query" in batch:
            return self._columns(batch)
        return self._rows(batch)

    def _columns(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        tops = batch.get("top_n")
        requests = []
        for i, (query, documents) in enumerate(zip(batch["query"], batch["documents"], strict=True)):
            data: dict[str, Any] = {"query": plain(query), "documents": plain(documents)}
            top = None if tops is None else plain(tops[i])
            if top is not None and top == top:  # NaN: a missing top_n in a float column
                data["top_n"] = int(top)
            requests.append(parse_request(Record(data, "batch row", i), self.field))
        results = [answer_record(a, self.return_documents)["results"] for a in self._answers(requests)]
        # Documents as lists: Ray Data writes a column of ragged numpy arrays as pickles, with a warning.
        return {**batch, "documents": _objects([plain(d) for d in batch["documents"]]), "results": _objects(results)}

    def _rows(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The CLI's rows: raw request lines (`source`, `line`, `raw`) or pickled requests (`request`)."""
        items: list[Request | RerankError] = []
        if "request" in batch:
            items = [pickle.loads(r) for r in batch["request"]]
        else:
            for source, line, raw in zip(batch["source"], batch["line"], batch["raw"], strict=True):
                try:
                    record = jsonl_record(bytes(raw), str(source), int(line))
                    if record is None:  # blank lines are dropped before this; a stray one is one too
                        raise InputError(f"{source}:{line}: an empty request line")
                    items.append(parse_request(record, self.field))
                except InputError as err:
                    items.append(err)
        errors, answers = [self.failure] * len(items), [b""] * len(items)
        cut = [0, 0]  # pairs truncated and documents chunked by this call, reported on its first row
        if not self.failure:
            before = self.engine.truncated, self.engine.chunked
            done = iter(self._answers([x for x in items if isinstance(x, Request)]))
            for i, item in enumerate(items):
                if isinstance(item, RerankError):
                    errors[i] = encode_error(item)
                else:
                    answers[i] = dumps(next(done))
            cut = [self.engine.truncated - before[0], self.engine.chunked - before[1]]
        zeros = [0] * max(len(items) - 1, 0)
        limits = (0, 0) if self.failure else (self.engine.max_length, self._max_chunks())
        return {"file": batch["file"], "line": batch["line"], "error": _objects(errors), "answer": _objects(answers),
                "truncated": [cut[0], *zeros][:len(items)], "chunked": [cut[1], *zeros][:len(items)],
                "max_length": [limits[0]] * len(items), "max_chunks": [limits[1]] * len(items)}

    def _max_chunks(self) -> int:
        return 0 if self.engine.chunker is None else self.engine.chunker.max_chunks

    def _answers(self, requests: list[Request]) -> list[Answer]:
        return [a for group in answer_stream(self.engine, requests, self.top_n) for a in group]


def plain(value: Any) -> Any:
    """Python values from what a numpy or pandas batch holds (numpy scalars, arrays of strings or dicts)."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _objects(values: list[Any]) -> Any:
    import numpy as np

    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def encode_error(err: RerankError) -> str:
    """An error as the text of a row's `error` column: its class name, then its message."""
    return f"{type(err).__name__}{_SEP}{err}"


def decode_error(text: str) -> RerankError:
    """The error `encode_error` wrote, as its own class (so it keeps its exit code)."""
    name, _, message = text.partition(_SEP)
    classes = {c.__name__: c for c in _subclasses(RerankError)}
    return classes.get(name, RerankError)(message)


def _subclasses(cls: type[RerankError]) -> Iterator[type[RerankError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# --- the cluster ---------------------------------------------------------------------------------------


@contextmanager
def connected(address: str | None, debug: bool = False) -> Iterator[Any]:
    """Ray, connected to the cluster at `address` (`auto`, `HOST:PORT`, `ray://HOST:10001`) or to a local
    one started for the run (shut down at the end); a session already open in this process is reused.

    Ray and Ray Data log a lot: without `debug`, their logs, progress bars and workers' output stay off
    stderr, and errors reach the user as one line.
    """
    ray = require_ray()
    level = logging.WARNING if debug else logging.CRITICAL
    started = False
    with warnings.catch_warnings(), _native_stderr(hidden=not debug):
        if not debug:
            warnings.simplefilter("ignore")
        # Once the start begins, every way out stops the local cluster: a failed or interrupted start,
        # and a stop signal at any later moment (the first use of ray.data imports for a second or more).
        try:
            if not ray.is_initialized():
                options: dict[str, Any] = {"logging_level": level, "log_to_driver": debug}
                if address:
                    _check_reachable(address)
                    options["address"] = address
                else:
                    options.update(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                                   object_store_memory=LOCAL_OBJECT_STORE)
                started = True
                _init(ray, options, address)
            for name in ("ray", "ray.data"):
                logging.getLogger(name).setLevel(level)
            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True  # answers come back in input order
            context.enable_progress_bars = debug
            yield ray
        except ray.exceptions.RayError as exc:
            raise ServiceUnavailable(f"the Ray job failed: {_first_line(exc)}") from exc
        finally:
            if started:
                _shutdown(ray)


# The signal mask a process forked while the cluster starts gets back (empty: none is forked now).
_CHILD_MASK: list[Any] = []


def _open_in_child() -> None:
    """In a child forked while `_init` holds SIGINT and SIGTERM: the mask from before the hold. Ray starts
    its processes with a `preexec_fn` (it blocks SIGINT there itself, leaving SIGTERM open), and Python
    runs at-fork hooks before it."""
    if _CHILD_MASK and _CHILD_MASK[0] is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, _CHILD_MASK[0])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_open_in_child)


def _init(ray: Any, options: dict[str, Any], address: str | None) -> None:
    """`ray.init`, with our SIGTERM handling kept (Ray's would exit 15, not 143). When it fails or is
    interrupted, the caller (`connected`) stops what it had started: its agents would outlive us."""
    terminate = signal.getsignal(signal.SIGTERM)
    # A stop signal waits for the end of the start: interrupted in the middle, Ray cannot stop what it
    # had started. Raised when unblocked, it meets the caller's shutdown. The cluster's processes must
    # not inherit the block (they would ignore the SIGTERM that stops them): see _open_in_child.
    masked = hasattr(signal, "pthread_sigmask")
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}) if masked else None
    _CHILD_MASK[:] = [previous]
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ServiceUnavailable(f"cannot reach the Ray cluster at {address}: {_first_line(exc)}") from exc
    finally:
        _CHILD_MASK.clear()
        if terminate is not None and signal.getsignal(signal.SIGTERM) is not terminate:
            signal.signal(signal.SIGTERM, terminate)
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _shutdown(ray: Any) -> None:
    """`ray.shutdown`, which stops a local cluster's processes, safe from Ctrl-C and SIGTERM (they wait).

    Ray stops the processes it started itself, but the agents the raylet started exit on their own only
    once they notice it is gone, after reporting to a GCS that may be gone too: measured, sometimes more
    than 10 s after rerank had exited. Those of our local cluster still running after the shutdown
    are stopped here (SIGTERM, then SIGKILL after 2 s).
    """
    masked = hasattr(signal, "pthread_sigmask")
    if masked:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        ours = _local_cluster(ray)
        ray.shutdown()
        _stop(ours)
    finally:
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _local_cluster(ray: Any) -> list[tuple[int, str]]:
    """(pid, start time) of the Ray processes this process started (Linux; elsewhere none): its
    descendants whose command line names the Ray session's folder or that Ray renamed `ray::...`.
    Taken before the shutdown, while the raylet still parents its agents and workers."""
    try:
        session = str(ray._private.worker._global_node.get_session_dir_path())
    except Exception:  # no node (a failed start) or another Ray: leave the cleanup to Ray
        return []
    found = []
    for pid, start in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                command = file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if session in command or command.startswith("ray::"):
            found.append((pid, start))
    return found


def _descendants(root: int) -> list[tuple[int, str]]:
    """(pid, start time) of every descendant of `root`, read from /proc; empty where there is none."""
    children: dict[int, list[tuple[int, str]]] = {}
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return []
    for name in entries:
        stat = _stat(int(name))
        if stat is not None:
            children.setdefault(int(stat[1]), []).append((int(name), stat[19]))
    found, todo = [], [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            found.append((pid, start))
            todo.append(pid)
    return found


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ..., start time at 19)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            return file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _stop(processes: list[tuple[int, str]]) -> None:
    """SIGTERM the processes still running (the same pid and start time, not a zombie), then SIGKILL
    those left after 2 s."""
    def running(pid: int, start: str) -> bool:
        stat = _stat(pid)
        return stat is not None and stat[19] == start and stat[0] != "Z"

    left = [p for p in processes if running(*p)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, _ in left:
            with suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 2
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [p for p in left if running(*p)]


@contextmanager
def _native_stderr(hidden: bool) -> Iterator[None]:
    """With `hidden`, what Ray's C++ core writes to file descriptor 2 (its warnings, the local cluster's
    processes' output) goes to /dev/null while `sys.stderr`, our messages, still reaches the real stderr."""
    if not hidden:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    ours = sys.stderr
    try:
        moved = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a captured stream (tests): fd 2 is not sys.stderr
        moved = False
    if moved:
        sys.stderr = open(saved, "w", buffering=1, encoding=ours.encoding, errors=ours.errors,  # noqa: SIM115
                          closefd=False)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        sys.stderr = ours
        os.close(saved)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a `HOST:PORT` (or `ray://HOST:PORT`) nobody listens on: `ray.init` would retry for minutes."""
    host, colon, port = address.split("://", 1)[-1].rpartition(":")
    if not colon or not port.isdigit():
        return  # `auto`, or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ServiceUnavailable(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from exc


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # Ray colours the names in its errors' text


def _first_line(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).replace("`--address` flag", "--ray-address")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# --- the pipeline --------------------------------------------------------------------------------------


def input_files(paths: Sequence[str]) -> list[str]:
    """Every file of `paths` in order (a directory gives its files, sorted by name, hidden ones left out):
    local paths, `s3://`, `gs://`, whatever pyarrow's filesystems read."""
    from pyarrow import fs

    files: list[str] = []
    for path in paths:
        if path == "-":
            raise NoInputError("--ray reads files (local paths, s3://, gs://, directories), not stdin: "
                               "save the requests to a file")
        try:
            filesystem, inner = fs.FileSystem.from_uri(path if "://" in path else os.path.abspath(path))
            info = filesystem.get_file_info(inner)
        except (OSError, ValueError) as exc:
            raise NoInputError(f"{path}: cannot open ({_first_line(exc)})") from exc
        if info.type == fs.FileType.NotFound:
            raise NoInputError(f"{path}: no such file")
        if info.type == fs.FileType.File:
            files.append(path)
            continue
        found = filesystem.get_file_info(fs.FileSelector(inner, recursive=True))
        inside = sorted(f.path for f in found if f.type == fs.FileType.File
                        and not any(part.startswith((".", "_")) for part in os.path.relpath(f.path, inner).split("/")))
        if not inside:
            raise NoInputError(f"{path}: no request files in this directory")
        files.extend(os.path.join(path, os.path.relpath(f, inner)) for f in inside)
    return files


def request_lines(paths: Sequence[str]) -> Dataset:
    """A dataset of request lines, one row each (`file`, `line`, `source`, `raw`), in input order."""
    ray = require_ray()
    files = input_files(paths)
    index = {_key(f): (n, f) for n, f in enumerate(files)}

    def lines(row: dict[str, Any]) -> list[dict[str, Any]]:
        n, source = index[_key(row["path"])]
        data = bytes(row["bytes"])
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        return [{"file": n, "line": lineno, "source": source, "raw": raw}
                for lineno, raw in enumerate(io.BytesIO(data), 1) if raw.strip()]  # as the one-process reader

    located = [f if "://" in f else os.path.abspath(f) for f in files]
    # Reading and splitting reserve no CPU: the model actors may hold every CPU of the cluster. (Older Ray
    # takes that only as ray_remote_args, deprecated in newer ones.)
    read = ray.data.read_binary_files
    free = {"num_cpus": 0} if "num_cpus" in inspect.signature(read).parameters else {"ray_remote_args": {"num_cpus": 0}}
    return read(located, include_paths=True, **free).flat_map(lines, num_cpus=0)


def _key(path: str) -> str:
    """A file's path as Ray Data's `path` column spells it: no scheme, absolute when local."""
    return path.split("://", 1)[1] if "://" in path else os.path.abspath(path)


def held_requests(requests: Iterable[Request]) -> Dataset:
    """A dataset of requests built by the driver (a TREC run's), one pickled request per row, in order."""
    ray = require_ray()
    return ray.data.from_items([{"file": 0, "line": n, "request": dumps(r)} for n, r in enumerate(requests, 1)])


def answered(ds: Dataset, engine_options: Mapping[str, Any], *, actors: int | None = None, threads: int | None = None,
             predictor: type[RerankPredictor] = RerankPredictor, **keywords: Any) -> Dataset:
    """`ds` answered by a pool of `actors` model actors (default: the cluster's CPUs / `threads`), each
    with `threads` onnxruntime threads (default 1) and as many CPUs reserved."""
    ray = require_ray()
    per_actor = threads or 1
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if per_actor > cpus:  # no actor could ever start: Ray would wait for such a node forever
        raise UsageError(f"--threads {per_actor}: each Ray actor reserves as many CPUs, and the cluster has "
                         f"{cpus} CPU{'s' if cpus != 1 else ''}")
    if actors is None:
        actors = max(1, cpus // per_actor)
    elif actors * per_actor > cpus:  # Ray Data would wait for the whole pool, forever
        raise UsageError(f"--ray-actors {actors} x --threads {per_actor} CPUs: the Ray cluster has {cpus} "
                         f"CPU{'s' if cpus != 1 else ''}")
    kwargs = {**engine_options, **keywords, "threads": per_actor, "errors_as_rows": True}
    model = str(kwargs.get("model", ""))
    if model and os.path.isdir(model):  # a directory here: the same path for the local cluster's workers
        kwargs["model"] = os.path.abspath(model)
    return ds.map_batches(predictor, fn_constructor_kwargs=kwargs, batch_size=REQUESTS_PER_CALL,
                          compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=per_actor)


@dataclass
class Tally:
    """What the actors cut, for the closing warning: pairs truncated, documents scored by windows, the limits."""

    truncated: int = 0
    chunked: int = 0
    max_length: int = 0
    max_chunks: int | None = None  # None without --long-docs chunk

    def add(self, batch: Mapping[str, Any]) -> None:
        """Count a batch of answered rows."""
        self.truncated += int(sum(batch["truncated"]))
        self.chunked += int(sum(batch["chunked"]))
        self.max_length = max([self.max_length, *(int(n) for n in batch["max_length"])])
        most = max([0, *(int(n) for n in batch["max_chunks"])])
        self.max_chunks = most or self.max_chunks


def in_order(ds: Dataset, on_invalid: OnInvalid = None, tally: Tally | None = None) -> Iterator[list[Answer]]:
    """The answers, batch by batch in input order; a bad request raises InputError after the answers before
    it (or goes to `on_invalid`), a worker's other failure (a model that did not load) raises."""
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        if tally is not None:
            tally.add(batch)
        group: list[Answer] = []
        for error, answer in zip(batch["error"], batch["answer"], strict=True):
            if not error:
                group.append(pickle.loads(answer))
                continue
            err = decode_error(str(error))
            if not isinstance(err, InputError):
                raise err
            if group:
                yield group
                group = []
            report_invalid(on_invalid, err)
        yield group


def render(answers: Sequence[Answer], trec: bool, return_documents: bool = False, tag: str = "rerank") -> bytes:
    """Answers as JSONL lines or TREC run lines, written by the writers `rerank batch` uses."""
    out = io.BytesIO()
    writer = TrecWriter(out, tag) if trec else AnswerWriter(out, return_documents)
    writer.write(answers)
    return out.getvalue()


def write_parts(ds: Dataset, output: str, *, trec: bool, return_documents: bool = False, tag: str = "rerank",
                on_invalid: OnInvalid = None, part_size: int = PART_SIZE, tally: Tally | None = None) -> int:
    """Write the answers as parts under `output` (a local directory, `s3://...`), by the workers; parts are
    named in input order (`part-FFFFF-LLLLLLLLL.jsonl`, file and line of their first request), so `cat`
    in name order gives what stdout would; a part holds at most `part_size` answers. Bad requests are
    reported after, in input order. Returns the number of documents answered."""
    from pyarrow import fs

    try:
        filesystem, root = fs.FileSystem.from_uri(output if "://" in output else os.path.abspath(output))
        filesystem.create_dir(root, recursive=True)
    except OSError as exc:
        raise OutputError(f"{output}: cannot create the output directory ({_first_line(exc)})") from exc
    suffix = "trec" if trec else "jsonl"

    def write(batch: dict[str, Any]) -> dict[str, Any]:
        answers = [None if e else pickle.loads(a) for a, e in zip(batch["answer"], batch["error"], strict=True)]
        done = [a for a in answers if a is not None]
        if done:
            name = f"{root}/part-{int(batch['file'][0]):05d}-{int(batch['line'][0]):09d}.{suffix}"
            with filesystem.open_output_stream(name) as out:
                out.write(render(done, trec, return_documents, tag))
        kept = ("file", "line", "error", "truncated", "chunked", "max_length", "max_chunks")
        return {**{k: batch[k] for k in kept}, "documents": [0 if a is None else len(a.request.texts) for a in answers]}

    written = 0
    for row in ds.map_batches(write, batch_size=part_size, num_cpus=0).iter_rows():
        if tally is not None:
            tally.add({k: [v] for k, v in row.items()})
        if row["error"]:
            err = decode_error(str(row["error"]))
            if not isinstance(err, InputError):
                raise err
            report_invalid(on_invalid, err)
        written += int(row["documents"])
    return written
