"""OpenAPI postprocessing: every operation of the operator API documents its error answers.

drf-spectacular documents what a view returns when all goes well; the errors every endpoint may give (a
request that does not validate, no credentials, no permission, too many requests, the database or the
provider away) are added here once, with the JSON body they all share.
"""

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in one line a person can read."},
        "errors": {
            "type": "object",
            "additionalProperties": True,
            "description": "For a request that did not validate: the messages by field.",
        },
    },
    "required": ["detail"],
}
COMMON_ERRORS = {
    "401": "No credentials, or wrong ones.",
    "403": "Not a staff user.",
    "429": "Too many requests; retry after the number of seconds in Retry-After.",
    "503": "The database or the embedding provider is unavailable; retry shortly.",
}
BAD_REQUEST = {"400": "The request does not validate (see `errors`), or a filter or ordering is not understood."}
NOT_FOUND = {"404": "No such object, or no memory space of that name that you may see."}
CONFLICT = {"409": "The change would make two current memories of the user say the same thing."}


def document_errors(result: dict, generator, request, public) -> dict:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            errors = {**BAD_REQUEST, **COMMON_ERRORS}
            if "{" in path or method == "post":  # an object in the path, or a `space` in the body
                errors.update(NOT_FOUND)
            if method == "patch":
                errors.update(CONFLICT)
            responses = operation.setdefault("responses", {})
            for code, description in errors.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result
