# ruff: noqa: RUF001, RUF003  (Cyrillic on purpose)
"""Same-story clustering: behaviour, not scores (those are benchmarks/eval_grouping.py's)."""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.stories import (
    POSTINGS_PER_TERM,
    StoryAssignment,
    StoryIndex,
    StoryItem,
    build_idf,
    cluster,
    item_keys,
    lead,
    story_id_of,
)
from aggregator.storykeys import (
    COMMON,
    KICKER,
    NAMED,
    TEXT,
    TITLE,
    decode_keys,
    encode_keys,
    read_keys,
)

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def item(key: str, title: str, text: str = "", *, hours: float = 0, source: str = "") -> StoryItem:
    return StoryItem(key, title, text, T0 + timedelta(hours=hours), source or f"feed-{key}")


AVDIIVKA = [
    item(
        "kyiv-1",
        "Ukraine withdraws troops from Avdiivka, Syrskyi says",
        "Ukraine's top commander Oleksandr Syrskyi ordered the withdrawal from Avdiivka "
        "to save soldiers' lives after months of fighting.",
    ),
    item(
        "bbc-1",
        "Ukrainian army pulls out of Avdiivka as Russia advances",
        "General Oleksandr Syrskyi said troops had withdrawn from the eastern town of Avdiivka.",
        hours=2,
    ),
    item(
        "nyt-1",
        "Ukraine Retreats From Avdiivka, Handing Russia a Symbolic Win",
        "The commander, Gen. Oleksandr Syrskyi, said the withdrawal from Avdiivka would save "
        "lives.",
        hours=5,
    ),
]

# Share only "Russia" with each other and with AVDIIVKA.
OTHER_RUSSIA = [
    item(
        "mt-1",
        "Russia bans entry to EU officials over new sanctions",
        "Moscow expanded its entry ban list in response to the 13th sanctions package.",
        hours=3,
    ),
    item(
        "mt-2",
        "Russia loses appeal against Olympic suspension",
        "The Court of Arbitration for Sport dismissed the Russian Olympic Committee's appeal.",
        hours=4,
    ),
]

PANDAS = [
    item(
        "wapo-9",
        "China to send new pandas to the San Diego Zoo",
        "Two giant pandas will travel from China to San Diego this summer.",
        hours=30,
    ),
    item(
        "nyt-9",
        "San Diego Zoo Could Be First in U.S. to Get Pandas From China Again",
        "The zoo expects a pair of giant pandas under a new agreement with China.",
        hours=31,
    ),
]


def stories(assignments: Sequence[StoryAssignment]) -> dict[str, str]:
    return {a.key: a.story_id for a in assignments}


def test_same_event_from_different_outlets_is_one_story() -> None:
    result = cluster(AVDIIVKA)
    assert {a.story_id for a in result} == {story_id_of("kyiv-1")}
    first, *rest = result
    assert first.joined is None
    assert first.reasons == ()
    assert all(a.joined in {"kyiv-1", "bbc-1"} for a in rest)


def test_different_events_sharing_a_common_word_stay_apart() -> None:
    # Russia is in every headline here, as it is in a real week of news: it ties nothing.
    background = [
        item(f"bg-{i}", f"Russia {topic}", hours=i * 0.3)
        for i, topic in enumerate(
            [
                "raises key interest rate",
                "holds naval drills in the Baltic",
                "expels Moldovan diplomat",
                "reports record grain harvest",
                "jails blogger for army criticism",
                "opens new Arctic shipping route",
            ]
        )
    ]
    result = stories(cluster(background + OTHER_RUSSIA + AVDIIVKA))
    assert result["mt-1"] != result["mt-2"]
    assert result["mt-1"] != result["kyiv-1"]
    assert result["mt-2"] != result["kyiv-1"]
    assert len({result[f"bg-{i}"] for i in range(6)}) == 6


def test_items_further_apart_than_the_window_are_different_stories() -> None:
    first, _, third = AVDIIVKA
    within = item(third.key, third.title, third.text, hours=47)
    assert stories(cluster([first, within]))[within.key] == story_id_of(first.key)  # 48 h
    short = cluster([first, within], window=timedelta(hours=24))
    assert stories(short)[within.key] == story_id_of(within.key)
    beyond = item(third.key, third.title, third.text, hours=49)
    assert stories(cluster([first, beyond]))[beyond.key] == story_id_of(beyond.key)


def test_a_story_closes_when_its_first_report_leaves_the_window() -> None:
    # Each report is tied to the one before, but a story is one news cycle, not a saga.
    first, second, third = (
        item(i.key, i.title, i.text, hours=h) for i, h in zip(AVDIIVKA, (0, 30, 50), strict=True)
    )
    result = cluster([first, second, third])
    assert result[1].story_id == story_id_of(first.key)
    assert result[2].story_id == story_id_of(third.key)


