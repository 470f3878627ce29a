"""Publishing: one plan of what each feed holds (:mod:`.plan`), one module per format
(:mod:`.atom`), and the writer that puts them in ``output/`` atomically (:mod:`.writer`)."""

from __future__ import annotations

from aggregator.publish.atom import ATOM_NS, ATOM_TYPE, render_atom
from aggregator.publish.common import (
    atom_entry_id,
    clean_text,
    feed_updated,
    is_absolute_iri,
    minted_entry_id,
    self_url,
    source_feed_id,
)
from aggregator.publish.plan import (
    MERGED_PATH,
    OutputFeed,
    one_per_article,
    plan_outputs,
    sort_newest_first,
    topic_path,
)
from aggregator.publish.writer import write_outputs

__all__ = [
    "ATOM_NS",
    "ATOM_TYPE",
    "MERGED_PATH",
    "OutputFeed",
    "atom_entry_id",
    "clean_text",
    "feed_updated",
    "is_absolute_iri",
    "minted_entry_id",
    "one_per_article",
    "plan_outputs",
    "render_atom",
    "self_url",
    "sort_newest_first",
    "source_feed_id",
    "topic_path",
    "write_outputs",
]
