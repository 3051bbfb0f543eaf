"""`Payload`: every accessor on its success path, and the exact message of each of its errors.

Messages are compared whole, so a regression in the field path a mediator reads (dots, list
indices, the `(root)` of an empty path) fails here rather than in a plugin's translation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from pimms_core.errors import PartnerProtocolError
from pimms_core.payload import Payload

CUSTOMER: dict[str, Any] = {
    "customer_id": "4001234567",
    "status": "active",
    "identity": {"natural_person": {"title": "Mme", "firstname": "Camille", "lastname": None}},
    "usage_points": [
        {
            "usage_point": {"usage_point_id": "24115050123456", "meter_type": "AMM"},
            "usage_point_addresses": {"street": "12 rue des Lilas", "postal_code": 69008},
        },
        {"usage_point": "not an object", "contracts": None},
    ],
    "balance": {"amount": -84.2, "currency": "EUR", "payment_plan": False, "count": 3},
}


def answer(**kwargs: Any) -> httpx.Response:
    return httpx.Response(200, request=httpx.Request("GET", "https://x.test/"), **kwargs)


def detail(call: Callable[[], object]) -> str:
    """The detail of the `PartnerProtocolError` that `call` raises."""
    with pytest.raises(PartnerProtocolError) as caught:
        call()
    assert caught.value.partner == "edf"
    return caught.value.detail


@pytest.fixture
def customer() -> Payload:
    return Payload({"customer": CUSTOMER}, "edf").obj("customer")


# --- Payload.of ---------------------------------------------------------------------------------


def test_of_reads_the_json_object_of_an_answer() -> None:
    payload = Payload.of(answer(json={"status": "active"}), "edf")
    assert payload.data == {"status": "active"}
    assert payload.partner == "edf"
    assert payload.text("status") == "active"


@pytest.mark.parametrize("body", [b'[{"status": "active"}]', b'"active"', b"3", b"null"])
def test_of_refuses_a_body_that_is_not_an_object(body: bytes) -> None:
    response = answer(content=body, headers={"Content-Type": "application/json"})
    with pytest.raises(PartnerProtocolError) as caught:
        Payload.of(response, "edf")
    assert (
        str(caught.value)
        == "edf answered something unexpected: expected a JSON object in the answer"
    )


def test_of_refuses_a_body_that_is_not_json() -> None:
    response = answer(text="<html>", headers={"Content-Type": "text/html; charset=utf-8"})
    assert detail(lambda: Payload.of(response, "edf")) == (
        "HTTP 200 with a body that is not JSON (text/html)"
    )


# --- has, raw, iteration ------------------------------------------------------------------------


def test_has_is_true_for_any_present_non_null_value(customer: Payload) -> None:
    assert customer.has("status")
    assert customer.has("identity", "natural_person", "title")
    assert customer.has("balance", "payment_plan")  # False is present
    assert Payload({"n": 0, "s": ""}, "edf").has("n")
    assert Payload({"n": 0, "s": ""}, "edf").has("s")


def test_has_is_false_for_missing_null_or_unreachable(customer: Payload) -> None:
    assert not customer.has("absent")
    assert not customer.has("identity", "natural_person", "lastname")  # null
    assert not customer.has("identity", "legal_entity", "name")
    assert not customer.has("status", "code")  # through a string
    assert not customer.has("usage_points", "0")  # through a list
    assert not Payload("text", "edf").has("status")


def test_has_without_keys_tells_whether_the_view_holds_a_value() -> None:
    assert Payload({}, "edf").has()
    assert not Payload(None, "edf").has()


def test_raw_returns_the_value_as_it_is(customer: Payload) -> None:
    assert customer.raw("status") == "active"
    assert customer.raw("usage_points") is CUSTOMER["usage_points"]
    assert customer.raw("balance") is CUSTOMER["balance"]
    assert customer.raw("balance", "payment_plan") is False
    assert customer.raw() is CUSTOMER


def test_raw_is_none_when_missing_or_null(customer: Payload) -> None:
    assert customer.raw("absent") is None
    assert customer.raw("identity", "natural_person", "lastname") is None
    assert customer.raw("status", "code") is None


def test_iteration_gives_the_keys_of_an_object(customer: Payload) -> None:
    assert list(customer) == list(CUSTOMER)
    assert list(customer.obj("balance")) == ["amount", "currency", "payment_plan", "count"]
    assert list(Payload(["a", "b"], "edf")) == []
    assert list(Payload(None, "edf")) == []


# --- obj, opt_obj -------------------------------------------------------------------------------


def test_obj_gives_a_view_on_the_nested_object(customer: Payload) -> None:
    identity = customer.obj("identity")
    assert identity.data is CUSTOMER["identity"]
    assert identity.partner == "edf"
    person = customer.obj("identity", "natural_person")
    assert person.text("firstname") == "Camille"
    assert identity.obj("natural_person").data is person.data


def test_obj_accepts_a_dict_subclass() -> None:
    payload = Payload(OrderedDict(a=OrderedDict(b="x")), "edf")
    assert payload.obj("a").text("b") == "x"
    assert payload.text("a", "b") == "x"
    assert not payload.has("a", "c")


def test_obj_errors_name_the_whole_path(customer: Payload) -> None:
    assert detail(lambda: customer.obj("absent")) == "field customer.absent is missing"
    assert detail(lambda: customer.obj("identity", "legal_entity")) == (
        "field customer.identity.legal_entity is missing"
    )
    person = customer.obj("identity").obj("natural_person")
    assert detail(lambda: person.obj("lastname")) == (
        "field customer.identity.natural_person.lastname is missing"
    )
    assert detail(lambda: customer.obj("status")) == "field customer.status is not an object"
    assert detail(lambda: customer.obj("usage_points")) == (
        "field customer.usage_points is not an object"
    )
    assert detail(lambda: customer.obj("identity").text("name")) == (
        "field customer.identity.name is missing"
    )


def test_opt_obj(customer: Payload) -> None:
    balance = customer.opt_obj("balance")
    assert balance is not None and balance.number("amount") == -84.2
    assert customer.opt_obj("absent") is None
    assert customer.opt_obj("identity", "natural_person", "lastname") is None  # null
    assert detail(lambda: customer.opt_obj("status")) == "field customer.status is not an object"
    assert balance is not None
    assert detail(lambda: balance.opt_obj("currency")) == (
        "field customer.balance.currency is not an object"
    )


# --- objects ------------------------------------------------------------------------------------


def test_objects_gives_one_view_per_item(customer: Payload) -> None:
    points = customer.objects("usage_points")
    assert [point.data for point in points] == CUSTOMER["usage_points"]
    assert all(point.partner == "edf" for point in points)
    assert points[0].obj("usage_point").text("usage_point_id") == "24115050123456"


def test_objects_of_an_absent_null_or_empty_list_is_empty() -> None:
    payload = Payload({"none": None, "empty": [], "deep": {}}, "edf")
    assert payload.objects("absent") == []
    assert payload.objects("none") == []
    assert payload.objects("empty") == []
    assert payload.objects("deep", "items") == []


def test_objects_errors_name_the_list_and_the_index(customer: Payload) -> None:
    assert detail(lambda: customer.objects("status")) == "field customer.status is not a list"
    assert detail(lambda: customer.objects("balance")) == "field customer.balance is not a list"
    payload = Payload({"a": {"items": [{}, {}, "x"]}}, "edf")
    assert detail(lambda: payload.objects("a", "items")) == "a.items[2] is not an object"
    assert detail(lambda: Payload({"items": [None]}, "edf").objects("items")) == (
        "items[0] is not an object"
    )


def test_the_path_of_an_item_carries_its_index(customer: Payload) -> None:
    points = customer.objects("usage_points")
    assert detail(lambda: points[1].obj("usage_point")) == (
        "field customer.usage_points[1].usage_point is not an object"
    )
    assert detail(lambda: points[0].obj("usage_point").text("usage_point_status")) == (
        "field customer.usage_points[0].usage_point.usage_point_status is missing"
    )
    assert detail(lambda: points[0].text("usage_point", "absent", "deeper")) == (
        "field customer.usage_points[0].usage_point.absent.deeper is missing"
    )
    assert detail(lambda: points[1].obj("contracts")) == (
        "field customer.usage_points[1].contracts is missing"
    )


def test_paths_through_nested_lists() -> None:
    payload = Payload({"a": [{"b": [{}, {"c": {"d": 1}}]}]}, "edf")
    inner = payload.objects("a")[0].objects("b")[1]
    assert detail(lambda: inner.obj("c").text("e")) == "field a[0].b[1].c.e is missing"
    assert detail(lambda: inner.obj("c").objects("d")) == "field a[0].b[1].c.d is not a list"
    assert detail(lambda: payload.objects("a")[0].objects("b")[0].flag("f")) == (
        "field a[0].b[0].f is missing"
    )


def test_each_error_of_a_view_names_its_own_path(customer: Payload) -> None:
    """The path of a child, once spelled out for one error, stays right for the next."""
    point = customer.objects("usage_points")[0]
    assert detail(lambda: point.text("x")) == "field customer.usage_points[0].x is missing"
    assert detail(lambda: point.text("y")) == "field customer.usage_points[0].y is missing"
    address = point.obj("usage_point_addresses")
    assert detail(lambda: address.text("city")) == (
        "field customer.usage_points[0].usage_point_addresses.city is missing"
    )


# --- paths at the root and given explicitly -----------------------------------------------------


def test_root_and_explicit_paths() -> None:
    assert detail(lambda: Payload({}, "edf").text("status")) == "field status is missing"
    assert detail(lambda: Payload({}, "edf", "claim").text("status")) == (
        "field claim.status is missing"
    )
    assert detail(lambda: Payload({}, "edf").text()) == "field (root) is not text"
    assert detail(lambda: Payload(None, "edf").obj()) == "field (root) is missing"
    assert detail(lambda: Payload([], "edf").obj()) == "field (root) is not an object"
    root = Payload({"a": {}}, "edf").obj()
    assert detail(lambda: root.text("a", "b")) == "field (root).a.b is missing"
    assert detail(lambda: Payload([{}, 1], "edf").objects()) == "(root)[1] is not an object"
    empty_keys = Payload({"": {"a": {"": True}}}, "edf")
    assert detail(lambda: empty_keys.text("", "a", "")) == "field a is not text"


# --- text, opt_text -----------------------------------------------------------------------------


def test_text(customer: Payload) -> None:
    assert customer.text("status") == "active"
    assert customer.text("identity", "natural_person", "firstname") == "Camille"
    assert Payload({"s": ""}, "edf").text("s") == ""


def test_text_accepts_an_integer_as_its_digits(customer: Payload) -> None:
    text = customer.objects("usage_points")[0].text("usage_point_addresses", "postal_code")
    assert text == "69008" and type(text) is str
    assert Payload({"n": -7}, "edf").text("n") == "-7"


@pytest.mark.parametrize("value", [True, False, 1.5, [], ["a"], {}, {"a": "b"}])
def test_text_refuses_other_types(value: object) -> None:
    payload = Payload({"a": {"v": value}}, "edf")
    assert detail(lambda: payload.text("a", "v")) == "field a.v is not text"
    assert detail(lambda: payload.opt_text("a", "v")) == "field a.v is not text"


def test_text_of_a_missing_or_null_field(customer: Payload) -> None:
    assert detail(lambda: customer.text("absent")) == "field customer.absent is missing"
    assert detail(lambda: customer.text("identity", "natural_person", "lastname")) == (
        "field customer.identity.natural_person.lastname is missing"
    )
    assert (
        detail(lambda: customer.text("status", "code")) == "field customer.status.code is missing"
    )


def test_opt_text(customer: Payload) -> None:
    assert customer.opt_text("status") == "active"
    assert customer.opt_text("balance", "count") == "3"
    assert customer.opt_text("absent") is None
    assert customer.opt_text("identity", "natural_person", "lastname") is None
    assert customer.opt_text("status", "code") is None


# --- opt_texts, opt_texts_in -------------------------------------------------------------------


def test_opt_texts_reads_several_fields_in_order(customer: Payload) -> None:
    person = customer.obj("identity").obj("natural_person")
    assert person.opt_texts("title", "firstname", "lastname", "absent") == [
        "Mme",
        "Camille",
        None,
        None,
    ]
    address = customer.objects("usage_points")[0].obj("usage_point_addresses")
    parts = address.opt_texts("postal_code", "street")
    assert parts == ["69008", "12 rue des Lilas"] and type(parts[0]) is str
    assert customer.obj("balance").opt_texts("count", "currency") == ["3", "EUR"]
    assert customer.opt_texts() == []


def test_opt_texts_of_a_dict_subclass_or_of_no_object() -> None:
    assert Payload(OrderedDict(s="x", n=7), "edf").opt_texts("s", "n", "m") == ["x", "7", None]
    assert Payload(None, "edf").opt_texts("a", "b") == [None, None]
    assert Payload(["a"], "edf").opt_texts("a") == [None]


@pytest.mark.parametrize("value", [True, False, 1.5, [], ["a"], {}, {"a": "b"}])
def test_opt_texts_refuses_other_types(value: object) -> None:
    view = Payload({"a": {"s": "x", "v": value}}, "edf").obj("a")
    assert detail(lambda: view.opt_texts("s", "v")) == "field a.v is not text"
    subclass = Payload(OrderedDict(s="x", v=value), "edf", "a")
    assert detail(lambda: subclass.opt_texts("s", "v")) == "field a.v is not text"


def test_opt_texts_names_the_first_wrong_field_read() -> None:
    payload = Payload({"a": 1.5, "b": True, "s": "x"}, "edf")
    assert detail(lambda: payload.opt_texts("s", "b", "a")) == "field b is not text"
    assert detail(lambda: payload.opt_texts("a", "b")) == "field a is not text"


def test_opt_texts_in_reads_the_fields_of_a_nested_object(customer: Payload) -> None:
    identity = customer.obj("identity")
    assert identity.opt_texts_in("natural_person", "title", "lastname", "absent") == [
        "Mme",
        None,
        None,
    ]
    point = customer.objects("usage_points")[0]
    parts = point.opt_texts_in("usage_point_addresses", "postal_code", "city")
    assert parts == ["69008", None] and type(parts[0]) is str
    assert customer.opt_texts_in("balance", "currency", "count") == ["EUR", "3"]
    assert customer.opt_texts_in("balance") == []


def test_opt_texts_in_an_absent_or_null_object_is_none(customer: Payload) -> None:
    assert customer.opt_texts_in("absent", "a") is None
    assert customer.objects("usage_points")[1].opt_texts_in("contracts", "offer") is None
    assert Payload(None, "edf").opt_texts_in("a", "b") is None
    assert Payload(OrderedDict(), "edf").opt_texts_in("a", "b") is None


def test_opt_texts_in_a_dict_subclass() -> None:
    inner = Payload({"a": OrderedDict(s="x", n=7)}, "edf")
    assert inner.opt_texts_in("a", "s", "n", "m") == ["x", "7", None]
    outer = Payload(OrderedDict(a={"s": "x"}), "edf")
    assert outer.opt_texts_in("a", "s", "m") == ["x", None]


def test_opt_texts_in_errors_name_the_whole_path(customer: Payload) -> None:
    assert detail(lambda: customer.opt_texts_in("status", "code")) == (
        "field customer.status is not an object"
    )
    points = customer.objects("usage_points")
    assert detail(lambda: points[1].opt_texts_in("usage_point", "usage_point_id")) == (
        "field customer.usage_points[1].usage_point is not an object"
    )
    assert detail(lambda: customer.opt_texts_in("balance", "currency", "payment_plan")) == (
        "field customer.balance.payment_plan is not text"
    )
    assert detail(lambda: customer.opt_texts_in("identity", "natural_person")) == (
        "field customer.identity.natural_person is not text"
    )
    subclass = Payload({"a": OrderedDict(v=[])}, "edf")
    assert detail(lambda: subclass.opt_texts_in("a", "v")) == "field a.v is not text"
    assert detail(lambda: Payload({"a": 1.5}, "edf", "x").opt_texts_in("a", "v")) == (
        "field x.a is not an object"
    )


def test_no_error_carries_the_value() -> None:
    payload = Payload(
        {"name": {"first": "Canary"}, "n": "Canary", "items": ["Canary"], "o": {"v": ["Canary"]}},
        "edf",
    )
    calls: list[Callable[[], object]] = [
        lambda: payload.text("name"),
        lambda: payload.number("n"),
        lambda: payload.integer("n"),
        lambda: payload.flag("n"),
        lambda: payload.obj("n"),
        lambda: payload.objects("n"),
        lambda: payload.objects("items"),
        lambda: payload.timestamp("n"),
        lambda: payload.day("n"),
        lambda: payload.opt_texts("n", "name"),
        lambda: payload.opt_texts_in("n", "x"),
        lambda: payload.opt_texts_in("o", "v"),
    ]
    for call in calls:
        assert "Canary" not in detail(call)


# --- integer, number, opt_number ----------------------------------------------------------------


def test_integer(customer: Payload) -> None:
    assert customer.integer("balance", "count") == 3
    assert Payload({"n": 0}, "edf").integer("n") == 0


@pytest.mark.parametrize("value", [True, False, 3.0, "3", [3], {"n": 3}])
def test_integer_refuses_other_types(value: object) -> None:
    payload = Payload({"v": value}, "edf")
    assert detail(lambda: payload.integer("v")) == "field v is not an integer"


def test_integer_of_a_missing_or_null_field() -> None:
    payload = Payload({"v": None}, "edf", "x")
    assert detail(lambda: payload.integer("v")) == "field x.v is missing"
    assert detail(lambda: payload.integer("w")) == "field x.w is missing"


def test_number(customer: Payload) -> None:
    assert customer.number("balance", "amount") == -84.2
    count = customer.number("balance", "count")
    assert count == 3.0 and type(count) is float
    assert Payload({"n": 0}, "edf").number("n") == 0.0


@pytest.mark.parametrize("value", [True, False, "3.5", None, [1.0]])
def test_number_refuses_other_types(value: object) -> None:
    payload = Payload({"b": {"v": value}}, "edf")
    expected = "field b.v is missing" if value is None else "field b.v is not a number"
    assert detail(lambda: payload.number("b", "v")) == expected
    if value is not None:
        assert detail(lambda: payload.opt_number("b", "v")) == expected


def test_number_of_a_missing_field(customer: Payload) -> None:
    assert detail(lambda: customer.number("balance", "due")) == (
        "field customer.balance.due is missing"
    )


def test_opt_number(customer: Payload) -> None:
    assert customer.opt_number("balance", "amount") == -84.2
    count = customer.opt_number("balance", "count")
    assert count == 3.0 and type(count) is float
    assert customer.opt_number("balance", "due") is None
    assert Payload({"n": None}, "edf").opt_number("n") is None


# --- flag ---------------------------------------------------------------------------------------


def test_flag(customer: Payload) -> None:
    assert customer.flag("balance", "payment_plan") is False
    assert Payload({"f": True}, "edf").flag("f") is True


@pytest.mark.parametrize("value", [0, 1, "true", "false", 1.0, [], {}])
def test_flag_refuses_other_types(value: object) -> None:
    payload = Payload({"v": value}, "edf")
    assert detail(lambda: payload.flag("v")) == "field v is not true or false"


def test_flag_of_a_missing_or_null_field(customer: Payload) -> None:
    assert detail(lambda: customer.flag("balance", "frozen")) == (
        "field customer.balance.frozen is missing"
    )
    assert detail(lambda: Payload({"f": None}, "edf").flag("f")) == "field f is missing"


# --- timestamp, opt_timestamp -------------------------------------------------------------------


def test_timestamp_reads_iso_8601() -> None:
    payload = Payload({"at": "2026-11-02T09:30:00+01:00", "naive": "2026-11-02T09:30:00"}, "edf")
    assert payload.timestamp("at") == datetime(
        2026, 11, 2, 9, 30, tzinfo=timezone(timedelta(hours=1))
    )
    assert payload.timestamp("naive") == datetime(2026, 11, 2, 9, 30)
    assert payload.timestamp("naive").tzinfo is None


def test_timestamp_reads_a_given_format() -> None:
    payload = Payload({"at": "02/11/2026 09:30", "iso": "2026-11-02T09:30:00Z"}, "edf")
    assert payload.timestamp("at", fmt="%d/%m/%Y %H:%M") == datetime(2026, 11, 2, 9, 30)
    assert payload.timestamp("iso") == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    assert detail(lambda: payload.timestamp("iso", fmt="%d/%m/%Y %H:%M")) == (
        "field iso is not a date-time"
    )
    assert payload.timestamp("iso", fmt="") == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def test_timestamp_errors() -> None:
    payload = Payload({"h": {"at": "yesterday", "n": 2026, "b": True, "none": None}}, "edf")
    step = payload.obj("h")
    assert detail(lambda: step.timestamp("at")) == "field h.at is not a date-time"
    assert detail(lambda: step.timestamp("n")) == "field h.n is not a date-time"
    assert detail(lambda: step.timestamp("b")) == "field h.b is not text"
    assert detail(lambda: step.timestamp("none")) == "field h.none is missing"
    assert detail(lambda: step.timestamp("absent")) == "field h.absent is missing"
    assert detail(lambda: step.timestamp("at", fmt="%Y")) == "field h.at is not a date-time"


def test_opt_timestamp() -> None:
    payload = Payload({"at": "2026-11-02T09:30:00", "fr": "02/11/2026", "none": None}, "edf")
    assert payload.opt_timestamp("at") == datetime(2026, 11, 2, 9, 30)
    assert payload.opt_timestamp("fr", fmt="%d/%m/%Y") == datetime(2026, 11, 2)
    assert payload.opt_timestamp("none") is None
    assert payload.opt_timestamp("absent", fmt="%d/%m/%Y") is None
    assert detail(lambda: payload.opt_timestamp("fr")) == "field fr is not a date-time"
    assert detail(lambda: Payload({"b": False}, "edf").opt_timestamp("b")) == (
        "field b is not text"
    )


# --- day, opt_day -------------------------------------------------------------------------------


def test_day_reads_the_date_part() -> None:
    payload = Payload(
        {"d": "2026-11-17", "at": "2026-11-17T23:30:00-05:00", "tz": "2017-07-15+02:00"}, "edf"
    )
    assert payload.day("d") == date(2026, 11, 17)
    assert payload.day("at") == date(2026, 11, 17)
    assert payload.day("tz") == date(2017, 7, 15)


def test_day_errors() -> None:
    payload = Payload({"c": {"d": "17/11/2026", "n": 2026, "b": True}}, "edf")
    contract = payload.obj("c")
    assert detail(lambda: contract.day("d")) == "field c.d is not a date"
    assert detail(lambda: contract.day("n")) == "field c.n is not a date"
    assert detail(lambda: contract.day("b")) == "field c.b is not text"
    assert detail(lambda: contract.day("absent")) == "field c.absent is missing"


def test_opt_day() -> None:
    payload = Payload({"d": "2026-11-17", "none": None, "bad": "soon"}, "edf")
    assert payload.opt_day("d") == date(2026, 11, 17)
    assert payload.opt_day("none") is None
    assert payload.opt_day("absent") is None
    assert detail(lambda: payload.opt_day("bad")) == "field bad is not a date"


# --- shape --------------------------------------------------------------------------------------


def test_a_payload_has_no_instance_dict(customer: Payload) -> None:
    assert not hasattr(customer, "__dict__")
    assert not hasattr(customer.objects("usage_points")[0], "__dict__")
