"""One user's memories for comparing the retrieval paths (hybrid_sql, caller_cache) with the separate
statements: several sectors and kinds, shared and rare words, a superseded memory and another user."""

from memories.search_backends import EVERYTHING, Scope

TEXTS = [
    "My dog Rex is afraid of thunder and hides under the bed",
    "I walk the dog every morning before work",
    "The dog food brand changed its recipe and Rex hates it",
    "I was double charged on my March invoice",
    "Please send invoices by email, not by post",
    "My sister Caroline lives in Lyon",
    "Caroline is coming to visit in May with her puppy",
    "I prefer email over phone calls",
    "Thunder storms scare me too, honestly",
    "The March invoice was refunded last week",
]
QUERIES = ["dog thunder", "March invoice refund", "Caroline puppy May", "email", "the of and", "zebra piano"]
SCOPES = [
    EVERYTHING,
    Scope.of(None, ("utterance", "fact", "note", "data_collection")),
    Scope.of(["episodic"]),
    Scope.of(["emotional", "semantic"], ("note",)),
]
