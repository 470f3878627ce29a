"""A feed farm: many realistic RSS 2.0 / Atom feeds served over HTTP on many loopback hosts.

    python benchmarks/farm.py [--feeds 300] [--hosts 50] [--latency-ms 20] [--seed 1]
                              [--urls-file urls.txt] [--duration 600]

serves the farm until Ctrl-C (or ``--duration`` seconds) and prints where; from Python::

    from farm import Farm
    with Farm(feeds=300, hosts=50, latency_ms=20) as farm:
        farm.urls              # one URL per feed, spread over 127.0.0.1 … 127.0.0.K
        farm.mutate(0.1)       # 10% of the feeds get a new item at the top
        farm.stats()           # requests answered so far: 200s, 304s, bytes

What the farm is:

- ``feeds`` feeds, every other one RSS 2.0 (``description`` with HTML in CDATA, some with
  ``content:encoded`` too) and the rest Atom (``summary``/``content`` of type ``html``);
  30 to 40 items each, about ``size_kb`` (100) KB per feed, with news-like titles, authors,
  categories, links and dates going back from ``anchor`` (default: this hour).
- Feed ``i`` is served by the server on ``127.0.0.(1 + i % hosts)`` (Linux routes all of
  127/8 to ``lo``), one ``ThreadingHTTPServer`` per address with a listen backlog of 1024
  and daemon threads, speaking HTTP/1.1 with keep-alive, so per-host politeness limits of
  a client do not dominate a round.
- Every response carries ``ETag`` and ``Last-Modified``; a matching ``If-None-Match`` (or,
  without one, an ``If-Modified-Since`` not older than the feed) gets ``304``. Every
  request, 200 or 304, first sleeps ``latency_ms`` to stand in for a real server's latency.
- Deterministic: the content depends only on ``seed`` and ``anchor``, and which feeds
  ``mutate`` changes on the seed and the number of earlier calls.

Standard library only, so the benchmark can import it from another virtualenv too.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

# ------------------------------------------------------------------ content

_PLACES = (
    "Kyiv", "Kharkiv", "Odesa", "Brussels", "Warsaw", "Berlin", "Paris", "London",
    "Washington", "Tokyo", "Nairobi", "Lagos", "São Paulo", "Mumbai", "Jakarta", "Ankara",
    "the Baltic", "the Black Sea", "the Alps", "the Sahel", "Geneva", "Vienna", "Madrid",
)  # fmt: skip
_ACTORS = (
    "Lawmakers", "Regulators", "The central bank", "Officials", "Researchers", "Investors",
    "The prime minister", "Union leaders", "Prosecutors", "Health authorities", "Engineers",
    "The European Commission", "Farmers", "Airlines", "Climate scientists", "Local voters",
    "The defence ministry", "Startups", "Chipmakers", "City councils", "Diplomats",
)  # fmt: skip
_VERBS = (
    "weigh", "approve", "reject", "delay", "unveil", "question", "expand", "scrap",
    "back", "probe", "defend", "cut", "raise", "extend", "challenge", "sign", "pause",
)  # fmt: skip
_OBJECTS = (
    "new energy rules", "a tax overhaul", "the budget deal", "drone export limits",
    "a rail link", "emergency aid", "an AI safety pact", "grain corridor talks",
    "a ceasefire proposal", "interest rates", "housing subsidies", "a data privacy law",
    "the merger", "water rationing", "a semiconductor plant", "sanctions on oil traders",
    "a vaccine campaign", "port upgrades", "the pension reform", "satellite launches",
)  # fmt: skip
_CLAUSES = (
    "amid rising costs", "after weeks of talks", "as winter nears", "despite protests",
    "ahead of elections", "in a surprise move", "under pressure from allies",
    "as markets slide", "after a court ruling", "to curb inflation", "following storms",
)  # fmt: skip
_FUNCTION_WORDS = (
    "the", "a", "of", "to", "and", "in", "on", "for", "with", "that", "was", "is", "by",
    "at", "from", "as", "it", "its", "their", "this", "after", "while", "about", "more",
    "would", "could", "said", "has", "have", "been", "were", "will", "not", "but", "which",
)  # fmt: skip
# The most frequent content words; a long tail of made-up words follows them (_lexicon).
_COMMON_WORDS = (
    "government", "report", "analysts", "week", "people", "plan", "country", "market",
    "growth", "security", "spokesperson", "agreement", "measure", "year", "region",
    "meeting", "decision", "statement", "minister", "companies", "prices", "capacity",
    "infrastructure", "negotiations", "support", "pressure", "evidence", "proposal",
    "told", "expected", "according", "previous", "further", "significant", "several",
    "recent", "economic", "political", "international", "officials", "residents",
    "budget", "percent", "million", "billion", "president", "city", "court", "police",
)  # fmt: skip
_SYLLABLES = (
    "ka", "lo", "mer", "tan", "vi", "sor", "del", "ra", "nu", "bel", "cor", "fen", "gal",
    "is", "jor", "lin", "mas", "ned", "or", "pol", "qui", "ros", "sta", "tur", "ul", "ver",
    "wen", "yor", "zan", "an", "ber", "chi", "dor", "el", "fra", "gur", "hol", "kin", "lu",
    "mon", "pe", "ri", "sen", "to", "va", "dra", "min", "est", "ian", "ov",
)  # fmt: skip


@dataclass(frozen=True)
class _Lexicon:
    """Words with the statistics of news text: a few frequent words, a long Zipf tail of
    rarer ones and many names, so that two unrelated articles share few rare words (a
    small vocabulary would make every article look like every other to a clusterer)."""

    words: tuple[str, ...]
    cumulative: tuple[float, ...]  # Zipf weights 1/rank, summed
    names: tuple[str, ...]


@functools.cache
def _lexicon(size: int = 8000, names: int = 2000) -> _Lexicon:
    rng = random.Random("lexicon")

    def made_up(count: int, low: int, high: int, taken: set[str]) -> list[str]:
        out: list[str] = []
        while len(out) < count:
            word = "".join(rng.choices(_SYLLABLES, k=rng.randint(low, high)))
            if word not in taken:
                taken.add(word)
                out.append(word)
        return out

    taken = set(_FUNCTION_WORDS) | set(_COMMON_WORDS)
    words = (*_COMMON_WORDS, *made_up(size - len(_COMMON_WORDS), 2, 4, taken))
    cumulative = tuple(itertools.accumulate(1 / rank for rank in range(1, len(words) + 1)))
    proper = tuple(w.capitalize() for w in made_up(names, 2, 3, taken))
    return _Lexicon(words, cumulative, proper)


def _words(rng: random.Random, count: int) -> list[str]:
    """Running text: about 45% function words, the rest from the Zipf vocabulary."""
    lexicon = _lexicon()
    content = rng.choices(lexicon.words, cum_weights=lexicon.cumulative, k=count)
    return [rng.choice(_FUNCTION_WORDS) if rng.random() < 0.45 else w for w in content]


_AUTHORS = (
    "Olena Kovalenko", "James Whitfield", "Amara Okafor", "Lukas Becker", "Sofia Rossi",
    "Hiro Tanaka", "Priya Raman", "Marta Nowak", "Daniel Ortega", "Claire Dubois",
)  # fmt: skip
_SECTIONS = (
    "World", "Europe", "Business", "Politics", "Technology", "Science", "Climate",
    "Health", "Economy", "Energy", "Defence", "Markets", "Opinion", "Analysis",
)  # fmt: skip
_OUTLETS = ("Daily", "Herald", "Observer", "Gazette", "Post", "Wire", "Chronicle", "Times")


@dataclass(frozen=True)
class Item:
    """One article of a feed."""

    guid: str
    title: str
    link: str
    published: datetime
    author: str
    categories: tuple[str, ...]
    summary: str  # plain text, a sentence or two
    html: str  # the full body, HTML


def _sentence(rng: random.Random, low: int = 8, high: int = 24) -> str:
    words = _words(rng, rng.randint(low, high))
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), rng.choice(_PLACES))
    if rng.random() < 0.4:
        words.insert(rng.randrange(len(words)), rng.choice(_lexicon().names))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "?", "!"))


def _paragraph(rng: random.Random, site: str) -> str:
    sentences = [escape(_sentence(rng)) for _ in range(rng.randint(3, 7))]
    # Inline markup, as real feeds have it: emphasis, links, the odd quote.
    i = rng.randrange(len(sentences))
    sentences[i] = f"<strong>{sentences[i]}</strong>"
    if rng.random() < 0.6:
        j = rng.randrange(len(sentences))
        slug = "-".join(_words(rng, 4))
        sentences[j] = f'<a href="https://{site}/{slug}">{sentences[j]}</a>'
    if rng.random() < 0.3:
        k = rng.randrange(len(sentences))
        sentences[k] = f"<em>&ldquo;{sentences[k]}&rdquo;</em>"
    return "<p>" + " ".join(sentences) + "</p>"


def _body(rng: random.Random, site: str, target: int) -> str:
    """HTML of about ``target`` characters: paragraphs, now and then a figure, a list."""
    parts: list[str] = []
    size = 0
    while size < target:
        roll = rng.random()
        if roll < 0.08:
            n = rng.randint(1000, 99999)
            part = (
                f'<figure><img src="https://{site}/img/{n}.jpg" width="800" height="450" '
                f'alt="{escape(_sentence(rng, 4, 8))}"><figcaption>'
                f"{escape(_sentence(rng, 6, 12))}</figcaption></figure>"
            )
        elif roll < 0.14:
            points = "".join(f"<li>{escape(_sentence(rng, 5, 12))}</li>" for _ in range(3))
            part = f"<ul>{points}</ul>"
        elif roll < 0.18:
            part = f"<h2>{escape(_sentence(rng, 3, 7).rstrip('.?!'))}</h2>"
        else:
            part = _paragraph(rng, site)
        parts.append(part)
        size += len(part)
    return "\n".join(parts)


def _title(rng: random.Random) -> str:
    """A headline: a stock phrase made particular by a name and a rarer word or two."""
    name = rng.choice(_lexicon().names)
    detail = " ".join(rng.choices(_lexicon().words[200:], k=rng.randint(1, 2)))
    title = f"{rng.choice(_ACTORS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    roll = rng.random()
    if roll < 0.35:
        title = f"{name}: {title} over {detail}"
    elif roll < 0.7:
        title = f"{title} in {name} {rng.choice(_CLAUSES)}"
    else:
        title = f"{name} {detail}: {title} {rng.choice(_CLAUSES)}"
    return title


def _item(rng: random.Random, site: str, published: datetime, target: int) -> Item:
    title = _title(rng)
    number = rng.randint(10**6, 10**7 - 1)
    slug = "-".join(title.lower().replace(":", "").split()[:8])
    return Item(
        guid=f"https://{site}/a/{number}",
        title=title,
        link=f"https://{site}/{published:%Y/%m/%d}/{slug}-{number}",
        published=published,
        author=rng.choice(_AUTHORS),
        categories=tuple(rng.sample(_SECTIONS, rng.randint(1, 3))),
        summary=_sentence(rng, 15, 30) + " " + _sentence(rng, 10, 20),
        html=_body(rng, site, target),
    )


@dataclass(frozen=True)
class FeedSpec:
    """A feed's content: what is rendered and served."""

    index: int
    kind: str  # "rss" or "atom"
    title: str
    site: str
    items: tuple[Item, ...]
    full_content: bool  # RSS only: a content:encoded beside a short description

    @property
    def updated(self) -> datetime:
        return max(item.published for item in self.items)


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render_rss(feed: FeedSpec, self_url: str) -> bytes:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        f"<title>{escape(feed.title)}</title>\n<link>https://{feed.site}/</link>\n"
        f"<description>Latest news from {escape(feed.title)}</description>\n"
        f'<atom:link href="{escape(self_url)}" rel="self" type="application/rss+xml"/>\n'
        f"<language>en</language>\n<lastBuildDate>{format_datetime(feed.updated)}"
        "</lastBuildDate>\n"
    ]
    for item in feed.items:
        categories = "".join(f"<category>{escape(c)}</category>" for c in item.categories)
        if feed.full_content:
            text = (
                f"<description>{escape(item.summary)}</description>\n"
                f"<content:encoded>{_cdata(item.html)}</content:encoded>\n"
            )
        else:
            text = f"<description>{_cdata(item.html)}</description>\n"
        out.append(
            f"<item>\n<title>{escape(item.title)}</title>\n<link>{escape(item.link)}</link>\n"
            f'<guid isPermaLink="false">{escape(item.guid)}</guid>\n'
            f"<pubDate>{format_datetime(item.published)}</pubDate>\n"
            f"<dc:creator>{escape(item.author)}</dc:creator>\n{categories}\n{text}</item>\n"
        )
    out.append("</channel>\n</rss>\n")
    return "".join(out).encode()


