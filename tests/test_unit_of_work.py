"""unit_of_work refuses to nest: an inner one would commit the outer one's half-done work."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Counter
from app.services.base import unit_of_work


def stored(name: str):
    db.session.rollback()
    return db.session.scalar(select(Counter.value).where(Counter.name == name))


def test_a_nested_unit_of_work_is_refused_and_the_outer_work_rolls_back(app):
    with app.app_context():
        with pytest.raises(RuntimeError, match="inside another unit_of_work"):
            with unit_of_work():
                db.session.add(Counter(name="outer", value=1))
                db.session.flush()
                with unit_of_work():  # the old code committed "outer" here, before the failure below
                    db.session.add(Counter(name="inner", value=2))
                raise AssertionError("not reached")
        assert stored("outer") is None and stored("inner") is None


def test_units_of_work_one_after_the_other_still_commit(app):
    with app.app_context():
        with unit_of_work():
            db.session.add(Counter(name="first", value=1))
        with pytest.raises(ValueError):
            with unit_of_work():
                db.session.add(Counter(name="second", value=2))
                raise ValueError("rolled back")
        with unit_of_work():
            db.session.add(Counter(name="third", value=3))
        assert (stored("first"), stored("second"), stored("third")) == (1, None, 3)
