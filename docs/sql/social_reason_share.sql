-- Share of recommendations with a social reason ("N people you follow bought/liked this"), per run, overall
-- and by rank; plus how often each kind of reason appears.
SELECT source, run_date, rank,
       count(*) AS recommendations,
       count_if(exists(reasons, x -> x.kind = 'social')) AS with_social_reason,
       round(avg(CASE WHEN exists(reasons, x -> x.kind = 'social') THEN 1.0 ELSE 0.0 END), 4) AS social_share,
       round(avg(CASE WHEN exists(reasons, x -> x.kind = 'similar') THEN 1.0 ELSE 0.0 END), 4) AS similar_share,
       round(avg(CASE WHEN exists(reasons, x -> x.kind = 'category') THEN 1.0 ELSE 0.0 END), 4) AS category_share,
       round(avg(CASE WHEN exists(reasons, x -> x.kind = 'trending') THEN 1.0 ELSE 0.0 END), 4) AS trending_share,
       round(avg(CASE WHEN exists(reasons, x -> x.kind IN ('popular', 'for_you')) THEN 1.0 ELSE 0.0 END), 4) AS fallback_share
FROM gold.recommendations
GROUP BY GROUPING SETS ((source, run_date), (source, run_date, rank))
ORDER BY source, run_date, rank NULLS FIRST
