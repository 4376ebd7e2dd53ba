"""X as a .npy part (service/http/wire/binary.py): multipart/form-data bodies answer exactly as JSON ones.

Every answer of the multipart form is compared byte for byte with the JSON body's answer on the
same problem (the matrix given as a list of lists there), for every example model, a network,
the drawings and descent, over random matrices and over the .npy variants (byte order, Fortran
order, float32, format 2.0). Every way a multipart body or a .npy file can be wrong gets its own
clear 4xx, at the place the error is.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.app import create_app
from service.http.schemas.gradient import EXAMPLES
from service.http.wire import binary
from service.settings import Settings
from tests.api.helpers import PROBLEM_JSON, URN

LOGISTIC: dict[str, Any] = {
    "model": "logistic_regression",
    "parameters": {"w": [0.1, -0.2, 0.3], "b": 0.5},
    "data": {"X": [[0.5, 1.5, -1.0], [1.0, 1.0, 0.25], [1.5, 0.5, 2.0], [3.0, 0.5, 0.0]], "y": [0, 0, 1, 1]},
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as c:
        yield c


def npy(X: Any, **save: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, X, **save)
    return buf.getvalue()


def without_X(doc: dict[str, Any], path: tuple[str, ...] = ("data",)) -> tuple[dict[str, Any], Any]:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path:
        node = node[key]
    return doc, node.pop("X")


def post_parts(client: TestClient, url: str, request: Any, X: bytes | None, **extra: Any) -> Any:
    files: dict[str, Any] = {}
    if request is not None:
        files["request"] = (
            None,
            request if isinstance(request, (str, bytes)) else json.dumps(request),
            "application/json",
        )
    if X is not None:
        files["X"] = ("X.npy", X, binary.NPY)
    return client.post(url, files=files, **extra)


def same_answer(
    client: TestClient, url: str, doc: dict[str, Any], path: tuple[str, ...] = ("data",), **save: Any
) -> Any:
    request, X = without_X(doc, path)
    as_json = client.post(url, json=doc)
    as_parts = post_parts(client, url, request, npy(np.asarray(X, dtype=np.float64), **save))
    assert (as_parts.status_code, as_parts.headers["content-type"], as_parts.content) == (
        as_json.status_code,
        as_json.headers["content-type"],
        as_json.content,
    )
    return as_parts


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["type"] == URN + slug
    assert "Traceback" not in response.text
    return body


# --- the same answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(EXAMPLES))
def test_every_example_model_answers_as_its_json_body(client: TestClient, model: Any) -> None:
    response = same_answer(client, "/gradient", EXAMPLES[model])
    assert response.status_code == 200


@pytest.mark.parametrize("options", [{"explain": "factors"}, {"explain": "full"}, {"verify": True}])
def test_explain_and_verify_answer_as_json(client: TestClient, options: dict[str, Any]) -> None:
    assert same_answer(client, "/gradient", {**LOGISTIC, **options}).status_code == 200


@pytest.mark.parametrize(
    "save",
    [
        pytest.param({}, id="C order"),
        pytest.param({"fortran": True}, id="Fortran order"),
        pytest.param({"big_endian": True}, id="big-endian"),
        pytest.param({"version": (2, 0)}, id="format 2.0"),
    ],
)
def test_npy_variants_give_the_same_answer(client: TestClient, save: dict[str, Any]) -> None:
    request, X = without_X(LOGISTIC)
    A = np.asarray(X, dtype=np.float64)
    if save.get("fortran"):
        A = np.asfortranarray(A)
    if save.get("big_endian"):
        A = A.astype(">f8")
    buf = io.BytesIO()
    if "version" in save:
        np.lib.format.write_array(buf, A, version=save["version"])
    else:
        np.save(buf, A)
    header = np.lib.format.read_array_header_1_0 if "version" not in save else np.lib.format.read_array_header_2_0
    probe = io.BytesIO(buf.getvalue())
    np.lib.format.read_magic(probe)
    _, fortran, dtype = header(probe)  # the file really is of the kind the test names
    assert fortran == bool(save.get("fortran")) and (dtype.byteorder == ">") == bool(save.get("big_endian"))
    expected = client.post("/gradient", json=LOGISTIC)
    got = post_parts(client, "/gradient", request, buf.getvalue())
    assert (got.status_code, got.content) == (200, expected.content)


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f2"])
def test_narrower_floats_are_widened_exactly(client: TestClient, dtype: str) -> None:
    request, X = without_X(LOGISTIC)
    narrow = np.asarray(X).astype(dtype)
    doc = copy.deepcopy(LOGISTIC)
    doc["data"]["X"] = narrow.astype(np.float64).tolist()  # the same numbers, exactly
    got = post_parts(client, "/gradient", request, npy(narrow))
    assert (got.status_code, got.content) == (200, client.post("/gradient", json=doc).content)


def test_a_network_answers_as_its_json_body(client: TestClient) -> None:
    from service.compute.model_names import ModelName

    doc = {**EXAMPLES[ModelName.NEURAL_NETWORK], "explain": "factors"}
    assert same_answer(client, "/gradient", doc).status_code == 200


def test_the_graph_answers_as_its_json_body(client: TestClient) -> None:
    response = same_answer(client, "/graph", LOGISTIC)
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")


@pytest.mark.parametrize("url", ["/descent", "/descent/plot"])
def test_descent_answers_as_its_json_body(client: TestClient, url: str) -> None:
    doc = {
        "problem": LOGISTIC,
        "learning_rate": 0.5,
        "steps": 25,
        "compare_with": {"activation": "identity", "loss": "squared_error"},
    }
    assert same_answer(client, url, doc, ("problem", "data")).status_code == 200


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    X=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.integers(1, 6)),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    data=st.data(),
)
def test_random_matrices_answer_as_json(client: TestClient, X: np.ndarray, data: st.DataObject) -> None:
    m, n = X.shape
    y = data.draw(st.lists(st.sampled_from([0, 1]), min_size=m, max_size=m))
    w = data.draw(st.lists(st.floats(-2, 2), min_size=n, max_size=n))
    doc = {"model": "logistic_regression", "parameters": {"w": w, "b": 0.25}, "data": {"X": X.tolist(), "y": y}}
    same_answer(client, "/gradient", doc)  # 200 or the same 422 (a non-finite result, say)


def test_the_usual_errors_come_from_the_request_part(client: TestClient) -> None:
    bad_y = copy.deepcopy(LOGISTIC)
    bad_y["data"]["y"] = [0, 1, 2, 1]  # a target outside bce's domain
    short_w = copy.deepcopy(LOGISTIC)
    short_w["parameters"]["w"] = [0.1]  # X has 3 columns
    wrong_type = copy.deepcopy(LOGISTIC)
    wrong_type["parameters"]["b"] = "0.5"
    for doc, status in ((bad_y, 422), (short_w, 422), (wrong_type, 422)):
        assert same_answer(client, "/gradient", doc).status_code == status


def test_limits_apply_to_the_npy_matrix() -> None:
    with TestClient(create_app(Settings(max_rows=3))) as small:
        response = same_answer(small, "/gradient", LOGISTIC)  # 4 rows
    assert problem(response, 422, "validation-error")["errors"][0]["loc"] == ["data", "X"]


def test_a_matrix_without_columns_is_refused_as_in_json(client: TestClient) -> None:
    request, _ = without_X(LOGISTIC)
    request["parameters"]["w"] = [0.1]
    body = problem(post_parts(client, "/gradient", request, npy(np.zeros((4, 0)))), 422, "validation-error")
    assert {"loc": ["data", "X", 0], "msg": "each row of X needs at least one feature"} in body["errors"]


def test_the_body_limit_applies() -> None:
    request, _ = without_X(LOGISTIC)
    with TestClient(create_app(Settings(max_body_bytes=10_000))) as small:
        response = post_parts(small, "/gradient", request, npy(np.zeros((4000, 3))))
    problem(response, 413, "body-too-large")


# --- a wrong envelope ---------------------------------------------------------------------------


def _raw(client: TestClient, body: bytes, content_type: str, url: str = "/gradient") -> Any:
    return client.post(url, content=body, headers={"content-type": content_type})


def _part(name: str, content: bytes, content_type: str | None = None, boundary: bytes = b"b0undary") -> bytes:
    head = b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n' % (boundary, name.encode())
    if content_type:
        head += b"Content-Type: %s\r\n" % content_type.encode()
    return head + b"\r\n" + content + b"\r\n"


REQUEST_PART = json.dumps(without_X(LOGISTIC)[0]).encode()
GOOD_X = npy(np.asarray(LOGISTIC["data"]["X"], dtype=np.float64))
CLOSE = b"--b0undary--\r\n"
MULTI = "multipart/form-data; boundary=b0undary"


def test_a_handmade_body_is_read(client: TestClient) -> None:
    body = _part("request", REQUEST_PART, "application/json") + _part("X", GOOD_X) + CLOSE
    assert _raw(client, body, MULTI).content == client.post("/gradient", json=LOGISTIC).content


def test_matrix_bytes_that_look_like_the_boundary_are_kept(client: TestClient) -> None:
    # floats whose bytes spell the start of the boundary line must not be taken for it
    tricky = np.frombuffer(b"\r\n--b0u\r" + b"\r\n--\r\n--" + b"\r\n--b0undary"[:8] + b"\r\n--b0u\r", "<f8")
    X = np.asarray(LOGISTIC["data"]["X"], dtype=np.float64)
    X[1, :] = tricky[:3]
    X[2, 0] = tricky[3]
    doc = copy.deepcopy(LOGISTIC)
    doc["data"]["X"] = X.tolist()
    doc["parameters"]["w"] = [0.0, 0.0, 0.0]  # finite z whatever X holds
    body = _part("request", json.dumps(without_X(doc)[0]).encode()) + _part("X", npy(X)) + CLOSE
    got = _raw(client, body, MULTI)
    assert (got.status_code, got.content) == (200, client.post("/gradient", json=doc).content)


@pytest.mark.parametrize(
    ("body", "content_type", "loc"),
    [
        pytest.param(_part("X", GOOD_X) + CLOSE, MULTI, ["request"], id="no request part"),
        pytest.param(_part("request", REQUEST_PART) + CLOSE, MULTI, ["X"], id="no X part"),
        pytest.param(
            _part("request", REQUEST_PART) + _part("X", GOOD_X) + _part("y", b"[0]") + CLOSE, MULTI, ["y"], id="unknown"
        ),
        pytest.param(
            _part("request", REQUEST_PART) + _part("X", GOOD_X) + _part("X", GOOD_X) + CLOSE, MULTI, ["X"], id="twice"
        ),
        pytest.param(b"".join(_part(f"p{i}", b"") for i in range(20)) + CLOSE, MULTI, ["body"], id="many parts"),
        pytest.param(
            b"--b0undary\r\nContent-Disposition: attachment\r\n\r\nx\r\n" + CLOSE, MULTI, ["body"], id="no name"
        ),
    ],
)
def test_a_wrong_envelope_is_a_422_at_the_part(
    client: TestClient, body: bytes, content_type: str, loc: list[str]
) -> None:
    assert problem(_raw(client, body, content_type), 422, "validation-error")["errors"][0]["loc"] == loc


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(
            _part("request", REQUEST_PART) + _part("X", GOOD_X) + CLOSE, "multipart/form-data", id="no boundary"
        ),
        pytest.param(_part("request", REQUEST_PART) + _part("X", GOOD_X), MULTI, id="no closing boundary"),
        pytest.param(b"this is not multipart at all", MULTI, id="not multipart"),
        pytest.param(
            _part("request", REQUEST_PART) + CLOSE, "multipart/form-data; boundary=" + "x" * 71, id="boundary too long"
        ),
    ],
)
def test_an_unreadable_body_is_a_400(client: TestClient, body: bytes, content_type: str) -> None:
    problem(_raw(client, body, content_type), 400, "invalid-multipart")


@pytest.mark.parametrize(
    ("request_type", "x_type"), [("text/plain", None), ("application/json", "image/png")], ids=["request", "X"]
)
def test_parts_of_another_media_type_are_a_415(client: TestClient, request_type: str, x_type: str | None) -> None:
    body = _part("request", REQUEST_PART, request_type) + _part("X", GOOD_X, x_type) + CLOSE
    problem(_raw(client, body, MULTI), 415, "unsupported-media-type")


def test_the_request_part_is_parsed_as_the_json_body_would_be(client: TestClient) -> None:
    assert problem(post_parts(client, "/gradient", "{not json", GOOD_X), 400, "invalid-json")
    no_data = {k: v for k, v in without_X(LOGISTIC)[0].items() if k != "data"}
    errors = problem(post_parts(client, "/gradient", no_data, GOOD_X), 422, "validation-error")["errors"]
    assert (
        errors
        == client.post("/gradient", json=no_data).json()["errors"]
        == [{"loc": ["data"], "msg": "Field required"}]
    )


def test_x_in_both_places_is_refused(client: TestClient) -> None:
    body = problem(post_parts(client, "/gradient", LOGISTIC, GOOD_X), 422, "validation-error")
    assert body["errors"][0]["loc"] == ["data", "X"] and "part X" in body["errors"][0]["msg"]


def test_endpoints_without_the_binary_form_refuse_multipart(client: TestClient) -> None:
    response = client.post("/grade", files={"request": (None, "{}", "application/json")})
    problem(response, 415, "unsupported-media-type")


def test_another_media_type_is_told_both_forms(client: TestClient) -> None:
    detail = problem(_raw(client, b"x", "text/plain"), 415, "unsupported-media-type")["detail"]
    assert "application/json" in detail and "multipart/form-data" in detail and ".npy" in detail


# --- a wrong .npy ---------------------------------------------------------------------------------


def _object_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([[object(), 1]], dtype=object)[:, 1:], allow_pickle=True)
    return buf.getvalue()


def _header_v3() -> bytes:
    good = GOOD_X
    return good[:6] + b"\x03\x00" + good[8:]


def _with_header(text: str) -> bytes:
    header = text.encode("latin-1")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param(b"PK\x03\x04 not npy", "not a .npy file", id="not npy"),
        pytest.param(b"", "not a .npy file", id="empty"),
        pytest.param(npy(np.arange(12).reshape(4, 3)), "int64", id="integers"),
        pytest.param(npy(np.ones((4, 3), dtype=bool)), "bool", id="booleans"),
        pytest.param(npy(np.ones((4, 3), dtype=np.complex128)), "complex128", id="complex"),
        pytest.param(npy(np.ones((4, 3), dtype=np.longdouble)), "float128", id="long double"),
        pytest.param(_object_npy(), "object", id="object (pickle)"),
        pytest.param(npy(np.zeros(4, dtype=[("a", "<f8"), ("b", "<f8")])), "void", id="structured"),
        pytest.param(npy(np.ones(4)), "two dimensions", id="1-D"),
        pytest.param(npy(np.ones((4, 3, 1))), "two dimensions", id="3-D"),
        pytest.param(npy(np.ones((0, 3))), "at least 1 item", id="no rows"),
        pytest.param(GOOD_X[:-8], "needs", id="truncated"),
        pytest.param(GOOD_X + b"\x00" * 8, "needs", id="trailing bytes"),
        pytest.param(_header_v3(), "format 3.0", id="format 3.0"),
        pytest.param(_with_header("{'descr': '<f8', 'fortran_order': False}"), "header", id="header without shape"),
        pytest.param(_with_header("__import__('os').system('true')"), "header", id="header is code"),
        # found by the mutation test below: numpy's reader raises SyntaxError and TokenError, not ValueError
        pytest.param(_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3))"), "header", id="bracket"),
        pytest.param(_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3"), "header", id="unclosed"),
        pytest.param(
            _with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000), }"),
            "needs",
            id="huge",
        ),
    ],
)
def test_a_wrong_npy_is_a_422_at_x(client: TestClient, content: bytes, words: str) -> None:
    request, _ = without_X(LOGISTIC)
    body = problem(post_parts(client, "/gradient", request, content), 422, "validation-error")
    assert body["errors"][0]["loc"] == ["data", "X"]
    assert words in body["errors"][0]["msg"], body["errors"][0]["msg"]


def test_a_pickle_is_never_loaded(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    request, _ = without_X(LOGISTIC)
    problem(post_parts(client, "/gradient", request, _object_npy()), 422, "validation-error")


def test_non_finite_entries_are_located(client: TestClient) -> None:
    request, X = without_X(LOGISTIC)
    A = np.asarray(X, dtype=np.float64)
    A[1, 2], A[3, 0] = np.nan, -np.inf
    errors = problem(post_parts(client, "/gradient", request, npy(A)), 422, "validation-error")["errors"]
    assert errors == [
        {"loc": ["data", "X", 1, 2], "msg": "Input should be a finite number"},
        {"loc": ["data", "X", 3, 0], "msg": "Input should be a finite number"},
    ]


def test_descent_errors_are_located_in_the_problem(client: TestClient) -> None:
    doc = {"problem": LOGISTIC, "learning_rate": 0.5, "steps": 5}
    request, _ = without_X(doc, ("problem", "data"))
    errors = problem(post_parts(client, "/descent", request, npy(np.ones(3))), 422, "validation-error")["errors"]
    assert errors[0]["loc"] == ["problem", "data", "X"]
    twice = problem(post_parts(client, "/descent", doc, GOOD_X), 422, "validation-error")["errors"]
    assert twice[0]["loc"] == ["problem", "data", "X"]


# --- the contract -------------------------------------------------------------------------------


def test_the_openapi_document_describes_the_binary_form(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    with_parts = {
        (path, method)
        for path, item in paths.items()
        for method, op in item.items()
        if "multipart/form-data" in op.get("requestBody", {}).get("content", {})
    }
    assert with_parts == {("/gradient", "post"), ("/graph", "post"), ("/descent", "post"), ("/descent/plot", "post")}
    form = paths["/gradient"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["required"] == ["request", "X"]
    assert form["schema"]["properties"]["request"]["$ref"] == "#/components/schemas/GradientRequest"
    assert form["encoding"]["X"]["contentType"] == "application/x-npy"


# --- mutated bodies: never a 500 --------------------------------------------------------------


VALID = _part("request", REQUEST_PART, "application/json") + _part("X", GOOD_X, binary.NPY) + CLOSE
HEADS = VALID.index(GOOD_X) + 128  # the envelope, the request part and the .npy header: edited as often


@settings(
    max_examples=int(os.environ.get("MUTATIONS", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    edits=st.lists(
        st.tuples(
            st.one_of(st.integers(0, HEADS), st.integers(0, len(VALID) - 1)),
            st.sampled_from(["flip", "cut", "insert", "drop"]),
            st.binary(min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_multipart_bodies_are_answered_cleanly(client: TestClient, edits: list[tuple[int, str, bytes]]) -> None:
    body = bytearray(VALID)
    for at, how, data in edits:
        at = min(at, len(body))
        if how == "flip" and at < len(body):
            body[at] ^= data[0] or 1
        elif how == "cut":
            del body[at:]
        elif how == "insert":
            body[at:at] = data
        elif how == "drop":
            del body[at : at + len(data)]
    response = _raw(client, bytes(body), MULTI)
    assert response.status_code in (200, 400, 415, 422), response.text
    if response.status_code != 200:
        assert response.headers["content-type"] == PROBLEM_JSON
        assert "Traceback" not in response.text
    else:
        assert np.isfinite(response.json()["loss"])


def test_a_big_multipart_body_read_into_one_buffer_answers_as_json(client: TestClient, body_kinds: list[type]) -> None:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(50_000, 3))
    doc = {
        "model": "logistic_regression",
        "parameters": {"w": [0.1, -0.2, 0.3], "b": 0.5},
        "data": {"X": X.tolist(), "y": (rng.random(50_000) < 0.5).astype(int).tolist()},
    }
    request, _ = without_X(doc)
    got = post_parts(client, "/gradient", request, npy(X))
    assert body_kinds == [bytearray]  # over BUFFER_MIN_BYTES: the buffer, not the joined chunks
    assert (got.status_code, got.content) == (200, client.post("/gradient", json=doc).content)


def test_a_part_in_pieces_is_joined_in_order() -> None:
    body = b"0123456789"
    whole = binary._Part(pieces=[(2, 7)])
    assert bytes(whole.content(body)) == b"23456" and isinstance(whole.content(body), memoryview)  # no copy
    pieces = binary._Part(pieces=[(0, 3), b"xy", (5, 7)])  # bytes: the parser's own look-behind buffer
    assert pieces.content(body) == b"012xy56"
    assert binary._Part().content(body) == b""
