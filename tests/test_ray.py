"""`rerank batch --ray` and `RerankPredictor` on a real local Ray cluster: the same bytes as one process."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray
from conftest import BERT, XLMR
from typer.testing import CliRunner

from rerank_cli.cli.app import app
from rerank_cli.scale.ray import RerankPredictor, answered, connected, in_order, request_lines, write_parts

runner = CliRunner()
README = Path(__file__).parent.parent / "README.md"
DOCS = ["Paris is the capital of France.", "Berlin is in Germany.", "The capital of France is Paris, on the Seine.",
        "Snakes are reptiles.", "Paris is the capital of France.", "Lyon is a city in France with a long history "
        "of silk weaving, good food and two rivers."]
REQUESTS = [
    {"id": "a", "query": "capital of france", "documents": DOCS, "meta": {"n": 1}},
    {"id": "b", "query": "snakes", "documents": []},
    {"id": "c", "query": "capital", "documents": [{"text": d, "k": i} for i, d in enumerate(DOCS[:3])], "top_n": 2,
     "return_documents": True},
    {"query": "rivers", "documents": DOCS[3:], "results": "theirs"},
] * 6  # 24 requests: more than one actor call (16 requests each)
RUN = "".join(f"q{q} Q0 d{d} {r} {10 - r} bm25\n" for q in range(1, 4) for r, d in enumerate(range(q, q + 5), 1))


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One small local cluster for the module (starting Ray takes seconds); `--ray` reuses it."""
    ray.init(num_cpus=2, object_store_memory=256 * 1024 * 1024, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    yield
    ray.shutdown()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def same_as_one_process(*args: object):
    """`rerank batch ARGS` with and without --ray: both must succeed with the same stdout and stderr."""
    local, distributed = run("batch", *args), run("batch", "--ray", "--ray-actors", 2, *args)
    assert local.exit_code == 0, local.stderr
    assert distributed.exit_code == 0, distributed.stderr
    assert distributed.stdout == local.stdout
    assert distributed.stderr == local.stderr  # the same closing warnings (truncated pairs, chunked documents)
    return distributed


@pytest.mark.parametrize("options", [("-m", BERT), ("-m", XLMR, "-f", "json", "--return-documents", "--top-n", "3",
                                                 "--activation", "sigmoid", "--max-length", "12",
                                                 "--long-docs", "chunk")])
def test_request_files_and_directories_answer_as_one_process(tmp_path: Path, options: tuple) -> None:
    parts = tmp_path / "requests"
    parts.mkdir()
    write_lines(parts / "b.jsonl", REQUESTS[:10])
    write_lines(parts / "a.jsonl", ["", *REQUESTS[10:]])  # a blank line is skipped, as in one process
    (parts / "_SUCCESS").write_text("")  # written by Spark and Ray jobs: not an input
    one = same_as_one_process(parts / "a.jsonl", parts / "b.jsonl", *options)
    assert one.stdout.count('"relevance_score"') > 40
    if len(options) == 2:
        directory = run("batch", "--ray", parts, *options)  # a directory: its files by name
        assert directory.exit_code == 0, directory.stderr
        assert directory.stdout == one.stdout


@pytest.fixture
def trec(tmp_path: Path) -> dict[str, Path]:
    queries = write_lines(tmp_path / "queries.tsv", [f"q{q}\tquery number {q} about paris" for q in range(1, 4)])
    corpus = write_lines(tmp_path / "corpus.jsonl", [{"_id": f"d{d}", "title": "T", "text": DOCS[d % 6]}
                                                     for d in range(1, 9)])
    return {"run": write_lines(tmp_path / "run.trec", RUN.splitlines()), "queries": queries, "corpus": corpus}


def test_trec_runs_answer_as_one_process(trec: dict[str, Path]) -> None:
    result = same_as_one_process("-m", BERT, "--run", trec["run"], "--queries", trec["queries"], "--corpus",
                                 trec["corpus"], "-f", "trec", "--depth", 4)
    assert len(result.stdout.splitlines()) == 12


def test_output_parts_concatenate_to_the_stdout_answers(tmp_path: Path, trec: dict[str, Path]) -> None:
    requests = write_lines(tmp_path / "r.jsonl", REQUESTS)
    out = tmp_path / "out"
    result = run("batch", "--ray", "-m", BERT, requests, "--output", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    parts = sorted(out.iterdir())
    assert [p.name for p in parts] == ["part-00000-000000001.jsonl"]
    local = run("batch", "-m", BERT, requests).stdout
    assert parts[0].read_text() == local
    small = tmp_path / "small"  # parts of at most 5 answers: their names sort in input order
    with connected(None):
        ds = answered(request_lines([str(requests)]), {"model": str(BERT)})
        assert write_parts(ds, str(small), trec=False, part_size=5) == sum(len(r["documents"]) for r in REQUESTS)
    parts = sorted(small.iterdir())
    assert len(parts) >= 5 and all(re.fullmatch(r"part-00000-\d{9}\.jsonl", p.name) for p in parts)
    assert "".join(p.read_text() for p in parts) == local
    runs = tmp_path / "runs"
    result = run("batch", "--ray", "-m", BERT, "--run", trec["run"], "--queries", trec["queries"], "--corpus",
                 trec["corpus"], "--output", runs)
    assert result.exit_code == 0, result.stderr
    local = run("batch", "-m", BERT, "--run", trec["run"], "--queries", trec["queries"], "--corpus", trec["corpus"])
    assert [p.name for p in sorted(runs.iterdir())] == ["part-00000-000000001.trec"]  # as request files start
    assert "".join(p.read_text() for p in sorted(runs.glob("*.trec"))) == local.stdout


def test_a_bad_request_is_located_and_skippable_as_in_one_process(tmp_path: Path) -> None:
    requests = write_lines(tmp_path / "r.jsonl", [*REQUESTS[:20], {"query": "q", "documents": ["a", 7]},
                                                  *REQUESTS[:3]])
    for extra in ((), ("--skip-invalid",)):
        local, distributed = run("batch", "-m", BERT, requests, *extra), run("batch", "--ray", "-m", BERT, requests,
                                                                               *extra)
        assert (distributed.exit_code, distributed.stdout, distributed.stderr) == \
               (local.exit_code, local.stdout, local.stderr)
        assert local.exit_code == (0 if extra else 65)
        assert f"{requests}:21: documents[1] is a number, not a string or an object" in local.stderr


def test_a_model_that_cannot_load_on_a_worker_fails_with_its_reason(tmp_path: Path, model_copy) -> None:
    broken = model_copy()
    (broken / "tokenizer.json").unlink()
    requests = write_lines(tmp_path / "r.jsonl", REQUESTS[:2])
    local, distributed = run("batch", "-m", broken, requests), run("batch", "--ray", "-m", broken, requests)
    assert local.exit_code == distributed.exit_code == 69
    assert distributed.stderr == local.stderr and distributed.stderr.count("\n") == 1
    assert distributed.stderr.startswith("rerank: error: ") and "Traceback" not in distributed.stderr


def test_numbers_kept_as_written_cross_to_the_workers(tmp_path: Path) -> None:
    # orjson.Fragment (a number whose JSON text would not come back as written) cannot be pickled by itself.
    numbers = '{"id": 1.50, "n": [12.50, 1e5, -0, 1e400, 123456789012345678901234567890], "query": "capital", '
    requests = write_lines(tmp_path / "r.jsonl", [
        numbers + '"documents": [{"text": "Paris is the capital of France.", "w": 0.10}, "Berlin is in Germany."]}',
        *map(json.dumps, REQUESTS[:2])])
    one = same_as_one_process("-m", BERT, requests, "--return-documents")
    assert '"id":1.50,"n":[12.50,1e5,-0,1e400,123456789012345678901234567890]' in one.stdout
    assert '"w":0.10' in one.stdout
    out = tmp_path / "out"
    assert run("batch", "--ray", "-m", BERT, requests, "--return-documents", "--output", out).exit_code == 0
    assert "".join(p.read_text() for p in sorted(out.iterdir())) == one.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--output", "out"], 2, "--ray-address, --ray-actors and --output go with --ray"),
    (["--ray-address", "auto"], 2, "--ray-address, --ray-actors and --output go with --ray"),
    (["--ray", "--ray-address", "", "r.jsonl"], 2, "--ray-address: empty"),
    (["--ray", "r.jsonl", "--output", ""], 2, "--output: empty"),
    (["--ray", "r.jsonl", "--threads", "3"], 2,
     "--threads 3: each Ray actor reserves as many CPUs, and the cluster has 2 CPUs"),
    (["--ray", "r.jsonl", "--ray-actors", "2", "--threads", "2"], 2,
     "--ray-actors 2 x --threads 2 CPUs: the Ray cluster has 2 CPUs"),
    (["--ray", "empty"], 66, "empty: no request files in this directory"),
    (["--ray", "r.jsonl", "--output", "r.jsonl/out"], 74, "r.jsonl/out: cannot create the output directory"),
    (["--ray"], 66, "--ray reads files (local paths, s3://, gs://, directories), not stdin"),
    (["--ray", "-"], 66, "--ray reads files (local paths, s3://, gs://, directories), not stdin"),
    (["--ray", "nowhere.jsonl"], 66, "nowhere.jsonl: no such file"),
    (["--ray", "r.jsonl", "--output", "out", "-f", "table"], 2,
     "--output writes JSONL or TREC parts, not --format table"),
])
def test_ray_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int,
                          message: str) -> None:
    monkeypatch.chdir(tmp_path)
    write_lines(tmp_path / "r.jsonl", REQUESTS[:1])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    result = runner.invoke(app, ["batch", "-m", str(BERT), *args], input=json.dumps(REQUESTS[0]) + "\n")
    assert result.exit_code == code
    assert result.stderr.startswith(f"rerank: error: {message}")
    assert result.stderr.count("\n") == 1