def test_an_outlets_recurring_kicker_ties_nothing() -> None:
    series = [
        item(
            "live-1",
            "Middle East Crisis: Aid convoy reaches northern district",
            "Trucks with flour crossed at dawn.",
            source="nyt",
        ),
        item(
            "live-2",
            "Middle East Crisis: Talks on hostages resume in Doha",
            "Negotiators met for a third day.",
            hours=3,
            source="nyt",
        ),
    ]
    assert len({a.story_id for a in cluster(series)}) == 2


def test_story_id_is_a_short_stable_hash_of_the_founding_key() -> None:
    assert story_id_of("kyiv-1") == story_id_of("kyiv-1")
    assert story_id_of("kyiv-1") != story_id_of("kyiv-2")
    assert story_id_of("kyiv-1").startswith("story:")
    assert len(story_id_of("kyiv-1")) <= len("story:") + 16


def sample_week() -> list[StoryItem]:
    """Three stories and some loners spread over four days."""
    shifted = [item(i.key, i.title, i.text, hours=i.published.hour + 40 - 6) for i in AVDIIVKA]
    return sorted(
        AVDIIVKA + OTHER_RUSSIA + PANDAS + shifted_keys(shifted, "-later"),
        key=lambda i: (i.published, i.key),
    )


def shifted_keys(items: list[StoryItem], suffix: str) -> list[StoryItem]:
    return [StoryItem(i.key + suffix, i.title, i.text, i.published, i.source) for i in items]


def test_restore_then_add_decides_like_an_uninterrupted_run() -> None:
    items = sample_week()
    full = cluster(items)
    for split in range(1, len(items)):
        index = StoryIndex()
        # A restart restores what the database holds; order does not matter.
        for done, assignment in reversed(list(zip(items[:split], full[:split], strict=True))):
            index.restore(done, assignment.story_id)
        resumed = [index.add(i) for i in items[split:]]
        assert resumed == full[split:], split


def test_restart_stability_holds_when_postings_overflow_their_cap() -> None:
    # One name in hundreds of items: candidate lookups are capped, and must pick the same
    # items after a restart that restored them in another order.
    rng = random.Random(5)
    words = ["withdrawal", "losses", "soldiers", "bridgehead", "village", "shelling", "drone"]
    items = [
        item(
            f"k{n:03}",
            f"Avdiivka {rng.choice(words)} {nonsense(rng)}",
            f"Syrskyi on {rng.choice(words)} near Avdiivka, {nonsense(rng)}",
            hours=n * 0.1,
            source=f"feed-{n % 7}",
        )
        for n in range(3 * POSTINGS_PER_TERM)
    ]
    full = cluster(items)
    split = len(items) - 20
    done = list(zip(items[:split], full[:split], strict=True))
    rng.shuffle(done)
    index = StoryIndex()
    for restored, assignment in done:
        index.restore(restored, assignment.story_id)
    assert [index.add(i) for i in items[split:]] == full[split:]


def test_restoring_only_the_window_is_enough() -> None:
    items = sample_week()
    full = cluster(items)
    split = len(items) - 3
    newest = items[split - 1].published
    index = StoryIndex()
    for done, assignment in zip(items[:split], full[:split], strict=True):
        if done.published >= newest - timedelta(hours=48):
            index.restore(done, assignment.story_id)
    assert [index.add(i) for i in items[split:]] == full[split:]


def test_a_later_item_never_renumbers_an_earlier_one() -> None:
    items = sample_week()
    full = cluster(items)
    for k in range(1, len(items)):
        assert cluster(items[:k]) == full[:k]
    # Each story is named after its earliest item, whoever joins later.
    members: dict[str, list[StoryItem]] = {}
    for i, a in zip(items, full, strict=True):
        members.setdefault(a.story_id, []).append(i)
    for story_id, group in members.items():
        assert story_id == story_id_of(lead(group).key)


def test_an_item_tied_to_two_stories_joins_one_and_merges_nothing() -> None:
    result = stories(cluster(AVDIIVKA + PANDAS))
    bridge = item(
        "bridge",
        "Avdiivka retreat and San Diego pandas: the day in pictures",
        "Syrskyi on Avdiivka; giant pandas leave China for San Diego Zoo.",
        hours=32,
    )
    again = cluster([*AVDIIVKA, *PANDAS, bridge])
    after = stories(again)
    assert after["bridge"] in {result["kyiv-1"], result["wapo-9"]}
    assert {k: v for k, v in after.items() if k != "bridge"} == result


