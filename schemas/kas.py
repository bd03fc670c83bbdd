"""Request schemas of kas's internal API (GitLab: lib/api/internal/kubernetes.rb and its EE module).

Unknown keys are dropped (Grape ignores undeclared parameters); failures become Grape's 400
`{"error": "x is missing"}` through service.params.load. POST /usage_metrics is parsed by hand in
service/domain/usage_metrics.py (hot path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import orjson
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from schemas.fields import GrapeInteger, GrapeString
from service.domain.usage_metrics import COUNTER_EVENTS, LEGACY_COUNTERS, UNIQUE_EVENTS

SEVERITIES = ("info", "unknown", "low", "medium", "high", "critical")
CONFIDENCES = ("ignore", "unknown", "experimental", "low", "medium", "high", "confirmed")


class _In(Schema):
    class Meta:
        unknown = EXCLUDE


# service.params prints any message it does not know as Grape's "x is invalid".
INVALID = "Not a valid value."


class Downcased(GrapeString):
    """`coerce_with: ->(s) { s.downcase }`."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).lower()


class JsonObject(fields.Field[dict[str, Any]]):
    """Grape's `type: JSON`: an object, or a string holding one."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dict[str, Any]:
        if isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise ValidationError(INVALID) from None
        if not isinstance(value, dict):
            raise ValidationError(INVALID)
        return value


class Vendor(fields.Field[str]):
    """scanner.vendor: `{"name": "GitLab"}` today, the bare string `"GitLab"` in the 2021 documentation."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            name = value.get("name")
            if name is None:
                raise ValidationError({"name": ["Missing data for required field."]})
            if isinstance(name, str):
                return name
        raise ValidationError(INVALID)


