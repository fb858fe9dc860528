-- The unique eras of a file, sorted numerically (non-numeric eras last).
SELECT era
FROM (SELECT DISTINCT era FROM read_parquet($path))
ORDER BY TRY_CAST(era AS INTEGER) NULLS LAST, era;
