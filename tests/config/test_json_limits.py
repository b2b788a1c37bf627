"""The JSON limits' shortcuts from the text: they may say "maybe" wrongly, never "no" wrongly."""

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from config.limits import json_has_nul, json_text_may_hold_nul, json_text_may_nest, json_too_deep

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(alphabet=st.sampled_from('a\x00{[\\"u0')),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet=st.sampled_from("k\x00{"), max_size=3), children, max_size=3)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, limit=st.integers(min_value=0, max_value=6))
def test_a_text_said_not_to_nest_deeper_never_does(value, limit):
    text = orjson.dumps(value)
    if json_too_deep(value, limit):
        assert json_text_may_nest(text, limit)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_a_text_said_to_hold_no_nul_never_does(value):
    text = orjson.dumps(value)
    if json_has_nul(value):
        assert json_text_may_hold_nul(text)


def test_the_shortcuts_on_a_sync_and_on_the_values_they_guard():
    sync = b'{"query": "query { a { b { c } } }", "variables": {"licenseKey": "cdl_x", "gitlabVersion": "17.11"}}'
    assert not json_text_may_nest(sync) and not json_text_may_hold_nul(sync)
    deep = orjson.dumps([[[[1]]]])
    assert json_too_deep(orjson.loads(deep), 3) and json_text_may_nest(deep, 3)
    assert not json_text_may_nest(deep, 4)
    assert json_text_may_hold_nul(orjson.dumps({"k": "a\x00b"}))
    assert json_text_may_hold_nul(orjson.dumps({"a\x00": 1}))  # keys too
    assert json_text_may_hold_nul(b'{"k": "a\\\\u0000"}') and not json_has_nul(orjson.loads(b'{"k": "a\\\\u0000"}'))