def render_atom(feed: FeedSpec, self_url: str) -> bytes:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
        f"<title>{escape(feed.title)}</title>\n<id>https://{feed.site}/</id>\n"
        f'<link rel="alternate" href="https://{feed.site}/"/>\n'
        f'<link rel="self" href="{escape(self_url)}"/>\n'
        f"<updated>{feed.updated.isoformat()}</updated>\n"
    ]
    for item in feed.items:
        categories = "".join(f'<category term="{escape(c)}"/>' for c in item.categories)
        out.append(
            f"<entry>\n<title>{escape(item.title)}</title>\n<id>{escape(item.guid)}</id>\n"
            f'<link rel="alternate" href="{escape(item.link)}"/>\n'
            f"<published>{item.published.isoformat()}</published>\n"
            f"<updated>{item.published.isoformat()}</updated>\n"
            f"<author><name>{escape(item.author)}</name></author>\n{categories}\n"
            f'<summary type="html">{escape(item.summary)}</summary>\n'
            f'<content type="html">{escape(item.html)}</content>\n</entry>\n'
        )
    out.append("</feed>\n")
    return "".join(out).encode()


def _body_target(kind: str, count: int, size_kb: int) -> int:
    """Characters of HTML per item for a feed of about ``size_kb``: its share, less the
    markup around the body (about 1 KB), less Atom's escaping of the HTML (about 20%)."""
    share = size_kb * 1024 / count - 1000
    return max(400, int(share / (1.2 if kind == "atom" else 1.0)))


