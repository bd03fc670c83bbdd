"""Request schemas of webhooks, push events and the job queue's admin view (GitLab lib/api/
project_hooks.rb, system_hooks.rb, events.rb)."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.admin import NAME_MAX, PageIn, _bool, _In, _str

URL_MAX = 2048  # web_hooks.url is limited by GitLab's public_url validator
BRANCH_FILTER_MAX = 5000  # WebHook validates push_events_branch_filter length
BRANCH_FILTER_STRATEGIES = ("wildcard", "regex", "all_branches")


class HookIn(_In):
    url = _str(max_length=URL_MAX)
    name = _str(max_length=NAME_MAX, allow_none=True)
    description = _str(max_length=2048, allow_none=True)
    token = _str(max_length=NAME_MAX, allow_none=True)
    push_events = _bool()
    tag_push_events = _bool()
    merge_requests_events = _bool()
    repository_update_events = _bool()
    push_events_branch_filter = _str(max_length=BRANCH_FILTER_MAX, allow_none=True)
    branch_filter_strategy = _str(validate=validate.OneOf(BRANCH_FILTER_STRATEGIES))
    enable_ssl_verification = _bool()


class HookCreateIn(HookIn):
    url = _str(required=True, max_length=URL_MAX)


class EventListIn(PageIn):
    action = _str(max_length=64)
    target_type = _str(max_length=64)
    before = fields.Date()
    after = fields.Date()
    sort = _str(validate=validate.OneOf(("asc", "desc")), load_default="desc")
