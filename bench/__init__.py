"""The booking-rush benchmark (python -m bench.rush); not part of make test."""
