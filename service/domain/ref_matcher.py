"""Gitlab::ProtectedRefMatcher / RefMatcher: a ref name against a protected ref's or a webhook
branch filter's wildcard pattern."""

from __future__ import annotations


def wildcard_matches(pattern: str, name: str) -> bool:
    """RefMatcher's wildcard: `*` stands for any run of characters, the rest is literal, the whole
    name must match (GitLab: an anchored regular expression with `.*?` for each star).

    Not a regular expression: Python's backtracking makes `*/*/*/*-rc` against a 1,000-character
    branch name take seconds (n⁴), blocking the worker past its timeout; Ruby's memoised regexps
    stay linear. Each literal part in turn is found at its leftmost place after the previous one
    (which is where a match can always put it), the first and last pinned to the name's ends.
    """
    if "*" not in pattern or "\n" in name:  # (a star's `.` matches no newline; refs have none)
        return pattern == name
    first, *middle, last = pattern.split("*")
    if len(name) < len(first) + len(last) or not name.startswith(first) or not name.endswith(last):
        return False
    position, end = len(first), len(name) - len(last)
    for part in middle:
        found = name.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True
