-- full.parquet: every train row plus the validation rows whose data_type is
-- 'validation' (the rows that carry targets); data_type dropped, id kept as a
-- column. Streams from the raw files to parquet without materialising them.
COPY (
    SELECT id, era, COLUMNS('^feature_'), COLUMNS('^target')
    FROM read_parquet($train)
    UNION ALL BY NAME
    SELECT id, era, COLUMNS('^feature_'), COLUMNS('^target')
    FROM read_parquet($validation)
    WHERE data_type = 'validation'
) TO $output (FORMAT parquet, COMPRESSION snappy);
