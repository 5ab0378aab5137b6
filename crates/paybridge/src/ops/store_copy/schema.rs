//! What `store copy` learns of both ends before it moves a row: the source's tables and
//! columns (from SQLite's catalogue), the target's columns, their types and identity
//! sequences (from Postgres's), and an order of the tables that foreign keys accept.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use sqlx::{PgConnection, Row as _, SqliteConnection};

use crate::UsageError;
use crate::basics::printable;

/// A Postgres column type `store copy` can bind a SQLite value to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgKind {
    Int8,
    Int4,
    Int2,
    Float8,
    Float4,
    Text,
    Bytea,
    Bool,
}

impl PgKind {
    /// From `information_schema.columns.data_type`.
    fn parse(data_type: &str) -> Option<Self> {
        Some(match data_type {
            "bigint" => Self::Int8,
            "integer" => Self::Int4,
            "smallint" => Self::Int2,
            "double precision" => Self::Float8,
            "real" => Self::Float4,
            "text" | "character varying" | "character" => Self::Text,
            "bytea" => Self::Bytea,
            "boolean" => Self::Bool,
            _ => return None,
        })
    }
}

/// A table as both ends have it: the source's columns (in the source's order), each with
/// the target column's type, and the target's identity or serial sequences.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub columns: Vec<(String, PgKind)>,
    /// (column, sequence) for every column whose default draws from a sequence.
    pub sequences: Vec<(String, String)>,
    /// The largest id SQLite's AUTOINCREMENT ever handed out (`sqlite_sequence`): ids of
    /// deleted rows are never reused there, nor after the copy.
    pub autoincrement: Option<i64>,
    /// A rowid table: read in rowid order, so that a Postgres identity filled by the
    /// inserts (`reconcile_runs.seq`) keeps the order SQLite's rowid gave.
    pub rowid: bool,
}

/// A table as the source has it.
#[derive(Debug, Clone)]
pub struct SourceTable {
    pub name: String,
    pub columns: Vec<String>,
    pub autoincrement: Option<i64>,
    pub rowid: bool,
}

/// `name` quoted as an identifier (the same rule in SQLite and Postgres).
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn has_table(source: &mut SqliteConnection, name: &str) -> anyhow::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
    )
    .bind(name)
    .fetch_one(&mut *source)
    .await
    .context("cannot read the source's catalogue")
}

/// The source's schema version: the newest migration recorded in `schema_migrations`.
/// A database without that table is not a paybridge store.
pub async fn source_version(source: &mut SqliteConnection) -> anyhow::Result<i64> {
    if !has_table(source, "schema_migrations").await? {
        return Err(UsageError(
            "the source is not a paybridge store (it has no schema_migrations table)".into(),
        )
        .into());
    }
    let version: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM schema_migrations")
        .fetch_one(&mut *source)
        .await
        .context("cannot read the source's schema_migrations")?;
    version.ok_or_else(|| {
        UsageError("the source is not a paybridge store (schema_migrations is empty)".into()).into()
    })
}

/// The source's tables to copy: every table but SQLite's own and `schema_migrations` (the
/// target's migrations wrote their own), each with its columns and AUTOINCREMENT counter.
pub async fn source_tables(source: &mut SqliteConnection) -> anyhow::Result<Vec<SourceTable>> {
    // pragma_table_list (SQLite 3.37): `wr` is 1 for a WITHOUT ROWID table.
    let listed: Vec<(String, i64)> = sqlx::query_as(
        "SELECT name, wr FROM pragma_table_list
         WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
           AND name != 'schema_migrations'
         ORDER BY name",
    )
    .fetch_all(&mut *source)
    .await
    .context("cannot list the source's tables")?;
    let counters = autoincrement_counters(source).await?;
    let mut tables = Vec::with_capacity(listed.len());
    for (name, without_rowid) in listed {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                .bind(&name)
                .fetch_all(&mut *source)
                .await
                .with_context(|| format!("cannot read the columns of {}", printable(&name)))?;
        tables.push(SourceTable {
            autoincrement: counters.get(&name).copied(),
            rowid: without_rowid == 0,
            name,
            columns,
        });
    }
    Ok(tables)
}

