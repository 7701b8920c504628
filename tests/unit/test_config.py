from __future__ import annotations

from pathlib import Path

import pytest

from socialrec.config import AppConfig, as_set_args, load_config, parse_overrides, tiny_platform
from socialrec.errors import ConfigError


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    d = tmp_path / "conf"
    d.mkdir()
    (d / "base.yaml").write_text("spark:\n  shuffle_partitions: 8\nlake:\n  engine: auto\n")
    (d / "test.yaml").write_text("spark:\n  shuffle_partitions: 2\n")
    (d / "cluster.yaml").write_text("spark:\n  master: null\nlake:\n  engine: delta-spark\n")
    return d


def test_layers_apply_in_order(conf: Path) -> None:
    cfg = load_config("test", conf_dir=conf, environ={})
    assert cfg.spark.shuffle_partitions == 2  # test.yaml over base.yaml
    assert cfg.lake.engine == "auto"
    assert cfg.env == "test"
    assert cfg.project_root == str(conf.parent)


def test_env_vars_override_files_and_set_overrides_env(conf: Path) -> None:
    environ = {"SOCIALREC__SPARK__SHUFFLE_PARTITIONS": "5", "SOCIALREC__LAKE__ENGINE": "delta-rs"}
    cfg = load_config("test", conf_dir=conf, environ=environ)
    assert (cfg.spark.shuffle_partitions, cfg.lake.engine) == (5, "delta-rs")
    cfg = load_config("test", ["spark.shuffle_partitions=7"], conf_dir=conf, environ=environ)
    assert cfg.spark.shuffle_partitions == 7


def test_cluster_leaves_master_to_spark_submit(conf: Path) -> None:
    cfg = load_config("cluster", conf_dir=conf, environ={})
    assert cfg.spark.master is None
    assert cfg.lake.engine == "delta-spark"


def test_unknown_key_names_key_file_and_allowed_keys(conf: Path) -> None:
    (conf / "local.yaml").write_text("lake:\n  engnie: delta-rs\n")
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf, environ={})
    msg = str(err.value)
    assert "lake.engnie" in msg and "conf/local.yaml" in msg and "unknown key" in msg
    assert "engine" in msg and "write_path" in msg  # the allowed keys are listed


def test_bad_value_names_source_and_allowed_values(conf: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("test", ["lake.engine=fast"], conf_dir=conf, environ={})
    msg = str(err.value)
    assert "lake.engine" in msg and "--set lake.engine" in msg and "'fast'" in msg
    assert "'auto', 'delta-rs', 'delta-spark'" in msg


def test_bad_value_from_environment_is_attributed_to_it(conf: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable SOCIALREC__SPARK__SHUFFLE_PARTITIONS"):
        load_config("test", conf_dir=conf, environ={"SOCIALREC__SPARK__SHUFFLE_PARTITIONS": "zero"})


def test_unknown_environment_and_malformed_set(conf: Path) -> None:
    with pytest.raises(ConfigError, match="allowed values: local, test, cluster"):
        load_config("prod", conf_dir=conf, environ={})
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config("test", ["lake.engine"], conf_dir=conf, environ={})


def test_set_values_are_yaml_scalars_the_same_for_jobs_and_benchmarks(conf: Path) -> None:
    # bench.quality's --set goes through parse_overrides too (it used to pass every value on as a string).
    assert parse_overrides(["train.ks=[10, 20]", "train.model.use_user_id=false", "a.b=x y", "a.c=", "a.b=0.5"]) == {
        "train.ks": [10, 20], "train.model.use_user_id": False, "a.b": 0.5, "a.c": ""}
    cfg = load_config("test", parse_overrides(["train.ks=[10, 50]", "train.monitor=ndcg@50"]), conf_dir=conf, environ={})
    assert (cfg.train.ks, cfg.train.monitor) == ([10, 50], "ndcg@50")
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_overrides(["=1"])


def test_project_root_cannot_come_from_files(conf: Path) -> None:
    (conf / "test.yaml").write_text("project_root: /etc\n")
    with pytest.raises(ConfigError, match="project_root"):
        load_config("test", conf_dir=conf, environ={})


def test_repo_conf_files_all_load() -> None:
    repo_conf = Path(__file__).resolve().parents[2] / "conf"
    for env in ("local", "test", "cluster"):
        cfg = load_config(env, conf_dir=repo_conf, environ={})
        assert isinstance(cfg, AppConfig)


def test_relative_paths_resolve_against_project_root(conf: Path) -> None:
    cfg = load_config("test", conf_dir=conf, environ={})
    assert cfg.resolve(cfg.paths.lake_dir()) == str((conf.parent / "var" / "lake").resolve())
    assert cfg.resolve("s3://bucket/x") == "s3://bucket/x"


def test_tiny_platform_as_job_arguments_is_the_same_config(tmp_path: Path) -> None:
    """Notebook 02 passes the overrides as a mapping, the crash test's jobs as ``--set`` arguments: the same config."""
    conf = Path(__file__).resolve().parents[2] / "conf"
    overrides = tiny_platform(tmp_path)
    as_mapping = load_config("local", overrides, conf_dir=conf, environ={})
    as_args = load_config("local", as_set_args(overrides)[1::2], conf_dir=conf, environ={})  # without "--set"
    assert as_args == as_mapping
    assert as_mapping.paths.root == str(tmp_path) and as_mapping.evaluate.baselines.models == ["most_popular"]
    assert as_set_args({"a.b": [1], "c.d": "x y"}) == ["--set", "a.b=[1]", "--set", "c.d=x y"]
