"""The notebooks' summaries (``socialrec.explore``) on a few inline rows: whole results."""
from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from socialrec import explore
from socialrec.lake import Lake
from socialrec.pipelines.all import STAGES
from socialrec.schema.tables import (
    GOLD_EVALUATION,
    GOLD_NEIGHBOURHOODS,
    GOLD_RECOMMENDATIONS,
    GOLD_SOCIAL_GRAPH,
    SILVER_EVENTS,
    SILVER_ITEMS,
    SILVER_QUARANTINE,
)

# assertDataFrameEqual on pandas frames imports pyspark.pandas, which warns about this variable (unused here).
pytestmark = pytest.mark.filterwarnings("ignore:.PYARROW_IGNORE_TIMEZONE")

T = datetime
NAN = float("nan")


def events(spark: SparkSession) -> DataFrame:
    rows = [
        ("e1", "u1", "i1", "view", None, T(2024, 3, 1)),
        ("e2", "u1", "i1", "purchase", None, T(2024, 3, 2)),
        ("e3", "u2", "i1", "view", None, T(2024, 3, 3)),
        ("e4", "u2", "i2", "click", None, T(2024, 3, 4)),
        ("e5", "u3", "i2", "view", None, T(2024, 3, 5)),
    ]
    return spark.createDataFrame([(*r, "s", "b") for r in rows], SILVER_EVENTS.schema)


def items(spark: SparkSession) -> DataFrame:
    rows = [("i1", "Kettle", None, "Kitchen", None, 20.0, "EUR", None, None, "s", "b"),
            ("i2", "Novel", None, "Books", None, 10.0, "EUR", None, None, "s", "b")]
    return spark.createDataFrame(rows, SILVER_ITEMS.schema)


def evidence(count: int | None = None, action: str | None = None, item_id: str | None = None,
             title: str | None = None, similarity: float | None = None) -> tuple[object, ...]:
    return (count, action, item_id, title, None, similarity, None, None, None)


SOCIAL = ("social", "2 people you follow bought this", evidence(count=2, action="bought"))
SIMILAR = ("similar", "similar to Kettle you bought", evidence(action="bought", item_id="i1", title="Kettle",
                                                               similarity=0.5))
POPULAR = ("popular", "popular with shoppers right now", evidence(count=7))


def recommendations(spark: SparkSession) -> DataFrame:
    old, new = date(2024, 3, 9), date(2024, 3, 10)
    rows = [
        ("u1", 1, "i3", 0.1, [POPULAR], old),
        ("u1", 1, "i2", 0.9, [SIMILAR, POPULAR], new),
        ("u1", 2, "i3", 0.5, [POPULAR], new),
        ("u2", 1, "i3", 0.7, [SOCIAL], new),
    ]
    return spark.createDataFrame(
        [(u, r, i, s, reasons, "m", "1", "run", T(2024, 3, 10), "s", d) for u, r, i, s, reasons, d in rows],
        GOLD_RECOMMENDATIONS.schema,
    )


def neighbourhoods(spark: SparkSession) -> DataFrame:
    rows = [("u1", 1, "u2", 1.0, 1), ("u1", 1, "u3", 0.5, 2), ("u1", 2, "u4", 0.25, 1), ("u2", 1, "u1", 1.0, 1)]
    return spark.createDataFrame([(*r, "s") for r in rows], GOLD_NEIGHBOURHOODS.schema)


def evaluation(spark: SparkSession) -> DataFrame:
    rows = [
        ("socialrec", "synthetic", "temporal", "r1", T(2024, 3, 1)),
        ("socialrec", "synthetic", "temporal", "r2", T(2024, 3, 2)),
        ("most_popular", "synthetic", "temporal", "r2", T(2024, 3, 2)),
        ("socialrec", "synthetic", "random", "r3", T(2024, 3, 1)),
    ]
    return spark.createDataFrame([(m, d, p, "test", "recall", 10, "all", 0.5, 3, 42, run, at)
                                  for m, d, p, run, at in rows], GOLD_EVALUATION.schema)


