"""Export and import: the formats, the path of a bad field, the tree checks, and the
round trip export → import on random trees."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.transfer import (
    ExportConversations,
    ExportConversationsRequest,
    ImportConversations,
    ImportConversationsRequest,
)
from domain.conversation import TITLE_MAX_CHARS, ConversationStatus, MessageRole, MessageStatus
from domain.errors import NotFound
from domain.transfer import (
    ExportFormat,
    InvalidImport,
    parse_chatgpt,
    parse_import,
)
from tests.unit.in_memory import EPOCH, FakeClock, FakeModelCatalog, FakeUnitOfWork

ALICE, BOB = 1, 2
FIXTURE = Path(__file__).parents[1] / "fixtures" / "chatgpt" / "conversations.json"


def _message(
    id_: int, parent: int | None, *, on_branch: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "id": id_,
        "parent_id": parent,
        "role": "user" if id_ % 2 else "assistant",
        "content": f"message {id_}",
        "created_at": "2024-05-01T10:00:00+00:00",
        "on_current_branch": on_branch,
    } | extra


def _document(*conversations: dict[str, Any]) -> dict[str, Any]:
    return {"format": "parley-conversations", "version": 1, "conversations": list(conversations)}


def _conversation(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "title": "Imported",
        "created_at": "2024-05-01T10:00:00+00:00",
        "messages": messages,
    } | extra


def _errors(document: object) -> dict[str, list[str]]:
    with pytest.raises(InvalidImport) as refused:
        parse_import(document)
    return refused.value.field_errors


def test_a_bad_field_is_named_by_its_path() -> None:
    messages = [_message(1, None), _message(2, 1, role="robot")]
    errors = _errors(_document(_conversation([]), _conversation(messages)))
    assert list(errors) == ["conversations[1].messages[1].role"]
    assert "user" in errors["conversations[1].messages[1].role"][0]


def test_every_bad_field_is_reported_at_once() -> None:
    messages = [_message(1, None, content=5, surprise=True), _message(2, 1, created_at="today")]
    errors = _errors(_document(_conversation(messages, title=None)))
    assert set(errors) == {
        "conversations[0].title",
        "conversations[0].messages[0].content",
        "conversations[0].messages[0].surprise",
        "conversations[0].messages[1].created_at",
    }


def test_the_document_must_say_its_format_and_version() -> None:
    errors = _errors({"format": "something-else", "version": 2, "conversations": []})
    assert set(errors) == {"format", "version"}
    assert "non_field_errors" in _errors("a string")


def test_a_dangling_parent_is_refused() -> None:
    errors = _errors(_document(_conversation([_message(1, None), _message(2, 7)])))
    assert list(errors) == ["conversations[0].messages[1].parent_id"]


def test_a_parent_in_another_conversation_is_dangling() -> None:
    first = _conversation([_message(1, None)])
    second = _conversation([_message(2, 1)])
    assert list(_errors(_document(first, second))) == ["conversations[1].messages[0].parent_id"]


def test_a_cycle_is_refused() -> None:
    messages = [_message(1, None), _message(2, 3), _message(3, 2)]
    errors = _errors(_document(_conversation(messages)))
    assert set(errors) == {
        "conversations[0].messages[1].parent_id",
        "conversations[0].messages[2].parent_id",
    }


def test_a_duplicate_id_is_refused() -> None:
    errors = _errors(_document(_conversation([_message(1, None), _message(1, None)])))
    assert list(errors) == ["conversations[0].messages[1].id"]


def test_the_current_branch_must_be_one_path() -> None:
    siblings = [_message(1, None), _message(2, 1), _message(4, 1)]
    errors = _errors(_document(_conversation(siblings)))
    assert list(errors) == ["conversations[0].messages[2].on_current_branch"]
    broken = [_message(1, None, on_branch=False), _message(2, 1)]
    errors = _errors(_document(_conversation(broken)))
    assert list(errors) == ["conversations[0].messages[1].on_current_branch"]


def test_a_parent_later_in_the_file_is_stored_first() -> None:
    messages = [_message(2, 1), _message(1, None)]
    (conversation,) = parse_import(_document(_conversation(messages)))
    assert [m.content for m in conversation.messages] == ["message 1", "message 2"]
    assert [m.parent for m in conversation.messages] == [None, 0]


def test_none_marked_makes_the_newest_message_current() -> None:
    messages = [_message(1, None, on_branch=False), _message(2, 1, on_branch=False)]
    messages.append(_message(3, 1, on_branch=False))
    (conversation,) = parse_import(_document(_conversation(messages)))
    assert [m.on_branch for m in conversation.messages] == [True, False, True]


def test_a_title_over_the_limit_is_refused_and_long_text_is_kept() -> None:
    long_title = _conversation([], title="t" * (TITLE_MAX_CHARS + 1))
    assert list(_errors(_document(long_title))) == ["conversations[0].title"]
    history = _conversation([_message(1, None, content="字" * 50_000)])
    (conversation,) = parse_import(_document(history))
    assert len(conversation.messages[0].content) == 50_000


def test_nul_is_refused_and_a_streaming_reply_arrives_interrupted() -> None:
    nul = _conversation([_message(1, None, content="a\x00b")])
    assert list(_errors(_document(nul))) == ["conversations[0].messages[0].content"]
    streaming = _conversation([_message(1, None), _message(2, 1, status="streaming")])
    (conversation,) = parse_import(_document(streaming))
    assert conversation.messages[1].status is MessageStatus.INTERRUPTED


def test_imported_conversations_arrive_closed() -> None:
    (conversation,) = parse_import(_document(_conversation([], status="active")))
    assert conversation.to_store(ALICE, model=None).status is ConversationStatus.CLOSED


# -- ChatGPT ---------------------------------------------------------------------------


def test_chatgpt_export_keeps_its_branches_and_current_node() -> None:
    first, _second = parse_chatgpt(json.loads(FIXTURE.read_text()))
    contents = [m.content for m in first.messages]
    # The root, the hidden system message and the empty assistant placeholders go.
    assert len(contents) == 5
    assert [m.role for m in first.messages].count(MessageRole.USER) == 2
    by_text = {m.content: m for m in first.messages}
    edited = next(m for m in first.messages if "what breaks" in m.content)
    original = next(
        m for m in first.messages if m.content.startswith("What does") and m is not edited
    )
    # The edited question is a sibling of the first: both are first messages.
    assert edited.parent is None
    assert original.parent is None
    current = [m.content for m in first.messages if m.on_branch]
    assert current == [edited.content, next(c for c in by_text if c.startswith("It runs"))]
    regenerated = next(m for m in first.messages if m.content.startswith("A regenerated"))
    assert regenerated.model == "gpt-4o-mini"
    assert not regenerated.on_branch
    assert first.messages[regenerated.parent or 0] is edited
    # Parents are stored before their children, though ChatGPT's times say otherwise.
    assert all(m.parent is None or m.parent < i for i, m in enumerate(first.messages))
    assert first.title == "What the .NET Desktop Runtime is for"
    assert first.created_at == datetime.fromtimestamp(1749968327.886819, UTC)


def test_chatgpt_tool_calls_thoughts_and_images_are_left_out() -> None:
    _, second = parse_chatgpt(json.loads(FIXTURE.read_text()))
    assert [(m.role, m.content) for m in second.messages] == [
        (MessageRole.USER, "Plot the numbers in this picture."),
        (
            MessageRole.ASSISTANT,
            "Here is the plot of 1, 2, 3, 5, 8: it grows like the Fibonacci numbers.",
        ),
    ]
    assert second.messages[1].parent == 0
    assert second.messages[1].model == "o3"
    assert len(second.title) == TITLE_MAX_CHARS
    assert second.title.endswith("…")
    assert second.archived_at is not None


def test_chatgpt_bad_fields_are_named_by_path() -> None:
    document = json.loads(FIXTURE.read_text())
    node = next(iter(document[1]["mapping"].values()))
    document[1]["mapping"]["orphan"] = {"id": "orphan", "parent": "nowhere", "message": None}
    node_key = next(k for k in document[0]["mapping"] if k != "client-created-root")
    document[0]["mapping"][node_key]["message"]["author"]["role"] = 3
    assert node["id"] == "client-created-root"
    errors = _errors(document)
    assert set(errors) == {
        f"[0].mapping.{node_key}.message.author.role",
        "[1].mapping.orphan.parent",
    }


def test_chatgpt_cycle_is_refused() -> None:
    mapping = {
        "a": {"id": "a", "parent": "b", "message": None},
        "b": {"id": "b", "parent": "a", "message": None},
    }
    errors = _errors([{"title": "x", "mapping": mapping, "current_node": None}])
    assert set(errors) == {"[0].mapping.a.parent", "[0].mapping.b.parent"}


# -- use cases -------------------------------------------------------------------------


def _seed_tree(uow: FakeUnitOfWork, owner: int, shape: list[int | None], title: str) -> int:
    """A conversation whose message i has parent ``shape[i]`` (an index), the newest
    message's path current."""
    conversation = uow.seed_conversation(owner, title=title, model="fake-small")
    ids: list[int] = []
    for i, parent in enumerate(shape):
        message = uow.seed_message(
            conversation.id,
            f"text {i}",
            role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
            when=EPOCH + timedelta(minutes=i),
            parent_id=None if parent is None else ids[parent],
            on_branch=False,
            prompt_tokens=i,
        )
        ids.append(message.id)
    leaf: int | None = len(shape) - 1 if shape else None
    while leaf is not None:
        uow.state.messages[ids[leaf]].on_branch = True
        leaf = shape[leaf]
    return conversation.id


