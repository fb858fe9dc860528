-- full_benchmark_models.parquet: train benchmark predictions plus the validation
-- benchmark rows whose id has data_type 'validation' in validation.parquet.
-- The semi join may reorder rows across threads; the narrow result is put back in
-- file order (train first) so the output is deterministic.
COPY (
    SELECT * EXCLUDE (source, file_row_number)
    FROM (
        SELECT
            0 AS source,
            file_row_number,
            id,
            era,
            COLUMNS(lambda c: c NOT IN ('id', 'era', 'data_type', 'file_row_number'))
        FROM read_parquet($train_benchmarks, file_row_number = true)
        UNION ALL BY NAME
        SELECT
            1 AS source,
            file_row_number,
            id,
            era,
            COLUMNS(lambda c: c NOT IN ('id', 'era', 'data_type', 'file_row_number'))
        FROM read_parquet($validation_benchmarks, file_row_number = true)
        WHERE id IN (
            SELECT id FROM read_parquet($validation) WHERE data_type = 'validation'
        )
    )
    ORDER BY source, file_row_number
) TO $output (FORMAT parquet, COMPRESSION snappy);
