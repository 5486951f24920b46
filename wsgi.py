"""WSGI entry point: gunicorn wsgi:app, flask --app wsgi."""
import sys

from app import UnsafeConfiguration, create_app

try:
    app = create_app()
except UnsafeConfiguration as refusal:
    # One line, no traceback. Under gunicorn, exit code 4 (its "app failed to load") stops the master instead of
    # respawning workers; elsewhere (flask CLI) 1.
    print(f"Sängplats will not start: {refusal}", file=sys.stderr)
    sys.exit(4 if "gunicorn" in sys.modules else 1)