def test_reasons_name_the_shared_names_and_the_score() -> None:
    joined = cluster(AVDIIVKA)[1]
    assert joined.joined == "kyiv-1"
    names = next(r for r in joined.reasons if r.startswith("shared names: "))
    assert "Avdiivka" in names
    assert "Syrskyi" in names
    assert joined.reasons[-1].startswith("cosine ")


def test_cyrillic_and_latin_spellings_of_names_meet() -> None:
    english = AVDIIVKA[0]
    ukrainian = item(
        "pravda-ua",
        "Сирський: ЗСУ вийшли з Авдіївки, щоб зберегти життя бійців",
        "Головнокомандувач Олександр Сирський ухвалив рішення про вихід з Авдіївки.",
        hours=1,
    )
    result = cluster([english, ukrainian])
    assert result[1].story_id == story_id_of(english.key)
    names = next(r for r in result[1].reasons if r.startswith("shared names: "))
    assert "Авдіївки" in names
    assert "Сирський" in names


def test_inflected_cyrillic_forms_meet_within_their_script() -> None:
    # Russian spellings meet each other, whatever the case ending.
    a = item("ria-1", "Российские войска заняли Авдеевку", "Минобороны сообщило о взятии Авдеевки.")
    b = item("tass-1", "Минобороны: Авдеевка полностью под контролем", "Бои за Авдеевку.", hours=1)
    assert {k for k in item_keys(a) if k.startswith("avde")} == {
        k for k in item_keys(b) if k.startswith("avde")
    }
    assert cluster([a, b])[1].joined == "ria-1"


def test_look_alike_letters_from_the_other_script_do_not_split_words() -> None:
    plain = item("a", "Russian Court to Hear Case Brought by Navalny's Mother")
    spoofed = item("b", "Russian Сourt to Hear Сase Brought by Navalny's Mother")  # Cyrillic С
    assert item_keys(plain) == item_keys(spoofed)


def test_title_case_headlines_match_sentence_case_ones() -> None:
    a = item(
        "nyt-2",
        "Russia Arrests U.S. Citizen, Accusing Her of Treason by Aiding Ukraine",
        "Ksenia Karelina, a dual citizen from Los Angeles, was detained in Yekaterinburg.",
    )
    b = item(
        "pol-2",
        "Russia arrests dual US citizen on treason charges",
        "The Los Angeles woman was detained in Yekaterinburg, the FSB said.",
        hours=1,
    )
    assert cluster([a, b])[1].joined == "nyt-2"


def test_an_outlets_boilerplate_ties_nothing() -> None:
    topics = [
        "Senate approves pension reform after long debate",
        "Central bank cuts the Selic rate again",
        "Drought hits soy farmers in Mato Grosso",
        "Petrobras posts record dividend payout",
        "Rio carnival parade draws record crowds",
        "Supreme Court rules on indigenous land claims",
    ]
    items = [
        item(
            f"br-{i}",
            title,
            f"{title}. Subscribe to Brazil Daily, our morning newsletter on Brasília politics, "
            "markets and Lula's government, from The Brazilian Report.",
            hours=i,
            source="brazilian-report",
        )
        for i, title in enumerate(topics)
    ]
    assert len({a.story_id for a in cluster(items)}) == len(items)


def test_lead_is_the_earliest_report_ties_by_key() -> None:
    assert lead(AVDIIVKA).key == "kyiv-1"
    same_time = [item("b", "x"), item("a", "y")]
    assert lead(same_time).key == "a"
    with pytest.raises(ValueError, match="at least one"):
        lead([])


def test_cluster_is_deterministic_whatever_the_input_order() -> None:
    items = sample_week()
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)
    assert cluster(shuffled) == cluster(items)


def test_adding_a_known_key_again_keeps_its_story() -> None:
    index = StoryIndex()
    first = [index.add(i) for i in AVDIIVKA]
    assert index.add(AVDIIVKA[2]) == first[2]
    assert len(index) == 3


def nonsense(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(9))


def test_a_new_item_is_compared_only_with_items_sharing_its_terms() -> None:
    rng = random.Random(1)
    index = StoryIndex()
    for n in range(500):
        words = " ".join(nonsense(rng) for _ in range(6))
        index.add(item(f"noise-{n}", words.capitalize(), hours=n * 0.05))
    for i in AVDIIVKA[:2]:
        index.add(item(i.key, i.title, i.text, hours=25))
    before = index.comparisons
    assignment = index.add(item("nyt-1", AVDIIVKA[2].title, AVDIIVKA[2].text, hours=25.5))
    assert index.comparisons - before == 2  # the two Avdiivka items, none of the 500 others
    assert assignment.joined in {"kyiv-1", "bbc-1"}


