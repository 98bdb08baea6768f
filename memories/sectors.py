"""The five memory sectors (from OpenMemory): the enum, their decay, the one validator and the one guesser.

Sectors given from outside (the API, the tool, an LLM's answer) go through `parse_sectors` once, where they
enter; sectors nobody gave are guessed by `guess_sectors`, for a query and for a memory alike.
"""

import re
from dataclasses import dataclass

from django.db import models


class Sector(models.TextChoices):
    EPISODIC = "episodic", "episodic (events, what happened)"
    SEMANTIC = "semantic", "semantic (facts, preferences)"
    PROCEDURAL = "procedural", "procedural (how to, routines)"
    EMOTIONAL = "emotional", "emotional (feelings)"
    REFLECTIVE = "reflective", "reflective (beliefs, goals, insights)"


# Salience lost per day without access, by sector (OpenMemory's rates).
DECAY_PER_DAY = {
    Sector.EPISODIC: 0.015,
    Sector.SEMANTIC: 0.005,
    Sector.PROCEDURAL: 0.008,
    Sector.EMOTIONAL: 0.020,
    Sector.REFLECTIVE: 0.001,
}

SECTOR_PATTERNS: dict[str, list[tuple[re.Pattern, float]]] = {
    sector: [(re.compile(pattern, re.IGNORECASE), weight) for pattern, weight in patterns]
    for sector, patterns in {
        Sector.EPISODIC: [
            (r"\b(yesterday|today|tonight|last (week|month|year|time|call|night)|ago|earlier)\b", 2.0),
            (r"\b(when did|what happened|remember when|happened|went|visited|met|called|trip|meeting)\b", 1.5),
            (r"\b(on (monday|tuesday|wednesday|thursday|friday|saturday|sunday)|this (morning|week))\b", 1.5),
            (r"\b(appointment|event|incident|order(ed)?|delivered|booked)\b", 1.0),
        ],
        Sector.SEMANTIC: [
            (r"\b(prefer(s|red|ence|ences)?|favou?rite|likes?|dislikes?)\b", 1.5),
            (r"\b(my|his|her|their) (name|address|email|phone|number|account|birthday|plan|job|company)\b", 2.0),
            (r"\b(lives? in|works? (at|for|as)|is allergic|allerg(y|ic)|owns?|has a)\b", 1.5),
            (r"\b(contact|details|info(rmation)?)\b", 1.0),
            (r"\b(what is|who is|which|fact|billing|subscription|crm)\b", 1.0),
        ],
        Sector.PROCEDURAL: [
            (r"\b(how (do|to|can|should)|steps?|process|procedure|instructions?|guide)\b", 2.0),
            (r"\b(set ?up|install|configure|reset|troubleshoot|fix|workaround)\b", 1.5),
            (r"\b(usually|always|routine|every (day|week|morning|time))\b", 1.0),
        ],
        Sector.EMOTIONAL: [
            (r"\b(feel(s|ing)?|felt|emotion(al)?|mood)\b", 2.0),
            (r"\b(love[sd]?|hate[sd]?|angry|frustrat\w*|upset|happy|sad|worried|anxious|excited|annoy\w*)\b", 1.5),
            (r"\b(disappoint\w*|scared|afraid|stress\w*|grateful|thrilled|lonely|proud)\b", 1.5),
        ],
        Sector.REFLECTIVE: [
            (r"\b(i think|believe[sd]?|realiz\w*|realis\w*|learn(ed|t)|insight|lesson|reflect\w*)\b", 2.0),
            (r"\b(goals?|values?|dreams?|aspir\w*|want to (become|be)|why (do|did) i|priorit\w*)\b", 1.5),
        ],
    }.items()
}


EXTRA_SECTORS_GUESSED = 2  # a memory gets its best guess as primary sector and up to two more


class SectorError(ValueError):
    """A sector name that is not one of the five; the message lists them."""


def parse_sectors(values: object) -> list[Sector]:
    """Sector names (a list, or one comma-separated string as an LLM tends to send) as Sectors, deduplicated in
    order; case and spaces are forgiven. Raises SectorError for anything else."""
    if values in (None, "", []):
        return []
    if isinstance(values, str):
        values = [part for part in values.split(",") if part.strip()]
    if not isinstance(values, list | tuple) or not all(isinstance(value, str) for value in values):
        raise SectorError("sectors must be a list of sector names")
    parsed = []
    for value in values:
        name = value.strip().lower()
        if name not in Sector.values:
            raise SectorError(f"unknown sector '{value}'; use one of: {', '.join(Sector.values)}")
        parsed.append(Sector(name))
    return list(dict.fromkeys(parsed))


@dataclass(frozen=True)
class SectorGuess:
    sectors: list[str]  # best first; empty when nothing matched
    confidence: float  # 0..1: the best sector's share of the matched weight, scaled by how much matched

    @property
    def primary(self) -> str:
        return self.sectors[0] if self.sectors else Sector.SEMANTIC

    @property
    def extras(self) -> list[str]:
        """The runners-up a memory also belongs to (never the primary)."""
        return self.sectors[1 : 1 + EXTRA_SECTORS_GUESSED]


def guess_sectors(text: str) -> SectorGuess:
    """Guess the sectors a query (or a memory) is about from cheap word patterns.

    Returns the matching sectors best first, and a confidence in [0, 1]; no match gives no sectors and
    confidence 0 (callers then search every sector). Explicit sectors from the caller always win over this.
    """
    scores = {
        sector: sum(weight for pattern, weight in patterns if pattern.search(text))
        for sector, patterns in SECTOR_PATTERNS.items()
    }
    matched = sorted(((score, sector) for sector, score in scores.items() if score > 0), reverse=True)
    if not matched:
        return SectorGuess(sectors=[], confidence=0.0)
    total = sum(score for score, _ in matched)
    best = matched[0][0]
    confidence = (best / total) * min(1.0, best / 3.0)
    return SectorGuess(sectors=[str(sector) for _, sector in matched], confidence=round(confidence, 3))
