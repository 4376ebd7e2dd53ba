"""API keys and roles, signed problems and attempts, rate limits, CORS and size limits (service.http.security).

Each application here is built from explicit Settings (never the environment's), through FastAPI's TestClient.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http.security import limits, signing
from service.http.security.signing import Signer
from service.settings import Settings
from tests.api.helpers import assert_problem, loc_resolves, locs

SECRET = "x" * 32
KEYS: dict[str, list[str]] = {"g-key": ["grader"], "s-key": ["student"], "o-key": ["operator"]}
G = {"Authorization": "Bearer g-key"}
S = {"Authorization": "Bearer s-key"}
O = {"Authorization": "Bearer o-key"}  # noqa: E741
CHALLENGE = 'Bearer realm="gradient-service"'

WORKED: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [1, 1], "b": -3},
    "data": {"X": [[0.5, 1.5], [1, 1], [1.5, 0.5], [3, 0.5], [2, 2], [1, 2.5]], "y": [0, 0, 0, 1, 1, 1]},
}
# J and ∂J/∂w of WORKED (docs/design/math.md's worked example); ∂J/∂b summed instead of averaged: 2 of 3 parts right
RIGHT_ANSWER: dict[str, Any] = {
    "loss": 0.36686678640551745,
    "gradients": {"w": [-0.20687020897043107, -0.14394676417074018], "b": -0.2171984948563006 / 6},
}
HALF_ANSWER: dict[str, Any] = {
    "loss": 0.36686678640551745,
    "gradients": {"w": [-0.20687020897043107, -0.14394676417074018], "b": -0.2171984948563006},
}
DESCENT = {"problem": WORKED, "learning_rate": 0.1, "steps": 3}


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"api_keys": KEYS, "signing_secret": SECRET}
    return Settings(**{**base, **overrides})


@contextmanager
def app_client(**overrides: Any) -> Iterator[TestClient]:
    """The application with these settings; a server error comes back as a 500 (never raised here)."""
    with TestClient(create_app(settings(**overrides)), raise_server_exceptions=False) as c:
        yield c


def sign(client: TestClient, problem: dict[str, Any] | None = None, **fields: Any) -> str:
    r = client.post("/problems/sign", json={"problem": problem or WORKED, **fields}, headers=G)
    assert r.status_code == 200, r.text
    return str(r.json()["problem_token"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- keys and roles ------------------------------------------------------------------------------

ANY_KEY = {"grader", "student", "operator"}
# (method, path, who gets 200; everyone else with a valid key gets 403)
MATRIX: list[tuple[str, str, set[str]]] = [
    ("POST", "/gradient", {"grader"}),
    ("POST", "/descent", {"grader"}),
    ("POST", "/problems/sign", {"grader"}),
    ("POST", "/grade", {"grader", "student"}),
    ("POST", "/grade/batch", {"grader", "student"}),
    ("GET", "/activations", ANY_KEY),
    ("GET", "/losses", ANY_KEY),
    ("GET", "/pairings", ANY_KEY),
    ("GET", "/models", ANY_KEY),
    ("GET", "/mistakes", ANY_KEY),
    ("GET", "/version", ANY_KEY),
    ("GET", "/metrics", {"operator", "grader"}),
    ("GET", "/healthz", ANY_KEY),
    ("GET", "/readyz", ANY_KEY),
]
ROLE_KEY = {"grader": "g-key", "student": "s-key", "operator": "o-key"}


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    """Keys and roles, no rate limit nor failure throttle (the matrix makes many requests with one key, many
    with bad ones, all from one address; the throttle is tested in tests/api/test_auth_throttle.py)."""
    with app_client(rate_limit_per_minute=0, max_attempts=1000, auth_failures_per_minute=0) as c:
        yield c


@pytest.fixture(scope="module")
def token(keyed: TestClient) -> str:
    return sign(keyed)


def _body(path: str, role: str, token: str) -> dict[str, Any] | None:
    """A valid body for this route and role (a student grades signed problems only)."""
    if path == "/gradient":
        return WORKED
    if path == "/descent":
        return DESCENT
    if path == "/problems/sign":
        return {"problem": WORKED}
    source = {"problem_token": token} if role == "student" else {"problem": WORKED}
    if path == "/grade":
        return {**source, "answer": RIGHT_ANSWER}
    if path == "/grade/batch":
        return {**source, "answers": [RIGHT_ANSWER, HALF_ANSWER]}
    return None


@pytest.mark.parametrize("role", sorted(ROLE_KEY))
@pytest.mark.parametrize(("method", "path", "allowed"), MATRIX, ids=[f"{m} {p}" for m, p, _ in MATRIX])
def test_role_matrix(keyed: TestClient, token: str, role: str, method: str, path: str, allowed: set[str]) -> None:
    key = ROLE_KEY[role]
    r = keyed.request(method, path, json=_body(path, role, token), headers=bearer(key))
    if role in allowed:
        assert r.status_code == 200, (role, path, r.text[:500])
    else:
        body = assert_problem(r, 403, "forbidden", secret=key)
        assert path in body["detail"]  # says which route and which roles it needs
        assert "grader" in body["detail"]


@pytest.mark.parametrize(("method", "path", "allowed"), MATRIX, ids=[f"{m} {p}" for m, p, _ in MATRIX])
def test_no_key_is_401_except_on_the_probes(keyed: TestClient, method: str, path: str, allowed: set[str]) -> None:
    r = keyed.request(method, path, json=_body(path, "grader", ""))
    if path in ("/healthz", "/readyz"):
        assert r.status_code == 200, r.text  # probes are open: a load balancer has no key
        return
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == CHALLENGE


def test_unauthenticated_comes_before_the_body_is_read(keyed: TestClient) -> None:
    """A bad body from someone without a key is a 401, not a 422 that would describe the schema."""
    r = keyed.post("/gradient", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(r, 401, "unauthorized")
    r = keyed.post("/gradient", json={"model": "nope"}, headers=O)
    assert_problem(r, 403, "forbidden")


BAD_HEADERS: dict[str, bytes] = {
    "basic-scheme": b"Basic " + base64.b64encode(b"g-key:"),
    "token-scheme": b"Token g-key",
    "no-scheme": b"g-key",
    "scheme-only": b"Bearer",
    "empty-token": b"Bearer ",
    "blank-token": b"Bearer      ",
    "unknown-key": b"Bearer nope",
    "key-prefix": b"Bearer g-ke",
    "key-extended": b"Bearer g-key2",
    "key-with-suffix": b"Bearer g-key extra",
    "key-case": b"Bearer G-KEY",
    "latin-1-key": "Bearer clé".encode("latin-1"),
    "utf-8-key": "Bearer clé".encode(),
    "key-then-latin-1": b"Bearer g-key\xff",
    "emoji": "Bearer 🔑".encode(),
    "nul": b"Bearer g-key\x00",
}


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
@pytest.mark.parametrize("path", ["/version", "/gradient", "/metrics"])
def test_bad_credentials_are_401_never_500(keyed: TestClient, header: bytes, path: str) -> None:
    method = "POST" if path == "/gradient" else "GET"
    r = keyed.request(method, path, json=WORKED if method == "POST" else None, headers={"Authorization": header})
    body = assert_problem(r, 401, "unauthorized", secret="g-key")
    assert r.headers["www-authenticate"] == CHALLENGE
    raw = header.decode("latin-1")
    token = raw.partition(" ")[2].strip()
    if token:
        assert token not in r.text, "the presented key is echoed"
    assert "key" in body["detail"].lower()


def test_scheme_is_case_insensitive_and_spaces_are_trimmed(keyed: TestClient) -> None:
    for header in ("bearer g-key", "BEARER g-key", "Bearer   g-key  "):
        assert keyed.post("/gradient", json=WORKED, headers={"Authorization": header}).status_code == 200, header
    for header in ("bearer g-key-", "BEARER s-key"):  # still checked: an unknown key, a student's
        assert keyed.post("/gradient", json=WORKED, headers={"Authorization": header}).status_code in (401, 403)


def test_problem_responses_never_contain_any_key(keyed: TestClient) -> None:
    responses = [
        keyed.post("/gradient", json=WORKED, headers=S),
        keyed.post("/gradient", json=WORKED, headers=O),
        keyed.get("/metrics", headers=S),
        keyed.post("/grade", json={"problem": WORKED, "answer": RIGHT_ANSWER}, headers=S),
        keyed.post("/grade", json={"problem": WORKED, "answer": RIGHT_ANSWER}, headers=O),
        keyed.get("/version", headers=bearer("s-key-wrong")),
        keyed.post("/problems/sign", json={"problem": WORKED}, headers=S),
    ]
    for r in responses:
        assert r.status_code in (401, 403), r.text
        for key in [*KEYS, "s-key-wrong", SECRET]:
            assert key not in r.text, (key, r.text)
            assert key not in str(r.headers), (key, r.headers)


def test_keys_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"file-grader": ["grader"], "file-student": ["student"]}))
    s = Settings(api_keys={"env-op": ["operator"]}, api_keys_file=path, signing_secret=SECRET)
    with TestClient(create_app(s)) as c:
        assert c.post("/gradient", json=WORKED, headers=bearer("file-grader")).status_code == 200
        assert_problem(c.post("/gradient", json=WORKED, headers=bearer("file-student")), 403, "forbidden")
        assert c.get("/version", headers=bearer("file-student")).status_code == 200
        assert c.get("/metrics", headers=bearer("env-op")).status_code == 200  # the environment's keys still count
        assert_problem(c.post("/gradient", json=WORKED, headers=bearer("g-key")), 401, "unauthorized")
        assert_problem(c.get("/version"), 401, "unauthorized")


@pytest.mark.parametrize("content", [{"k": "grader"}, {"k": ["admin"]}], ids=["roles-as-string", "unknown-role"])
def test_a_malformed_keys_file_is_refused_at_start(tmp_path: Path, content: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        Settings(api_keys={"k": content["k"]})  # the environment's form is refused...
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError):  # ...and so should the file's be, instead of a key that silently cannot work
        create_app(Settings(api_keys_file=path, signing_secret=SECRET))


def _capture(caplog: pytest.LogCaptureFixture) -> None:
    """Capture service.app's records even if an earlier test's logging config stopped propagation."""
    caplog.set_level(logging.WARNING)
    logging.getLogger("service.app").addHandler(caplog.handler)


def test_without_keys_the_service_is_open_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    _capture(caplog)
    try:
        with TestClient(create_app(Settings(api_keys={}, signing_secret=SECRET))) as c:
            assert c.post("/gradient", json=WORKED).status_code == 200
            assert c.get("/metrics").status_code == 200
            assert c.post("/grade", json={"problem": WORKED, "answer": RIGHT_ANSWER, "reveal": True}).status_code == 200
            # with an Authorization header that matches nothing, the open service still answers
            assert c.get("/version", headers=bearer("whatever")).status_code == 200
    finally:
        logging.getLogger("service.app").removeHandler(caplog.handler)
    warnings = [r for r in caplog.records if r.name == "service.app" and r.levelno == logging.WARNING]
    assert any("OPEN" in r.getMessage() for r in warnings), [r.getMessage() for r in caplog.records]


def test_with_keys_there_is_no_open_warning(caplog: pytest.LogCaptureFixture) -> None:
    _capture(caplog)
    try:
        with app_client():
            pass
    finally:
        logging.getLogger("service.app").removeHandler(caplog.handler)
    assert not [r for r in caplog.records if "OPEN" in r.getMessage()]


# --- signed problems -------------------------------------------------------------------------------


@pytest.fixture
def tokens() -> Iterator[TestClient]:
    """Two student keys, 3 attempts per token, no rate limit."""
    with app_client(api_keys={**KEYS, "s2-key": ["student"]}, max_attempts=3, rate_limit_per_minute=0) as c:
        yield c


S2 = {"Authorization": "Bearer s2-key"}


def _score(r: Any) -> float:
    assert r.status_code == 200, r.text[:500]
    return float(r.json()["score"])


def test_sign_returns_a_token_and_its_expiry(tokens: TestClient) -> None:
    before = int(time.time())
    r = tokens.post("/problems/sign", json={"problem": WORKED}, headers=G)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"problem_token", "expires_at"}
    assert isinstance(out["problem_token"], str) and out["problem_token"]
    lifetime = Settings.model_fields["token_lifetime_seconds"].default
    assert before + lifetime <= out["expires_at"] <= int(time.time()) + lifetime
    r = tokens.post("/problems/sign", json={"problem": WORKED, "expires_in": 60}, headers=G)
    assert before + 60 <= r.json()["expires_at"] <= int(time.time()) + 60


def test_sign_refuses_a_bad_problem(tokens: TestClient) -> None:
    bad = copy.deepcopy(WORKED)
    bad["parameters"]["w"] = [1, 1, 1]
    body = assert_problem(tokens.post("/problems/sign", json={"problem": bad}, headers=G), 422, "validation-error")
    assert ["problem", "parameters", "w"] in locs(body)


def test_the_token_is_readable_but_not_secret() -> None:
    """The payload is base64 JSON of the problem and its expiry: anyone holding the token can read the problem
    (the student sees the problem anyway). That is fine: a token is about integrity (the student cannot change
    the problem, nor get the expected values), not secrecy. What it must not carry is the signing secret."""
    with app_client() as c:
        r = c.post("/problems/sign", json={"problem": {**WORKED, "explain": "full", "verify": True}}, headers=G)
    out = r.json()
    payload_b64, mac_b64 = out["problem_token"].split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    assert payload["exp"] == out["expires_at"]
    assert payload["problem"]["model"] == WORKED["model"]
    assert payload["problem"]["data"]["y"] == WORKED["data"]["y"]
    assert "explain" not in payload["problem"] and "verify" not in payload["problem"]
    assert len(base64.urlsafe_b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))) == 32  # HMAC-SHA256
    for form in (SECRET, base64.b64encode(SECRET.encode()).decode(), SECRET.encode().hex()):
        assert form not in out["problem_token"]


def test_a_student_grades_with_a_token(tokens: TestClient) -> None:
    tok = sign(tokens)
    assert _score(tokens.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER}, headers=S)) == 1.0
    r = tokens.post("/grade", json={"problem_token": tok, "answer": HALF_ANSWER}, headers=S)
    assert _score(r) == pytest.approx(2 / 3)
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert checks["gradients.b"]["mistake"]["code"] == "missing_mean"
    assert all("expected" not in c for c in checks.values())  # no reveal for students
    # the same answer to the plain problem, graded by a grader, scores the same
    plain = tokens.post("/grade", json={"problem": WORKED, "answer": HALF_ANSWER}, headers=G)
    assert _score(plain) == pytest.approx(2 / 3)


def test_the_token_carries_its_own_problem(tokens: TestClient) -> None:
    other = copy.deepcopy(WORKED)
    other["parameters"]["b"] = 0
    tok = sign(tokens, other)
    assert _score(tokens.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER}, headers=S)) < 1.0


@pytest.mark.parametrize(
    "body",
    [
        {"problem": WORKED, "answer": RIGHT_ANSWER},
        {"problem": WORKED, "answer": RIGHT_ANSWER, "reveal": False},
    ],
)
def test_a_student_may_not_send_the_problem(tokens: TestClient, body: dict[str, Any]) -> None:
    r = tokens.post("/grade", json=body, headers=S)
    assert "problem_token" in assert_problem(r, 403, "forbidden")["detail"]


def test_a_student_may_not_send_problems_in_a_batch(tokens: TestClient) -> None:
    tok = sign(tokens)
    assert_problem(
        tokens.post("/grade/batch", json={"problem": WORKED, "answers": [RIGHT_ANSWER]}, headers=S), 403, "forbidden"
    )
    # one plain problem among signed ones refuses the whole batch
    items = [{"problem_token": tok, "answer": RIGHT_ANSWER}, {"problem": WORKED, "answer": RIGHT_ANSWER}]
    assert_problem(tokens.post("/grade/batch", json={"items": items}, headers=S), 403, "forbidden")
    # an item that is not even an object is refused by the schema, for every key
    items = [{"problem_token": tok, "answer": RIGHT_ANSWER}, 42]
    problem = assert_problem(tokens.post("/grade/batch", json={"items": items}, headers=S), 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["items", 1]


def test_a_student_may_not_ask_for_reveal(tokens: TestClient) -> None:
    tok = sign(tokens)
    r = tokens.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER, "reveal": True}, headers=S)
    assert "reveal" in assert_problem(r, 403, "forbidden")["detail"]
    r = tokens.post("/grade/batch", json={"problem_token": tok, "answers": [RIGHT_ANSWER], "reveal": True}, headers=S)
    assert_problem(r, 403, "forbidden")
    items = [{"problem_token": tok, "answer": RIGHT_ANSWER}]
    r = tokens.post("/grade/batch", json={"items": items, "reveal": True}, headers=S)
    assert_problem(r, 403, "forbidden")


def _flip(text: str, i: int) -> str:
    """text with the character at i replaced by another base64url character (a real change of bits)."""
    c = text[i]
    return text[:i] + ("A" if c != "A" else "B") + text[i + 1 :]


def _tampered(tok: str) -> dict[str, str]:
    payload, mac = tok.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["problem"]["parameters"]["b"] = 0.0  # a different problem under the old signature
    data["exp"] += 3600  # or a longer life
    forged = base64.urlsafe_b64encode(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).rstrip(b"=")
    return {
        "payload-char": _flip(payload, len(payload) // 2) + "." + mac,
        "signature-char": payload + "." + _flip(mac, len(mac) // 2),
        "signature-first-char": payload + "." + _flip(mac, 0),
        "forged-payload": forged.decode() + "." + mac,
        "no-signature": payload,
        "empty-signature": payload + ".",
        "three-parts": tok + "." + mac,
        "swapped": mac + "." + payload,
        "not-base64": payload + ".%%%%",
        "non-ascii": payload + "." + mac[:-2] + "éé",
        "empty": "",
    }


TAMPERINGS = list(_tampered(Signer(SECRET.encode()).sign(WORKED, 2_000_000_000)))


@pytest.mark.parametrize("how", TAMPERINGS)
@pytest.mark.parametrize("who", ["student", "grader"])
def test_a_tampered_token_is_403(tokens: TestClient, how: str, who: str) -> None:
    bad = _tampered(sign(tokens))[how]
    headers = S if who == "student" else G
    r = tokens.post("/grade", json={"problem_token": bad, "answer": RIGHT_ANSWER}, headers=headers)
    body = assert_problem(r, 403, "forbidden")
    assert "not valid" in body["detail"]
    # in a batch, for a student the whole request is refused; a grader's item gets its own problem
    r = tokens.post("/grade/batch", json={"items": [{"problem_token": bad, "answer": RIGHT_ANSWER}]}, headers=headers)
    if who == "student":
        assert_problem(r, 403, "forbidden")
    else:
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["type"].endswith(":forbidden")


def test_a_token_signed_with_another_secret_is_403(tokens: TestClient) -> None:
    foreign = Signer(b"y" * 32).sign(json.loads(json.dumps(WORKED)), int(time.time()) + 3600)
    for headers in (S, G):
        r = tokens.post("/grade", json={"problem_token": foreign, "answer": RIGHT_ANSWER}, headers=headers)
        assert_problem(r, 403, "forbidden")
    # and the same problem signed with the right secret is accepted: the secret is what differs
    good = Signer(SECRET.encode()).sign(json.loads(json.dumps(WORKED)), int(time.time()) + 3600)
    assert _score(tokens.post("/grade", json={"problem_token": good, "answer": RIGHT_ANSWER}, headers=S)) == 1.0


def test_an_expired_token_is_403(tokens: TestClient) -> None:
    past = Signer(SECRET.encode()).sign(json.loads(json.dumps(WORKED)), int(time.time()) - 5)
    for headers in (S, G):
        r = tokens.post("/grade", json={"problem_token": past, "answer": RIGHT_ANSWER}, headers=headers)
        assert "expired" in assert_problem(r, 403, "forbidden")["detail"]


def test_a_token_expires_after_expires_in(tokens: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = sign(tokens, expires_in=1)
    assert _score(tokens.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER}, headers=S)) == 1.0
    later = time.time() + 5
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: later, monotonic=time.monotonic))
    r = tokens.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER}, headers=S)
    assert "expired" in assert_problem(r, 403, "forbidden")["detail"]


def _grade(client: TestClient, tok: str, headers: dict[str, str]) -> Any:
    return client.post("/grade", json={"problem_token": tok, "answer": RIGHT_ANSWER}, headers=headers)


def test_attempts_are_limited_per_student_key_and_token(tokens: TestClient) -> None:
    tok = sign(tokens)
    for _ in range(3):
        assert _score(_grade(tokens, tok, S)) == 1.0
    body = assert_problem(_grade(tokens, tok, S), 403, "forbidden")
    assert "3 attempts" in body["detail"]
    assert body["max_attempts"] == 3 and body["attempts"] == 3  # the refused grading took none
    assert_problem(_grade(tokens, tok, S), 403, "forbidden")  # and stays refused
    assert _score(_grade(tokens, tok, S2)) == 1.0  # another student key has its own attempts
    # and another token too (signing is deterministic: the same problem and expiry give the same token)
    assert _score(_grade(tokens, sign(tokens, expires_in=3600), S)) == 1.0


def test_a_grader_is_not_limited_in_attempts_and_may_reveal(tokens: TestClient) -> None:
    tok = sign(tokens)
    for _ in range(5):
        assert _score(_grade(tokens, tok, G)) == 1.0
    r = tokens.post("/grade", json={"problem_token": tok, "answer": HALF_ANSWER, "reveal": True}, headers=G)
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert checks["gradients.b"]["expected"] == pytest.approx(RIGHT_ANSWER["gradients"]["b"])
    r = tokens.post("/grade/batch", json={"problem_token": tok, "answers": [RIGHT_ANSWER] * 5}, headers=G)
    assert [x["score"] for x in r.json()["results"]] == [1.0] * 5


def test_each_batch_answer_is_an_attempt(tokens: TestClient) -> None:
    tok = sign(tokens)
    r = tokens.post("/grade/batch", json={"problem_token": tok, "answers": [RIGHT_ANSWER, HALF_ANSWER]}, headers=S)
    assert r.status_code == 200, r.text
    assert [x["score"] for x in r.json()["results"]] == pytest.approx([1.0, 2 / 3])
    assert _score(_grade(tokens, tok, S)) == 1.0  # the 3rd attempt
    assert_problem(_grade(tokens, tok, S), 403, "forbidden")
    # a batch bigger than the attempts left is refused at once
    tok2 = sign(tokens)
    r = tokens.post("/grade/batch", json={"problem_token": tok2, "answers": [RIGHT_ANSWER] * 4}, headers=S2)
    assert_problem(r, 403, "forbidden")


def test_items_with_tokens(tokens: TestClient) -> None:
    tok, other = sign(tokens), sign(tokens, {**WORKED, "parameters": {"w": [1, 1], "b": 0}})
    items = [
        {"problem_token": tok, "answer": RIGHT_ANSWER},
        {"problem_token": tok, "answer": HALF_ANSWER},
        {"problem_token": other, "answer": RIGHT_ANSWER},
    ]
    r = tokens.post("/grade/batch", json={"items": items}, headers=S)
    assert r.status_code == 200, r.text
    scores = [x["score"] for x in r.json()["results"]]
    assert scores[:2] == pytest.approx([1.0, 2 / 3]) and scores[2] < 1.0
    # tok has had 2 attempts in the items, so one is left
    assert _score(_grade(tokens, tok, S)) == 1.0
    assert_problem(_grade(tokens, tok, S), 403, "forbidden")
    items = [{"problem_token": other, "answer": RIGHT_ANSWER}] * 3  # other: 1 + 3 > 3
    assert_problem(tokens.post("/grade/batch", json={"items": items}, headers=S), 403, "forbidden")


@pytest.mark.parametrize("variant", ["trailing-equals", "junk-inserted", "padding-bits"])
def test_a_respelt_token_does_not_reset_the_attempts(tokens: TestClient, variant: str) -> None:
    tok = sign(tokens)
    for _ in range(3):
        assert _score(_grade(tokens, tok, S)) == 1.0
    payload, mac = tok.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelt = {
        "trailing-equals": tok + "=",
        "junk-inserted": payload[:4] + "!!!!" + payload[4:] + "." + mac,
        # 32 bytes are 43 characters, whose last one carries 2 unused bits
        "padding-bits": payload + "." + mac[:-1] + alphabet[alphabet.index(mac[-1]) ^ 1],
    }[variant]
    assert respelt != tok
    assert_problem(_grade(tokens, respelt, S), 403, "forbidden")


@pytest.mark.parametrize("value", [123, ["a.b"], {"a": "b"}, True], ids=["int", "list", "object", "bool"])
def test_a_non_string_token_in_items_is_not_a_500(tokens: TestClient, value: Any) -> None:
    r = tokens.post("/grade/batch", json={"items": [{"problem_token": value, "answer": RIGHT_ANSWER}]}, headers=S)
    assert r.status_code in (403, 422), r.text
    assert_problem(r, r.status_code, {"forbidden", "validation-error"})


def test_a_non_string_token_is_a_422_for_a_grader_and_in_grade(tokens: TestClient) -> None:
    r = tokens.post("/grade/batch", json={"items": [{"problem_token": 123, "answer": RIGHT_ANSWER}]}, headers=G)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["type"].endswith(":validation-error")
    r = tokens.post("/grade", json={"problem_token": 123, "answer": RIGHT_ANSWER}, headers=S)
    assert_problem(r, 422, "validation-error")


# --- rate limits (in memory) -----------------------------------------------------------------------


def test_burst_then_429_with_retry_after() -> None:
    with app_client(rate_limit_per_minute=60, rate_limit_burst=3) as c:
        for path in ("/version", "/activations", "/mistakes"):  # one bucket per key, across routes
            assert c.get(path, headers=O).status_code == 200
        r = c.get("/version", headers=O)
        body = assert_problem(r, 429, "rate-limited", secret="o-key")
        retry = r.headers["retry-after"]
        assert retry.isdigit() and int(retry) >= 1, retry
        assert body["retry_after"] == int(retry)
        # another key has its own bucket
        for _ in range(3):
            assert c.get("/version", headers=S).status_code == 200
        assert_problem(c.get("/version", headers=S), 429, "rate-limited")
        # the probes are not limited
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


def test_the_bucket_refills(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.monotonic()]
    monkeypatch.setattr(limits, "time", types.SimpleNamespace(monotonic=lambda: now[0], time=time.time))
    with app_client(rate_limit_per_minute=60, rate_limit_burst=3) as c:
        for _ in range(3):
            assert c.get("/version", headers=O).status_code == 200
        assert c.get("/version", headers=O).status_code == 429
        now[0] += 1.0  # one token a second
        assert c.get("/version", headers=O).status_code == 200
        assert c.get("/version", headers=O).status_code == 429


def test_forbidden_and_unauthorized_requests_do_not_use_the_bucket() -> None:
    with app_client(rate_limit_per_minute=60, rate_limit_burst=3) as c:
        for _ in range(5):
            assert c.post("/gradient", json=WORKED, headers=O).status_code == 403
        for _ in range(3):
            assert c.get("/version", headers=O).status_code == 200


def test_open_mode_has_no_rate_limit() -> None:
    with TestClient(create_app(Settings(api_keys={}, rate_limit_per_minute=60, rate_limit_burst=3))) as c:
        for _ in range(10):
            assert c.get("/version").status_code == 200


def test_zero_per_minute_disables_the_limit() -> None:
    with app_client(rate_limit_per_minute=0, rate_limit_burst=3) as c:
        for _ in range(10):
            assert c.get("/version", headers=O).status_code == 200


# --- CORS ------------------------------------------------------------------------------------------

ORIGIN = "https://course.example"


def _preflight(c: TestClient, origin: str, method: str = "POST") -> Any:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    return c.options("/grade", headers=headers)


def test_cors_allows_the_listed_origin_with_credentials() -> None:
    with app_client(cors_origins=[ORIGIN]) as c:
        r = _preflight(c, ORIGIN)
        assert r.status_code == 200, r.text  # no key needed for a preflight
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert r.headers["access-control-allow-credentials"] == "true"
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        assert "POST" in r.headers["access-control-allow-methods"]
        # the actual request, its errors included, carries the headers too
        for r in (c.get("/version", headers={"Origin": ORIGIN, **S}), c.get("/version", headers={"Origin": ORIGIN})):
            assert r.headers["access-control-allow-origin"] == ORIGIN
            assert r.headers["access-control-allow-credentials"] == "true"
        exposed = c.get("/version", headers={"Origin": ORIGIN}).headers["access-control-expose-headers"]
        assert "retry-after" in exposed.lower()


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://course.example", "https://course.example.evil", "null"]
)
def test_cors_refuses_other_origins(origin: str) -> None:
    with app_client(cors_origins=[ORIGIN]) as c:
        r = _preflight(c, origin)
        assert "access-control-allow-origin" not in r.headers
        r = c.get("/version", headers={"Origin": origin, **S})
        assert "access-control-allow-origin" not in r.headers  # (starlette still says allow-credentials: harmless)


@pytest.mark.parametrize("origins", [["*"], [ORIGIN, "*"]])
def test_a_wildcard_never_goes_with_credentials(origins: list[str]) -> None:
    with app_client(cors_origins=origins) as c:
        for r in (_preflight(c, "https://any.example"), c.get("/version", headers={"Origin": ORIGIN, **S})):
            assert "access-control-allow-origin" in r.headers, r.headers
            assert r.headers.get("access-control-allow-credentials") != "true"


def test_no_origins_no_cors_headers() -> None:
    with app_client() as c:
        responses = [_preflight(c, ORIGIN), c.get("/version", headers={"Origin": ORIGIN, **S})]
        for r in responses:
            assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers
        assert responses[0].status_code in (401, 405)


# --- size limits -----------------------------------------------------------------------------------

LIMITS = {"max_rows": 3, "max_features": 2, "max_classes": 3, "max_elements": 4}


def _linear(X: list[list[float]]) -> dict[str, Any]:
    return {
        "model": "linear_regression",
        "parameters": {"w": [0.5] * len(X[0]), "b": 0.1},
        "data": {"X": X, "y": [1.0] * len(X)},
    }


def _softmax(k: int) -> dict[str, Any]:
    return {
        "model": "softmax_regression",
        "parameters": {"w": [[0.1 * j for j in range(k)], [0.2] * k], "b": [0.0] * k},
        "data": {"X": [[1.0, 2.0], [2.0, -1.0]], "y": [k - 1, 0]},
    }


def _network(X: list[list[float]], k: int = 1) -> dict[str, Any]:
    n = len(X[0])
    if k == 1:
        layers, loss, y = [{"activation": "tanh"}, {"activation": "identity"}], "squared_error", [1.0] * len(X)
    else:
        layers, loss, y = [{"activation": "tanh"}, {"activation": "softmax"}], "categorical_cross_entropy", [0] * len(X)
    return {
        "model": "neural_network",
        "layers": layers,
        "loss": loss,
        "parameters": {
            "layers": [
                {"W": [[0.1, -0.2]] * n, "b": [0.0, 0.1]},
                {"W": [[0.3] * k, [-0.1] * k], "b": [0.0] * k},
            ]
        },
        "data": {"X": X, "y": y},
    }


# (limit, problem, location of the error in the problem)
TOO_BIG: dict[str, tuple[dict[str, Any], list[str | int]]] = {
    "rows": (_linear([[1.0]] * 4), ["data", "X"]),
    "features": (_linear([[1.0, 2.0, 3.0]]), ["data", "X", 0]),
    "elements": (_linear([[1.0, 2.0]] * 3), ["data", "X"]),
    "classes": (_softmax(4), ["parameters", "b"]),
    "network-rows": (_network([[1.0]] * 4), ["data", "X"]),
    "network-features": (_network([[1.0, 2.0, 3.0]]), ["data", "X", 0]),
    "network-elements": (_network([[1.0, 2.0]] * 3), ["data", "X"]),
}
AT_THE_LIMIT = {
    "linear": _linear([[1.0, 2.0]] * 2),
    "softmax": _softmax(3),
    "network": _network([[1.0, 2.0]] * 2),
    "network-softmax": _network([[1.0, 2.0]] * 2, k=3),
}
ROUTES = {"/gradient": [], "/grade": ["problem"], "/problems/sign": ["problem"]}


def _send(c: TestClient, route: str, problem: dict[str, Any]) -> Any:
    if route == "/gradient":
        return c.post(route, json=problem)
    if route == "/grade":
        return c.post(route, json={"problem": problem, "answer": {"loss": 0.0}})
    return c.post(route, json={"problem": problem})


@pytest.fixture(scope="module")
def small() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(api_keys={}, signing_secret=SECRET, **LIMITS))) as c:
        yield c


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", TOO_BIG)
def test_size_limits(small: TestClient, keyed: TestClient, route: str, case: str) -> None:
    problem, loc = TOO_BIG[case]
    body = assert_problem(_send(small, route, problem), 422, "validation-error")
    assert locs(body) == [[*ROUTES[route], *loc]], body
    limit = {"rows": 3, "features": 2, "elements": 4, "classes": 3}[case.removeprefix("network-")]
    assert f"at most {limit}" in body["errors"][0]["msg"]
    # the same problem is fine under the default limits: the 422 comes from the settings
    assert keyed.post("/gradient", json=problem, headers=G).status_code == 200


@pytest.mark.parametrize("route", ROUTES)
def test_every_limit_is_reported_at_once(small: TestClient, route: str) -> None:
    problem = {
        "model": "softmax_regression",
        "parameters": {"w": [[0.1] * 4] * 3, "b": [0.0] * 4},
        "data": {"X": [[1.0, 2.0, 3.0]] * 4, "y": [0, 1, 2, 3]},
    }
    body = assert_problem(_send(small, route, problem), 422, "validation-error")
    prefix = ROUTES[route]
    expected = [[*prefix, "data", "X"], [*prefix, "data", "X", 0], [*prefix, "data", "X"], [*prefix, "parameters", "b"]]
    assert sorted(map(str, locs(body))) == sorted(map(str, expected))


@pytest.mark.parametrize("route", ROUTES)
def test_size_limit_classes_of_a_network(small: TestClient, route: str) -> None:
    problem = _network([[1.0, 2.0]], k=4)
    body = assert_problem(_send(small, route, problem), 422, "validation-error")
    request = problem if route == "/gradient" else {"problem": problem}
    assert len(body["errors"]) == 1
    loc = body["errors"][0]["loc"]
    assert "at most 3" in body["errors"][0]["msg"]
    assert loc[: len(ROUTES[route]) + 3] == [*ROUTES[route], "parameters", "layers", 1], loc
    assert loc_resolves(request, loc), loc


@pytest.mark.parametrize("case", AT_THE_LIMIT)
@pytest.mark.parametrize("route", ROUTES)
def test_at_the_limits_is_accepted_one_more_row_is_not(small: TestClient, route: str, case: str) -> None:
    problem = AT_THE_LIMIT[case]
    r = _send(small, route, problem)
    assert r.status_code == 200, r.text
    bigger = copy.deepcopy(problem)
    bigger["data"]["X"].append(bigger["data"]["X"][0])
    bigger["data"]["y"].append(bigger["data"]["y"][0])
    body = assert_problem(_send(small, route, bigger), 422, "validation-error")
    assert [*ROUTES[route], "data", "X"] in locs(body)
