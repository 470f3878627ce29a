"""The ``topics:`` section of feeds.yaml, and the topic and id rules other sections share."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from yaml.nodes import Node

from aggregator.settings import DEFAULT_TOPIC_THRESHOLD, StoryMode, TopicRule
from aggregator.yamlnodes import NodeMap, TreeReader, did_you_mean, is_null, line_of

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_STORY_MODES: tuple[StoryMode, ...] = ("articles", "collapse")
_TOPIC_KEYS = ("title", "keywords", "phrases", "weak", "context", "exclude", "threshold", "stories")


class TopicsReader(TreeReader):
    """Reads topic rules; feeds and digests refer to them with :meth:`topic_refs`."""

    def topics(self, root: NodeMap) -> tuple[list[TopicRule], dict[str, int]]:
        """The topic rules, and (id → line) of those with no keywords, phrases or weak terms."""
        rules: list[TopicRule] = []
        hollow: dict[str, int] = {}
        m = self.section(root, "topics", None)
        for topic_id, (key_node, value_node) in m.items.items():
            path, line = m.field(topic_id), line_of(key_node)
            self.slug(topic_id, path, line, "topic")
            body = NodeMap(path, line, {}) if is_null(value_node) else None
            body = (
                body or self.mapping(value_node, path, line, _TOPIC_KEYS) or NodeMap(path, line, {})
            )
            keywords = self.terms(body, "keywords", _keyword_problem)
            phrases = self.terms(body, "phrases", _phrase_problem)
            weak_items = self.located_terms(body, "weak", _exclude_problem)
            context_items = self.located_terms(body, "context", _exclude_problem)
            exclude = self.terms(body, "exclude", _exclude_problem)
            self.one_role_per_term(keywords + phrases, weak_items, context_items)
            weak = tuple(term for term, _, _ in weak_items)
            context = tuple(term for term, _, _ in context_items)
            if weak and not (keywords or phrases or context):
                why = "weak terms count only next to a keyword, phrase or context term"
                self.problem(body.key_line("weak"), body.field("weak"), f"{why}; add some")
            elif not keywords and not phrases and not weak:
                hollow[topic_id] = line
            title = self.opt(body, "title", self.text, "") or topic_id
            threshold = self.opt(body, "threshold", self.positive, DEFAULT_TOPIC_THRESHOLD)
            rules.append(
                TopicRule(
                    topic_id,
                    title,
                    keywords,
                    phrases,
                    exclude,
                    weak,
                    context,
                    threshold,
                    stories=self.opt(body, "stories", self.story_mode, "articles"),
                )
            )
        return rules, hollow

    def one_role_per_term(
        self,
        strong: Sequence[str],
        weak: Sequence[tuple[str, str, int]],
        context: Sequence[tuple[str, str, int]],
    ) -> None:
        """A term under two roles acts in one (keywords win, then weak terms): say so, rather
        than let one of the listings silently do nothing."""
        roles = {t.casefold(): "a keyword or phrase" for t in strong}
        for items, role in ((weak, "a weak term"), (context, "a context term")):
            for term, path, line in items:
                other = roles.setdefault(term.casefold(), role)
                if other != role:
                    self.problem(line, path, f"'{term}' is already {other}; list it once")

    def terms(self, m: NodeMap, key: str, check: Callable[[str], str | None]) -> tuple[str, ...]:
        return tuple(term for term, _, _ in self.located_terms(m, key, check))

    def located_terms(
        self, m: NodeMap, key: str, check: Callable[[str], str | None]
    ) -> list[tuple[str, str, int]]:
        """(term, field path, line) of each valid term under ``key``; the rest are problems."""
        node = m.get(key)
        found: list[tuple[str, str, int]] = []
        for i, (term, item) in enumerate(self.texts(node, m.field(key)) if node else []):
            where = f"{m.field(key)}[{i}]"
            message = check(term)
            if message:
                self.problem(line_of(item), where, message)
            else:
                found.append((term, where, line_of(item)))
        return found

    def slug(self, value: str, path: str, line: int, what: str) -> None:
        if not _SLUG.fullmatch(value):
            fixed = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
            hint = f"; e.g. '{fixed}'" if fixed else ""
            rule = "lowercase letters, digits and '-', not starting with '-'"
            self.problem(line, path, f"{what} ids name files, so they must be {rule}{hint}")

    def topic_refs(self, m: NodeMap, known: Sequence[str] | set[str]) -> tuple[str, ...]:
        node = m.get("topics")
        refs: list[str] = []
        for i, (ref, item) in enumerate(self.texts(node, m.field("topics")) if node else []):
            if ref in known:
                refs.append(ref)
                continue
            listing = ", ".join(sorted(known)) if known else "none are defined"
            hint = did_you_mean(ref, known)
            message = f"unknown topic '{ref}'{hint} (known topics: {listing})"
            self.problem(line_of(item), f"{m.field('topics')}[{i}]", message)
        return tuple(refs)

    def story_mode(self, node: Node, path: str) -> StoryMode | None:
        return self.one_of(node, path, _STORY_MODES, "stories mode")


def _keyword_problem(term: str) -> str | None:
    if any(c.isspace() for c in term):
        return f"terms are single words; put '{term}' under phrases"
    return _exclude_problem(term)


def _exclude_problem(term: str) -> str | None:
    """Exclusions take keywords and phrases alike: a veto list is one list."""
    if not term:
        return "empty term"
    if term == "*":
        return "a lone '*' would match everything"
    if "*" in term[:-1]:
        return f"'*' is only allowed at the end (prefix form, e.g. 'ukrain*'), got '{term}'"
    return None


def _phrase_problem(phrase: str) -> str | None:
    if not phrase:
        return "empty phrase"
    if "*" in phrase:
        return "phrases are matched literally; '*' is only for keywords"
    return None
