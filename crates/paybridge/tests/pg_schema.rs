//! The Postgres migrations (`migrations/postgres/`) against a real Postgres: they apply in
//! order to an empty database, and the schema they leave is the SQLite one's twin, table by
//! table (columns with their types mapped, nullability, defaults, identity ids, primary
//! keys, indexes with their partial predicates, foreign keys), so the same store code runs
//! on both.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::pg;
use sqlx::{Connection, PgConnection, Row, SqliteConnection};

/// The `.sql` files of `migrations/<backend>/`, in the order they apply (by file name).
fn migration_files(backend: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let sql =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (name, sql)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migrations in {}", dir.display());
    files
}

/// Applies every Postgres migration, each in its own transaction (as the store will).
async fn migrate_postgres(conn: &mut PgConnection) {
    for (name, sql) in migration_files("postgres") {
        let mut tx = conn.begin().await.expect("begin");
        sqlx::raw_sql(&sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("postgres/{name}: {e}"));
        tx.commit().await.expect("commit");
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Column {
    name: String,
    /// The Postgres type: SQLite's INTEGER is `bigint`, BLOB `bytea`, REAL `double precision`.
    ty: String,
    not_null: bool,
    /// The default as written, without Postgres's `::text`/`::bigint` casts.
    default: Option<String>,
    /// SQLite's rowid alias (`INTEGER PRIMARY KEY`), Postgres's identity column.
    identity: bool,
}

#[derive(Debug, PartialEq, Eq)]
struct Index {
    columns: Vec<String>,
    unique: bool,
    /// The partial index's predicate as a set of words (columns and literals), which both
    /// spellings share: `status IN ('a', 'b')` and `status = ANY (ARRAY['a'::text, …])`.
    predicate: Option<BTreeSet<String>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Table {
    columns: Vec<Column>,
    primary_key: Vec<String>,
    indexes: BTreeMap<String, Index>,
    /// `FOREIGN KEY (col) REFERENCES table(col)`, as Postgres prints a constraint.
    foreign_keys: BTreeSet<String>,
}

fn predicate_words(predicate: &str) -> BTreeSet<String> {
    predicate
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map(str::to_ascii_lowercase)
        .filter(|w| !w.is_empty() && !["in", "any", "array", "text"].contains(&w.as_str()))
        .collect()
}

fn sqlite_type(declared: &str) -> String {
    match declared {
        "INTEGER" => "bigint",
        "TEXT" => "text",
        "BLOB" => "bytea",
        "REAL" => "double precision",
        other => panic!("SQLite type {other} has no mapping in this test"),
    }
    .into()
}

async fn sqlite_table(conn: &mut SqliteConnection, table: &str) -> Table {
    let rows = sqlx::query(
        r#"SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid"#,
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .expect("pragma_table_info");
    let mut primary: Vec<(i64, String)> = rows
        .iter()
        .filter(|r| r.get::<i64, _>("pk") > 0)
        .map(|r| (r.get("pk"), r.get("name")))
        .collect();
    primary.sort();
    let primary_key: Vec<String> = primary.into_iter().map(|(_, n)| n).collect();
    let columns = rows
        .iter()
        .map(|r| {
            let name: String = r.get("name");
            let declared: String = r.get("type");
            let in_key = primary_key.contains(&name);
            Column {
                identity: declared == "INTEGER" && primary_key == [name.clone()],
                ty: sqlite_type(&declared),
                // A primary key's columns are NOT NULL in Postgres (and in practice here).
                not_null: r.get::<i64, _>("notnull") == 1 || in_key,
                default: r.get("dflt_value"),
                name,
            }
        })
        .collect();
    let index_rows = sqlx::query(
        "SELECT l.name, l.\"unique\" AS uniq, m.sql FROM pragma_index_list(?1) l
         JOIN sqlite_master m ON m.type = 'index' AND m.name = l.name WHERE m.sql IS NOT NULL",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .expect("pragma_index_list");
    let mut indexes = BTreeMap::new();
    for r in index_rows {
        let name: String = r.get("name");
        let sql: String = r.get("sql");
        let columns = sqlx::query_scalar("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
            .bind(&name)
            .fetch_all(&mut *conn)
            .await
            .expect("pragma_index_info");
        let predicate = sql
            .to_ascii_uppercase()
            .find(" WHERE ")
            .map(|at| predicate_words(&sql[at + 7..]));
        let unique = r.get::<i64, _>("uniq") == 1;
        indexes.insert(
            name,
            Index {
                columns,
                unique,
                predicate,
            },
        );
    }
    let foreign_keys =
        sqlx::query(r#"SELECT "table", "from", "to" FROM pragma_foreign_key_list(?1)"#)
            .bind(table)
            .fetch_all(&mut *conn)
            .await
            .expect("pragma_foreign_key_list")
            .iter()
            .map(|r| {
                let (t, from, to): (String, String, String) = (r.get(0), r.get(1), r.get(2));
                format!("FOREIGN KEY ({from}) REFERENCES {t}({to})")
            })
            .collect();
    Table {
        columns,
        primary_key,
        indexes,
        foreign_keys,
    }
}

async fn sqlite_schema() -> BTreeMap<String, Table> {
    let mut conn = SqliteConnection::connect("sqlite::memory:")
        .await
        .expect("in-memory SQLite");
    for (name, sql) in migration_files("sqlite") {
        sqlx::raw_sql(&sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("sqlite/{name}: {e}"));
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("sqlite_master");
    let mut schema = BTreeMap::new();
    for t in tables {
        let table = sqlite_table(&mut conn, &t).await;
        schema.insert(t, table);
    }
    schema
}

fn without_casts(default: String) -> String {
    ["::text", "::bigint"]
        .iter()
        .fold(default, |d, cast| d.trim_end_matches(cast).to_owned())
}

async fn postgres_table(conn: &mut PgConnection, table: &str) -> Table {
    let columns = sqlx::query(
        "SELECT column_name::text AS name, data_type::text AS ty, is_nullable::text AS nullable,
                column_default::text AS dflt, is_identity::text AS identity,
                collation_name::text AS collation
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1
         ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .expect("information_schema.columns")
    .iter()
    .map(|r| {
        let name: String = r.get("name");
        let ty: String = r.get("ty");
        // Text compares byte by byte, as SQLite's BINARY collation does.
        if ty == "text" {
            let collation: Option<String> = r.get("collation");
            assert_eq!(collation.as_deref(), Some("C"), "{table}.{name}: collation");
        }
        Column {
            not_null: r.get::<String, _>("nullable") == "NO",
            default: r.get::<Option<String>, _>("dflt").map(without_casts),
            identity: r.get::<String, _>("identity") == "YES",
            ty,
            name,
        }
    })
    .collect();
    let primary_key = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = $1::regclass AND i.indisprimary
         ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .expect("primary key");
    let index_rows = sqlx::query(
        "SELECT c.relname::text AS name, i.indisunique AS uniq,
                pg_get_expr(i.indpred, i.indrelid) AS predicate,
                ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                      FROM generate_series(1, i.indnatts) k ORDER BY k) AS columns
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = $1::regclass AND NOT i.indisprimary",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .expect("pg_index");
    let indexes = index_rows
        .iter()
        .map(|r| {
            let index = Index {
                columns: r.get("columns"),
                unique: r.get("uniq"),
                predicate: r
                    .get::<Option<String>, _>("predicate")
                    .map(|p| predicate_words(&p)),
            };
            (r.get("name"), index)
        })
        .collect();
    let foreign_keys = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = $1::regclass AND contype = 'f'",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .expect("pg_constraint")
    .into_iter()
    .collect();
    Table {
        columns,
        primary_key,
        indexes,
        foreign_keys,
    }
}

async fn postgres_schema(conn: &mut PgConnection) -> BTreeMap<String, Table> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("information_schema.tables");
    let mut schema = BTreeMap::new();
    for t in tables {
        let table = postgres_table(conn, &t).await;
        schema.insert(t, table);
    }
    schema
}

#[tokio::test]
async fn postgres_migrations_apply_and_give_bigint_identity_ids() {
    let db = pg::database().await;
    let mut conn = db.connect().await;
    migrate_postgres(&mut conn).await;
    let schema = postgres_schema(&mut conn).await;
    for table in [
        "events",
        "jobs",
        "steps",
        "timeline",
        "reconcile_runs",
        "leases",
    ] {
        assert!(schema.contains_key(table), "table {table} missing");
    }
    for table in ["jobs", "timeline"] {
        let id = &schema[table].columns[0];
        assert_eq!(
            (id.name.as_str(), id.ty.as_str()),
            ("id", "bigint"),
            "{table}.id"
        );
        assert!(id.identity, "{table}.id is not an identity column");
    }
    // BY DEFAULT: `store copy` inserts the ids SQLite gave, and new rows come after them.
    sqlx::raw_sql(
        "INSERT INTO events (id, type, created, livemode, source, status, received_at)
             VALUES ('evt_1', 'charge.succeeded', 1, 0, 'webhook', 'done', 1);
         INSERT INTO timeline (id, event_id, at, attempt, message) VALUES (41, 'evt_1', 1, 1, 'copied');
         SELECT setval(pg_get_serial_sequence('timeline', 'id'), (SELECT max(id) FROM timeline));
         INSERT INTO timeline (event_id, at, attempt, message) VALUES ('evt_1', 2, 1, 'new');",
    )
    .execute(&mut conn)
    .await
    .expect("explicit then generated ids");
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM timeline ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .expect("timeline ids");
    assert_eq!(ids, [41, 42]);
}

/// What only Postgres has: the replicas' shared HubSpot budget (one SQLite process keeps
/// its limiter in memory) …
const POSTGRES_ONLY_FILES: &[&str] = &["0061_hubspot_budget.sql"];
const POSTGRES_ONLY_TABLES: &[&str] = &["hubspot_budget"];
/// … and the twin of a rowid the store orders by (reconcile runs started in the same ms).
const POSTGRES_ONLY_COLUMNS: &[(&str, &str)] = &[("reconcile_runs", "seq")];

#[tokio::test]
async fn postgres_schema_is_the_sqlite_schema_table_by_table() {
    let file_names = |backend| {
        let files = migration_files(backend);
        files.into_iter().map(|(name, _)| name).collect::<Vec<_>>()
    };
    let mut twins = file_names("postgres");
    twins.retain(|f| !POSTGRES_ONLY_FILES.contains(&f.as_str()));
    assert_eq!(twins, file_names("sqlite"), "one twin per migration");
    let db = pg::database().await;
    let mut conn = db.connect().await;
    migrate_postgres(&mut conn).await;
    let mut postgres = postgres_schema(&mut conn).await;
    for table in POSTGRES_ONLY_TABLES {
        assert!(postgres.remove(*table).is_some(), "{table} missing");
    }
    for (table, column) in POSTGRES_ONLY_COLUMNS {
        let columns = &mut postgres
            .get_mut(*table)
            .unwrap_or_else(|| panic!("{table} missing"))
            .columns;
        let before = columns.len();
        columns.retain(|c| c.name != *column);
        assert_eq!(columns.len() + 1, before, "{table}.{column} missing");
    }
    let sqlite = sqlite_schema().await;
    let names = |s: &BTreeMap<String, Table>| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&postgres), names(&sqlite), "the same tables");
    for (name, table) in &sqlite {
        assert_eq!(
            &postgres[name], table,
            "table {name}: Postgres (left) vs SQLite (right)"
        );
    }
}
