"""GitLab's Geo tracking database, as `ee/db/geo/structure.sql` describes
it, generated from its facts: which registry tables there are, their
column names, types and nullability, including the older tables that
differ from the self-service framework's shape. Tests create it in a
PostgreSQL schema of their own and fill it as GitLab's secondaries would.
"""
from __future__ import annotations

# The framework's columns in the types of GitLab's newer tables.
MODERN = [
    ("id", "bigint NOT NULL"), ("{fk}", "bigint NOT NULL"),
    ("created_at", "timestamp with time zone NOT NULL"),
    ("last_synced_at", "timestamp with time zone"), ("retry_at", "timestamp with time zone"),
    ("verified_at", "timestamp with time zone"),
    ("verification_started_at", "timestamp with time zone"),
    ("verification_retry_at", "timestamp with time zone"),
    ("state", "smallint DEFAULT 0 NOT NULL"), ("verification_state", "smallint DEFAULT 0 NOT NULL"),
    ("retry_count", "smallint DEFAULT 0 NOT NULL"),
    ("verification_retry_count", "smallint DEFAULT 0 NOT NULL"),
    ("checksum_mismatch", "boolean DEFAULT false NOT NULL"),
    ("verification_checksum", "bytea"), ("verification_checksum_mismatched", "bytea"),
    ("verification_failure", "text"), ("last_sync_failure", "text"),
]

# The verification columns as GitLab added them to its older tables.
VERIFICATION_ADDED = [
    ("verified_at", "timestamp with time zone"),
    ("verification_started_at", "timestamp with time zone"),
    ("verification_retry_at", "timestamp with time zone"),
    ("verification_state", "smallint DEFAULT 0 NOT NULL"),
    ("verification_retry_count", "smallint DEFAULT 0 NOT NULL"),
    ("verification_checksum", "bytea"), ("verification_checksum_mismatched", "bytea"),
]

