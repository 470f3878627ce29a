"""Writing every output: render each planned feed and replace its file atomically (I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from aggregator.config import SiteConfig, TopicRule
from aggregator.errors import RenderError
from aggregator.files import write_atomic
from aggregator.models import Feed
from aggregator.publish.atom import render_atom
from aggregator.publish.frontpage import INDEX_PATH, render_index
from aggregator.publish.jsonfeed import json_path, render_json_feed
from aggregator.publish.opml import OPML_PATH, render_opml
from aggregator.publish.plan import OutputFeed


def write_outputs(
    outputs: Sequence[OutputFeed],
    output_dir: Path,
    *,
    site: SiteConfig,
    sources: Mapping[str, Feed],
    topics: Sequence[TopicRule],
) -> list[Path]:
    """Render and atomically replace each file, and remove topic feeds no output names.

    Returns the paths that changed: rewritten or removed.
    """
    changed: list[Path] = []
    for output in outputs:
        data = render_atom(output, site=site, sources=sources, topics=topics)
        changed += write_file(output_dir, output.path, data)
        twin = render_json_feed(output, site=site, sources=sources, topics=topics)
        changed += write_file(output_dir, json_path(output.path), twin)
    feeds = list(sources.values())
    index = render_index(outputs, site=site, topics=topics, sources=feeds)
    changed += write_file(output_dir, INDEX_PATH, index)
    changed += write_file(output_dir, OPML_PATH, render_opml(feeds, site=site))
    return changed + _remove_stale_topic_feeds(output_dir, outputs)


def write_file(output_dir: Path, relative: str, data: bytes | Iterable[bytes]) -> list[Path]:
    """Replace ``output_dir/relative`` atomically (``data`` whole or in pieces); ``[path]`` if
    its bytes changed."""
    path = _target(output_dir, relative)
    try:
        return [path] if write_atomic(path, data) else []
    except OSError as exc:
        raise RenderError(f"cannot write {path}: {exc}") from exc


def _remove_stale_topic_feeds(output_dir: Path, outputs: Sequence[OutputFeed]) -> list[Path]:
    # A topic removed from feeds.yaml must not go on being served, frozen, as if alive.
    keep = {output_dir / path for o in outputs for path in (o.path, json_path(o.path))}
    folder = output_dir / "topics"
    stale = sorted(p for p in (*folder.glob("*.atom"), *folder.glob("*.json")) if p not in keep)
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _target(output_dir: Path, relative: str) -> Path:
    # A topic id shaped like "../x" must not write outside the output directory.
    base = output_dir.resolve()
    resolved = (base / relative).resolve()
    if not resolved.is_relative_to(base) or resolved == base:
        raise RenderError(f"output path escapes {output_dir}: {relative!r}")
    return output_dir / relative
