"""One local Spark session for the whole test session, with a throw-away lake under tmp_path_factory."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("SPARK_TESTING", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# A fixed test key (never a real one), so tests neither need nor write a key file in the home folder.
os.environ.setdefault("SOCIALREC_PSEUDONYM_KEY", "socialrec-test-key-" + "0" * 32)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = Path(os.environ.get("SOCIALREC_DATASETS", REPO.parent / "shared" / "datasets"))


# The JVMs of the job processes tests start (make run, the crash chain, forget, ...) live a minute or two on small
# data, where C2 compilation costs more CPU than it saves: they compile with C1 only. Measured on the crash chain's
# reference run_all: the same wall time alone, 23% less machine CPU (220 s -> 169 s), and the suite runs several
# such processes alongside the in-process tests on 2 cores. C1 alone gets a 48 MiB code cache by default, which a
# whole pipeline fills, hence the larger one. (The tests' own session is long-lived and keeps the default.)
SHORT_JOB_JVM = {"spark.driver.defaultJavaOptions": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"}


def job_env(**extra: str) -> dict[str, str]:
    """The environment of a job process (or notebook kernel) a test starts: this interpreter on both sides, a
    Spark as small as the tests' own, the short-job JVM flags, and MLflow in the run's own root (never a tracking
    server the developer's shell points at)."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SOCIALREC__SPARK__DRIVER_MEMORY": "2g", "SOCIALREC__SPARK__SHUFFLE_PARTITIONS": "2",
           "SOCIALREC__SPARK__CONF": json.dumps(SHORT_JOB_JVM), **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


class _DefaultRun:
    """``make run`` on the default data, started in the background as soon as collection shows a test needs it.

    It is a separate process, so it runs while the tests that do not need it run in this one (their Spark jobs
    leave the CPUs idle part of the time); those that need it are ordered last and wait for it.
    """

    proc: subprocess.Popen[bytes] | None = None
    root: Path | None = None
    args: list[str] = []


def _start_default_run(config: pytest.Config) -> None:
    import tempfile

    base = Path(str(config.option.basetemp)) if config.option.basetemp else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="socialrec-default-run-", dir=base))
    env = job_env()
    args = [sys.executable, "-m", "jobs.run_all", "--env", "test", "--set", f"paths.root={root}"]
    # Output to files, not pipes: nobody reads a pipe while the tests run, and a full one would block the job.
    with open(root / "stdout.txt", "wb") as out, open(root / "stderr.txt", "wb") as err:
        _DefaultRun.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=err)
    _DefaultRun.root, _DefaultRun.args = root, args


class _CrashChain:
    """The crash test's chain of killed job processes (tests/integration/crash_chain.py), started in the
    background at collection for the same reason as ``default_run``."""

    chain: Any = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests skip without CUDA, so CI passes on CPU machines; tests on the ``default_run`` lake go last and
    the run starts now, in the background, as does the crash chain."""
    crash = [i for i in items if "crash_chain" in getattr(i, "fixturenames", ())]
    if crash and not config.option.collectonly:
        from tests.integration.crash_chain import CrashChain

        base = Path(str(config.option.basetemp)) if config.option.basetemp else None
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        # notebook 02's run of every stage is the chain's uninterrupted reference when it runs in this session
        notebook = any(i.name == "test_stage_by_stage_notebook_on_a_tiny_platform" for i in items)
        _CrashChain.chain = CrashChain(base, own_reference=not notebook)
        _CrashChain.chain.start()
    needs_run = [item for item in items if "default_run" in getattr(item, "fixturenames", ())]
    if needs_run and not config.option.collectonly:
        others = [item for item in items if "default_run" not in getattr(item, "fixturenames", ())]
        # Tests that change the shared lake (forgetting a user) go after every test that reads it.
        needs_run.sort(key=lambda item: "destroys_default_run" in item.keywords)
        items[:] = others + needs_run
        _start_default_run(config)
    if crash and not config.option.collectonly:
        # the crash test last: the chain (the longer background run) has the whole session to finish
        items[:] = [i for i in items if i not in crash] + crash
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def test_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("socialrec")


@pytest.fixture(scope="session")
def cfg(test_root: Path):  # type: ignore[no-untyped-def]
    from socialrec.config import load_config

    return load_config("test", {"paths.root": str(test_root / "var")}, conf_dir=REPO / "conf")


@pytest.fixture(scope="session")
def spark(cfg) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from socialrec.spark import build_spark

    session = build_spark(cfg)
    yield session
    session.stop()


@pytest.fixture
def fresh_cfg(cfg, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The session config with a lake of its own (per test)."""
    return cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"lake": str(tmp_path / "lake")})})


def shared_dataset(name: str) -> Path:
    """Path of a shared dataset, or skip the test with a message when it is absent."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"shared dataset {name!r} not found at {path} (set SOCIALREC_DATASETS)")
    return path


def lake_cfg(cfg, root: Path, **data: object):  # type: ignore[no-untyped-def]
    """``cfg`` with its own lake under ``root`` and ``data.*`` overridden (e.g. dataset=, path=)."""
    paths = cfg.paths.model_copy(update={"lake": str(root / "lake"), "root": str(root)})
    return cfg.model_copy(update={"paths": paths, "data": cfg.data.model_copy(update=data)})


@pytest.fixture(scope="session")
def default_run():  # type: ignore[no-untyped-def]
    """``make run`` once per test session: ``jobs.run_all`` in a real subprocess on the embedded default data
    (the synthetic platform at its default size), ``--env test``, started in the background at collection.
    Slow tests that need a lake with every table and a registered model read it (and must not change what
    others assert on)."""
    from socialrec.config import load_config

    proc, root = _DefaultRun.proc, _DefaultRun.root
    assert proc is not None and root is not None, "default_run starts at collection (pytest_collection_modifyitems)"
    try:
        code = proc.wait(timeout=1500)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    done = subprocess.CompletedProcess(_DefaultRun.args, code, (root / "stdout.txt").read_text(errors="replace"),
                                       (root / "stderr.txt").read_text(errors="replace"))
    assert done.returncode == 0, done.stderr[-5000:]
    cfg = load_config("test", {"paths.root": str(root)}, conf_dir=REPO / "conf")
    yield {"root": root, "done": done, "cfg": cfg}
    shutil.rmtree(root, ignore_errors=True)


def hand_reference_to_crash_chain(root: Path, by: str) -> None:
    """Give the crash chain (if it runs in this session) the state of an uninterrupted run of every stage on
    ``socialrec.config.tiny_platform(root)``."""
    if _CrashChain.chain is not None:
        from tests.integration.crash_chain import lake_state

        _CrashChain.chain.provide_reference(lake_state(root), by)


@pytest.fixture(scope="session")
def crash_chain():  # type: ignore[no-untyped-def]
    """What the crash chain recorded (it started at collection); its folders are removed afterwards."""
    chain = _CrashChain.chain
    assert chain is not None, "the crash chain starts at collection (pytest_collection_modifyitems)"
    results = chain.wait(timeout=2400)
    if results.error is not None:
        raise results.error
    yield results
    chain.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run nobody waited for (tests deselected or failed early) is stopped, not left behind."""
    if _CrashChain.chain is not None:
        _CrashChain.chain.stop()
    proc = _DefaultRun.proc
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    if _DefaultRun.root is not None:
        shutil.rmtree(_DefaultRun.root, ignore_errors=True)