class Object(fields.Nested):
    """A nested object. A value that is no object is "x is invalid" (plain marshmallow reports it
    under "_schema", which service.params would print as "x[_schema] is invalid")."""

    def _deserialize(
        self,
        value: Any,
        attr: str | None,
        data: Mapping[str, Any] | None,
        partial: bool | Sequence[str] | AbstractSet[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        if not isinstance(value, Mapping):
            raise self.make_error("type")
        return super()._deserialize(value, attr, data, partial, **kwargs)


# --- JWT-only routes -----------------------------------------------------------------------------


class AgentConfigurationIn(_In):
    """POST /internal/kubernetes/agent_configuration."""

    agent_id = GrapeInteger(required=True)
    agent_config = JsonObject(required=True)


class UserEventIn(_In):
    user_id = GrapeInteger(allow_none=True)
    project_id = GrapeInteger(allow_none=True)


class ExtraTelemetryIn(_In):
    installation_method = GrapeString(allow_none=True)
    helm_chart_version = GrapeString(allow_none=True)


class RegisterAgentIn(_In):
    project_id = GrapeInteger(allow_none=True)
    agent_id = GrapeInteger(allow_none=True)
    agent_version = GrapeString(allow_none=True)
    architecture = GrapeString(allow_none=True)
    kubernetes_version = GrapeString(allow_none=True)
    extra_telemetry_data = Object(ExtraTelemetryIn, allow_none=True)


class EventsIn(_In):
    k8s_api_proxy_requests_unique_users_via_ci_access = fields.List(Object(UserEventIn), allow_none=True)
    k8s_api_proxy_requests_unique_users_via_user_access = fields.List(Object(UserEventIn), allow_none=True)
    k8s_api_proxy_requests_unique_users_via_pat_access = fields.List(Object(UserEventIn), allow_none=True)
    register_agent_at_kas = fields.List(Object(RegisterAgentIn), allow_none=True)


class AgentEventsIn(_In):
    """POST /internal/kubernetes/agent_events."""

    events = Object(EventsIn, allow_none=True)


# --- Agent routes --------------------------------------------------------------------------------


class ProjectIdIn(_In):
    """GET project_info / verify_project_access: `id`, a numeric id or a full path."""

    id = GrapeString(required=True)


class CiliumAlertIn(_In):
    """POST /internal/kubernetes/modules/cilium_alert."""

    alert = fields.Dict(required=True)


class PackageIn(_In):
    name = GrapeString(required=True)


class DependencyIn(_In):
    package = Object(PackageIn, required=True)
    version = GrapeString(allow_none=True)


class KubernetesResourceIn(_In):
    namespace = GrapeString(required=True)
    name = GrapeString(required=True)
    kind = GrapeString(required=True)
    container_name = GrapeString()
    container = GrapeString()  # the 2021 documentation's name for container_name
    agent_id = GrapeString(allow_none=True)  # ignored: the agent is the one whose token called

    @validates_schema
    def _container(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("container_name") and not data.get("container"):
            raise ValidationError("Missing data for required field.", field_name="container_name")

    @post_load
    def _one_container_name(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["container_name"] = data.get("container_name") or data.pop("container")
        data.pop("container", None)
        return data


class LocationIn(_In):
    # Required since GitLab 15 (B); the 2021 documentation's example has neither image nor dependency.
    image = GrapeString(allow_none=True)
    dependency = Object(DependencyIn, allow_none=True)
    kubernetes_resource = Object(KubernetesResourceIn, required=True)
    operating_system = GrapeString(allow_none=True)


class IdentifierIn(_In):
    type = GrapeString(required=True)
    name = GrapeString(required=True)
    value = GrapeString(allow_none=True)
    url = GrapeString(allow_none=True)


class VulnerabilityIn(_In):
    name = GrapeString(required=True)
    severity = Downcased(required=True, validate=validate.OneOf(SEVERITIES))
    confidence = Downcased(allow_none=True, validate=validate.OneOf(CONFIDENCES))
    location = Object(LocationIn, required=True)
    identifiers = fields.List(Object(IdentifierIn), required=True, validate=validate.Length(min=1))
    message = GrapeString(allow_none=True)
    description = GrapeString(allow_none=True)
    solution = GrapeString(allow_none=True)
    links = fields.List(fields.Raw(), allow_none=True)


class ScannerIn(_In):
    id = GrapeString(required=True)
    name = GrapeString(required=True)
    vendor = Vendor(allow_none=True)


class StarboardVulnerabilityIn(_In):
    """PUT /internal/kubernetes/modules/starboard_vulnerability, in the 2021 and the current form."""

    vulnerability = Object(VulnerabilityIn, required=True)
    scanner = Object(ScannerIn, required=True)


class ScanResultIn(_In):
    """POST /internal/kubernetes/modules/starboard_vulnerability/scan_result."""

    uuids = fields.List(GrapeString(), required=True)


AGENT_CONFIGURATION = AgentConfigurationIn()
AGENT_EVENTS = AgentEventsIn()
PROJECT_ID = ProjectIdIn()
CILIUM_ALERT = CiliumAlertIn()
STARBOARD_VULNERABILITY = StarboardVulnerabilityIn()
SCAN_RESULT = ScanResultIn()


def _usage_metrics_schema() -> type[Schema]:
    """POST /internal/kubernetes/usage_metrics, for the OpenAPI document only: the route parses
    by hand (service/domain/usage_metrics.py, a hot path) and this describes what it reads."""
    counters = Schema.from_dict(
        {event: fields.Integer(allow_none=True) for event in COUNTER_EVENTS}, name="UsageCountersIn"
    )
    unique = Schema.from_dict(
        {event: fields.List(fields.Integer(), allow_none=True) for event in UNIQUE_EVENTS},
        name="UsageUniqueCountersIn",
    )
    legacy = {name: fields.Integer(allow_none=True) for name in LEGACY_COUNTERS}
    return Schema.from_dict(
        {
            **legacy,
            "counters": fields.Nested(counters, allow_none=True),
            "unique_counters": fields.Nested(unique, allow_none=True),
        },
        name="UsageMetricsIn",
    )


UsageMetricsIn = _usage_metrics_schema()
