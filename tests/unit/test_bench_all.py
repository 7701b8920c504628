"""``make bench`` as one resumable run (bench/all.py): real subprocesses, a real git repository, real files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import BENCH_DATE_ENV, bench_date
from bench.all import Step, Suite, code_version, open_run, plan, run_steps, unfinished_run
from bench.quality import failed_runs, resumed_results, target_lines
from bench.summarise import run_section

# A benchmark step in miniature: writes <results>/<name>-<date>.json with the date make bench pinned, records the
# arguments it got, and fails while a marker file exists (a step cut short or broken).
STEP_MODULE = '''
import json, sys
from pathlib import Path
from bench import bench_date
results, name = Path(sys.argv[1]), sys.argv[2]
if (results / f"fail-{name}").exists():
    sys.exit(3)
(results / f"{name}-{bench_date()}.json").write_text(json.dumps({"date": bench_date(), "argv": sys.argv[3:]}))
'''


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with a little code, and the step module importable by the steps' processes."""
    repo = tmp_path / "repo"
    (repo / "socialrec").mkdir(parents=True)
    (repo / "socialrec" / "x.py").write_text("A = 1\n")
    (repo / "notes.md").write_text("not code\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "code")
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "tiny_step.py").write_text(STEP_MODULE)
    root = Path(__file__).resolve().parents[2]  # the repository, for `import bench` in the step's process
    monkeypatch.setenv("PYTHONPATH", f"{mods}:{root}")
    monkeypatch.delenv(BENCH_DATE_ENV, raising=False)
    return repo


def _suite(results: Path, name: str = "bench") -> Suite:
    return Suite(name, _steps(results), "bench.summarise")


def _steps(results: Path) -> tuple[Step, ...]:
    return (Step("first", "tiny_step", (str(results), "first"), "first"),
            Step("second", "tiny_step", (str(results), "second"), "second", resume_flag="--resume"),
            Step("third", "tiny_step", (str(results), "third"), "third", needs=("first",)))