async def _export(uow: FakeUnitOfWork, owner: int, fmt: ExportFormat, **extra: Any) -> str:
    export = ExportConversations(uow, FakeClock(), page_size=3)
    result = await export(ExportConversationsRequest(owner_id=owner, format=fmt, **extra))
    return "".join([chunk async for chunk in result.chunks])


def _shape(uow: FakeUnitOfWork, conversation_id: int) -> list[tuple[Any, ...]]:
    messages = uow.state.tree_of(conversation_id)
    position = {m.id: i for i, m in enumerate(messages)}
    return [
        (m.role, m.content, m.model, m.prompt_tokens, m.on_branch, position.get(m.parent_id or -1))
        for m in messages
    ]


trees = st.lists(st.integers(min_value=0, max_value=50), max_size=12).map(
    lambda picks: [None if i == 0 or pick % 5 == 0 else pick % i for i, pick in enumerate(picks)]
)


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(trees, min_size=1, max_size=4))
def test_export_then_import_gives_the_same_trees(shapes: list[list[int | None]]) -> None:
    uow = FakeUnitOfWork()
    originals = [_seed_tree(uow, ALICE, shape, f"title {i}") for i, shape in enumerate(shapes)]
    uow.seed_conversation(BOB, title="not alice's")
    text = asyncio.run(_export(uow, ALICE, ExportFormat.JSON))
    target = FakeUnitOfWork()
    target.seed_user("bob")
    importer = ImportConversations(target, FakeModelCatalog(["fake-small"]))
    imported = asyncio.run(
        importer(ImportConversationsRequest(owner_id=BOB, document=json.loads(text)))
    )
    assert [i.title for i in imported] == [f"title {i}" for i in range(len(shapes))]
    for original, copy in zip(originals, imported, strict=True):
        assert _shape(target, copy.id) == _shape(uow, original)
        stored = target.state.conversations[copy.id]
        assert stored.owner_id == BOB
        assert stored.status is ConversationStatus.CLOSED
        assert stored.model == "fake-small"
        branched = len({m.parent_id for m in target.state.tree_of(copy.id)}) < len(
            target.state.tree_of(copy.id)
        )
        assert (copy.id in target.state.branched) == branched


