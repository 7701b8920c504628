"""Thin entry points: args -> config -> session -> ``socialrec.pipelines.<stage>.run``.

Each is runnable as ``python -m jobs.<name>`` and as ``spark-submit jobs/<name>.py``.
"""