def test_a_run_pins_its_date_for_every_step_and_records_each(repo: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    steps = _steps(results)
    path, manifest = open_run(results, repo, _suite(results), fresh=False, allow_code_change=False,
                              today="2026-01-02")
    assert path == results / "2026-01-02-run.json"
    assert run_steps(path, manifest, steps, results, repo, python=sys.executable) == 0
    saved = json.loads(path.read_text())
    assert {n: (s["status"], [a["invocation"] for a in s["attempts"]], [a["exit_code"] for a in s["attempts"]])
            for n, s in saved["steps"].items()} == {"first": ("done", [1], [0]), "second": ("done", [1], [0]),
                                                    "third": ("done", [1], [0])}
    assert sorted(p.name for p in results.glob("*.json")) == [
        "2026-01-02-run.json", "first-2026-01-02.json", "second-2026-01-02.json", "third-2026-01-02.json"]
    assert json.loads((results / "second-2026-01-02.json").read_text()) == {"date": "2026-01-02", "argv": []}
    assert saved["code"] == code_version(repo) and saved["code"]["uncommitted"] is False
    assert unfinished_run(results) == path  # finished only once the summary is written


def test_a_stopped_run_resumes_where_it_stopped_and_a_resumable_step_gets_its_own_file(
        repo: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    steps = _steps(results)
    (results / "fail-second").touch()
    path, manifest = open_run(results, repo, _suite(results), fresh=False, allow_code_change=False,
                              today="2026-01-02")
    assert run_steps(path, manifest, steps, results, repo, python=sys.executable) == 3
    (results / "second-2026-01-02.json").write_text("{}")  # what the step had saved of its work before it stopped
    (results / "fail-second").unlink()
    # the next invocation, on a later day: the same run, the same date
    path2, manifest2 = open_run(results, repo, _suite(results), fresh=False, allow_code_change=False,
                                today="2026-01-03")
    assert path2 == path and len(manifest2["invocations"]) == 2
    assert run_steps(path2, manifest2, steps, results, repo, python=sys.executable) == 0
    saved = json.loads(path.read_text())
    assert {n: ([a["invocation"] for a in s["attempts"]], [a["exit_code"] for a in s["attempts"]])
            for n, s in saved["steps"].items()} == {"first": ([1], [0]), "second": ([1, 2], [3, 0]),
                                                    "third": ([2], [0])}
    resumed = json.loads((results / "second-2026-01-02.json").read_text())
    assert resumed == {"date": "2026-01-02", "argv": ["--resume", str(results / "second-2026-01-02.json")]}
    assert saved["steps"]["second"]["attempts"][1]["command"].endswith(
        f"--resume {results / 'second-2026-01-02.json'}")
    assert plan(saved, steps)[1:] == [
        f"  first         done     {saved['steps']['first']['attempts'][0]['seconds']:8.0f} s  python -m tiny_step "
        f"{results} first",
        f"  second        done     {sum(a['seconds'] for a in saved['steps']['second']['attempts']):8.0f} s  "
        f"python -m tiny_step {results} second",
        f"  third         done     {saved['steps']['third']['attempts'][0]['seconds']:8.0f} s  python -m tiny_step "
        f"{results} third"]


def test_a_run_is_not_resumed_on_other_code_unless_asked(repo: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    steps = _steps(results)
    (results / "fail-first").touch()
    path, manifest = open_run(results, repo, _suite(results), fresh=False, allow_code_change=False,
                              today="2026-01-02")
    assert run_steps(path, manifest, steps, results, repo, python=sys.executable) == 3
    started_on = manifest["code"]["commit"]

    (repo / "notes.md").write_text("docs change, not code\n")  # a commit outside the code keeps the run resumable
    _git(repo, "commit", "-qam", "docs")
    assert open_run(results, repo, _suite(results), fresh=False, allow_code_change=False)[0] == path

    (repo / "socialrec" / "x.py").write_text("A = 2\n")
    with pytest.raises(SystemExit, match="uncommitted changes"):
        open_run(results, repo, _suite(results), fresh=False, allow_code_change=False)
    _git(repo, "commit", "-qam", "code change")
    with pytest.raises(SystemExit, match=f"started on code {started_on}; the code is now"):
        open_run(results, repo, _suite(results), fresh=False, allow_code_change=False)
    again, manifest = open_run(results, repo, _suite(results), fresh=False, allow_code_change=True)
    assert again == path and manifest["invocations"][-1]["code"]["commit"] != started_on
    fresh, new = open_run(results, repo, _suite(results), fresh=True, allow_code_change=False,
                          today="2026-01-05")
    assert fresh == results / "2026-01-05-run.json" and all(s["status"] == "pending" for s in new["steps"].values())


def test_the_summary_says_how_the_run_went(repo: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    steps = _steps(results)[:1]
    path, manifest = open_run(results, repo, Suite("bench", steps, "bench.summarise"), fresh=False,
                              allow_code_change=False, today="2026-01-02")
    run_steps(path, manifest, steps, results, repo, python=sys.executable)
    attempt = manifest["steps"]["first"]["attempts"][0]
    commit = manifest["code"]["commit"]
    assert run_section(manifest, path.name) == [
        "## This run: `make bench`, 2026-01-02 (`2026-01-02-run.json`)", "",
        f"1 invocation(s) on code {commit[:12]}: each step runs whole in one invocation, so the comparisons inside a "
        "benchmark are side by side.", "",
        "| step | status | seconds | invocation | started | command |", "|---|---|---|---|---|---|",
        f"| first | done | {attempt['seconds']:,.0f} | 1 | {attempt['started_at']} | `{attempt['command']}` |", ""]


def test_the_pinned_date_must_be_a_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BENCH_DATE_ENV, "2026-02-03")
    assert bench_date() == "2026-02-03"
    monkeypatch.setenv(BENCH_DATE_ENV, "tomorrow")
    with pytest.raises(SystemExit, match="is not a date"):
        bench_date()


def test_each_suite_resumes_only_its_own_runs(repo: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "fail-first").touch()
    path, manifest = open_run(results, repo, _suite(results), fresh=False, allow_code_change=False,
                              today="2026-01-02")
    assert run_steps(path, manifest, _suite(results).steps, results, repo, python=sys.executable) == 3
    quality, qm = open_run(results, repo, _suite(results, "quality"), fresh=False, allow_code_change=False,
                           today="2026-01-03")
    assert (path.name, quality.name, qm["suite"]) == ("2026-01-02-run.json", "2026-01-03-quality-run.json", "quality")
    assert len(qm["invocations"]) == 1  # a new quality run, not the stopped bench run
    assert unfinished_run(results, "bench") == path and unfinished_run(results, "quality") is None  # not saved yet


def _quality_run(dataset: str, protocol: str, **extra: object) -> dict[str, object]:
    return {"dataset": dataset, "protocol": protocol, **extra}


def test_a_stopped_quality_run_keeps_its_finished_evaluations_and_retries_the_rest() -> None:
    settings = {"seeds": "42,43", "epochs": 20}
    met = {"target": "socialrec ndcg@20 > most_popular", "ours": 0.05, "theirs": 0.02, "ratio": 2.5, "met": True}
    previous = {"date": "2026-01-02", "command": "python -m bench.quality", "settings": settings, "runs": [
        _quality_run("lastfm", "random", targets=[{"target": "socialrec ndcg@10 >= SEPT 0.2057", "ours": 0.19,
                                                   "ratio": 0.92, "met": False}]),
        _quality_run("lastfm", "temporal", skipped="one timestamp"),
        _quality_run("ciao", "random", failed="RuntimeError('killed')"),
        {"dataset": "filmtrust", "skipped": "folder not found"},
        _quality_run("ciao", "temporal", targets=[met])]}
    resumed = resumed_results(previous, settings, "python -m bench.quality --resume x")
    assert [(r["dataset"], r["protocol"]) for r in resumed["runs"]] == [
        ("lastfm", "random"), ("lastfm", "temporal"), ("ciao", "temporal")]
    assert [r["command"] for r in resumed["resumed"]] == ["python -m bench.quality --resume x"]
    assert target_lines(resumed) == [
        "quality targets (python -m bench.quality):",
        "  lastfm/random: MISS socialrec ndcg@10 >= SEPT 0.2057: ours 0.1900 (ratio 0.92)",
        "  lastfm/temporal: one timestamp",
        "  ciao/temporal: MET  socialrec ndcg@20 > most_popular: ours 0.0500, theirs 0.0200 (ratio 2.50)"]
    with pytest.raises(SystemExit, match="that run had the settings"):
        resumed_results(previous, {"seeds": "42", "epochs": 20}, "python -m bench.quality --resume x")


def test_target_lines_show_the_seed_spread_and_flag_a_margin_inside_it() -> None:
    def figure(model: str, value: float, seed: int = 42, split: str = "test") -> dict[str, object]:
        return {"model": model, "seed": seed, "split": split, "slice": "all", "metric": "ndcg", "k": 20, "value": value}

    figures = [figure("socialrec", 0.0100, 42), figure("socialrec", 0.0090, 43), figure("socialrec", 0.0080, 44),
               figure("socialrec", 0.5, 42, "validation"), figure("most_popular", 0.0088)]
    close = {"target": "socialrec ndcg@20 > most_popular", "ours": 0.0090, "theirs": 0.0088, "ratio": 0.0090 / 0.0088,
             "met": True}
    clear = {"target": "socialrec ndcg@20 > als", "ours": 0.0090, "theirs": 0.0030, "ratio": 3.0, "met": True}
    lightgcn = {"target": "LightGCN ndcg@20 within ±10% of 0.0100", "ours": 0.0095, "ratio": 0.95, "met": True}
    results = {"command": "q", "runs": [_quality_run("ciao", "temporal", targets=[close, clear, lightgcn],
                                                     figures=figures)]}
    assert target_lines(results)[1:] == [  # std of 0.0100, 0.0090, 0.0080 is 0.0010; validation is not counted
        "  ciao/temporal: MET  socialrec ndcg@20 > most_popular: ours 0.0090 ± 0.0010, theirs 0.0088 "
        "(ratio 1.02, within one seed std)",
        "  ciao/temporal: MET  socialrec ndcg@20 > als: ours 0.0090 ± 0.0010, theirs 0.0030 (ratio 3.00)",
        "  ciao/temporal: MET  LightGCN ndcg@20 within ±10% of 0.0100: ours 0.0095 (ratio 0.95)"]


def test_tuning_variants_are_named_overrides_with_yaml_values() -> None:
    from bench.tune import parse_variant

    assert parse_variant("soft: train.model.temperature=0.1, evaluate.random_sequences=earlier, train.x=true") == (
        "soft", {"train.model.temperature": 0.1, "evaluate.random_sequences": "earlier", "train.x": True})
    assert parse_variant("profile:") == ("profile", {})
    for bad in ("no colon", ": a=1", "n: a"):
        with pytest.raises(SystemExit):
            parse_variant(bad)


def test_tune_keeps_the_days_earlier_variants(tmp_path: Path) -> None:
    from bench.tune import earlier_variants

    day = tmp_path / "tune-lastfm-random-2026-11-25.json"
    assert earlier_variants(day) == []
    rows = [{"name": "profile", "overrides": {}}, {"name": "soft", "overrides": {"train.model.temperature": 0.1}}]
    day.write_text(json.dumps({"date": "2026-11-25", "variants": rows}))
    assert earlier_variants(day) == rows


def test_random_protocol_profiles_are_valid_configuration() -> None:
    from bench.quality import RANDOM_PROTOCOL_DATASET_PROFILE, RANDOM_PROTOCOL_PROFILE, random_protocol_profile
    from socialrec.config import load_config

    assert random_protocol_profile("filmtrust") == RANDOM_PROTOCOL_PROFILE
    ciao = random_protocol_profile("ciao")
    assert ciao["train.sparse_embeddings"] is True and ciao["train.model.use_user_id"] is False
    for dataset in RANDOM_PROTOCOL_DATASET_PROFILE:
        # Every key must be a real setting (extra="forbid"), or the quality run would die hours in.
        cfg = load_config("local", {"data.dataset": dataset, **random_protocol_profile(dataset)})
        assert cfg.train.monitor == random_protocol_profile(dataset)["train.monitor"]


def test_temporal_protocol_profiles_watch_the_target_and_are_valid_configuration() -> None:
    from bench.quality import TEMPORAL_PROTOCOL_DATASET_PROFILE, protocol_profile, random_protocol_profile
    from socialrec.config import load_config

    # The random protocol's tuned profile never leaks into the temporal one (its inputs are ordered histories).
    assert protocol_profile("ciao", "random") == random_protocol_profile("ciao")
    assert protocol_profile("filmtrust", "temporal") == {"train.monitor": "ndcg@20"}
    assert protocol_profile("ciao", "temporal")["train.model.seq_encoder"] == "mean"
    for dataset in ["filmtrust", *TEMPORAL_PROTOCOL_DATASET_PROFILE]:
        profile = protocol_profile(dataset, "temporal")
        # Every key must be a real setting (extra="forbid"), or the quality run would die hours in.
        cfg = load_config("local", {"data.dataset": dataset, "evaluate.protocol": "temporal", **profile})
        assert cfg.train.monitor == "ndcg@20"


def test_a_failed_evaluation_fails_the_quality_step_and_a_skipped_one_does_not() -> None:
    results = {"runs": [{"dataset": "lastfm", "protocol": "random", "targets": []},
                        {"dataset": "lastfm", "protocol": "temporal", "skipped": "one timestamp"},
                        {"dataset": "ciao", "skipped": "not found"},
                        {"dataset": "ciao", "protocol": "random", "failed": "IndexError('index out of range in self')"}]}
    assert failed_runs(results) == ["ciao/random"]
    assert failed_runs({"runs": results["runs"][:3]}) == []
