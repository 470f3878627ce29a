"""aggregator.subscribers: addresses, signed unsubscribe tokens, CSV imports, decisions."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.errors import AggregatorError, BadTokenError
from aggregator.models import Unsubscribe
from aggregator.subscribers import (
    MAX_TOKEN_LENGTH,
    TokenClaim,
    UnsubscribeOutcome,
    decide_unsubscribe,
    make_token,
    mask_address,
    new_nonce,
    normalise_address,
    parse_subscriber_csv,
    read_token,
    unsubscribe_links,
)

SECRET = b"0123456789abcdef-test-secret"
OTHER_SECRET = b"0123456789abcdef-other-secret"
TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-."
URL_SAFE = re.compile(r"[A-Za-z0-9_.-]+")

# ------------------------------------------------------------------ addresses


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("bob@example.org", "bob@example.org"),
        ("  Bob@Example.ORG \n", "bob@example.org"),
        ("first.last+tag@mail.example.co.uk", "first.last+tag@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("x@a-b.example", "x@a-b.example"),
    ],
)
def test_normalise_address_strips_and_lower_cases(raw: str, expected: str) -> None:
    assert normalise_address(raw) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("bob", "exactly one '@'"),
        ("bob@@example.org", "exactly one '@'"),
        ("a@b@example.org", "exactly one '@'"),
        ("@example.org", "nothing before"),
        ("bob@", "nothing after"),
        ("Bob <bob@example.org>", "spaces"),
        ("<bob@example.org>", "angle brackets"),
        ("bob smith@example.org", "spaces"),
        ("bob@exam ple.org", "spaces"),
        ("bob\x00@example.org", "control"),
        ('"bob"@example.org', "out of place"),
        (".bob@example.org", "out of place"),
        ("bob.@example.org", "out of place"),
        ("bo..b@example.org", "out of place"),
        ("bob@localhost", "no dot"),
        ("bob@gmail", "no dot"),
        ("bob@-example.org", "not a valid domain"),
        ("bob@example-.org", "not a valid domain"),
        ("bob@example..org", "not a valid domain"),
        ("bob@exa_mple.org", "not a valid domain"),
        ("bob@[127.0.0.1]", "not a valid domain"),
        ("bob@127.0.0.1", "IP-address"),
        ("bøb@example.org", "non-ASCII"),
        ("bob@exämple.org", "non-ASCII"),
        ("b" * 65 + "@example.org", "longer than 64"),
        ("bob@" + "a" * 64 + ".org", "not a valid domain"),
        ("bob@" + ".".join(["a" * 60] * 5) + ".org", "longer than 254"),
    ],
)
def test_normalise_address_says_why_it_refuses(raw: str, why: str) -> None:
    with pytest.raises(ValueError, match="is not an email address") as caught:
        normalise_address(raw)
    assert why in str(caught.value)
    assert "\n" not in str(caught.value)


def test_mask_address_hides_the_local_part_but_not_its_length() -> None:
    assert mask_address("bob@example.org") == "b***@example.org"
    assert mask_address("b@example.org") == "b***@example.org"
    assert mask_address("roberta.longname@example.org") == "r***@example.org"
    assert mask_address("nonsense") == "***"


# ------------------------------------------------------------------ tokens


def test_token_round_trips_and_is_url_safe() -> None:
    token = make_token(SECRET, "ukraine-daily", "bob@example.org", "n0nce-_x")

    assert URL_SAFE.fullmatch(token)
    assert "=" not in token
    assert read_token(SECRET, token) == TokenClaim("ukraine-daily", "bob@example.org", "n0nce-_x")


@given(
    digest_id=st.text(min_size=1).filter(lambda s: "\n" not in s),
    address=st.text(min_size=1).filter(lambda s: "\n" not in s),
    nonce=st.text(min_size=1, max_size=40).filter(lambda s: "\n" not in s),
)
def test_token_round_trips_whatever_it_carries(digest_id: str, address: str, nonce: str) -> None:
    token = make_token(SECRET, digest_id, address, nonce)
    assert URL_SAFE.fullmatch(token)
    assert read_token(SECRET, token) == TokenClaim(digest_id, address, nonce)


def test_token_is_deterministic_and_depends_on_every_field() -> None:
    base = make_token(SECRET, "d", "bob@example.org", "n1")
    assert make_token(SECRET, "d", "bob@example.org", "n1") == base
    others = {
        make_token(SECRET, "e", "bob@example.org", "n1"),
        make_token(SECRET, "d", "rob@example.org", "n1"),
        make_token(SECRET, "d", "bob@example.org", "n2"),
        make_token(OTHER_SECRET, "d", "bob@example.org", "n1"),
    }
    assert base not in others
    assert len(others) == 4


def test_changing_any_character_of_a_token_breaks_it() -> None:
    token = make_token(SECRET, "ukraine-daily", "bob@example.org", new_nonce())
    for i, original in enumerate(token):
        for replacement in TOKEN_ALPHABET:
            if replacement == original:
                continue
            tampered = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(BadTokenError):
                read_token(SECRET, tampered)


def test_truncated_or_extended_tokens_are_refused() -> None:
    token = make_token(SECRET, "d", "bob@example.org", "n1")
    for bad in (token[:-1], token[1:], token + "A", token + ".", "A" + token, token[:10]):
        with pytest.raises(BadTokenError):
            read_token(SECRET, bad)


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = make_token(OTHER_SECRET, "d", "bob@example.org", "n1")
    with pytest.raises(BadTokenError, match="signature"):
        read_token(SECRET, token)


def test_a_re_signed_payload_swap_is_refused() -> None:
    # Splicing one reader's signature onto another reader's payload must not work.
    bob = make_token(SECRET, "d", "bob@example.org", "n1").split(".")
    eve = make_token(SECRET, "d", "eve@example.org", "n1").split(".")
    with pytest.raises(BadTokenError):
        read_token(SECRET, ".".join([bob[0], eve[1], bob[2]]))


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "v1..",
        "v1.abc",
        "v2.ZA.AAAAAAAAAAAAAAAAAAAAAA",
        "v1.ZA.AAAAAAAAAAAAAAAAAAAAAA",
        "v1.Z+/=.AAAAAAAAAAAAAAAAAAAAAA",
        "v1.ZA.AAAAAAAAAAAAAAAAAAAAAA\n",
        "v1.ZA.ÄAAAAAAAAAAAAAAAAAAAAA",
        "v1." + "A" * MAX_TOKEN_LENGTH + ".AAAAAAAAAAAAAAAAAAAAAA",
        "<script>alert(1)</script>",
    ],
)
def test_malformed_tokens_raise_bad_token_error(garbage: str) -> None:
    with pytest.raises(BadTokenError) as caught:
        read_token(SECRET, garbage)
    assert isinstance(caught.value, AggregatorError)
    assert garbage == "" or garbage not in str(caught.value)


def test_a_validly_signed_but_incomplete_payload_is_refused() -> None:
    # Only someone holding the key could make one; read_token still must not crash on it.
    from aggregator.subscribers import _b64encode, _signature

    payload = _b64encode(b"only-two\nfields")
    with pytest.raises(BadTokenError, match="incomplete"):
        read_token(SECRET, f"v1.{payload}.{_signature(SECRET, payload)}")
    payload = _b64encode(b"\xff\xfe\nbob@example.org\nn1")
    with pytest.raises(BadTokenError, match="unreadable"):
        read_token(SECRET, f"v1.{payload}.{_signature(SECRET, payload)}")


def test_an_empty_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="AGGREGATOR_SECRET_KEY"):
        make_token(b"", "d", "bob@example.org", "n1")
    with pytest.raises(ValueError, match="AGGREGATOR_SECRET_KEY"):
        read_token(b"", "v1.ZA.AAAAAAAAAAAAAAAAAAAAAA")


@pytest.mark.parametrize(
    ("digest_id", "address", "nonce"),
    [("", "bob@example.org", "n"), ("d", "", "n"), ("d", "bob@example.org", ""), ("d\n", "a", "n")],
)
def test_make_token_refuses_empty_or_multi_line_fields(
    digest_id: str, address: str, nonce: str
) -> None:
    with pytest.raises(ValueError, match="non-empty and on one line"):
        make_token(SECRET, digest_id, address, nonce)


def test_new_nonces_are_url_safe_and_distinct() -> None:
    nonces = {new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{12}", n) for n in nonces)


# ------------------------------------------------------------------ nonce semantics


def test_re_subscribing_makes_the_old_link_stale_and_the_new_one_work() -> None:
    first, second = new_nonce(), new_nonce()
    old = read_token(SECRET, make_token(SECRET, "d", "bob@example.org", first))
    new = read_token(SECRET, make_token(SECRET, "d", "bob@example.org", second))

    # Stored subscription after re-subscribing: nonce ``second``, active.
    assert decide_unsubscribe(old, current_nonce=second, active=True) is UnsubscribeOutcome.STALE
    assert (
        decide_unsubscribe(new, current_nonce=second, active=True)
        is UnsubscribeOutcome.UNSUBSCRIBED
    )
    # The same link again, once unsubscribed: idempotent.
    assert decide_unsubscribe(new, current_nonce=second, active=False) is UnsubscribeOutcome.ALREADY
    # An old link after unsubscribing is still from another subscription.
    assert decide_unsubscribe(old, current_nonce=second, active=False) is UnsubscribeOutcome.STALE


def test_no_subscription_is_unknown() -> None:
    claim = TokenClaim("d", "bob@example.org", "n1")
    assert decide_unsubscribe(claim, current_nonce=None, active=False) is UnsubscribeOutcome.UNKNOWN


# ------------------------------------------------------------------ links


def test_unsubscribe_links() -> None:
    token = make_token(SECRET, "ukraine-daily", "bob@example.org", "n1")

    links = unsubscribe_links("https://news.test/", token, "digest@news.test", "ukraine-daily")

    assert links == Unsubscribe(
        url=f"https://news.test/unsubscribe?token={token}",
        mailto=f"mailto:digest@news.test?subject=unsubscribe%20ukraine-daily%20{token}",
    )
    assert unsubscribe_links("https://news.test/app/", token, None, "d") == Unsubscribe(
        url=f"https://news.test/app/unsubscribe?token={token}", mailto=None
    )


def test_unsubscribe_links_need_an_app_url_ending_in_a_slash() -> None:
    with pytest.raises(ValueError, match="must end with '/'"):
        unsubscribe_links("https://news.test", "t", None, "d")


# ------------------------------------------------------------------ CSV


def test_csv_with_a_named_email_column() -> None:
    text = "Name,E-Mail,Joined\nBob,Bob@Example.org,2024\nAnn,ann@example.org,2025\n"
    assert parse_subscriber_csv(text, "subs.csv") == ["bob@example.org", "ann@example.org"]


@pytest.mark.parametrize(
    "header", ["email", "EMAIL", "e-mail", "Email Address", "email_address", "Address", "mail"]
)
def test_csv_address_column_names(header: str) -> None:
    text = f"name,{header}\nBob,bob@example.org\n"
    assert parse_subscriber_csv(text, "s.csv") == ["bob@example.org"]


def test_csv_without_a_header_uses_the_first_column() -> None:
    text = "bob@example.org,Bob\r\nann@example.org,Ann\r\n"
    assert parse_subscriber_csv(text, "s.csv") == ["bob@example.org", "ann@example.org"]


def test_csv_skips_blank_lines_and_duplicates_and_a_bom() -> None:
    text = "\ufeffemail\n\nbob@example.org\n  \n,,\nBOB@example.org\nann@example.org\n\n"
    assert parse_subscriber_csv(text, "s.csv") == ["bob@example.org", "ann@example.org"]


def test_csv_empty_file_is_no_one() -> None:
    assert parse_subscriber_csv("", "s.csv") == []
    assert parse_subscriber_csv("email\n", "s.csv") == []


def test_csv_lists_every_bad_line_with_its_number() -> None:
    text = (
        "name,email\n"  # 1
        "Bob,bob@example.org\n"  # 2
        "Ann,ann\n"  # 3
        "\n"  # 4
        '"Multi\nline",carl@example.org\n'  # 5-6
        "Dee,\n"  # 7
        "Eve,Eve <eve@example.org>\n"  # 8
    )
    with pytest.raises(ValueError, match="is not an email address") as caught:
        parse_subscriber_csv(text, "subs.csv")

    lines = str(caught.value).splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        "subs.csv:3",
        "subs.csv:7",
        "subs.csv:8",
    ]
    assert lines[0].startswith("subs.csv:3: 'ann' is not an email address")
    assert lines[1].startswith("subs.csv:7: '' is not an email address")
    assert lines[2].startswith("subs.csv:8: 'Eve <eve@example.org>' is not an email address")


def test_csv_first_row_that_is_neither_header_nor_address_is_reported() -> None:
    with pytest.raises(ValueError, match=r"^s\.csv:1: 'Name' is not an email address"):
        parse_subscriber_csv("Name,Contact\nbob@example.org,x\n", "s.csv")


def test_csv_problem_lines_stay_one_line_each() -> None:
    with pytest.raises(ValueError, match="is not an email address") as caught:
        parse_subscriber_csv('"a\x0bb",x\nc\td@example.org\n', "s.csv")
    assert len(str(caught.value).splitlines()) == 2