def test_event_funnel_in_funnel_order_with_shares(spark: SparkSession) -> None:
    want = pd.DataFrame({
        "event_type": ["view", "click", "purchase"], "events": [3, 1, 1], "users": [3, 1, 1], "items": [2, 1, 1],
        "share_of_users": [1.0, 1 / 3, 1 / 3], "step_conversion": [NAN, 1 / 3, 1.0],
    })
    assertDataFrameEqual(explore.event_funnel(events(spark)), want, checkRowOrder=True)
    # click is not a step of this funnel and cart is absent: purchase converts from view
    no_click = pd.DataFrame({
        "event_type": ["view", "purchase", "click"], "events": [3, 1, 1], "users": [3, 1, 1], "items": [2, 1, 1],
        "share_of_users": [1.0, 1 / 3, 1 / 3], "step_conversion": [NAN, 1 / 3, NAN],
    })
    got = explore.event_funnel(events(spark), order=["view", "purchase"], steps=["view", "cart", "purchase"])
    assertDataFrameEqual(got, no_click, checkRowOrder=True)


def test_item_popularity_long_tail(spark: SparkSession) -> None:
    want = pd.DataFrame({"rank": [1, 2], "item_id": ["i1", "i2"], "users": [2, 2], "events": [3, 2],
                         "catalogue_share": [0.5, 1.0], "cumulative_share": [0.5, 1.0]})
    assertDataFrameEqual(explore.item_popularity(events(spark)), want, checkRowOrder=True)
    views = pd.DataFrame({"rank": [1, 2], "item_id": ["i1", "i2"], "users": [2, 1], "events": [2, 1],
                          "catalogue_share": [0.5, 1.0], "cumulative_share": [2 / 3, 1.0]})
    assertDataFrameEqual(explore.item_popularity(events(spark), ["view"]), views, checkRowOrder=True)


def test_degree_distribution_out_and_in(spark: SparkSession) -> None:
    edges = spark.createDataFrame([(s, d, 1.0, ["follow"], "s") for s, d in ("ab", "ac", "ad", "bc")],
                                  GOLD_SOCIAL_GRAPH.schema)
    out = pd.DataFrame({"degree": [1, 3], "users": [1, 1]})  # a follows 3, b follows 1
    assertDataFrameEqual(explore.degree_distribution(edges), out, checkRowOrder=True)
    into = pd.DataFrame({"degree": [1, 2], "users": [2, 1]})  # b and d are followed once, c twice
    assertDataFrameEqual(explore.degree_distribution(edges, col_node="dst_user_id"), into, checkRowOrder=True)


def test_one_users_latest_recommendations_reasons_and_history(spark: SparkSession) -> None:
    recs = recommendations(spark)
    assert explore.pick_user(recs) == "u2"  # the only user of the latest run with a social reason
    assert explore.pick_user(recs, prefer_kind="trending") == "u1"  # nobody has one: the most kinds of reasons
    assert explore.pick_user(recs.where("user_id = 'u2' or run_date < '2024-03-10'")) == "u2"  # latest run only
    assert explore.pick_user(recs.limit(0)) is None

    listed = pd.DataFrame({
        "rank": [1, 2], "item_id": ["i2", "i3"], "title": ["Novel", None], "category": ["Books", None],
        "score": [0.9, 0.5], "kinds": ["similar, popular", "popular"],
        "reasons": ["similar to Kettle you bought; popular with shoppers right now", "popular with shoppers right now"],
    })  # only the latest run date; i3 is not in the catalogue given
    assertDataFrameEqual(explore.user_recommendations(recs, "u1", items(spark)), listed, checkRowOrder=True)

    ev = pd.DataFrame({  # evidence fields no reason sets (rating, category, ...) are left out
        "rank": [1, 1, 2], "kind": ["similar", "popular", "popular"],
        "text": ["similar to Kettle you bought", "popular with shoppers right now", "popular with shoppers right now"],
        "count": [None, 7, 7], "action": ["bought", None, None], "item_id": ["i1", None, None],
        "title": ["Kettle", None, None], "similarity": [0.5, None, None],
    }).astype({"count": "float64"})
    assertDataFrameEqual(explore.reason_evidence(recs, "u1"), ev, checkRowOrder=True)

    history = pd.DataFrame({"ts": [T(2024, 3, 2)], "event_type": ["purchase"], "item_id": ["i1"],
                            "title": ["Kettle"], "category": ["Kitchen"], "value": [None]}).astype({"value": "float64"})
    assertDataFrameEqual(explore.user_history(events(spark), "u1", limit=1, items=items(spark)), history,
                         checkRowOrder=True)