def test_comparisons_per_item_are_bounded_however_full_the_window() -> None:
    rng = random.Random(3)
    index = StoryIndex()
    for n in range(2500):
        index.add(item(f"noise-{n}", f"{nonsense(rng)} {nonsense(rng)}", hours=n * 0.008))
    # One big story: its names in 100 items, rare enough in this window to be evidence, in
    # more items than a key's postings are counted over.
    for n in range(100):
        title = f"Avdiivka Syrskyi Pokrovsk {nonsense(rng)}"
        index.add(item(f"same-{n}", title, hours=20 + n * 0.01))
    before = index.comparisons
    index.add(item("last", "Avdiivka Syrskyi Pokrovsk latest", hours=21.5))
    assert 0 < index.comparisons - before <= POSTINGS_PER_TERM


def test_old_items_leave_the_index() -> None:
    index = StoryIndex(window=timedelta(hours=10))
    for n, i in enumerate(AVDIIVKA):
        index.add(item(i.key, i.title, i.text, hours=n * 6))
    assert len(index) == 2  # the first is 12 h older than the newest


def test_a_precomputed_idf_is_used_when_given() -> None:
    # A background where the Avdiivka names are in every document: they weigh nothing.
    common = item("bg", "Avdiivka Syrskyi Oleksandr Ukraine")
    rare = item("bg-2", "Unrelated words about cooking pasta")
    idf = build_idf([common] * 50 + [rare])
    assert idf["avdiiv"] < idf["cook"]
    assert cluster(AVDIIVKA, idf=idf)[1].joined is None
    assert cluster(AVDIIVKA, idf={})[1].joined == "kyiv-1"  # unknown words count as rare


@pytest.mark.parametrize("seed", range(5))
def test_shortcuts_before_building_vectors_change_no_decision(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small vocabulary with names, kickers and per-outlet boilerplate, dense in time, so
    # that many candidates come close to the threshold from both sides.
    rng = random.Random(seed)
    names = ["Avdiivka", "Syrskyi", "Kharkiv", "NATO", "Pokrovsk", "Odesa", "Зеленський"]
    words = [nonsense(rng) for _ in range(40)]
    items = []
    for n in range(300):
        title = " ".join(rng.sample(words, 4) + rng.sample(names, rng.randint(0, 2)))
        if rng.random() < 0.2:
            title = f"Live: {title}"
        source = f"feed-{n % 7}"
        text = " ".join(rng.sample(words, 8)) + f" The post appeared first on {source}."
        items.append(item(f"i{n}", title, text, hours=n * 0.1, source=source))
    pruned = cluster(items)
    # Without the evidence rule taken as met for candidates sharing a rare key or a name …
    found = StoryIndex._candidates

    def candidates_checked_in_full(self: StoryIndex, item: StoryItem, scorer: Any) -> Any:
        entries = found(self, item, scorer)
        scorer.evidence_met = frozenset()
        return entries

    monkeypatch.setattr(StoryIndex, "_candidates", candidates_checked_in_full)
    assert cluster(items) == pruned
    # … and without the upper bounds of the cosine.
    monkeypatch.setattr("aggregator.stories._Scorer.could_reach", lambda *_: True)
    assert cluster(items) == pruned
    assert sum(1 for a in pruned if a.joined) > 10  # the set does exercise joins


def test_read_keys_flags_where_an_item_has_each_key_and_how_it_writes_it() -> None:
    keys = read_keys(
        "Kremlin: Bank chief quits after sanctions",
        "The bank said on Monday that its chief, Ivanov, had resigned. Sanctions bit.",
    )
    assert keys.kicker == "kremlin"
    assert keys.flags["kreml"] == KICKER  # capitalised where a clause starts: the window says
    assert keys.flags["bank"] == TITLE | TEXT | COMMON  # "The bank" in running text
    assert keys.flags["ivanov"] == TEXT | NAMED  # capitalised mid-sentence
    assert keys.flags["sanct"] == TITLE | TEXT | COMMON
    assert keys.surfaces["bank"] == "Bank"


def test_stored_keys_read_back_as_they_were_in_the_same_order() -> None:
    keys = read_keys("Авдіївка: ЗСУ відходять", "Syrskyi said troops left Avdiivka overnight.")
    again = decode_keys(encode_keys(keys))
    assert list(again.flags.items()) == list(keys.flags.items())  # order: the same float sums
    assert again.kicker == keys.kicker
    for broken in ("", "[1, 2]", '{"a": 1}', "not json"):
        with pytest.raises(ValueError, match="not stored story keys"):
            decode_keys(broken)
