"""Benchmark rerank against every peer on the same model, inputs and threads; print a README-ready table.

    python benchmarks/bench.py                  # everything (~20 min on 2 Zen 4 cores; peers' venvs once)
    python benchmarks/bench.py --quick          # 200 passages, one round, no peers' 1,000-passage runs
    python benchmarks/bench.py --peers none --ours fp32,int8 --sizes 200 --skip memory,batch

Every figure is measured in this run, as whole processes (start-up included) with 2 threads each,
alternating the scorers round by round; the best round counts and peak RSS is each process's own.
Speeds are ratios to our rows measured in the same run, because these machines are shared and noisy.
Peers run from their own venvs under benchmarks/work/ (peer_envs.py), built on first use with pinned
versions; a peer that cannot install or fails is skipped with a message. The model is any directory
(`--model`; default: benchmarks/build.py's MiniLM-L6 export), used as the same ONNX file by every ONNX
scorer. Our rows run `python -m rerank_cli` from the current directory: run it from the checkout to
measure (its repository root), with that checkout installed in the running Python.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
QUERY = "what is the difference between a list and a tuple"
THREADS = 2
sys.path.insert(0, str(HERE))

import measure  # noqa: E402
import peer_envs  # noqa: E402
from measure import ProcessFailed, Run, run_process  # noqa: E402
from peer_envs import same_work_copy  # noqa: E402

# Our rows: CLI options after `rerank score`. OpenVINO rows need `--precision` (detected from --help).
OURS = {"fp32": ("rerank fp32", ()),
        "int8": ("rerank int8", ("--variant", "local-int8")),
        "openvino-fp32": ("rerank OpenVINO fp32", ("--provider", "openvino", "--precision", "fp32")),
        "openvino-bf16": ("rerank OpenVINO bf16", ("--provider", "openvino", "--precision", "bf16"))}
GOALS = {"sentence-transformers": 3.0, "sentence-transformers-onnx": 3.0, "fastembed": 5.0, "flashrank": 5.0}
# Rough pairs/s and start-up seconds on 2 Zen 4 cores (the table), only to estimate the run time.
ESTIMATE = {"fp32": (27, 0.6), "int8": (50, 0.6), "openvino-fp32": (38, 1.5), "openvino-bf16": (68, 1.5),
            "sentence-transformers": (11, 5), "sentence-transformers-onnx": (10, 6), "fastembed": (5.4, 2),
            "fastembed-default": (15, 2), "flashrank": (4.5, 1), "flashrank-default": (4.5, 1)}
FLASHRANK_GIB = 15.0  # FlashRank's one batch of 200 passages at 512 tokens peaked at 13.1 GB here


@dataclass
class Scorer:
    """One row: how to run it on a corpus, and what it measured."""

    key: str
    label: str
    command: Callable[[Path, Path], tuple[list[str], Path | None]]  # (docs, scores file) -> argv, its stdout file
    same_work: bool = True
    runs: list[Run] = field(default_factory=list)
    scores: np.ndarray | None = None
    skipped: str = ""


def rerank_cmd(model: Path, docs: Path, *extra: str, command: str = "score") -> list[str]:
    return [sys.executable, "-m", "rerank_cli", command, "-m", str(model), "-q", QUERY, str(docs),
            "--threads", str(THREADS), "--quiet", "--activation", "none", *extra]  # logits, as the peers return


def our_scorer(key: str, model: Path) -> Scorer:
    label, extra = OURS[key]
    return Scorer(key, label, lambda docs, out: (rerank_cmd(model, docs, *extra, "--format", "jsonl"), out))


def peer_scorer(peer: peer_envs.Peer, python: Path, model: Path, tmp: Path, chunk: int) -> Scorer:
    directory = {"model": model, "same-work": same_work_copy(model, tmp),
                 "flashrank": peer_envs.flashrank_cache(model, tmp)}[peer.layout]

    def command(docs: Path, out: Path) -> tuple[list[str], None]:
        extra = peer.extra
        if peer.layout == "flashrank":
            extra = f"{peer_envs.FLASHRANK_NAME},{peer.extra},{chunk}"
        return [str(python), str(HERE / "peers.py"), peer.scorer, str(directory), QUERY, str(docs), str(out),
                str(THREADS), extra], None

    return Scorer(peer.key, peer.label, command, peer.same_work)


def pick(value: str, choices: list[str], default: list[str], what: str) -> list[str]:
    if value == "none":
        return []
    chosen = default if value == "default" else choices if value == "all" else value.split(",")
    unknown = [c for c in chosen if c not in choices]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(choices)}, all, none)")
    return chosen


def supported_ours(wanted: list[str]) -> list[str]:
    """Our rows this CLI and CPU can run; OpenVINO rows need `--precision` (and bf16 the CPU's bf16)."""
    help_text = subprocess.run([sys.executable, "-m", "rerank_cli", "score", "--help"], capture_output=True,
                               text=True, env={**os.environ, "COLUMNS": "200"}).stdout
    flags = measure.lscpu().get("Flags", "").split()
    keep = ["fp32"]
    for key in wanted:
        if key.startswith("openvino") and "--precision" not in help_text:
            print(f"{OURS[key][0]}: skipped (this rerank has no `--provider openvino --precision`)", file=sys.stderr)
        elif key == "openvino-bf16" and not {"avx512_bf16", "amx_bf16"} & set(flags):
            print(f"{OURS[key][0]}: skipped (the CPU has no AVX-512 BF16 or AMX)", file=sys.stderr)
        elif key != "fp32":
            keep.append(key)
    return keep


def ready_peers(wanted: list[str], model: Path, tmp: Path, chunk: int) -> tuple[list[Scorer], list[str]]:
    """Build (or reuse) the wanted peers' venvs; return their scorers and a versions line per venv."""
    scorers, versions = [], []
    envs = peer_envs.envs()
    pythons: dict[str, Path | None] = {}
    for peer in (p for p in peer_envs.PEERS if p.key in wanted):
        env = envs[peer.env]
        if env.name not in pythons:
            pythons[env.name] = python = peer_envs.ready_python(env, WORK)
            if python:
                versions.append(f"{env.name} venv: {peer_envs.versions(python, env.versions_of)}")
        python = pythons[env.name]
        if python is None:
            print(f"{peer.label}: skipped (its venv could not be built)", file=sys.stderr)
            continue
        if peer.key == "flashrank-default":
            default = peer_envs.flashrank_default_max_length(python)
            if default == 512 and "flashrank" in wanted:
                print("FlashRank's default max_length is 512 in this version: its default row is the "
                      "`max_length=512` row, not run twice", file=sys.stderr)
                continue
            peer = peer_envs.Peer(**{**peer.__dict__, "label": f"FlashRank (its default `max_length={default}`)"})
        scorers.append(peer_scorer(peer, python, model, tmp, chunk))
    return scorers, versions


def measure_corpus(scorers: list[Scorer], docs: Path, rounds: int, tmp: Path) -> list[Scorer]:
    """Run every scorer `rounds` times, alternating (the order reverses each round); keep what ran."""
    for scorer in scorers:
        scorer.runs, scorer.scores, scorer.skipped = [], None, ""
    for round_ in range(rounds):
        for scorer in scorers if round_ % 2 == 0 else scorers[::-1]:
            if scorer.skipped:
                continue
            if "FlashRank" in scorer.label and measure.mem_available_gib() < FLASHRANK_GIB:
                scorer.skipped = f"needs ~{FLASHRANK_GIB:.0f} GiB free, {measure.mem_available_gib():.1f} available"
                print(f"{scorer.label}: skipped ({scorer.skipped})", file=sys.stderr)
                continue
            out = tmp / f"{scorer.key}.out"
            argv, stdout = scorer.command(docs, out)
            try:
                scorer.runs.append(run_process(argv, stdout))
            except ProcessFailed as err:
                if scorer.key == "fp32":
                    raise SystemExit(str(err)) from None
                scorer.skipped = "failed"
                print(f"{scorer.label} on {docs.name}: skipped, {err}", file=sys.stderr)
                continue
            scorer.scores = measure.read_scores(out)
    return [s for s in scorers if s.runs and not s.skipped]


def ratio(wall: float, reference: float) -> str:
    return f"{wall / reference:.2f}x"


def corpus_table(corpus: str, n: int, done: list[Scorer], chunk: int) -> tuple[list[str], list[str]]:
    """Markdown rows for one corpus, and the notes under them (goals, memory, agreement with fp32)."""
    best_wall = {s.key: min(r.wall for r in s.runs) for s in done}
    rss = {s.key: max(r.rss_mb for r in s.runs) for s in done}
    ours = [s for s in done if s.key in OURS]
    fp32 = next(s for s in done if s.key == "fp32")
    best = min(ours, key=lambda s: best_wall[s.key])
    assert fp32.scores is not None
    rows, notes = [], []
    for s in done:
        split = s.key.startswith("flashrank") and chunk < n
        label = s.label + (f", {-(-n // chunk)} calls of {chunk}" if split else "")
        diff = "0" if s is fp32 else f"{float(np.abs(s.scores - fp32.scores).max()):.1e}"
        rows.append(f"| {corpus} | {label} | {n / best_wall[s.key]:.1f} | {ratio(best_wall[s.key], best_wall['fp32'])} "
                    f"| {ratio(best_wall[s.key], best_wall[best.key])} | {rss[s.key] / 1024:.2f} GB | {diff} |")
    goals = [f"{s.label.split(' (')[0]} {best_wall[s.key] / best_wall['fp32']:.2f}x (goal {GOALS[s.key]:.0f}x: "
             f"{'met' if best_wall[s.key] / best_wall['fp32'] >= GOALS[s.key] else 'not met'})"
             for s in done if s.key in GOALS]
    if goals:
        notes.append(f"{corpus}: rerank fp32 vs " + "; ".join(goals) + f"; best rerank row: {best.label}")
    peers = [s for s in done if s.key not in OURS and s.same_work]
    if peers:
        lightest = min(peers, key=lambda s: rss[s.key])
        share = rss["fp32"] / rss[lightest.key]
        notes.append(f"{corpus}: rerank fp32 peak memory {rss['fp32'] / 1024:.2f} GB = {share:.2f} of the lightest "
                     f"peer's ({lightest.label}, {rss[lightest.key] / 1024:.2f} GB): goal at most 0.20, "
                     f"{'met' if share <= 0.2 else 'not met'}")
    spread = float(np.ptp(fp32.scores))
    for s in ours:
        if s is not fp32 and s.scores is not None:
            tau = measure.kendall_tau(fp32.scores, s.scores)
            notes.append(f"{corpus}: {s.label} vs fp32: top-10 overlap {measure.top_overlap(fp32.scores, s.scores)}"
                         f"/10, Kendall tau {tau:.3f} (fp32 scores spread {spread:.2f})")
    return rows, notes


def engine_rate(model: Path, docs: list[str], variant: str | None, repeats: int) -> tuple[float, float, float]:
    """Warm pairs/s and GFLOP/s of our engine in this process, and the FLOPs of scoring `docs` once."""
    from rerank_cli import Reranker

    engine = Reranker(model, threads=THREADS, variant=variant)
    lengths = [len(e.ids) for e in engine.encoder.encode([(QUERY, d) for d in docs])]
    flops = measure.model_flops(lengths, json.loads((model / "config.json").read_text()))
    engine.score(QUERY, docs[:16])
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        engine.score(QUERY, docs)
        best = min(best, time.perf_counter() - started)
    return len(docs) / best, flops / best / 1e9, flops


def interactive(model: Path, keys: list[str], snippets: Path, one: Path, repeats: int, peak: float) -> list[str]:
    """Whole `rerank rerank` processes: 1 query x 1 document (goal 0.35 s) and 100 snippets (goal 1.5 s),
    and the fp32 floor of the snippets: their FLOPs at the roofline plus the 1-document process."""
    from rerank_cli import Reranker

    lines, walls = [], {}
    for what, path, goal in (("1 query x 1 document", one, 0.35), ("100 snippets x 60 words", snippets, 1.5)):
        for key in keys:
            cmd = rerank_cmd(model, path, *OURS[key][1], "-k", "10", command="rerank")
            walls[path, key] = wall = min(run_process(cmd).wall for _ in range(repeats))
            mark = f" (goal {goal} s: {'met' if wall <= goal else 'not met'})" if key == "fp32" else ""
            lines.append(f"interactive, whole `rerank rerank` process, {what}, {OURS[key][0]}: {wall:.2f} s{mark}")
    docs = [json.loads(line)["text"] for line in snippets.read_text().splitlines()]
    lengths = [len(e.ids) for e in Reranker(model, threads=THREADS).encoder.encode([(QUERY, d) for d in docs])]
    flops = measure.model_flops(lengths, json.loads((model / "config.json").read_text()))
    compute = flops / peak / 1e9
    lines.append(f"100 snippets x 60 words: {sum(lengths):,} tokens, {flops / 1e9:.0f} GFLOP = {compute:.2f} s at the "
                 f"roofline; plus the 1-document process, the fp32 floor here is {compute + walls[one, 'fp32']:.2f} s")
    help_wall = min(run_process([sys.executable, "-m", "rerank_cli", "--help"]).wall for _ in range(repeats))
    return [*lines, f"`rerank --help`: {help_wall:.2f} s"]


def batch_row(model: Path, passages: Path, rounds: int, tmp: Path, reference: float | None) -> str:
    """`rerank batch` over 20 queries x 50 of the 1,000 passages, as a whole process (many_queries.py's requests)."""
    from chunking import prose_words
    from many_queries import make_queries, write_requests

    docs = [json.loads(line)["text"] for line in passages.read_text().splitlines()]
    queries, per = 20, len(docs) // 20
    requests = write_requests(tmp / "requests.jsonl", make_queries(queries, prose_words()),
                              [docs[q * per:(q + 1) * per] for q in range(queries)])
    cmd = [sys.executable, "-m", "rerank_cli", "batch", "-m", str(model), str(requests), "--threads", str(THREADS),
           "--quiet", "--activation", "none"]
    runs = [run_process(cmd) for _ in range(rounds)]
    wall = min(r.wall for r in runs)
    vs = ratio(wall, reference) if reference else "-"
    return (f"| {queries} queries x {per} passages | `rerank batch` fp32 | {queries * per / wall:.1f} | {vs} | - | "
            f"{max(r.rss_mb for r in runs) / 1024:.2f} GB | - |")


def memory_lines(big_lines: int, tmp: Path) -> list[str]:
    """Peak RSS of `rerank score` streaming big JSONL files through the tiny test model (bounded memory)."""
    lines = []
    tiny = ROOT / "tests/fixtures/tiny-bert"
    for count in (10_000, big_lines):
        big = tmp / f"lines-{count}.jsonl"
        with open(big, "w") as fh:
            for i in range(count):
                fh.write(json.dumps({"id": i, "text": f"document number {i} about paris and its river"}) + "\n")
        run = run_process(rerank_cmd(tiny, big, "--format", "jsonl"), tmp / "big.jsonl")
        lines.append(f"memory, `rerank score`, {count:,} lines (tiny test model): peak RSS {run.rss_mb:.0f} MB, "
                     f"{run.wall:.1f} s")
        big.unlink()
    return lines


def estimate_minutes(keys: list[str], sizes: dict[str, int], rounds: dict[str, int], skip: set[str]) -> float:
    seconds = sum(rounds[name] * (n / ESTIMATE[key][0] + ESTIMATE[key][1])
                  for name, n in sizes.items() for key in keys)
    seconds += 30 + 25 * ("warm" not in skip) + 20 * ("interactive" not in skip) + 60 * ("memory" not in skip)
    seconds += 45 * rounds.get("passages-1000", 0) * ("batch" not in skip)
    return seconds / 60


def parse_args() -> argparse.Namespace:
    peers = [p.key for p in peer_envs.PEERS]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 passages, one round, 100k memory lines")
    parser.add_argument("--model", type=Path, help="model directory [default: build benchmarks/work/minilm-l6-ce]")
    parser.add_argument("--peers", default="default", help=f"comma list of {', '.join(peers)}; default (all but "
                        "fastembed-default), all or none [default: default]")
    parser.add_argument("--ours", default="all", help=f"comma list of {', '.join(OURS)} (fp32 always runs), "
                        "or all [default: all the CLI supports]")
    parser.add_argument("--sizes", default=None, help="passage counts, comma list of 200,1000 [default: both; "
                        "--quick: 200]")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds at 200 passages [2; --quick 1]")
    parser.add_argument("--rounds-1000", type=int, default=1, help="rounds at 1,000 passages [1]")
    parser.add_argument("--flashrank-chunk", type=int, default=200, help="passages per FlashRank call (it scores a "
                        "call in one batch: 1,000 at once would need over 24 GiB) [200]")
    parser.add_argument("--skip", default="", help="comma list of parts to leave out: warm, interactive, batch, "
                        "memory")
    parser.add_argument("--memory-lines", type=int, default=None, help="JSONL lines for the memory test")
    parser.add_argument("--work", type=Path, default=WORK, help="where corpora and the model are kept")
    args = parser.parse_args()
    args.peers = pick(args.peers, peers, list(peer_envs.DEFAULT_PEERS), "peer")
    args.ours = pick(args.ours, list(OURS), list(OURS), "row")
    args.sizes = pick(args.sizes or ("200" if args.quick else "200,1000"), ["200", "1000"], [], "size")
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.skip = set(pick(args.skip or "none", ["warm", "interactive", "batch", "memory"], [], "part"))
    return args


def main() -> int:
    args = parse_args()
    import build

    build.WORK = args.work
    args.work.mkdir(parents=True, exist_ok=True)
    # Our rows run from this checkout; pip byte-compiles what it installs (the peers'), so do the same here,
    # where PYTHONDONTWRITEBYTECODE may have kept Python from writing it (measured: ~0.05 s a process).
    compileall.compile_dir(ROOT / "rerank_cli", quiet=1)
    model = (args.model or build.build_model(args.work / "minilm-l6-ce")).resolve()
    sizes = {f"passages-{n}": int(n) for n in args.sizes}
    paths = {name: build.write_corpus(name, 150, n) for name, n in sizes.items()}
    rounds = {name: args.rounds if n == 200 else args.rounds_1000 for name, n in sizes.items()}
    tmp = Path(tempfile.mkdtemp(prefix="rerank-bench-"))
    ours = supported_ours(args.ours)
    if "int8" in ours:
        subprocess.run([sys.executable, "-m", "rerank_cli", "models", "quantize", str(model), "--quiet"], check=True)
    peers, versions = ready_peers(args.peers, model, tmp, args.flashrank_chunk)
    scorers = [our_scorer(key, model) for key in ours] + peers
    # The estimate's rates were measured where the roofline was ~195 GFLOP/s: scale them by this one.
    peak = measure.roofline(THREADS)
    minutes = estimate_minutes([s.key for s in scorers], sizes, rounds, args.skip) * max(1.0, 195 / peak)
    print(f"estimated run time: ~{minutes:.0f} min ({len(scorers)} scorers, rounds {rounds}, roofline now "
          f"{peak:.0f} GFLOP/s)", file=sys.stderr, flush=True)

    rows, notes, fp32_walls = [], [], {}
    for name, path in paths.items():
        done = measure_corpus(scorers, path, rounds[name], tmp)
        corpus_rows, corpus_notes = corpus_table(name, sizes[name], done, args.flashrank_chunk)
        rows += corpus_rows
        notes += corpus_notes
        fp32_walls[name] = min(r.wall for r in next(s for s in done if s.key == "fp32").runs)
        if name == "passages-1000" and "batch" not in args.skip:
            rows.append(batch_row(model, path, rounds[name], tmp, fp32_walls[name]))
    peak = max(peak, measure.roofline(THREADS))  # best of start and end: a busy moment only lowers it
    print_header(model, peak, versions)
    print("\n".join(rows) + "\n")
    print("\n".join(notes))
    if "passages-200" in paths and "warm" not in args.skip:
        print("\n".join(roofline_lines(model, paths["passages-200"], ours, peak, fp32_walls["passages-200"],
                                       args.rounds + 2)))
    if "interactive" not in args.skip:
        one = tmp / "one.jsonl"
        one.write_text(build.write_corpus("passages-200", 150, 200).read_text().splitlines(keepends=True)[0])
        snippets = build.write_corpus("snippets-100", 60, 100)
        print("\n".join(interactive(model, [k for k in ours if k in ("fp32", "int8")], snippets, one, 5,
                                           peak)))
    if "memory" not in args.skip:
        print("\n".join(memory_lines(args.memory_lines or (100_000 if args.quick else 1_000_000), tmp)))
    return 0


def print_header(model: Path, peak: float, versions: list[str]) -> None:
    from importlib.metadata import version

    print(f"machine: {measure.machine()}; {THREADS} threads per scorer; python {platform.python_version()}; "
          f"load average at the end {os.getloadavg()[0]:.1f} (other processes: above 0.5 the figures are noisy)")
    print(f"roofline: onnxruntime MatMul 2048x384x1536, {THREADS} threads: {peak:.0f} GFLOP/s (best of the run's "
          "start and end)")
    print(f"versions: rerank {version('rerank-cli')}, onnxruntime {version('onnxruntime')}, "
          f"tokenizers {version('tokenizers')}" + "".join(f"; {v}" for v in versions))
    print(f"model: {model} (every ONNX scorer loads its onnx/model.onnx)")
    print("\n| corpus | scorer | pairs/s (whole process) | rerank fp32 is | best rerank is | peak RSS | "
          "max abs(score - rerank fp32) |")
    print("|---|---|---|---|---|---|---|")


def roofline_lines(model: Path, passages: Path, ours: list[str], peak: float, fp32_wall: float,
                   repeats: int) -> list[str]:
    """Warm in-process rates as a share of the roofline, and the whole-process fp32 run's share."""
    docs = [json.loads(line)["text"] for line in passages.read_text().splitlines()]
    lines, flops, fp32_rate = [], 0.0, 0.0
    for key, variant in (("fp32", None), ("int8", "local-int8")):
        if key in ours:
            rate, gflops, flops = engine_rate(model, docs, variant, repeats)
            # int8 MatMuls are not bound by the fp32 roofline: compare int8 with fp32 instead.
            fp32_rate = fp32_rate or rate
            share = f"{gflops / peak:.0%} of the roofline" if key == "fp32" else f"{rate / fp32_rate:.2f}x fp32 warm"
            lines.append(f"{OURS[key][0]} in-process, warm, {passages.stem}: {rate:.1f} pairs/s, {gflops:.0f} useful "
                         f"GFLOP/s = {share}")
    lines.append(f"rerank fp32 whole process, {passages.stem}: {flops / fp32_wall / 1e9:.0f} useful GFLOP/s = "
                 f"{flops / fp32_wall / 1e9 / peak:.0%} of the roofline")
    return lines


if __name__ == "__main__":
    sys.exit(main())