def test_ray_address_from_the_environment_is_ignored_without_ray(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    result = run("batch", "-m", BERT, write_lines(tmp_path / "r.jsonl", REQUESTS[:1]))
    assert result.exit_code == 0, result.stderr


def test_ray_error_text_loses_its_colours() -> None:
    from rerank_cli.scale.ray import _first_line

    coloured = RuntimeError("\x1b[36mray::MapWorker(MapBatches(RerankPredictor))\x1b[39m (pid=1)\nmore")
    assert _first_line(coloured) == "ray::MapWorker(MapBatches(RerankPredictor)) (pid=1)"
    advice = ConnectionError("Could not find any running Ray instance. Please specify the one to connect to by "
                             "setting `--address` flag or `RAY_ADDRESS` environment variable.")
    assert "--ray-address" in _first_line(advice) and "`--address`" not in _first_line(advice)


class CountingPredictor(RerankPredictor):
    """Records each model load (a line in a file) and which process answered each row."""

    def __init__(self, *, loads: str, **kwargs: object) -> None:
        with open(loads, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def __call__(self, batch):
        return {**super().__call__(batch), "pid": [os.getpid()] * len(batch["line"])}


def test_the_model_loads_once_per_actor_not_per_batch(tmp_path: Path) -> None:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    requests = write_lines(tmp_path / "r.jsonl", REQUESTS * 4)  # 96 requests: 6 calls of 16
    loads = tmp_path / "loads"
    with connected(None):
        ds = answered(request_lines([str(requests)]), {"model": str(BERT)}, actors=2, predictor=CountingPredictor,
                      loads=str(loads))
        pids = [row["pid"] for row in ds.iter_rows()]
    assert len(pids) == 96
    loaded = loads.read_text().split()
    assert len(loaded) <= 2 and set(pids) <= {int(p) for p in loaded}  # 6 calls, at most 2 loads


class DyingPredictor(RerankPredictor):
    """Kills its own process on its first call (once per test, marked by a file): Ray must restart it."""

    def __init__(self, *, marker: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.marker = marker

    def __call__(self, batch):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text("died once")
            os._exit(1)
        return super().__call__(batch)


def test_an_actor_that_dies_is_restarted_and_the_answers_are_complete(tmp_path: Path) -> None:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    requests = write_lines(tmp_path / "r.jsonl", REQUESTS)
    marker = tmp_path / "died"
    with connected(None):
        ds = answered(request_lines([str(requests)]), {"model": str(BERT)}, actors=1, predictor=DyingPredictor,
                      marker=str(marker))
        answers = [a for group in in_order(ds) for a in group]
    assert marker.exists()
    assert [a.request.keys.get("id") for a in answers] == [r.get("id") for r in REQUESTS]


def test_the_readme_map_batches_example_runs(tmp_path: Path) -> None:
    block = README.read_text().split("```python\n# map_batches\n", 1)[1].split("```", 1)[0]
    code = block.replace('"cross-encoder/ms-marco-MiniLM-L6-v2"', repr(str(BERT)))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    rows = scope["rows"]
    assert [row["query"] for row in rows] == ["capital of france", "snakes"]
    # An Arrow list column: as ragged numpy arrays, each worker logged that it fell back to pickles.
    assert rows[1]["documents"] == ["Snakes are reptiles."] and isinstance(rows[1]["documents"], list)
    first = rows[0]["results"]
    assert [r["index"] for r in first][:1] == [0] and len(first) == 2
    local = run("batch", "-m", BERT, write_lines(tmp_path / "r.jsonl", [
        {"query": "capital of france", "documents": ["Paris is the capital of France.", "Berlin is in Germany."]}]))
    expected = json.loads(local.stdout)["results"]
    assert [(r["index"], r["relevance_score"]) for r in first] == \
           [(r["index"], r["relevance_score"]) for r in expected]


def test_without_ray_installed_the_error_names_the_install_command(tmp_path: Path) -> None:
    # A subprocess: ray is already imported here; a fresh interpreter with `ray` blocked is one without Ray.
    requests = write_lines(tmp_path / "r.jsonl", REQUESTS[:1])
    code = ("import sys; sys.modules['ray'] = None; from rerank_cli.cli import main; "
            f"sys.argv = ['rerank', 'batch', '--ray', '-m', {str(BERT)!r}, {str(requests)!r}]; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 69
    assert out.stderr == "rerank: error: --ray needs Ray Data, which is not installed: pip install 'rerank-cli[ray]'\n"
    assert out.stdout == ""


def test_the_ray_module_imports_ray_lazily() -> None:
    # A fresh interpreter: this process already holds ray.
    code = "import rerank_cli.scale.ray, rerank_cli.cli.batch, sys; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_cluster_that_cannot_be_reached_fails_fast(tmp_path: Path) -> None:
    # A subprocess: this process holds the module's Ray session, which `--ray` would reuse. (`auto` would
    # find that session's cluster, so only an address nobody listens on is tried.)
    requests = write_lines(tmp_path / "r.jsonl", REQUESTS[:1])
    out = subprocess.run([sys.executable, "-m", "rerank_cli", "batch", "--ray", "--ray-address", "127.0.0.1:1", "-m",
                          str(BERT), str(requests)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 69
    assert out.stderr == "rerank: error: cannot reach the Ray cluster at 127.0.0.1:1: Connection refused\n"


def _cluster_processes(marker: str) -> list[int]:
    """The processes whose command line or open files name `marker` (the temp dir of one run's local
    cluster; Ray's agents rename themselves, `ray::DashboardAgent`, but keep their logs open)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (marker.encode() in (proc / "cmdline").read_bytes() or any(
                    marker in os.readlink(fd) for fd in (proc / "fd").iterdir())):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _blocks_sigterm(pid: int) -> bool:
    """Whether process `pid` (its main thread) blocks SIGTERM; False once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    blocked = next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:"))
    return bool(int(blocked, 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_stops_the_local_cluster_with_the_documented_code(tmp_path: Path, signum: int,
                                                                        code: int) -> None:
    # A subprocess with its own local cluster in a temp dir of its own, so its processes can be told apart.
    temp = tempfile.mkdtemp(prefix="rr", dir="/tmp")  # short: Ray's socket paths live under it
    requests = write_lines(tmp_path / "r.jsonl", REQUESTS * 40)
    proc = subprocess.Popen([sys.executable, "-m", "rerank_cli", "batch", "--ray", "-m", str(BERT), str(requests)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "RAY_TMPDIR": temp})
    try:
        deadline = time.monotonic() + 60
        while len(_cluster_processes(temp)) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(2)
        # Ray's processes must not inherit the hold on stop signals kept while the cluster starts: they
        # would ignore the SIGTERM that stops them and linger after the run.
        assert [pid for pid in _cluster_processes(temp) if pid != proc.pid and _blocks_sigterm(pid)] == []
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code, proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 10
        while _cluster_processes(temp) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _cluster_processes(temp) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _cluster_processes(temp):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
