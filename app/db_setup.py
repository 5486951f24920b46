"""Engine set-up per database: SQLite pragmas and IMMEDIATE write transactions.

pysqlite on Python 3.11 opens transactions lazily, so a read that decides a write
would run outside the transaction and race. Following SQLAlchemy's documented
recipe we turn pysqlite's own transaction handling off and emit BEGIN ourselves:
BEGIN IMMEDIATE for a unit of work that writes (it takes the write lock first, so
its reads and writes are serialised with every other writer), plain BEGIN for reads.
"""
from sqlalchemy import event
from sqlalchemy.engine import Engine

WRITE_OPTION = "sangplats_write"


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