async def test_a_bad_file_stores_nothing(uow: FakeUnitOfWork) -> None:
    good = _conversation([_message(1, None)])
    bad = _conversation([_message(1, None), _message(2, 1, role="robot")])
    importer = ImportConversations(uow, FakeModelCatalog())
    with pytest.raises(InvalidImport):
        await importer(ImportConversationsRequest(owner_id=ALICE, document=_document(good, bad)))
    assert uow.committed.conversations == {}
    assert uow.committed.messages == {}


async def test_a_model_this_parley_does_not_serve_is_dropped(uow: FakeUnitOfWork) -> None:
    importer = ImportConversations(uow, FakeModelCatalog(["fake-small"]))
    document = _document(_conversation([_message(1, None, model="gpt-4o")], model="gpt-4o"))
    (imported,) = await importer(ImportConversationsRequest(owner_id=ALICE, document=document))
    assert uow.committed.conversations[imported.id].model is None
    assert uow.committed.tree_of(imported.id)[0].model == "gpt-4o"


async def test_another_users_conversation_is_not_found(uow: FakeUnitOfWork) -> None:
    theirs = _seed_tree(uow, BOB, [None, 0], "bob's")
    with pytest.raises(NotFound):
        await _export(uow, ALICE, ExportFormat.JSON, conversation_id=theirs)


async def test_markdown_shows_the_current_branch_only(uow: FakeUnitOfWork) -> None:
    conversation_id = _seed_tree(uow, ALICE, [None, 0, 0, 2], "Branches")
    text = await _export(uow, ALICE, ExportFormat.MARKDOWN, conversation_id=conversation_id)
    assert text.startswith("# Branches\n")
    assert "text 0" in text
    assert "text 2" in text
    assert "text 3" in text
    assert "text 1" not in text
    assert text.index("text 0") < text.index("text 2") < text.index("text 3")


async def test_an_export_is_read_page_by_page(uow: FakeUnitOfWork) -> None:
    for i in range(7):
        _seed_tree(uow, ALICE, [None, 0, 1, 2], f"c{i}")
    text = await _export(uow, ALICE, ExportFormat.JSON)
    document = json.loads(text)
    assert [c["title"] for c in document["conversations"]] == [f"c{i}" for i in range(7)]
    assert all(len(c["messages"]) == 4 for c in document["conversations"])
    # Every page was read in a transaction of its own, none left open.
    assert not uow.in_transaction