def make_feed(index: int, *, seed: int, anchor: datetime, size_kb: int) -> FeedSpec:
    """Feed ``index`` of the farm with this seed: the same bytes every time."""
    rng = random.Random(f"{seed}:feed:{index}")
    kind = "rss" if index % 2 == 0 else "atom"
    outlet = f"{rng.choice(_PLACES).removeprefix('the ')} {rng.choice(_OUTLETS)}"
    site = f"news{index}.example.org"
    count = rng.randint(30, 40)
    target = _body_target(kind, count, size_kb)
    published = anchor - timedelta(minutes=rng.randint(0, 90))
    items: list[Item] = []
    for _ in range(count):
        items.append(_item(rng, site, published, int(target * rng.uniform(0.6, 1.4))))
        published -= timedelta(minutes=rng.randint(10, 240), seconds=rng.randint(0, 59))
    return FeedSpec(index, kind, outlet, site, tuple(items), full_content=rng.random() < 0.5)


# ------------------------------------------------------------------ serving


@dataclass(frozen=True)
class Served:
    """What one feed answers right now."""

    body: bytes
    etag: str
    last_modified: datetime
    content_type: str


def _served(feed: FeedSpec, url: str) -> Served:
    if feed.kind == "rss":
        body, content_type = render_rss(feed, url), "application/rss+xml; charset=utf-8"
    else:
        body, content_type = render_atom(feed, url), "application/atom+xml; charset=utf-8"
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return Served(body, etag, feed.updated.replace(microsecond=0), content_type)


