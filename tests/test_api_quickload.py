"""The quick validator of POST /jobs items agrees with the marshmallow schema on every item."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from jobsvc.api.quickload import quick_load
from jobsvc.api.schemas import CreateJobSchema

KNOWN = frozenset({"noop", "send_email"})
SCHEMA = CreateJobSchema(known_types=KNOWN)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
names = st.one_of(
    st.sampled_from(
        [
            "noop",
            "send_email",
            "unknown",
            "default",
            "q.1",
            "",
            "noop\n",
            " noop",
            "1noop",
            "é",
            "a" * 129,
            "a" * 65,
        ]
    ),
    st.text(max_size=10),
)
values = {
    "type": st.one_of(names, json_scalars),
    "payload": st.one_of(
        st.dictionaries(st.text(max_size=3), json_scalars, max_size=3),
        json_scalars,
        st.lists(json_scalars, max_size=2),
    ),
    "queue": st.one_of(names, json_scalars),
    "priority": st.one_of(st.integers(-1_000_001, 1_000_001), json_scalars),
    "max_attempts": st.one_of(st.integers(-1, 1001), json_scalars),
    "timeout_seconds": st.one_of(
        st.floats(0, 700_000),
        st.integers(-1, 700_000),
        st.sampled_from([0.001, 0.0009, 604800, 604800.5]),
        json_scalars,
    ),
    "run_at": st.one_of(st.none(), st.sampled_from(["2030-01-01T00:00:00Z", "yesterday"])),
    "delay_seconds": st.one_of(
        st.floats(-1, 40_000_000),
        st.sampled_from([0, 0.0, -0.0, 31_536_000, 31_536_000.5]),
        json_scalars,
    ),
    "extra": json_scalars,
}
items = st.fixed_dictionaries({}, optional=values)


def _marshmallow(item):
    try:
        return SCHEMA.load(item)
    except ValidationError:
        return None


@settings(max_examples=3000, deadline=None)
@given(items)
def test_quick_load_accepts_only_what_marshmallow_accepts_and_loads_it_the_same(item):
    quick = quick_load(item, KNOWN)
    if quick is not None:
        expected = _marshmallow(item)
        assert expected == quick
        assert {k: type(v) for k, v in expected.items()} == {k: type(v) for k, v in quick.items()}


common_items = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(KNOWN))},
    optional={
        "payload": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        "queue": st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True),
        "priority": st.integers(-1_000_000, 1_000_000),
        "max_attempts": st.one_of(st.none(), st.integers(1, 1000)),
        "timeout_seconds": st.one_of(st.none(), st.floats(0.001, 604800.0)),
    },
)
edges = {
    "priority": st.sampled_from([-1_000_001, -1_000_000, 1_000_000, 1_000_001, True, 1.0]),
    "max_attempts": st.sampled_from([0, 1, 1000, 1001, False, 2.0, None]),
    "timeout_seconds": st.sampled_from(
        [0, 0.0009, 0.001, 1, 604800, 604800.001, True, float("inf"), float("nan"), None]
    ),
}


@settings(max_examples=500, deadline=None)
@given(common_items)
def test_common_items_take_the_quick_path(item):
    assert quick_load(item, KNOWN) == SCHEMA.load(item)


@settings(max_examples=1000, deadline=None)
@given(common_items, st.sampled_from(sorted(values)), st.data())
def test_one_field_changed_to_any_value_still_agrees(item, field, data):
    item = {**item, field: data.draw(st.one_of(values[field], edges.get(field, st.nothing())))}
    quick = quick_load(item, KNOWN)
    if quick is not None:
        assert quick == _marshmallow(item)
