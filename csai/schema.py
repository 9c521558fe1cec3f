"""OpenAPI (drf-spectacular) that documents the answers every operation can give.

Besides its own responses, each operation lists the error answers the server really
gives it, so a client (and the Schemathesis guard in tests/csai/test_api_schema.py) can
rely on the schema: 400 where it takes input, 401 and 403 where it needs a login, 404
where it names an object or pages with a cursor, and 503 with Retry-After everywhere
(csai.errors: the database or broker is down).
"""

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from csai.errors import RETRY_AFTER_SECONDS


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        parameters = operation.get("parameters", [])
        security = operation.get("security", [])
        errors: dict[str, OpenApiResponse] = {}
        if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
            errors["400"] = OpenApiResponse(
                OpenApiTypes.OBJECT, description="Invalid input: {field: [messages]} or {detail}"
            )
        if security and {} not in security:  # {} would mean "no login needed"
            errors["401"] = _error("Not logged in: no or an invalid token or session")
            errors["403"] = _error("The user's role does not allow this")
        if any(p["in"] == "path" for p in parameters) or any(p["name"] == "cursor" for p in parameters):
            errors["404"] = _error("No such object, or an invalid page cursor")
        errors["503"] = _error("The database or broker is briefly unavailable; retry after Retry-After")
        responses = operation["responses"]
        for code, response in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code)
        responses["503"]["headers"] = {
            "Retry-After": {
                "schema": {"type": "integer"},
                "required": True,
                "description": f"Seconds to wait before sending again ({RETRY_AFTER_SECONDS})",
            }
        }
        return operation
