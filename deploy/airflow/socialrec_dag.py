"""Airflow DAG: the socialrec pipeline on a Spark cluster, one ``spark-submit`` per stage, in pipeline order.

The stages and their order are those of ``socialrec.pipelines.all.STAGES`` (what ``make run`` runs in one
session); ``tests/unit/test_docs.py`` parses this file and fails when the two differ. Each task submits
``jobs/<job>.py --env cluster`` (see docs/cluster.md for what ``--env cluster`` changes and what the cluster
needs). Every job is idempotent, so clearing a task and running it again is safe.

Needs ``apache-airflow-providers-apache-spark`` on the Airflow side (not a socialrec dependency). The Spark
master and deploy mode come from the Airflow connection ``SPARK_CONN_ID`` (e.g. ``yarn`` with extra
``{"deploy-mode": "client"}``). Adjust the settings below, or set the environment variables they read, on
the Airflow scheduler and workers. The pseudonym key is never set here: the driver must get
``SOCIALREC_PSEUDONYM_KEY`` from the worker's environment or the cluster's secret store (docs/cluster.md).
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

# Where the socialrec checkout (jobs/, conf/) lives on the machine that runs spark-submit.
SOCIALREC_HOME = os.environ.get("SOCIALREC_HOME", "/opt/socialrec")
SPARK_CONN_ID = os.environ.get("SOCIALREC_SPARK_CONN_ID", "spark_default")
# The Delta JVM package; leave empty where the cluster image already ships Delta.
SPARK_PACKAGES = os.environ.get("SOCIALREC_SPARK_PACKAGES", "io.delta:delta-spark_2.13:4.0.0")
# Optional zip of the socialrec package for executors that do not have it installed (docs/cluster.md).
PY_FILES = os.environ.get("SOCIALREC_PY_FILES") or None
# Config overrides every job gets, space-separated section.key=value, e.g.
# "paths.root=s3a://bucket/socialrec paths.tmp=/local_disk0/socialrec data.dataset=feed data.path=/mnt/landing"
SETS = os.environ.get("SOCIALREC_SETS", "").split()


def submit(stage: str, job: str, *extra: str) -> SparkSubmitOperator:
    """The task of one pipeline stage: ``spark-submit jobs/<job>.py --env cluster --set ... <extra>``."""
    args = ["--env", "cluster"]
    for item in SETS:
        args += ["--set", item]
    return SparkSubmitOperator(
        task_id=stage,
        application=f"{SOCIALREC_HOME}/jobs/{job}.py",
        application_args=[*args, *extra],
        conn_id=SPARK_CONN_ID,
        packages=SPARK_PACKAGES or None,
        py_files=PY_FILES,
        name=f"socialrec-{stage}",
        # Where the jobs find conf/ (the spark-submit working directory is not the checkout).
        env_vars={"SOCIALREC_CONF_DIR": f"{SOCIALREC_HOME}/conf"},
    )


with DAG(
    dag_id="socialrec",
    description="socialrec: ingest, clean, embeddings, graph, features, examples, train, recommend, evaluate",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # runs write the same tables: one at a time
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["socialrec", "spark"],
) as dag:
    init_lake = submit("init_lake", "init_lake")
    ingest = submit("ingest", "ingest")  # new batch folders only; --batch B --force re-ingests one
    clean = submit("clean", "clean")  # every batch not yet cleaned since its ingest
    embeddings = submit("embeddings", "embed_items")
    graph = submit("graph", "graph")
    features = submit("features", "features")
    examples = submit("examples", "examples")
    train = submit("train", "train")  # a no-op returning the registered version when nothing changed
    # The DAG run's logical date names the recommendations partition: clearing the task replaces it.
    recommend = submit("recommend", "recommend", "--set", "recommend.run_date={{ ds }}")
    evaluate = submit("evaluate", "evaluate")  # full-ranking metrics of the model and the baselines

    init_lake >> ingest >> clean >> embeddings >> graph >> features >> examples >> train >> recommend >> evaluate
