"""The model store against a loopback Hub: pulls, the cache, offline use, cut transfers, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from conftest import BERT, PAIRS, TOLERANCE, XLMR, reference_scores
from hubserver import HubServer
from typer.testing import CliRunner

from rerank_cli import Reranker
from rerank_cli.cli.app import app
from rerank_cli.store.hub import cache_dir, locate, target_for

runner = CliRunner()
BERT_FILES = {name: BERT / name for name in ("config.json", "tokenizer.json", "tokenizer_config.json",
                                             "special_tokens_map.json", "onnx/model.onnx",
                                             "onnx/model_quantized.onnx")}
NEVER = {"pytorch_model.bin": b"\0" * 300_000, "README.md": b"# tiny"}  # a pull must not fetch these
QUERY = PAIRS[0][0]
DOCS = [d for q, d in PAIRS if q == QUERY]


def run(*args: str, stdin: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=stdin)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    server = HubServer().start()
    server.add_repo("org/tiny-bert", {**BERT_FILES, **NEVER})
    # The default registry model, served from the tiny model so the real default path is exercised.
    server.add_repo("Xenova/ms-marco-MiniLM-L-6-v2", BERT_FILES)
    server.add_repo("org/tiny-xlmr-ext", {
        **{n: XLMR / n for n in ("config.json", "tokenizer.json", "tokenizer_config.json")},
        "onnx/model.onnx": XLMR / "onnx-ext/model.onnx", "onnx/model.onnx_data": XLMR / "onnx-ext/model.onnx_data"})
    server.add_repo("org/odd-layout", {"config.json": BERT / "config.json", "tokenizer.json": BERT / "tokenizer.json",
                                       "weights/reranker.onnx": BERT / "onnx/model.onnx"})
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()


def scores_of(result) -> list[float]:
    assert result.exit_code == 0, result.stderr
    return [orjson.loads(line)["score"] for line in result.stdout.splitlines()]


def bert_refs() -> list[float]:
    return [s for (q, _), s in zip(PAIRS, reference_scores("tiny-bert")) if q == QUERY]


def docs_input() -> str:
    return "".join(orjson.dumps(d).decode() + "\n" for d in DOCS)


def test_pull_fetches_only_needed_files_and_a_second_pull_nothing(hub: HubServer) -> None:
    result = run("models", "pull", "org/tiny-bert")
    assert result.exit_code == 0, result.stderr
    fetched = sorted(p.split("/resolve/")[1].split("/", 1)[1] for p in hub.gets())
    assert fetched == ["config.json", "onnx/model.onnx", "special_tokens_map.json", "tokenizer.json",
                       "tokenizer_config.json"]
    before = len(hub.requests)
    again = run("models", "pull", "org/tiny-bert")
    assert again.exit_code == 0 and "already cached" in again.stderr
    assert len(hub.requests) == before  # no request at all, let alone a download


def test_scoring_a_cached_model_makes_zero_requests(hub: HubServer) -> None:
    assert run("models", "pull", "org/tiny-bert").exit_code == 0
    before = len(hub.requests)
    scores = scores_of(run("score", "-q", QUERY, "-m", "org/tiny-bert", "-", stdin=docs_input()))
    assert len(hub.requests) == before
    np.testing.assert_allclose(scores, bert_refs(), atol=TOLERANCE, rtol=0)


def test_first_use_pulls_then_works_offline_with_the_server_stopped(hub: HubServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first = run("score", "-q", QUERY, "-m", "org/tiny-bert", stdin=docs_input())
    np.testing.assert_allclose(scores_of(first), bert_refs(), atol=TOLERANCE, rtol=0)
    hub.stop()
    for flags, env in (([], {}), (["--offline"], {}), ([], {"HF_HUB_OFFLINE": "1"})):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        again = run("score", "-q", QUERY, "-m", "org/tiny-bert", *flags, stdin=docs_input())
        np.testing.assert_allclose(scores_of(again), bert_refs(), atol=TOLERANCE, rtol=0)


def test_offline_and_not_cached_names_the_fix(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run("score", "-q", "q", "-m", "org/tiny-bert", stdin="x\n")
    assert result.exit_code == 69
    assert "not in the cache" in result.stderr and "rerank models pull org/tiny-bert" in result.stderr
    assert hub.requests == []
    assert run("score", "-q", "q", "-m", "org/tiny-bert", "--offline", stdin="x\n").exit_code == 69


def test_cut_transfer_leaves_no_model_and_a_rerun_completes(hub: HubServer) -> None:
    hub.cuts["onnx/model.onnx"] = 50  # every attempt of this call is cut half-way
    failed = run("models", "pull", "org/tiny-bert")
    assert failed.exit_code == 69 and "Traceback" not in failed.stderr
    cache = cache_dir()
    assert locate(target_for("org/tiny-bert"), cache) is None
    assert not (cache / "models--org--tiny-bert" / "refs" / "main").exists()
    offline = run("score", "-q", "q", "-m", "org/tiny-bert", "--offline", stdin="x\n")
    assert offline.exit_code == 69  # the half model is never loaded
    hub.cuts.clear()
    assert run("models", "pull", "org/tiny-bert").exit_code == 0
    np.testing.assert_allclose(scores_of(run("score", "-q", QUERY, "-m", "org/tiny-bert", "--offline",
                                             stdin=docs_input())), bert_refs(), atol=TOLERANCE, rtol=0)
    assert not list(cache.rglob("*.incomplete"))


def test_a_single_dropped_connection_is_retried_within_the_pull(hub: HubServer) -> None:
    hub.cuts["onnx/model.onnx"] = 1
    assert run("models", "pull", "org/tiny-bert").exit_code == 0
    assert len(hub.gets("onnx/model.onnx")) >= 2
    assert locate(target_for("org/tiny-bert"), cache_dir()) is not None


def test_missing_repo_and_missing_onnx_file(hub: HubServer) -> None:
    missing = run("score", "-q", "q", "-m", "org/nope", stdin="x\n")
    assert missing.exit_code == 69 and "org/nope: repository not found" in missing.stderr
    odd = run("models", "pull", "org/odd-layout")
    assert odd.exit_code == 69
    assert "no onnx/model.onnx or model.onnx in the repo; its .onnx files: weights/reranker.onnx" in odd.stderr
    named = run("models", "pull", "org/tiny-bert", "--onnx-file", "onnx/model_int4.onnx")
    assert named.exit_code == 69 and "onnx/model.onnx, onnx/model_quantized.onnx" in named.stderr
    assert run("models", "pull", "org/odd-layout", "--onnx-file", "weights/reranker.onnx").exit_code == 0


def test_external_data_model(hub: HubServer) -> None:
    assert run("models", "pull", "org/tiny-xlmr-ext").exit_code == 0
    assert len(hub.gets("onnx/model.onnx_data")) == 1
    engine = Reranker("org/tiny-xlmr-ext", offline=True)
    np.testing.assert_allclose(engine.score_pairs(PAIRS), reference_scores("tiny-xlmr"), atol=TOLERANCE, rtol=0)


def test_variant_fetches_only_its_onnx_file(hub: HubServer) -> None:
    result = run("models", "pull", "org/tiny-bert", "--variant", "quantized")
    assert result.exit_code == 0, result.stderr
    assert hub.gets("onnx/model_quantized.onnx") and not hub.gets("onnx/model.onnx")
    engine = Reranker("org/tiny-bert", variant="quantized", offline=True)
    assert engine.files.onnx.name == "model_quantized.onnx"
    # int8 weights move scores (the tiny model has unusually wide weights); the signal must survive.
    assert np.corrcoef(engine.score_pairs(PAIRS), reference_scores("tiny-bert"))[0, 1] > 0.8
    assert run("score", "-q", "q", "-m", "Xenova/ms-marco-MiniLM-L-6-v2", "--variant", "int3",
               stdin="x\n").exit_code == 2


def test_models_list_path_rm_for_the_default_model(hub: HubServer) -> None:
    listed = orjson.loads(run("models", "list", "--json").stdout)
    default = next(m for m in listed if m["default"])
    assert default["name"] == "Xenova/ms-marco-MiniLM-L-6-v2" and default["cached"] is False
    assert {"size_gb", "license", "max_length", "languages", "description", "variants"} <= set(default)
    assert any(m["non_commercial"] for m in listed)
    assert run("models", "path", default["name"]).exit_code == 69
    assert run("models", "pull").exit_code == 0  # no name: the default model
    path = Path(run("models", "path", "xenova/MS-MARCO-MiniLM-L-6-v2").stdout.strip())
    assert (path / "tokenizer.json").is_file() and (path / "onnx/model.onnx").is_file()
    listed = orjson.loads(run("models", "list", "--json").stdout)
    assert next(m for m in listed if m["default"])["cached_variants"] == ["default"]
    table = run("models", "list").stdout
    assert "Xenova/ms-marco-MiniLM-L-6-v2" in table and "non-commercial" in table
    removed = run("models", "rm", default["name"])
    assert removed.exit_code == 0 and "MB freed" in removed.stderr and not path.exists()
    assert orjson.loads(run("models", "list", "--json").stdout)[0]["cached"] is False
    assert "was not cached" in run("models", "rm", default["name"]).stderr


def test_readme_main_job_with_the_default_model(hub: HubServer) -> None:
    result = run("rerank", "-q", "what is the capital of france", Path(__file__).parents[1] / "examples/docs.jsonl")
    assert result.exit_code == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["rank"] for r in rows] == list(range(1, 9)) and {r["id"] for r in rows} == {f"d{i}" for i in range(1, 9)}


def test_unknown_registry_name_suggests_close_names() -> None:
    result = run("score", "-q", "q", "-m", "ms-marco-minilm", stdin="x\n")
    assert result.exit_code == 2
    assert "did you mean Xenova/ms-marco-MiniLM-L-6-v2" in result.stderr


def test_unreachable_hub_is_one_line_and_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    server = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    server.stop()  # nothing listens on that port any more
    started = time.monotonic()
    result = run("rerank", "-q", "q", "-m", "org/tiny-bert", stdin="x\n")
    assert time.monotonic() - started < 15
    assert result.exit_code == 69
    assert result.stderr.count("\n") == 1 and "cannot reach the Hugging Face Hub" in result.stderr
    assert "--offline" in result.stderr and "rerank models pull org/tiny-bert" in result.stderr


def test_refresh_checks_the_hub_but_downloads_nothing_new(hub: HubServer) -> None:
    assert run("models", "pull", "org/tiny-bert").exit_code == 0
    gets = len(hub.gets())
    assert run("score", "-q", "q", "-m", "org/tiny-bert", "--refresh", stdin="x\n").exit_code == 0
    assert any("/api/models/org/tiny-bert" in p for _, p in hub.requests)
    assert len(hub.gets()) == gets


def test_a_new_commit_is_picked_up_by_refresh_only(hub: HubServer) -> None:
    assert run("models", "pull", "org/tiny-bert").exit_code == 0
    old = locate(target_for("org/tiny-bert"), cache_dir())
    files = {**BERT_FILES, "onnx/model.onnx": BERT / "onnx/model_quantized.onnx"}
    hub.add_repo("org/tiny-bert", files)
    assert locate(target_for("org/tiny-bert"), cache_dir()) == old  # cached: no silent network check
    assert run("models", "pull", "org/tiny-bert", "--refresh").exit_code == 0
    new = locate(target_for("org/tiny-bert"), cache_dir())
    assert new is not None and old is not None and new.directory != old.directory


def test_two_concurrent_pulls_end_with_one_correct_copy(hub: HubServer, isolated_env: Path) -> None:
    # Separate processes, as two CI jobs sharing a cache would be; the server is slowed so they overlap.
    hub.delay = 0.02
    env = {**os.environ, "HF_ENDPOINT": hub.url}
    procs = [subprocess.Popen([sys.executable, "-m", "rerank_cli", "models", "pull", "org/tiny-bert"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0], [p.stderr.read() for p in procs if p.stderr]
    cache = cache_dir()
    blobs = list((cache / "models--org--tiny-bert" / "blobs").iterdir())
    assert len(blobs) == 5 and not [b for b in blobs if b.name.endswith(".incomplete")]
    assert len(hub.gets("onnx/model.onnx")) == 1
    engine = Reranker("org/tiny-bert", offline=True)
    np.testing.assert_allclose(engine.score_pairs(PAIRS), reference_scores("tiny-bert"), atol=TOLERANCE, rtol=0)


def test_cache_dir_option_and_env(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = tmp_path / "custom-cache"
    assert run("models", "pull", "org/tiny-bert", "--cache-dir", custom).exit_code == 0
    assert (custom / "models--org--tiny-bert" / "refs" / "main").is_file()
    monkeypatch.setenv("RERANK_CACHE_DIR", str(custom))
    before = len(hub.requests)
    assert run("score", "-q", "q", "-m", "org/tiny-bert", stdin="x\n").exit_code == 0
    assert len(hub.requests) == before


def test_disk_full_is_one_line_naming_the_cache(hub: HubServer, tmp_path: Path) -> None:
    small = tmp_path / "small-disk"
    small.mkdir()
    # A 100 KB filesystem: the model's 180 KB graph cannot fit. Mounting needs root; say so if not.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        result = run("models", "pull", "org/tiny-bert", "--cache-dir", small)
        assert result.exit_code == 69, result.stderr
        assert result.stderr.startswith("rerank: error: no space left on the device holding")
        assert "--cache-dir" in result.stderr and result.stderr.count("\n") == 1
        assert locate(target_for("org/tiny-bert"), small) is None
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_a_killed_pull_is_completed_by_the_next_one(hub: HubServer) -> None:
    # SIGKILL mid-transfer leaves an orphan .incomplete; the model must not count until a rerun completes it.
    hub.delay = 0.3
    env = {**os.environ, "HF_ENDPOINT": hub.url}
    proc = subprocess.Popen([sys.executable, "-m", "rerank_cli", "models", "pull", "org/tiny-bert"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not hub.gets("onnx/model.onnx") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    assert locate(target_for("org/tiny-bert"), cache_dir()) is None
    offline = run("score", "-q", "q", "-m", "org/tiny-bert", "--offline", stdin="x\n")
    assert offline.exit_code == 69
    hub.delay = 0.0
    assert run("models", "pull", "org/tiny-bert").exit_code == 0
    engine = Reranker("org/tiny-bert", offline=True)
    np.testing.assert_allclose(engine.score_pairs(PAIRS), reference_scores("tiny-bert"), atol=TOLERANCE, rtol=0)


def test_revision_pins_a_commit(hub: HubServer) -> None:
    sha = hub.repos["org/tiny-bert"].sha
    assert run("models", "pull", "org/tiny-bert", "--revision", sha).exit_code == 0
    hub.add_repo("org/tiny-bert", {**BERT_FILES, "onnx/model.onnx": BERT / "onnx/model_quantized.onnx"})
    before = len(hub.requests)
    pinned = run("score", "-q", QUERY, "-m", "org/tiny-bert", "--revision", sha, stdin=docs_input())
    np.testing.assert_allclose(scores_of(pinned), bert_refs(), atol=TOLERANCE, rtol=0)
    assert len(hub.requests) == before  # a commit sha is resolved from the cache alone
    unknown = run("models", "pull", "org/tiny-bert", "--revision", "v9")
    assert unknown.exit_code == 69 and "revision 'v9' not found" in unknown.stderr


def test_quantize_a_cached_model_once_and_use_it_offline(hub: HubServer) -> None:
    missing = run("score", "-q", "q", "-m", "org/tiny-bert", "--variant", "local-int8", "--offline", stdin="x\n")
    assert missing.exit_code == 69  # neither the model nor its int8 copy is there
    made = run("models", "quantize", "org/tiny-bert")  # pulls first, then quantizes
    assert made.exit_code == 0, made.stderr
    assert "written to" in made.stderr and "model_local_int8.onnx" in made.stderr
    again = run("models", "quantize", "org/tiny-bert")
    assert again.exit_code == 0 and "already at" in again.stderr  # never rebuilt
    engine = Reranker("org/tiny-bert", variant="local-int8", offline=True)
    assert engine.files.onnx.name == "model_local_int8.onnx"
    assert np.corrcoef(engine.score_pairs(PAIRS), reference_scores("tiny-bert"))[0, 1] > 0.8
    assert not hub.gets("model_local_int8.onnx")  # a local file: never asked of the hub


def suggested(stderr: str) -> list[str]:
    """The `rerank ...` command an error message suggests, as arguments for run()."""
    import shlex

    command = next(c for c in stderr.split("`")[1::2] if c.startswith("rerank "))
    return shlex.split(command)[1:]


@pytest.mark.parametrize("flags", [["--variant", "quantized"], ["--onnx-file", "onnx/model_quantized.onnx"],
                                   ["--revision", "NEW"], ["--cache-dir", "CUSTOM"]])
def test_offline_errors_suggest_the_command_that_fetches_what_is_missing(hub: HubServer, tmp_path: Path,
                                                                       flags: list[str]) -> None:
    assert run("models", "pull", "org/tiny-bert").exit_code == 0  # only the default variant, at main
    if "NEW" in flags:  # a newer commit than the cached one
        flags = ["--revision", hub.add_repo("org/tiny-bert", {**BERT_FILES, "README.md": b"v2"})]
    flags = [str(tmp_path / "custom") if f == "CUSTOM" else f for f in flags]
    model = ["-m", "org/tiny-bert", *flags]
    failed = run("score", "-q", QUERY, *model, "--offline", stdin=docs_input())
    assert failed.exit_code == 69 and "not in the cache" in failed.stderr
    fix = suggested(failed.stderr)
    assert fix[:3] == ["models", "pull", "org/tiny-bert"] and set(flags) <= set(fix)
    pulled = run(*fix)
    assert pulled.exit_code == 0 and "already cached" not in pulled.stderr
    assert run("score", "-q", QUERY, *model, "--offline", stdin=docs_input()).exit_code == 0
    if "--cache-dir" not in flags:
        path = run("models", "path", "org/tiny-bert", *flags)
        assert path.exit_code == 0 and Path(path.stdout.strip()).is_dir()


def test_a_cached_registry_snapshot_used_as_a_directory_maps_variants_as_the_registry_does(hub: HubServer) -> None:
    name = "Xenova/ms-marco-MiniLM-L-6-v2"
    assert run("models", "pull", name, "--variant", "quantized").exit_code == 0
    snapshot = run("models", "path", name, "--variant", "quantized").stdout.strip()
    by_dir = scores_of(run("score", "-q", QUERY, "-m", snapshot, "--variant", "quantized", stdin=docs_input()))
    assert by_dir == scores_of(run("score", "-q", QUERY, "-m", name, "--variant", "quantized", "--offline",
                                   stdin=docs_input()))
    unknown = run("score", "-q", "q", "-m", snapshot, "--variant", "int3", stdin="x\n")
    assert unknown.exit_code == 2 and "variants: quantized, fp16" in unknown.stderr  # the registry's list


def test_models_path_suggests_the_pull_of_the_variant_asked_for(hub: HubServer) -> None:
    assert run("models", "pull", "org/tiny-bert").exit_code == 0
    missing = run("models", "path", "org/tiny-bert", "--variant", "quantized")
    assert missing.exit_code == 69
    assert suggested(missing.stderr) == ["models", "pull", "org/tiny-bert", "--variant", "quantized"]


def test_refresh_and_offline_conflict(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("models", "pull", "org/tiny-bert").exit_code == 0
    both = run("score", "-q", "q", "-m", "org/tiny-bert", "--refresh", "--offline", stdin="x\n")
    assert both.exit_code == 2 and "--offline" in both.stderr and "not in the cache" not in both.stderr
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    env = run("score", "-q", "q", "-m", "org/tiny-bert", "--refresh", stdin="x\n")
    assert env.exit_code == 2 and "HF_HUB_OFFLINE" in env.stderr


def test_refresh_with_the_hub_unreachable_uses_the_cached_copy_with_a_warning(
        hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("models", "pull", "org/tiny-bert").exit_code == 0
    gone = HubServer().start()  # a fresh port, so no pooled keep-alive connection reaches the old server
    gone.stop()
    monkeypatch.setenv("HF_ENDPOINT", gone.url)
    result = run("score", "-q", QUERY, "-m", "org/tiny-bert", "--refresh", stdin=docs_input())
    np.testing.assert_allclose(scores_of(result), bert_refs(), atol=TOLERANCE, rtol=0)
    assert result.stderr.startswith("rerank: warning: could not check the Hub") and "cached copy" in result.stderr
    quiet = run("score", "-q", QUERY, "-m", "org/tiny-bert", "--refresh", "--quiet", stdin=docs_input())
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_local_int8_copy_is_listed_located_and_never_pulled(hub: HubServer) -> None:
    name = "Xenova/ms-marco-MiniLM-L-6-v2"
    assert run("models", "pull", name).exit_code == 0
    missing = run("models", "path", name, "--variant", "local-int8")
    assert missing.exit_code == 69 and suggested(missing.stderr) == ["models", "quantize", name]
    pull = run("models", "pull", name, "--variant", "local-int8")
    assert pull.exit_code == 2 and "rerank models quantize" in pull.stderr
    assert run("models", "quantize", name).exit_code == 0
    listed = orjson.loads(run("models", "list", "--json").stdout)
    assert next(m for m in listed if m["name"] == name)["cached_variants"] == ["default", "local-int8"]
    located = Path(run("models", "path", name, "--variant", "local-int8").stdout.strip())
    assert (located / "onnx/model_local_int8.onnx").is_file()


def test_quantize_of_a_cached_external_data_model_gives_files_the_umask_mode(hub: HubServer, tmp_path: Path) -> None:
    # A cache shared by a group relies on the umask's mode; onnx writes external data as 0600.
    assert run("models", "quantize", "org/tiny-xlmr-ext").exit_code == 0
    probe = tmp_path / "probe"
    probe.touch()
    made = list(cache_dir().rglob("*local_int8*"))
    assert len(made) == 2  # the graph and its external data
    assert {oct(p.stat().st_mode & 0o777) for p in made} == {oct(probe.stat().st_mode & 0o777)}
    # The cache links snapshots into blobs, which onnx refuses for external data: the copy must still work.
    engine = Reranker("org/tiny-xlmr-ext", variant="local-int8", offline=True)
    assert np.corrcoef(engine.score_pairs(PAIRS), reference_scores("tiny-xlmr"))[0, 1] > 0.8


def test_models_list_fits_the_terminal_with_every_name_and_variant_whole(hub: HubServer) -> None:
    from rerank_cli.store.registry import REGISTRY

    name = "Xenova/ms-marco-MiniLM-L-6-v2"
    for args in (["models", "pull", name], ["models", "pull", name, "--variant", "quantized"],
                 ["models", "quantize", name]):
        assert run(*args).exit_code == 0
    for columns in (60, 80, 100):
        table = runner.invoke(app, ["models", "list"], env={"COLUMNS": str(columns)}).stdout
        lines = table.splitlines()
        assert lines[0].split() == ["name", "size", "licence", "limit", "score", "cached"]  # narrower: wider, not fewer
        assert max(len(line) for line in lines) <= max(columns, 80), table
        for spec in REGISTRY:
            assert any(line.startswith(spec.name) for line in lines), spec.name
        words = " ".join(lines).replace(",", " ").split()
        assert {"default", "quantized", "local-int8"} <= set(words), table
        assert "non-commercial" in table
