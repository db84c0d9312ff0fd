"""Primary main database: namespaces, projects, Cool Widgets with their
verification state table, the Geo event log and reported site statuses.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from backend.db.types import NullsFirst, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _verification_columns():
    return [
        sa.Column("verification_started_at", UTCDateTime()),
        sa.Column("verification_retry_at", UTCDateTime()),
        sa.Column("verified_at", UTCDateTime()),
        sa.Column("verification_state", sa.SmallInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("verification_retry_count", sa.SmallInteger(), nullable=False,
                  server_default=sa.text("0")),
        sa.Column("verification_checksum", sa.LargeBinary()),
        sa.Column("verification_failure", sa.Text()),
    ]


def _verification_indexes(table):
    op.create_index(f"index_{table}_on_verification_state", table, ["verification_state"])
    op.create_index(f"index_{table}_failed_verification", table,
                    [NullsFirst("verification_retry_at")],
                    postgresql_where=sa.text("verification_state = 3"),
                    sqlite_where=sa.text("verification_state = 3"))
    op.create_index(f"index_{table}_needs_verification", table, ["verification_state"],
                    postgresql_where=sa.text("verification_state IN (0, 3)"),
                    sqlite_where=sa.text("verification_state IN (0, 3)"))
    op.create_index(f"index_{table}_pending_verification", table,
                    [NullsFirst("verified_at")],
                    postgresql_where=sa.text("verification_state = 0"),
                    sqlite_where=sa.text("verification_state = 0"))


def upgrade() -> None:
    op.create_table(
        "namespaces",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), sa.ForeignKey(
            "namespaces.id", name="fk_namespaces_parent_id_namespaces")),
        sa.PrimaryKeyConstraint("id", name="namespaces_pkey"),
        sa.UniqueConstraint("parent_id", "name", name="uq_namespaces_parent_id_name"),
    )
    op.create_index("index_namespaces_on_parent_id", "namespaces", ["parent_id"])
    op.create_table(
        "projects",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("namespace_id", sa.BigInteger(), sa.ForeignKey(
            "namespaces.id", name="fk_projects_namespace_id_namespaces"), nullable=False),
        sa.Column("repository_storage", sa.String(255), nullable=False,
                  server_default="default"),
        sa.PrimaryKeyConstraint("id", name="projects_pkey"),
    )
    op.create_index("index_projects_on_namespace_id", "projects", ["namespace_id"])
    op.create_index("index_projects_on_repository_storage", "projects", ["repository_storage"])
    op.create_table(
        "cool_widgets",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("project_id", sa.BigInteger(), sa.ForeignKey(
            "projects.id", name="fk_cool_widgets_project_id_projects"), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("file_store", sa.SmallInteger(), nullable=False, server_default=sa.text("1")),
        sa.Column("size", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="cool_widgets_pkey"),
    )
    op.create_index("index_cool_widgets_on_project_id", "cool_widgets", ["project_id"])
    op.create_table(
        "cool_widget_states",
        sa.Column("cool_widget_id", sa.BigInteger(), sa.ForeignKey(
            "cool_widgets.id", ondelete="CASCADE",
            name="fk_cool_widget_states_cool_widget_id_cool_widgets"), nullable=False),
        *_verification_columns(),
        sa.PrimaryKeyConstraint("cool_widget_id", name="cool_widget_states_pkey"),
        sa.CheckConstraint("length(verification_failure) <= 255",
                           name="check_cool_widget_states_verification_failure_length"),
    )
    _verification_indexes("cool_widget_states")
    op.create_table(
        "geo_events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("replicable_name", sa.String(255), nullable=False),
        sa.Column("event_name", sa.String(255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="geo_events_pkey"),
    )
    op.create_table(
        "geo_event_log",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("geo_event_id", sa.BigInteger(), sa.ForeignKey(
            "geo_events.id", ondelete="CASCADE",
            name="fk_geo_event_log_geo_event_id_geo_events"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="geo_event_log_pkey"),
    )
    op.create_index("index_geo_event_log_on_geo_event_id", "geo_event_log", ["geo_event_id"])
    op.create_table(
        "geo_node_statuses",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("site_name", sa.String(255), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="geo_node_statuses_pkey"),
    )
    op.create_index("index_geo_node_statuses_on_site_name", "geo_node_statuses",
                    ["site_name"], unique=True)


def downgrade() -> None:
    for table in ("geo_node_statuses", "geo_event_log", "geo_events", "cool_widget_states",
                  "cool_widgets", "projects", "namespaces"):
        op.drop_table(table)