async fn autoincrement_counters(
    source: &mut SqliteConnection,
) -> anyhow::Result<BTreeMap<String, i64>> {
    if !has_table(source, "sqlite_sequence").await? {
        return Ok(BTreeMap::new());
    }
    let rows = sqlx::query("SELECT name, seq FROM sqlite_sequence")
        .fetch_all(&mut *source)
        .await
        .context("cannot read the source's sqlite_sequence")?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("seq")?)))
        .collect::<Result<_, sqlx::Error>>()
        .context("cannot read the source's sqlite_sequence")
}

/// Each source table matched with the target's: every source column must exist there with a
/// type a SQLite value can be bound to. Returned in an order in which every table comes
/// after the tables its foreign keys reference.
pub async fn match_target(
    target: &mut PgConnection,
    source: Vec<SourceTable>,
) -> anyhow::Result<Vec<Table>> {
    let rows = sqlx::query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name,
                data_type::text AS data_type,
                pg_get_serial_sequence(quote_ident(table_schema) || '.' || quote_ident(table_name),
                                       column_name) AS sequence
         FROM information_schema.columns
         WHERE table_schema = current_schema()",
    )
    .fetch_all(&mut *target)
    .await
    .context("cannot read the target's columns")?;
    // table → column → (data type, sequence)
    let mut columns: BTreeMap<String, BTreeMap<String, (String, Option<String>)>> = BTreeMap::new();
    for r in &rows {
        let read = || -> Result<_, sqlx::Error> {
            Ok((
                r.try_get::<String, _>("table_name")?,
                r.try_get::<String, _>("column_name")?,
                r.try_get::<String, _>("data_type")?,
                r.try_get::<Option<String>, _>("sequence")?,
            ))
        };
        let (table, column, data_type, sequence) =
            read().context("cannot read the target's columns")?;
        columns
            .entry(table)
            .or_default()
            .insert(column, (data_type, sequence));
    }
    let mut tables = Vec::with_capacity(source.len());
    for SourceTable {
        name,
        columns: source_columns,
        autoincrement,
        rowid,
    } in source
    {
        let shown = printable(&name).into_owned();
        let Some(target_columns) = columns.get(&name) else {
            anyhow::bail!(
                "the target has no table {shown}: is it a paybridge database of this version?"
            );
        };
        let mut typed = Vec::with_capacity(source_columns.len());
        for column in source_columns {
            let Some((data_type, _)) = target_columns.get(&column) else {
                anyhow::bail!(
                    "the target's table {shown} has no column {}",
                    printable(&column)
                );
            };
            let kind = PgKind::parse(data_type).with_context(|| {
                format!(
                    "the target's column {shown}.{} is of type {}, which store copy cannot fill",
                    printable(&column),
                    printable(data_type)
                )
            })?;
            typed.push((column, kind));
        }
        let sequences = target_columns
            .iter()
            .filter_map(|(column, (_, sequence))| Some((column.clone(), sequence.clone()?)))
            .collect();
        tables.push(Table {
            name,
            columns: typed,
            sequences,
            autoincrement,
            rowid,
        });
    }
    let references = references(target).await?;
    in_reference_order(tables, &references)
}

/// (table, the table it references) for every foreign key of the target's schema.
async fn references(target: &mut PgConnection) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT t.relname::text AS child, r.relname::text AS parent
         FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid
         JOIN pg_class r ON r.oid = c.confrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *target)
    .await
    .context("cannot read the target's foreign keys")?;
    rows.iter()
        .map(|r| Ok((r.try_get("child")?, r.try_get("parent")?)))
        .collect::<Result<_, sqlx::Error>>()
        .context("cannot read the target's foreign keys")
}

