"""Era labels: Numerai's eras are zero-padded numbers ("0001"), ordered numerically."""

from __future__ import annotations


def era_sort_key(era: object) -> tuple[int, int | str]:
    """Numeric order for era labels ("0002" < "0010"); non-numeric labels after, as text."""
    text = str(era)
    return (0, int(text)) if text.strip().lstrip("-").isdigit() else (1, text)
