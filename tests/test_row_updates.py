"""A group of guarded one-row UPDATEs written the fast way (arrays on
PostgreSQL, the driver's executemany on SQLite) changes exactly the rows,
and writes exactly the values, that SQLAlchemy's own executemany does."""
import datetime as dt

from sqlalchemy import event, select, update

from backend.db.engine import create_db_engine, writing
from backend.db.migrate import upgrade
from backend.db.row_updates import execute_for_rows
from backend.replicables import replicator_for
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_claims import SyncClaim
from tests.support.registries import Registries

CoolWidgets = replicator_for("cool_widget")
SYNC_CLAIMED = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
VERIFICATION_CLAIMED = SYNC_CLAIMED + dt.timedelta(minutes=1, microseconds=7)
ROWS = 12


def tracking_db(databases, name: str):
    url = databases.url(name)
    upgrade(url, "tracking")
    engine = create_db_engine(url)
    store = Registries(engine, CoolWidgets)
    store.insert_pending(range(1, ROWS + 1))
    table = store.table
    with writing(engine) as connection:  # rows 3 and 4 failed an earlier verification
        connection.execute(update(table).where(table.c.cool_widget_id.in_((3, 4)))
                           .values(verification_state=VerificationState.FAILED,
                                   verification_retry_count=2))
    return engine, store


def by_row(claims: list) -> list:
    return sorted(claims, key=lambda claim: claim.registry_id)


def outcomes(store: Registries, claims: list, verify: list) -> list:
    """Sync outcomes of every claim (the first two without a primary
    checksum; one claim stale), then verification outcomes of `verify`."""
    statements = []
    for index, claim in enumerate(claims):
        if index == 5:  # a resync meanwhile: the row's claim is no longer ours
            claim = SyncClaim(claim.registry_id, claim.model_id,
                              claim.claimed_at + dt.timedelta(seconds=1))
        statements += store.outcomes.synced(claim, primary_verified=index >= 2).statements
    for claim in verify:
        statements += store.outcomes.verified(claim, f"{claim.model_id:064x}").statements
    return statements


def write(engine, statements: list, run) -> None:
    grouped: dict = {}
    for statement, params in statements:
        grouped.setdefault(statement, []).append(params)
    with writing(engine) as connection:
        for statement, rows in grouped.items():
            run(connection, statement, rows)


def registry(engine, store) -> list[dict]:
    table = store.table
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).mappings().all()
    return [{k: v for k, v in row.items() if k != "created_at"} for row in rows]


def test_grouped_updates_write_what_sqlalchemy_writes(databases):
    fast, fast_store = tracking_db(databases, "fast")
    plain, plain_store = tracking_db(databases, "plain")
    sync_claims = by_row(fast_store.claim_sync_batch(ROWS, now=SYNC_CLAIMED))
    assert by_row(plain_store.claim_sync_batch(ROWS, now=SYNC_CLAIMED)) == sync_claims
    statements = outcomes(fast_store, sync_claims, [])
    write(fast, statements, execute_for_rows)
    write(plain, statements, lambda connection, statement, rows:
          connection.execute(statement, rows))
    synced = registry(fast, fast_store)
    assert synced == registry(plain, plain_store)
    assert [row["verification_retry_count"] for row in synced[2:5]] == [2, 2, 0]

    verify = by_row(fast_store.claim_verification_batch(4, now=VERIFICATION_CLAIMED))
    assert by_row(plain_store.claim_verification_batch(4, now=VERIFICATION_CLAIMED)) == verify
    statements = outcomes(fast_store, [], verify)
    driver_calls = []

    @event.listens_for(fast, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE"):
            driver_calls.append(executemany)

    write(fast, statements, execute_for_rows)
    write(plain, statements, lambda connection, statement, rows:
          connection.execute(statement, rows))

    written = registry(fast, fast_store)
    assert written == registry(plain, plain_store)
    states = [(row["state"], row["verification_state"]) for row in written]
    assert states.count((SyncState.SYNCED, VerificationState.SUCCEEDED)) == 4
    assert states[5][0] == SyncState.STARTED  # the stale claim changed nothing
    assert states[0] == states[1] == (SyncState.SYNCED, VerificationState.DISABLED)
    # one statement for the four verifications: arrays (PostgreSQL) or an executemany
    assert driver_calls == [fast.dialect.name == "sqlite"]
    fast.dispose()
    plain.dispose()
