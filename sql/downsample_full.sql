-- downsampled_full.parquet: the rows of full.parquet whose era is in $eras (the
-- eras kept by the downsampling). A plain filter keeps the file's row order.
COPY (
    SELECT *
    FROM read_parquet($full)
    WHERE list_contains($eras, era)
) TO $output (FORMAT parquet, COMPRESSION snappy);
