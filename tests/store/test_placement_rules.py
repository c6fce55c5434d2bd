"""Placement rules: JSON and text forms, their meaning item by item, and clear messages for bad ones."""
import pytest

from backend.store.placement_rules import Rule, RuleError, rule_from_json, rule_from_text


@pytest.mark.parametrize("text, json", [
    ("category in shoes, boots", {"field": "category", "op": "in", "values": ["shoes", "boots"]}),
    ("category not in gifts", {"field": "category", "op": "not_in", "values": ["gifts"]}),
    ("price between 10 and 100", {"field": "price", "op": "between", "min": 10.0, "max": 100.0}),
    ("price >= 10", {"field": "price", "op": "between", "min": 10.0, "max": None}),
    ("price <= 2x", {"field": "price", "op": "relative", "min": None, "max": 2.0}),
    ("price between 0.5x and 2x", {"field": "price", "op": "relative", "min": 0.5, "max": 2.0}),
    ("attribute color = dark red", {"field": "attribute", "name": "color", "op": "equals", "value": "dark red"}),
])
def test_text_and_json_forms_round_trip(text, json):
    rule = rule_from_text(text)
    assert rule.as_json() == json
    assert rule_from_json(json) == rule
    assert rule_from_text(rule.text()) == rule


def test_what_each_rule_keeps():
    assert rule_from_text("category in a, b").passes("a", None, None, None)
    assert not rule_from_text("category in a, b").passes(None, None, None, None)
    assert rule_from_text("category not in a").passes(None, None, None, None)
    between = rule_from_text("price between 10 and 20")
    assert between.passes(None, 10, None, None) and not between.passes(None, 20.5, None, None)
    assert not between.passes(None, None, None, None)          # no price: fails a price range
    rel = rule_from_text("price between 0.5x and 2x")
    assert rel.passes(None, 40, None, 20) and not rel.passes(None, 41, None, 20)
    assert rel.passes(None, 1000, None, None)                  # no page price: the rule keeps everything
    attr = rule_from_json({"field": "attribute", "name": "size", "op": "equals", "value": 42})
    assert attr.passes(None, None, {"size": 42.0}, None) and attr.passes(None, None, {"size": "42"}, None)
    assert not attr.passes(None, None, {}, None)
    flag = rule_from_text("attribute vegan = true")
    assert flag.passes(None, None, {"vegan": True}, None) and not flag.passes(None, None, {"vegan": False}, None)


@pytest.mark.parametrize("bad, message", [
    ({"field": "colour", "op": "in"}, "field must be one of"),
    ({"field": "price", "op": "in"}, "op must be one of between, relative"),
    ({"field": "category", "op": "in", "values": []}, "list of 1-100"),
    ({"field": "category", "op": "in", "values": ["x"], "extra": 1}, "unknown key(s) extra"),
    ({"field": "price", "op": "between"}, "give min, max or both"),
    ({"field": "price", "op": "between", "min": 5, "max": 1}, "min (5) is above max (1)"),
    ({"field": "price", "op": "between", "min": -1}, "at least 0"),
    ({"field": "price", "op": "between", "min": True}, "at least 0"),
    ({"field": "attribute", "op": "equals", "name": "a b", "value": 1}, "name is 1-64"),
    ({"field": "attribute", "op": "equals", "name": "a", "value": [1]}, "value is text"),
    ("category in x", "an object"),
])
def test_bad_rules_are_refused_with_a_message(bad, message):
    with pytest.raises(RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rule_from_json(bad)


@pytest.mark.parametrize("line, message", [
    ("price from 1 to 2", "not a rule; write one of"),
    ("price between 1 and 2x", "both bounds absolute"),
    ("categories in a", "not a rule"),
    ("price between 9 and 3", "above max"),
])
def test_bad_lines_name_the_syntax(line, message):
    with pytest.raises(RuleError, match=message):
        rule_from_text(line)


def test_rules_are_hashable_for_the_serving_caches():
    rules = {rule_from_text("category in a"), rule_from_text("category in  a"), Rule("price", "between", max=1)}
    assert len(rules) == 2
