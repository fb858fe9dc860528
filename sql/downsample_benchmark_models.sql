-- downsampled_full_benchmark_models.parquet: the benchmark rows whose id is in
-- downsampled_full.parquet, in the benchmark file's order.
COPY (
    SELECT * EXCLUDE (file_row_number)
    FROM read_parquet($full_benchmark_models, file_row_number = true)
    WHERE id IN (SELECT id FROM read_parquet($downsampled_full))
    ORDER BY file_row_number
) TO $output (FORMAT parquet, COMPRESSION snappy);
