-- Users with no recommendations in the latest run of their source: indexed users (gold.user_index) without a
-- row, counted, with their share and up to 20 of them (pseudonyms) to look into. One row per source, so the
-- query answers "none" explicitly (users_without_recommendations = 0) rather than with an empty result.
WITH latest AS (
  SELECT source, max(run_date) AS run_date FROM gold.recommendations GROUP BY source
),
served AS (
  SELECT DISTINCT r.source, r.user_id
  FROM gold.recommendations r JOIN latest l ON r.source = l.source AND r.run_date = l.run_date
)
SELECT u.source,
       max(l.run_date) AS run_date,
       count(*) AS indexed_users,
       count(s.user_id) AS users_with_recommendations,
       count(*) - count(s.user_id) AS users_without_recommendations,
       round((count(*) - count(s.user_id)) / count(*), 4) AS share_without,
       slice(collect_list(CASE WHEN s.user_id IS NULL THEN u.user_id END), 1, 20) AS examples
FROM gold.user_index u
LEFT JOIN latest l ON l.source = u.source
LEFT JOIN served s ON s.source = u.source AND s.user_id = u.user_id
GROUP BY u.source
ORDER BY u.source
