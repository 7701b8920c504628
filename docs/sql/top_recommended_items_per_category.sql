-- Top recommended items per category in the latest run of each source: how many users were offered the
-- item, at which average rank, and how many of those offers had a social reason.
WITH latest AS (
  SELECT source, max(run_date) AS run_date FROM gold.recommendations GROUP BY source
),
offers AS (
  SELECT r.source, r.item_id, r.rank, exists(r.reasons, x -> x.kind = 'social') AS social
  FROM gold.recommendations r JOIN latest l ON r.source = l.source AND r.run_date = l.run_date
),
per_item AS (
  SELECT o.source, coalesce(i.category, '(unknown)') AS category, o.item_id, first(i.title) AS title,
         count(*) AS times_recommended, round(avg(o.rank), 2) AS avg_rank, count_if(o.social) AS with_social_reason
  FROM offers o LEFT JOIN silver.items i ON i.item_id = o.item_id
  GROUP BY o.source, coalesce(i.category, '(unknown)'), o.item_id
),
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY source, category ORDER BY times_recommended DESC, item_id) AS pos
  FROM per_item
)
SELECT source, category, pos, item_id, title, times_recommended, avg_rank, with_social_reason
FROM ranked
WHERE pos <= 5
ORDER BY source, category, pos
