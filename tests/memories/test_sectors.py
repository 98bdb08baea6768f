import pytest

from memories.sectors import DECAY_PER_DAY, Sector, SectorError, guess_sectors, parse_sectors
from memories.services import MemoryInputError, NewMemory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What happened on the call last week?", Sector.EPISODIC),
        ("What is my account number and email address?", Sector.SEMANTIC),
        ("How do I reset my router, step by step?", Sector.PROCEDURAL),
        ("I felt really frustrated and upset about the outage", Sector.EMOTIONAL),
        ("I realized my goal is to retire early; I think family is what I value", Sector.REFLECTIVE),
        ("Does she prefer email or phone?", Sector.SEMANTIC),
    ],
)
def test_patterns_pick_the_sector(text, expected):
    guess = guess_sectors(text)
    assert guess.primary == expected
    assert guess.sectors[0] == expected
    assert 0 < guess.confidence <= 1


def test_no_match_means_no_sectors_and_zero_confidence():
    guess = guess_sectors("xyzzy plugh")
    assert guess.sectors == []
    assert guess.confidence == 0
    assert guess.primary == Sector.SEMANTIC  # the default sector for storing, never a search filter


def test_a_clear_query_is_more_confident_than_a_mixed_one():
    clear = guess_sectors("How do I set up and configure it, step by step?")
    mixed = guess_sectors("How did I feel yesterday?")
    assert clear.confidence > mixed.confidence
    assert len(mixed.sectors) >= 2


def test_decay_rates_are_the_designed_ones():
    assert DECAY_PER_DAY == {
        "episodic": 0.015,
        "semantic": 0.005,
        "procedural": 0.008,
        "emotional": 0.020,
        "reflective": 0.001,
    }


def test_sectors_from_outside_are_parsed_once_with_a_readable_error():
    assert parse_sectors(" Episodic, semantic,episodic") == [Sector.EPISODIC, Sector.SEMANTIC]
    assert parse_sectors(None) == parse_sectors("") == []
    with pytest.raises(SectorError, match="unknown sector 'gossip'; use one of: episodic, semantic"):
        parse_sectors(["gossip"])
    with pytest.raises(SectorError, match="must be a list"):
        parse_sectors([1, 2])
    with pytest.raises(MemoryInputError, match="unknown sector 'gossip'"):
        NewMemory("I like tea", sector="gossip")


def test_a_memory_without_sectors_gets_the_guessed_primary_and_runners_up():
    item = NewMemory("I felt frustrated yesterday when the invoice was wrong")
    item.guess_missing_sectors()
    guess = guess_sectors(item.text)
    assert item.sector == guess.primary and item.extra_sectors == guess.extras
    assert item.extra_sectors and item.sector not in item.extra_sectors
