-- Score distribution of the latest run per source and rank: count, min, deciles (10/50/90%), max and mean.
-- Scores are the blended ranking score (model inner product + social boost; popularity for cold users):
-- comparable within a user's list, and between runs of the same model.
WITH latest AS (
  SELECT source, max(run_date) AS run_date FROM gold.recommendations GROUP BY source
)
SELECT r.source, r.run_date, r.rank,
       count(*) AS n,
       round(min(r.score), 4) AS min_score,
       transform(percentile_approx(r.score, array(0.1, 0.5, 0.9)), x -> round(x, 4)) AS p10_p50_p90,
       round(max(r.score), 4) AS max_score,
       round(avg(r.score), 4) AS mean_score
FROM gold.recommendations r JOIN latest l ON r.source = l.source AND r.run_date = l.run_date
GROUP BY r.source, r.run_date, r.rank
ORDER BY r.source, r.run_date, r.rank
