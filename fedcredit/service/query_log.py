"""The query log: one row per request, refused ones included, in a real database.

Step: every answer a service gives (the score, a partial score, a refusal) is first written to
the log, then sent: a caller never holds an answer the log does not. A row records who asked
(``institution``), when, about which enterprise (``uscc``; a batch's enterprises go to
``query_batches``, indexed in ``query_subjects``), why (``purpose``), the model version, the
outcome (HTTP status and cause) and the SHA-256 of the response body, so a disputed answer can
be matched to its row.

Rows are committed in groups (group commit: SQLite's single queries on the event loop at the end
of its turn, everything else by one writer thread, :class:`QueryLog`): each request still waits
for its own row's commit, but 16 concurrent requests cost one commit, not 16; a batch's
enterprises are committed with its row as one array (``query_batches``) and copied into the
per-enterprise index (``query_subjects``) by a maintenance thread off the request path, in
chunks the database expands itself. SQLite runs in WAL mode with
``synchronous=NORMAL`` (a committed row survives the process being killed; a power cut may lose
the last commits), its checkpoints in a thread of their own so that no commit waits for their
fsyncs; any SQLAlchemy URL works, e.g. ``postgresql+psycopg://user@host/db``.

Security assumption: the log is the institution's own; it holds identifiers and outcomes, never
the features or scores themselves (only the hash of the response).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)

from fedcredit.service.errors import ServiceConfigError

metadata = MetaData()
queries = Table(
    "queries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("node", String(64), nullable=False),
    Column("institution", String(64), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("uscc", String(18), index=True),
    Column("rows", Integer, nullable=False),
    Column("purpose", String(32)),
    Column("model_version", String(80)),
    Column("status", Integer, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("response_sha256", String(64), nullable=False),
)
query_subjects = Table(
    "query_subjects", metadata,
    Column("query_id", Integer, ForeignKey("queries.id"), nullable=False),
    Column("uscc", String(18), nullable=False, index=True),
)
query_batches = Table(  # a batch's enterprises as committed with its row (JSON array)
    "query_batches", metadata,
    Column("query_id", Integer, ForeignKey("queries.id"), primary_key=True, autoincrement=False),
    Column("usccs", Text, nullable=False),
    Column("total", Integer, nullable=False),
    Column("indexed", Integer, nullable=False),  # how many are in query_subjects yet
)
GROUP_LIMIT = 512
INDEX_SECONDS = 0.25
"""How often the maintenance thread copies committed batches' enterprises into the index."""
INDEX_CHUNK = 2000
"""Enterprises indexed per transaction (SQLite holds its one write lock that long)."""


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One request as logged (``subjects``: a batch's enterprises; ``uscc`` is then None)."""

    at: datetime
    node: str
    institution: str
    endpoint: str
    uscc: str | None
    rows: int
    purpose: str | None
    model_version: str | None
    status: int
    outcome: str
    response_sha256: str
    subjects: tuple[str, ...] = ()


CHECKPOINT_SECONDS = 1.0
"""How often a SQLite log's WAL is copied into the database file, off the commit path."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: the subjects index stays in memory
    # no checkpoint (and its fsyncs) inside a commit: QueryLog's checkpoint thread does them
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def open_engine(url: str) -> Engine:
    """An engine for ``url`` with the log's tables created (SQLite: WAL mode)."""
    try:
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    except Exception as exc:  # noqa: BLE001 (SQLAlchemy raises several kinds for a bad URL)
        raise ServiceConfigError(f"setting '[service] database' is not a usable SQLAlchemy URL "
                                 f"({type(exc).__name__}); e.g. sqlite:///queries.db or "
                                 "postgresql+psycopg://user@host/db.") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return engine


class QueryLog:
    """The log of one institution's service, written in groups (one commit per group).

    SQLite: the single queries that the event loop handled in one turn are committed together
    on the loop itself at the end of that turn (a local commit without fsync takes a fraction of
    a millisecond, less than handing the rows to a thread and the answers back, which costs two
    thread wake-ups and GIL hand-offs per group); a batch's row, with its thousands of subjects,
    goes to the writer thread so the loop keeps serving meanwhile. Other databases (a network
    round trip per commit): every row goes to the writer thread.
    """

    def __init__(self, engine: Engine, *, index_seconds: float = INDEX_SECONDS) -> None:
        self.engine = engine
        self._index_seconds = index_seconds
        self._inline = engine.dialect.name == "sqlite"
        self._pending: list[tuple[QueryRecord, asyncio.Future[None]]] = []
        self._queue: queue.Queue[tuple[QueryRecord, Callable[[BaseException | None], None]] | None]
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="query-log", daemon=True)
        self._thread.start()
        self._stop = threading.Event()
        self._maintainer = threading.Thread(target=self._maintain, name="query-log-maintenance",
                                            daemon=True)
        self._maintainer.start()

    async def record(self, row: QueryRecord) -> None:
        """Write ``row`` and return once it is committed (raises if the commit failed)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if self._inline and not row.subjects:
            self._pending.append((row, done))
            if len(self._pending) == 1:  # the first row of this turn schedules the commit
                loop.call_soon(self._commit_pending)
            await done
            return

        def finish(error: BaseException | None) -> None:
            def settle() -> None:
                if done.done():
                    return
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)
            loop.call_soon_threadsafe(settle)

        self._queue.put((row, finish))
        await done

    def _commit_pending(self) -> None:
        """Commit the rows recorded during this loop turn; settle their requests."""
        group, self._pending = self._pending, []
        error = self._commit([row for row, _ in group])
        for _, done in group:
            if done.done():
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    def record_now(self, row: QueryRecord) -> None:
        """Write ``row`` from a thread that has no event loop (blocking)."""
        finished = threading.Event()
        errors: list[BaseException] = []

        def finish(error: BaseException | None) -> None:
            if error is not None:
                errors.append(error)
            finished.set()

        self._queue.put((row, finish))
        finished.wait()
        if errors:
            raise errors[0]

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < GROUP_LIMIT:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
            error = self._commit([row for row, _ in group])
            for _, finish in group:
                finish(error)

    def _maintain(self) -> None:
        """Off the request path: index committed batches' enterprises (every
        ``INDEX_SECONDS``) and, for SQLite, copy the WAL into the database every
        ``CHECKPOINT_SECONDS`` (PASSIVE: never blocks the writer, so no commit waits for a
        checkpoint's fsync)."""
        last_checkpoint = last_index = 0.0
        while not self._stop.wait(min(self._index_seconds, CHECKPOINT_SECONDS)):
            try:
                if time.monotonic() - last_index >= self._index_seconds:
                    last_index = time.monotonic()
                    while self.index_pending():
                        pass
                if self._inline and time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                    last_checkpoint = time.monotonic()
                    with self.engine.connect() as conn:
                        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # noqa: BLE001 (the next pass retries; commits are unaffected)
                continue

    def index_pending(self) -> bool:
        """Index the next ``INDEX_CHUNK`` enterprises of a committed batch; False when none is
        waiting. The batch's row and enterprises were committed before its answer left; the
        index only makes :meth:`history` fast (it also searches batches not indexed yet)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(query_batches).where(
                query_batches.c.indexed < query_batches.c.total).limit(1)).first()
            if row is None:
                return False
            done = row.indexed
            chunk = tuple(orjson.loads(row.usccs)[done:done + INDEX_CHUNK])
            _insert_subjects(conn, row.query_id, chunk)
            conn.execute(query_batches.update().where(
                query_batches.c.query_id == row.query_id).values(indexed=done + len(chunk)))
        return True

    def _commit(self, rows: Sequence[QueryRecord]) -> BaseException | None:
        try:
            with self.engine.begin() as conn:
                plain = [_values(r) for r in rows if not r.subjects]
                if plain:  # one executemany for the single queries
                    conn.execute(insert(queries), plain)
                for row in rows:  # a batch's own INSERT: its id links its enterprises
                    if row.subjects:
                        key = conn.execute(insert(queries).values(**_values(row)))
                        query_id = key.inserted_primary_key
                        assert query_id is not None
                        conn.execute(insert(query_batches).values(
                            query_id=query_id[0], usccs=orjson.dumps(row.subjects).decode(),
                            total=len(row.subjects), indexed=0))
            return None
        except Exception as exc:  # noqa: BLE001 (any database failure fails these rows' requests)
            return exc

    def close(self) -> None:
        """Write what is waiting, stop the writer and release the database."""
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._stop.set()
        self._maintainer.join(timeout=30)
        self.engine.dispose()

    def count(self) -> int:
        """Number of logged requests."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(queries)).scalar_one())

    def history(self, uscc: str, limit: int = 100) -> list[dict[str, Any]]:
        """The enterprise's queries, newest first: single queries and batches that named it."""
        in_batch = select(query_subjects.c.query_id).where(query_subjects.c.uscc == uscc)
        not_indexed = select(query_batches.c.query_id).where(
            (query_batches.c.indexed < query_batches.c.total)
            & query_batches.c.usccs.contains(f'"{uscc}"', autoescape=True))
        stmt = (select(queries.c.id, queries.c.at, queries.c.institution, queries.c.endpoint,
                       queries.c.purpose, queries.c.model_version, queries.c.status,
                       queries.c.outcome)
                .where((queries.c.uscc == uscc) | queries.c.id.in_(in_batch)
                       | queries.c.id.in_(not_indexed))
                .order_by(queries.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [_history_row(r._mapping) for r in conn.execute(stmt)]


def _insert_subjects(conn: Connection, query_id: int, usccs: tuple[str, ...]) -> None:
    """A batch's enterprises in one statement: the database expands one array (SQLite's
    ``json_each``, PostgreSQL's ``unnest``), so 10,000 rows cost no per-row Python."""
    table = query_subjects.name
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"INSERT INTO {table} (query_id, uscc) SELECT ?, value FROM "
                             "json_each(?)", (query_id, orjson.dumps(usccs).decode()))
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"INSERT INTO {table} (query_id, uscc) SELECT %s, "
                             "unnest(%s::varchar[])", (query_id, list(usccs)))
    else:  # any other database: the driver's executemany
        conn.execute(insert(query_subjects), [{"query_id": query_id, "uscc": u} for u in usccs])


def _values(row: QueryRecord) -> dict[str, Any]:
    return {f: getattr(row, f) for f in _COLUMNS}


_COLUMNS = tuple(f.name for f in fields(QueryRecord) if f.name != "subjects")


def _history_row(row: Any) -> dict[str, Any]:
    at: datetime = row["at"]
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return {"id": row["id"], "at": at.isoformat(timespec="milliseconds"),
            "institution": row["institution"], "endpoint": row["endpoint"],
            "purpose": row["purpose"], "model_version": row["model_version"],
            "status": row["status"], "outcome": row["outcome"]}
