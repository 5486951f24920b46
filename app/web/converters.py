"""URL converters."""
from werkzeug.routing import BaseConverter


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
        return number if number <= 2**31 - 1 else 0

    def to_url(self, value) -> str:
        return str(int(value))
