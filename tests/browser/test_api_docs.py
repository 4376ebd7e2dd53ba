"""/docs (Swagger UI) and /redoc in headless Chromium, with every host but the service's unreachable:
both render every operation of the OpenAPI document from the vendored assets alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from service.__main__ import OPENAPI_PATH
from tests.browser.test_learner_page import Session, browser  # noqa: F401 (the browser fixture)
from tests.system.server import Service, running_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with running_service() as svc:
        yield svc


def _operations() -> list[tuple[str, str]]:
    doc = json.loads(OPENAPI_PATH.read_text())
    return [(method.upper(), path) for path, ops in doc["paths"].items() for method in ops]


def test_swagger_ui_renders_every_operation_offline(browser: Any, service: Service) -> None:  # noqa: F811
    s = Session(browser, service)
    s.page.goto(service.base + "/docs")
    s.page.wait_for_selector(".opblock", timeout=20_000)
    shown = s.page.eval_on_selector_all(
        ".opblock",
        "els => els.map(e => [e.querySelector('.opblock-summary-method').textContent.trim(),"
        " e.querySelector('.opblock-summary-path').getAttribute('data-path')])",
    )
    assert sorted(map(tuple, shown)) == sorted(_operations())
    s.shot("docs-swagger")
    s.check_clean()


def test_redoc_renders_every_operation_offline(browser: Any, service: Service) -> None:  # noqa: F811
    s = Session(browser, service)
    s.page.goto(service.base + "/redoc")
    s.page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
    ids = s.page.eval_on_selector_all("[data-section-id^='operation/']", "els => els.map(e => e.dataset.sectionId)")
    assert len(set(ids)) == len(_operations())
    s.shot("docs-redoc")
    s.check_clean()