/// `tables` ordered so that a referenced table comes before the tables referencing it
/// (otherwise by name). A table referencing itself is left to the rows' own order.
fn in_reference_order(
    tables: Vec<Table>,
    references: &[(String, String)],
) -> anyhow::Result<Vec<Table>> {
    let names: BTreeSet<String> = tables.iter().map(|t| t.name.clone()).collect();
    let needs = |table: &str| -> BTreeSet<String> {
        references
            .iter()
            .filter(|(child, parent)| child == table && parent != table && names.contains(parent))
            .map(|(_, parent)| parent.clone())
            .collect()
    };
    let mut waiting: Vec<(Table, BTreeSet<String>)> = tables
        .into_iter()
        .map(|t| {
            let n = needs(&t.name);
            (t, n)
        })
        .collect();
    let mut ordered: Vec<Table> = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        let placed: BTreeSet<String> = ordered.iter().map(|t| t.name.clone()).collect();
        let Some(next) = waiting
            .iter()
            .position(|(_, needs)| needs.is_subset(&placed))
        else {
            let stuck: Vec<String> = waiting
                .iter()
                .map(|(t, _)| printable(&t.name).into_owned())
                .collect();
            anyhow::bail!(
                "the target's foreign keys form a cycle between {}",
                stuck.join(", ")
            );
        };
        ordered.push(waiting.remove(next).0);
    }
    Ok(ordered)
}

/// Refuses a target holding any row in a table the copy writes (naming those tables). The
/// tables are locked first (writers wait, readers do not), so nothing starts writing
/// between this look and the commit.
pub async fn lock_and_refuse_rows(
    target: &mut PgConnection,
    tables: &[Table],
) -> anyhow::Result<()> {
    if tables.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = tables.iter().map(|t| quoted(&t.name)).collect();
    sqlx::query(&format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        list.join(", ")
    ))
    .execute(&mut *target)
    .await
    .context("cannot lock the target's tables (is a paybridge already running on it?)")?;
    let mut holding = Vec::new();
    for t in tables {
        let any: bool = sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM {})",
            quoted(&t.name)
        ))
        .fetch_one(&mut *target)
        .await
        .with_context(|| format!("cannot read the target's {}", printable(&t.name)))?;
        if any {
            holding.push(printable(&t.name).into_owned());
        }
    }
    if holding.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!(
        "the target is not empty: {} already hold rows; store copy only fills an empty \
         database (create a new one, or drop these rows if you know they are not needed)",
        holding.join(", ")
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Table {
        Table {
            name: name.into(),
            columns: vec![],
            sequences: vec![],
            autoincrement: None,
            rowid: true,
        }
    }

    fn names(tables: &[Table]) -> Vec<&str> {
        tables.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn a_referenced_table_is_filled_before_the_tables_that_reference_it() {
        let tables = vec![table("a_jobs"), table("events"), table("z_steps")];
        let refs = vec![
            ("a_jobs".to_owned(), "events".to_owned()),
            ("a_jobs".to_owned(), "a_jobs".to_owned()),
            ("z_steps".to_owned(), "a_jobs".to_owned()),
            ("other".to_owned(), "events".to_owned()),
        ];
        let ordered = in_reference_order(tables, &refs).expect("ordered");
        assert_eq!(names(&ordered), ["events", "a_jobs", "z_steps"]);
    }

    #[test]
    fn a_cycle_of_foreign_keys_is_refused() {
        let refs = vec![
            ("a".to_owned(), "b".to_owned()),
            ("b".to_owned(), "a".to_owned()),
        ];
        let e = in_reference_order(vec![table("a"), table("b")], &refs).expect_err("cycle");
        assert!(e.to_string().contains("cycle between a, b"), "{e}");
    }

    #[test]
    fn identifiers_are_quoted_with_their_quotes_doubled() {
        assert_eq!(quoted("events"), "\"events\"");
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
