"""Node tags: key/value metadata in member records. They round-trip through the codec,
decoding refuses anything over the limits, the settings parse them (or say what does not
parse), a member's newer life brings its new tags, and /members shows them."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from gossip.clock import Timestamp
from gossip.codec import Codec
from gossip.config import MEMBER_WIRE_BYTES, Config
from gossip.errors import ConfigError, MalformedMessage
from gossip.membership import MAX_TAGS, MAX_TAGS_BYTES, MemberInfo, Membership, tags_problem
from gossip.messages import Exchange, Reply
from gossip.protocol import GossipProtocol
from node.server.settings import Settings
from node.web.app import create_app
from tests.inprocess import serving

CODEC = Codec(Config(cluster_id="tags"))
ME = MemberInfo("n1", "http://127.0.0.1:8001", 1, 0, tags=(("role", "api"), ("zone", "a")))

text = st.characters(blacklist_categories=("Cs",))  # any character a message can carry
tag_sets = st.dictionaries(st.text(text, min_size=1, max_size=12), st.text(text, max_size=20),
                           max_size=MAX_TAGS).filter(lambda tags: tags_problem(tags) is None)


@examples(max_examples=40)
@given(tag_sets)
def test_tags_round_trip_in_the_sender_and_the_view(tags: dict[str, str]) -> None:
    member = MemberInfo("n2", "http://127.0.0.1:8002", 5, 7, tags=tuple(sorted(tags.items())))
    message = Reply(ME, {}, (ME, member), ())
    decoded = CODEC.decode(CODEC.encode(message))
    assert decoded == message
    assert isinstance(decoded, Reply) and dict(decoded.members[1].tags) == tags


def test_a_member_without_tags_keeps_the_five_item_record() -> None:
    plain = MemberInfo("n1", "a", 1, 0)
    body = json.loads(CODEC.encode(Exchange(plain, {}, (plain, ME), ())))
    assert body["sender"] == ["n1", "a", 1, 0, 0]
    assert body["members"][1] == ["n1", "http://127.0.0.1:8001", 1, 0, 0, {"role": "api", "zone": "a"}]


def _with_sender_record(record: list[Any]) -> bytes:
    body = json.loads(CODEC.encode(Exchange(ME, {}, (), ())))
    body["sender"] = record
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("tags", "says"),
    [
        ({f"k{i}": "v" for i in range(MAX_TAGS + 1)}, f"at most {MAX_TAGS} tags"),
        ({"k": "v" * 257}, "at most 256 characters"),
        ({"k" * 65: "v"}, "1 to 64 characters"),
        ({"": "v"}, "1 to 64 characters"),
        ({"k": 1}, "must be text"),
        ({"k": None}, "must be text"),
        ({f"k{i}": "v" * 60 for i in range(9)}, f"the limit is {MAX_TAGS_BYTES}"),
        ({}, "an empty tag object"),
        (["k", "v"], "must be an object"),
    ],
)
def test_decoding_refuses_tags_over_the_limits(tags: object, says: str) -> None:
    with pytest.raises(MalformedMessage, match="sender tags") as caught:
        CODEC.decode(_with_sender_record(["n1", "a", 1, 0, 0, tags]))
    assert says in str(caught.value)


def test_decoding_refuses_a_record_of_another_length() -> None:
    with pytest.raises(MalformedMessage, match="5 items, or 6 with tags, got 7"):
        CODEC.decode(_with_sender_record(["n1", "a", 1, 0, 0, {"k": "v"}, 1]))


def test_the_largest_member_fits_its_share_of_a_message() -> None:
    """MEMBER_WIRE_BYTES covers a member with the longest id, address and tags allowed
    (its record in the view, plus its digest entry)."""
    tags = {f"t{i:02}": "x" * ((MAX_TAGS_BYTES - 2 - MAX_TAGS * 9) // MAX_TAGS) for i in range(MAX_TAGS)}
    largest = MemberInfo("i" * 256, "a" * 256, 2**53 - 1, 2**53 - 1, True, tuple(sorted(tags.items())))
    assert len(json.dumps(tags, separators=(",", ":"))) <= MAX_TAGS_BYTES
    one = CODEC.encode(Reply(ME, {}, (), ()))
    digest = {"w" * 256: Timestamp(2**53 - 1, 2**53 - 1)}
    two = CODEC.encode(Reply(ME, digest, (largest,), ()))
    assert len(two) - len(one) <= MEMBER_WIRE_BYTES


def test_a_newer_life_brings_its_tags() -> None:
    view = Membership(MemberInfo("me", "m", 1, 0), Config.for_tests())
    view.merge([MemberInfo("n2", "b", 1, 3, tags=(("zone", "a"),))], 1_000)
    view.merge([MemberInfo("n2", "b", 2, 0, tags=(("zone", "b"),))], 2_000)
    assert view.members["n2"].info.tags == (("zone", "b"),)


def test_a_node_keeps_its_tags_through_rounds_and_leave() -> None:
    node = GossipProtocol(Config.for_tests(), "n1", "a", random.Random(0), 1_000, tags={"zone": "a"})
    node.round(1_100)
    node.leave()
    assert node.membership.me.tags == (("zone", "a"),) and node.membership.me.left


def test_settings_parse_tags_from_the_environment_and_flags() -> None:
    flags, env = ["--tag", "role=worker", "--tag", "rack=r2"], {"GOSSIP_TAGS": "zone=a, role=api"}
    settings = Settings.parse(flags, env)
    assert dict(settings.tags) == {"zone": "a", "role": "worker", "rack": "r2"}  # a flag wins
    assert Settings.parse([], {}).tags == ()


@pytest.mark.parametrize(
    ("argv", "env", "says"),
    [
        (["--tag", "zone"], {}, "'zone' is not name=value"),
        ([], {"GOSSIP_TAGS": "zone=a,=b"}, "'=b' is not name=value"),
        ([], {"GOSSIP_TAGS": ",".join(f"k{i}=v" for i in range(MAX_TAGS + 1))}, f"at most {MAX_TAGS} tags"),
    ],
)
def test_unparsable_tags_are_a_config_error_naming_them(argv: list[str], env: dict[str, str],
                                                        says: str) -> None:
    with pytest.raises(ConfigError, match="'tags'") as caught:
        Settings.parse(argv, env)
    assert says in str(caught.value)


@pytest.mark.anyio
async def test_members_shows_each_nodes_tags() -> None:
    app = create_app(Settings(node_id="solo", tags=(("zone", "a"),), config=Config.for_tests()))
    async with serving(app) as client:
        (me,) = (await client.get("/members")).json()["members"]
        assert me["tags"] == {"zone": "a"}
