"""A domain's shape, one rule for the event and the schema object: not over another domain, each check
named once."""

from __future__ import annotations

import pytest

from events.catalog import parse_event
from events.model import DomainType


def _domain(**fields: object) -> dict[str, object]:
    return {"type": "domain_created", "name": "year", "base": "integer", **fields}


def test_a_domain_over_a_domain_and_a_check_named_twice_are_refused() -> None:
    assert parse_event(_domain()).name == "year"
    with pytest.raises(ValueError, match="a domain over another domain is not supported"):
        parse_event(_domain(base="domain:other"))
    twice = [{"name": "positive", "expression": "VALUE > 0"}, {"name": "positive", "expression": "VALUE < 9999"}]
    with pytest.raises(ValueError, match="names a check twice"):
        parse_event(_domain(checks=twice))
    with pytest.raises(ValueError, match="names a check twice"):
        DomainType.model_validate({"name": "year", "type": "integer", "checks": twice})
    with pytest.raises(ValueError, match="a domain over another domain is not supported"):
        DomainType.model_validate({"name": "year", "type": "domain:other"})
