"""The dependencies the routes use, once, as `Annotated` types: `settings: SettingsDep`,
`principal: StudentOrGrader` (a route's parameter), or `dependencies=[GRADER]` (a router's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from service.http.security.access import access
from service.http.security.keys import Principal
from service.settings import Settings


async def app_settings(request: Request) -> Settings:
    """A dependency: the settings this app was created with (async, so it costs no thread hop)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]
# a route's caller, checked for one of these roles (grader may do everything)
StudentOrGrader = Annotated[Principal, Depends(access("student"))]
# a router's or a route's dependencies: the caller's role checked, the principal not needed
GRADER = Depends(access("grader"))
STUDENT_OR_OPERATOR = Depends(access("student", "operator"))
OPERATOR = Depends(access("operator"))
