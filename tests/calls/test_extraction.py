"""What a finished call leaves behind: every caller turn in their own words, then what the call adds."""

from datetime import UTC, datetime, timedelta

import pytest

from calls.extraction import carries_nothing, extract_memories_from_transcript, utterance_chunks
from memories.models import Memory
from testkit.elevenlabs import transcription_payload

START = datetime.fromtimestamp(1795000000, UTC)


def data(*lines: str, **options) -> dict:
    return transcription_payload(caller_lines=lines, **options)["data"]


def test_every_caller_turn_with_content_is_kept_verbatim_with_when_it_was_said():
    items = extract_memories_from_transcript(
        data("They were awestruck and humbled.", "Okay, thanks!", "My sister lives in Oslo", summary=None)
    )
    utterances = [item for item in items if item.kind == Memory.Kind.UTTERANCE]
    assert [item.text for item in utterances] == ["They were awestruck and humbled.", "My sister lives in Oslo"]
    transcript = transcription_payload(caller_lines=("They were awestruck and humbled.",))["data"]["transcript"]
    assert utterances[0].source_turns == [1] and transcript[1]["message"] == "They were awestruck and humbled."
    assert utterances[0].occurred_at == START + timedelta(seconds=3)
    assert utterances[1].occurred_at == START + timedelta(seconds=23)
    assert all(item.source_conversation_id == "conv_01jz8k2m3n4p5q6r7s8t9v0w1x" for item in items)


@pytest.mark.parametrize(
    ("text", "nothing"),
    [
        ("ok", True),
        ("Okay, thanks!", True),
        ("Yeah, sure. Bye!", True),
        ("Hmm...", True),
        ("Hi Jo", False),
        ("No, the red one", False),
        ("Thanks for the soup recipe", False),
        ("Ja", False),
    ],
)
def test_only_courtesies_and_fillers_carry_nothing(text, nothing):
    assert carries_nothing(text) is nothing


def test_a_long_turn_is_cut_between_sentences_and_nothing_is_lost():
    sentence = "This is sentence number {} of a very long story about my garden and my tomatoes."
    turn = " ".join(sentence.format(index) for index in range(150))  # about 12,000 characters
    chunks = utterance_chunks(turn, limit=1000)
    assert all(len(chunk) <= 1000 for chunk in chunks) and len(chunks) >= 12
    assert " ".join(chunks) == turn
    assert all(chunk.endswith(".") for chunk in chunks)
    words = "word " * 400
    assert " ".join(utterance_chunks(words, limit=100)) == words.strip(), "one long sentence: cut between words"
    items = extract_memories_from_transcript(data(turn, summary=None))
    assert len([item for item in items if item.kind == Memory.Kind.UTTERANCE]) == len(chunks)


def test_derived_memories_point_to_the_callers_turns_and_are_dated_at_the_call():
    items = extract_memories_from_transcript(data("I prefer email.", "Please send the invoice."))
    summary = next(item for item in items if item.kind == Memory.Kind.SUMMARY)
    collected = next(item for item in items if item.kind == Memory.Kind.DATA)
    assert summary.text.startswith("Call on 2026-11-18: The caller reported")
    assert summary.source_turns == [1, 5] and summary.occurred_at == START
    assert collected.text == "preferred contact channel: email" and collected.source_turns == [1, 5]


def test_non_english_and_symbols_are_kept_as_said():
    items = extract_memories_from_transcript(data("私は猫が好きです", "¿Dónde está mi pedido?", "🙂👍", summary=None))
    assert [item.text for item in items if item.kind == Memory.Kind.UTTERANCE] == [
        "私は猫が好きです",
        "¿Dónde está mi pedido?",
    ], "a turn without a single word (a reaction) carries nothing"
