-- Number of distinct eras, first and last era (numeric order) of a parquet file.
SELECT
    count(DISTINCT era),
    arg_min(era, TRY_CAST(era AS INTEGER)),
    arg_max(era, TRY_CAST(era AS INTEGER))
FROM read_parquet($path);