TABLES: dict[str, list[tuple[str, str]]] = {
    "ci_secure_file_registry": [(n.replace("{fk}", "ci_secure_file_id"), t)
                                for n, t in MODERN],
    "project_repository_registry": [  # keyed by project_id; project_repository_id added later
        *[(n.replace("{fk}", "project_id"), t) for n, t in MODERN],
        ("missing_on_primary", "boolean DEFAULT false NOT NULL"),
        ("project_repository_id", "bigint")],
    "package_file_registry": [  # older: integer id and state, nullable counters
        ("id", "integer NOT NULL"), ("package_file_id", "integer NOT NULL"),
        ("state", "integer DEFAULT 0 NOT NULL"), ("retry_count", "integer DEFAULT 0"),
        ("last_sync_failure", "character varying(255)"),
        ("retry_at", "timestamp with time zone"), ("last_synced_at", "timestamp with time zone"),
        ("created_at", "timestamp with time zone NOT NULL"),
        ("verification_failure", "character varying(255)"), ("verification_checksum", "bytea"),
        ("checksum_mismatch", "boolean"), ("verification_checksum_mismatched", "bytea"),
        ("verification_retry_count", "integer"), ("verified_at", "timestamp with time zone"),
        ("verification_retry_at", "timestamp with time zone"),
        ("verification_state", "smallint DEFAULT 0 NOT NULL"),
        ("verification_started_at", "timestamp with time zone"),
    ],
    "file_registry": [  # uploads, keyed by file_id; times partly without time zone
        ("id", "integer NOT NULL"), ("file_id", "integer NOT NULL"),
        ("created_at", "timestamp without time zone NOT NULL"),
        ("retry_count", "integer DEFAULT 0"), ("retry_at", "timestamp without time zone"),
        ("missing_on_primary", "boolean DEFAULT false NOT NULL"),
        ("state", "smallint DEFAULT 0 NOT NULL"), ("last_synced_at", "timestamp with time zone"),
        ("last_sync_failure", "character varying(255)"),
        *VERIFICATION_ADDED,
        ("checksum_mismatch", "boolean DEFAULT false NOT NULL"), ("verification_failure", "text"),
    ],
    "job_artifact_registry": [  # artifact_id, and bytes / sha256 of the old registry
        ("id", "integer NOT NULL"), ("created_at", "timestamp with time zone"),
        ("retry_at", "timestamp with time zone"), ("bytes", "bigint"),
        ("artifact_id", "integer"), ("retry_count", "integer DEFAULT 0"),
        ("sha256", "character varying"),
        ("missing_on_primary", "boolean DEFAULT false NOT NULL"),
        ("state", "smallint DEFAULT 0 NOT NULL"), ("last_synced_at", "timestamp with time zone"),
        ("last_sync_failure", "character varying(255)"),
        *VERIFICATION_ADDED,
        ("checksum_mismatch", "boolean DEFAULT false NOT NULL"),
        ("verification_failure", "character varying(255)"),
    ],
    "lfs_object_registry": [  # the old registry's bytes, success and sha256 kept
        ("id", "bigint NOT NULL"), ("created_at", "timestamp with time zone"),
        ("retry_at", "timestamp with time zone"), ("bytes", "bigint"),
        ("lfs_object_id", "integer"), ("retry_count", "integer DEFAULT 0"),
        ("missing_on_primary", "boolean DEFAULT false NOT NULL"),
        ("success", "boolean DEFAULT false NOT NULL"), ("sha256", "bytea"),
        ("state", "smallint DEFAULT 0 NOT NULL"), ("last_synced_at", "timestamp with time zone"),
        ("last_sync_failure", "text"), ("verification_started_at", "timestamp with time zone"),
        ("verified_at", "timestamp with time zone"),
        ("verification_retry_at", "timestamp with time zone"),
        ("verification_retry_count", "integer DEFAULT 0"),
        ("verification_state", "smallint DEFAULT 0 NOT NULL"),
        ("checksum_mismatch", "boolean DEFAULT false NOT NULL"),
        ("verification_checksum", "bytea"), ("verification_checksum_mismatched", "bytea"),
        ("verification_failure", "text"),
    ],
    "container_repository_registry": [  # state still text, being migrated
        ("id", "integer NOT NULL"), ("container_repository_id", "integer NOT NULL"),
        ("state", "character varying"), ("retry_count", "integer DEFAULT 0"),
        ("last_sync_failure", "character varying"), ("retry_at", "timestamp without time zone"),
        ("last_synced_at", "timestamp without time zone"),
        ("created_at", "timestamp without time zone NOT NULL"),
        ("state_for_type_change", "integer"), *VERIFICATION_ADDED,
        ("checksum_mismatch", "boolean DEFAULT false NOT NULL"), ("verification_failure", "text"),
    ],
    "project_registry": [  # the legacy repository registry: not the framework's
        ("id", "integer NOT NULL"), ("project_id", "integer NOT NULL"),
        ("created_at", "timestamp without time zone NOT NULL"),
        ("last_repository_synced_at", "timestamp without time zone"),
        ("resync_repository", "boolean DEFAULT true NOT NULL"),
    ],
    "event_log_states": [("event_id", "bigint NOT NULL"),
                         ("created_at", "timestamp without time zone NOT NULL")],
    "schema_migrations": [("version", "character varying NOT NULL")],
}


def create(connection) -> None:
    """Create every table, with GitLab's primary keys and id sequences."""
    for table, columns in TABLES.items():
        body = ",\n    ".join(f"{name} {kind}" for name, kind in columns)
        connection.exec_driver_sql(f"CREATE TABLE {table} (\n    {body}\n)")
        key = "version" if table == "schema_migrations" else columns[0][0]
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD PRIMARY KEY ({key})")
        if key == "id":
            connection.exec_driver_sql(f"CREATE SEQUENCE {table}_id_seq OWNED BY {table}.id")
            connection.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT "
                                       f"nextval('{table}_id_seq')")
