"""Reading numbers from addresses and forms: ids and counts are 32-bit in the database."""
from flask_babel import lazy_gettext as _l
from werkzeug.routing import BaseConverter
from wtforms import IntegerField

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def int32(text: str) -> int:
    """`type=` for request.args and `coerce=` for fields: a whole number a 32-bit column holds, else ValueError.

    A larger number would reach the database and fail there (a 500) instead of being refused as bad input.
    """
    number = int(text)
    if not INT32_MIN <= number <= INT32_MAX:
        raise ValueError(_l("Talet är för stort."))
    return number


class Int32Field(IntegerField):
    """An IntegerField that refuses numbers no 32-bit column holds."""

    data: int | None

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and not INT32_MIN <= self.data <= INT32_MAX:
            self.data = None
            raise ValueError(_l("Talet är för stort."))


class BoundedIntConverter(BaseConverter):
    """`<int:...>` for the database's 32-bit ids.

    A number too large for an id cannot name an object, so it becomes 0 (never an id) and the
    route answers its ordinary 404, instead of a database error or a misleading 405.
    """

    regex = r"\d{1,18}"
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = int(value)
        return number if number <= INT32_MAX else 0

    def to_url(self, value) -> str:
        return str(int(value))