@dataclass
class FarmStats:
    """Responses the farm has sent (all servers together)."""

    requests: int = 0
    ok: int = 0
    not_modified: int = 0
    not_found: int = 0
    body_bytes: int = 0

    def minus(self, earlier: FarmStats) -> FarmStats:
        return FarmStats(
            self.requests - earlier.requests,
            self.ok - earlier.ok,
            self.not_modified - earlier.not_modified,
            self.not_found - earlier.not_found,
            self.body_bytes - earlier.body_bytes,
        )


@dataclass
class _Counter:
    stats: FarmStats = field(default_factory=FarmStats)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int, size: int) -> None:
        with self.lock:
            self.stats.requests += 1
            self.stats.body_bytes += size
            if status == HTTPStatus.OK:
                self.stats.ok += 1
            elif status == HTTPStatus.NOT_MODIFIED:
                self.stats.not_modified += 1
            else:
                self.stats.not_found += 1


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops SYNs under a burst of connects, and the client's
    # 1 s SYN retry would then be measured as the client's time.
    request_queue_size = 1024
    daemon_threads = True


def _is_not_modified(headers: Message, served: Served) -> bool:
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return served.etag in tags or "*" in tags
    if_modified_since = headers.get("If-Modified-Since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return since >= served.last_modified
    return False


class Farm:
    """The feeds and their servers; a context manager that starts and stops the servers."""

    def __init__(
        self,
        feeds: int = 300,
        hosts: int = 50,
        *,
        latency_ms: float = 20.0,
        seed: int = 1,
        size_kb: int = 100,
        anchor: datetime | None = None,
    ) -> None:
        if not 1 <= hosts <= 254:
            raise ValueError("hosts must be between 1 and 254 (127.0.0.1 … 127.0.0.254)")
        self.feed_count = feeds
        self.host_count = min(hosts, feeds) or 1
        self.latency = latency_ms / 1000
        self.seed = seed
        self.size_kb = size_kb
        self.anchor = anchor or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self._mutations = 0
        self._counter = _Counter()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._specs: list[FeedSpec] = []
        self._served: dict[str, Served] = {}  # by path; replaced whole, never edited
        self.urls: list[str] = []

    # -- lifecycle

    def __enter__(self) -> Farm:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        handler = self._handler()
        try:
            for k in range(self.host_count):
                server = _Server((f"127.0.0.{k + 1}", 0), handler)
                self._servers.append(server)
                thread = threading.Thread(
                    target=server.serve_forever,
                    args=(0.1,),
                    name=f"farm-127.0.0.{k + 1}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
            self._specs = [
                make_feed(i, seed=self.seed, anchor=self.anchor, size_kb=self.size_kb)
                for i in range(self.feed_count)
            ]
            self.urls = [self._url(spec) for spec in self._specs]
            for spec, url in zip(self._specs, self.urls, strict=True):
                self._served[self._path(spec)] = _served(spec, url)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # shutdown() waits for its server's next poll: ask them all at once.
        stoppers = [threading.Thread(target=s.shutdown) for s in self._servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers:
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    # -- the feeds

    def _path(self, spec: FeedSpec) -> str:
        return f"/feeds/{spec.index}.{'xml' if spec.kind == 'rss' else 'atom'}"

    def _url(self, spec: FeedSpec) -> str:
        host, port = self._servers[spec.index % self.host_count].server_address[:2]
        return f"http://{host!s}:{port}{self._path(spec)}"

    def mutate(self, fraction: float = 0.1) -> list[str]:
        """Give ``fraction`` of the feeds (chosen by the seed) a new item at the top, the
        oldest dropped so sizes hold steady; returns the URLs of the feeds changed."""
        self._mutations += 1
        rng = random.Random(f"{self.seed}:mutation:{self._mutations}")
        chosen = sorted(rng.sample(range(self.feed_count), round(self.feed_count * fraction)))
        for index in chosen:
            spec = self._specs[index]
            newest = spec.items[0]
            published = newest.published + timedelta(minutes=rng.randint(5, 60))
            target = _body_target(spec.kind, len(spec.items), self.size_kb)
            item = _item(rng, spec.site, published, int(target * rng.uniform(0.6, 1.4)))
            spec = replace(spec, items=(item, *spec.items[:-1]))
            self._specs[index] = spec
            self._served[self._path(spec)] = _served(spec, self.urls[index])
        return [self.urls[i] for i in chosen]

    def stats(self) -> FarmStats:
        with self._counter.lock:
            return replace(self._counter.stats)

    @property
    def total_bytes(self) -> int:
        return sum(len(s.body) for s in self._served.values())

    # -- HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
            timeout = 60  # an idle keep-alive connection frees its thread after this

            def do_GET(self) -> None:
                time.sleep(farm.latency)
                served = farm._served.get(self.path.split("?", 1)[0])
                if served is None:
                    self._answer(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
                    return
                if _is_not_modified(self.headers, served):
                    self._answer(HTTPStatus.NOT_MODIFIED, b"", None, served)
                else:
                    self._answer(HTTPStatus.OK, served.body, served.content_type, served)

            def do_HEAD(self) -> None:
                served = farm._served.get(self.path.split("?", 1)[0])
                self.send_response(HTTPStatus.OK if served else HTTPStatus.NOT_FOUND)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _answer(
                self,
                status: int,
                body: bytes,
                content_type: str | None,
                served: Served | None = None,
            ) -> None:
                self.send_response(status)
                if served is not None:
                    self.send_header("ETag", served.etag)
                    self.send_header("Last-Modified", format_datetime(served.last_modified, True))
                    self.send_header("Cache-Control", "max-age=60")
                if content_type is not None:
                    self.send_header("Content-Type", content_type)
                if status != HTTPStatus.NOT_MODIFIED:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                farm._counter.count(status, len(body))

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def _summary(farm: Farm) -> str:
    kinds = sum(1 for url in farm.urls if url.endswith(".xml"))
    return (
        f"{farm.feed_count} feeds ({kinds} RSS, {farm.feed_count - kinds} Atom), "
        f"{farm.total_bytes / farm.feed_count / 1024:.0f} KB each on average, "
        f"{farm.total_bytes / 1e6:.1f} MB in all, on {farm.host_count} hosts "
        f"127.0.0.1…127.0.0.{farm.host_count}; latency {farm.latency * 1000:.0f} ms"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size-kb", type=int, default=100, help="about this much per feed")
    parser.add_argument("--urls-file", help="write the feed URLs here, one a line")
    parser.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    args = parser.parse_args(argv)
    with Farm(
        args.feeds, args.hosts, latency_ms=args.latency_ms, seed=args.seed, size_kb=args.size_kb
    ) as farm:
        print(_summary(farm))
        print("first feeds:", *farm.urls[:3], sep="\n  ")
        if args.urls_file:
            with open(args.urls_file, "w", encoding="utf-8") as out:
                out.writelines(url + "\n" for url in farm.urls)
            print(f"all {len(farm.urls)} URLs in {args.urls_file}")
        try:
            for _ in _ticks(args.duration):
                pass
        except KeyboardInterrupt:
            pass
        print("served:", farm.stats())


def _ticks(duration: float | None) -> Iterator[None]:
    end = None if duration is None else time.monotonic() + duration
    while end is None or time.monotonic() < end:
        time.sleep(0.5 if end is None else max(0.0, min(0.5, end - time.monotonic())))
        yield


if __name__ == "__main__":
    main()
