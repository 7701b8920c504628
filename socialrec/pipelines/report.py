"""Console summaries that jobs print (logs go to stderr; these go to stdout)."""
from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from socialrec.pipelines.clean import StreamAudit


def print_audit(audits: Sequence[StreamAudit], console: Console | None = None) -> None:
    """The audit counts of the batches just cleaned (``input = kept + duplicates + quarantined``)."""
    console = console or Console()
    if not audits:
        console.print("  clean: no batch was waiting (all bronze batches are already clean)")
        return
    table = Table(title="silver.audit: rows of this run (input = kept + duplicates + quarantined)")
    for col in ("silver table", "source", "batch", "input", "kept", "duplicates", "quarantined"):
        table.add_column(col, justify="left" if col in ("silver table", "source", "batch") else "right", no_wrap=True)
    for a in audits:
        table.add_row(a.table.removeprefix("silver."), a.source, a.batch_id, f"{a.input_rows:,}", f"{a.kept_rows:,}",
                      f"{a.duplicate_rows:,}", f"{a.quarantined_rows:,}")
    console.print(table)
