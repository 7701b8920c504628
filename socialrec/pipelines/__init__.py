"""Per-stage ``run(spark, cfg)``: read -> transform -> validate -> write."""
