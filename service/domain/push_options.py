"""`git push -o` options as GitLab parses them (lib/gitlab/push_options.rb).

`namespace.key[=value]` each; unknown namespaces and keys are dropped, `mr` is `merge_request`, a
missing value is `true`, and the multi-value keys count how often each value was given
(`ci.variable="A=1"` twice -> {"ci": {"variable": {"A=1": 2}}}). The parsed hash is what GitLab puts
into the Push Hook's `push_options`.
"""

from __future__ import annotations

import re
from typing import Any

VALID_OPTIONS: dict[str, frozenset[str]] = {
    "merge_request": frozenset(
        {
            "assign",
            "auto_merge",
            "create",
            "description",
            "draft",
            "label",
            "merge_when_pipeline_succeeds",
            "milestone",
            "remove_source_branch",
            "squash",
            "target",
            "target_project",
            "title",
            "unassign",
            "unlabel",
        }
    ),
    "ci": frozenset({"input", "skip", "variable"}),
    "integrations": frozenset({"skip_ci"}),
    "secret_detection": frozenset({"skip_all"}),
    "secret_push_protection": frozenset({"skip_all"}),
}
MULTI_VALUE_OPTIONS = frozenset(
    {
        ("ci", "input"),
        ("ci", "variable"),
        ("merge_request", "label"),
        ("merge_request", "unlabel"),
        ("merge_request", "assign"),
        ("merge_request", "unassign"),
    }
)
NAMESPACE_ALIASES = {"mr": "merge_request"}
# Namespaces this service acts on: ci.* and integrations.* go to the webhook consumers (external CI
# reads ci.skip from the Push Hook). The others need merge requests or secret detection, which this
# service has not: the pusher is told so (unsupported_notice) instead of silence.
SUPPORTED_NAMESPACES = frozenset({"ci", "integrations"})

_OPTION = re.compile(r"(?P<namespace>[^.]+)\.(?P<key>[^=]+)=?(?P<value>.*)", re.DOTALL)


def as_option_list(raw: Any) -> list[str]:
    """The post_receive parameter: a list of strings (JSON, or push_options[] in a form); anything
    else is no options."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [item for item in raw if isinstance(item, str)]
    return []


def parse_push_options(options: list[str]) -> dict[str, dict[str, Any]]:
    parsed: dict[str, dict[str, Any]] = {}
    for option in options:
        match = _OPTION.match(option)
        if match is None:
            continue
        namespace, key, text = (part.strip() for part in match.group("namespace", "key", "value"))
        namespace = NAMESPACE_ALIASES.get(namespace, namespace)
        if key not in VALID_OPTIONS.get(namespace, ()):
            continue
        value: str | bool = text or True
        section = parsed.setdefault(namespace, {})
        if (namespace, key) in MULTI_VALUE_OPTIONS:
            counts = section.setdefault(key, {})
            counts[str(value)] = counts.get(str(value), 0) + 1
        else:
            section[key] = value
    return parsed


def skips_ci(parsed: dict[str, dict[str, Any]]) -> bool:
    """ci.skip or integrations.skip_ci: consumers (external CI) read it from push_options."""
    return bool(parsed.get("ci", {}).get("skip") or parsed.get("integrations", {}).get("skip_ci"))


def unsupported_notice(parsed: dict[str, dict[str, Any]]) -> str | None:
    """A message for the pusher naming the options this service cannot act on, or None."""
    ignored = sorted(f"{ns}.{key}" for ns, keys in parsed.items() if ns not in SUPPORTED_NAMESPACES for key in keys)
    if not ignored:
        return None
    return (
        f"Push options ignored: {', '.join(ignored)}. This GitLab internal API has no merge requests or "
        "secret detection; the options were passed to webhooks in push_options."
    )