def test_friends_activity_counts_only(spark: SparkSession) -> None:
    nb, ev = neighbourhoods(spark), events(spark)
    size = pd.DataFrame({"hop": [1, 2], "neighbours": [2, 1], "mean_strength": [0.75, 0.25]})
    assertDataFrameEqual(explore.neighbourhood_size(nb, "u1"), size, checkRowOrder=True)
    # u1's hop-1 neighbours are u2 (viewed i1, clicked i2) and u3 (viewed i2)
    by_type = pd.DataFrame({"event_type": ["view", "click"], "neighbours": [2, 1], "events": [2, 1], "items": [2, 1]})
    assertDataFrameEqual(explore.friends_activity(nb, ev, "u1"), by_type, checkRowOrder=True)
    top = pd.DataFrame({"item_id": ["i2", "i1"], "title": ["Novel", "Kettle"], "category": ["Books", "Kitchen"],
                        "neighbours": [2, 1], "events": [2, 1], "event_types": ["click, view", "view"]})
    got = explore.friends_items(nb, ev, "u1", items=items(spark))
    assertDataFrameEqual(got, top, checkRowOrder=True)
    assert not {"u2", "u3"} & set(got.astype(str).to_numpy().ravel())  # never who
    assert explore.friends_items(nb, ev, "u1", event_types=["purchase"]).empty


def test_latest_evaluation_run_per_dataset_and_protocol(spark: SparkSession) -> None:
    ev = evaluation(spark)
    runs = explore.evaluation_runs(ev)
    assert list(zip(runs["protocol"], runs["run_id"], runs["latest"], runs["rows"], strict=True)) == [
        ("random", "r3", True, 1), ("temporal", "r2", True, 2), ("temporal", "r1", False, 1)]
    assert runs["models"].tolist() == ["socialrec", "most_popular, socialrec", "socialrec"]
    latest = explore.latest_evaluation(ev, "synthetic", "temporal")
    want = ev.where("run_id = 'r2'").orderBy("model").toPandas()
    assertDataFrameEqual(latest, want, checkRowOrder=True)
    assert set(explore.latest_evaluation(ev)["run_id"]) == {"r2", "r3"}


def test_metric_by_k_and_by_slice_average_seeds() -> None:
    cols = ["model", "split", "metric", "k", "slice", "seed", "value"]
    table = pd.DataFrame([
        ("most_popular", "test", "recall", 10, "all", 0, 0.1),
        ("socialrec", "test", "recall", 10, "all", 42, 0.2),
        ("socialrec", "test", "recall", 10, "all", 43, 0.4),
        ("socialrec", "test", "recall", 20, "all", 42, 0.5),
        ("socialrec", "test", "recall", 10, "bucket:tail", 42, 0.05),
    ], columns=cols)
    by_k = explore.metric_by_k(table, "test", "recall")
    want = pd.DataFrame({"@10": [0.3, 0.1], "@20": [0.5, NAN]}, index=pd.Index(["socialrec", "most_popular"], name="model"))
    assert by_k.columns.name == "recall"
    pd.testing.assert_frame_equal(by_k, want, check_names=False)
    by_slice = explore.metric_by_slice(table, "test", "recall", 10)
    assert list(by_slice.columns) == ["bucket:head", "bucket:mid", "bucket:tail"]
    assert by_slice.loc["socialrec", "bucket:tail"] == pytest.approx(0.05)
    assert by_slice.index.tolist() == ["socialrec"]


def test_quarantine_reasons_counts_without_records(spark: SparkSession) -> None:
    rows = [("silver.events", ["future_ts", "unknown_item"]), ("silver.events", ["future_ts"]),
            ("silver.users", ["bad_id"])]
    quarantine = spark.createDataFrame(
        [(t, "s", f"h{i}", reasons, '{"user_id": "raw-u1"}', "b", T(2024, 3, 1)) for i, (t, reasons) in enumerate(rows)],
        SILVER_QUARANTINE.schema)
    want = pd.DataFrame({"table_name": ["silver.events", "silver.events", "silver.users"],
                         "reason": ["future_ts", "unknown_item", "bad_id"], "rows": [2, 1, 1]})
    assertDataFrameEqual(explore.quarantine_reasons(quarantine), want, checkRowOrder=True)


def test_stage_tables_cover_every_stage(spark: SparkSession, fresh_cfg) -> None:  # type: ignore[no-untyped-def]
    assert list(explore.STAGE_OUTPUTS) == [name for name, _ in STAGES]
    lake = Lake(spark, fresh_cfg)
    lake.ensure(GOLD_RECOMMENDATIONS)
    got = explore.stage_tables(lake, "recommend")
    assert got.to_dict("records") == [{"table": "gold.recommendations", "rows": 0, "version": 0}]
    assert explore.stage_tables(lake, "train").empty
    with pytest.raises(KeyError, match="unknown stage"):
        explore.stage_tables(lake, "nope")
