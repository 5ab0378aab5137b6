//! Moving one table's rows: read from SQLite as a stream, each value taken by its storage
//! class (SQLite types values, not columns: <https://www.sqlite.org/datatype3.html> §2),
//! bound with the Postgres type of its target column (a NULL too: an untyped NULL parameter
//! is refused by a BIGINT column), inserted many rows per statement.

use anyhow::Context as _;
use futures_util::TryStreamExt as _;
use sqlx::sqlite::SqliteRow;
use sqlx::{
    PgConnection, Postgres, QueryBuilder, Row as _, SqliteConnection, TypeInfo as _, ValueRef as _,
};

use super::schema::{PgKind, Table, quoted};
use crate::basics::printable;

/// Rows per INSERT (fewer for wide tables: a statement takes at most 65,535 parameters),
/// and sooner once the rows hold this many bytes of text and blobs (large payloads).
const CHUNK_ROWS: usize = 500;
const MAX_PARAMETERS: usize = 65_535;
const CHUNK_BYTES: usize = 8 << 20;

/// A value read from SQLite, as stored.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    /// Bytes it holds beyond its fixed size.
    fn weight(&self) -> usize {
        match self {
            Self::Text(s) => s.len(),
            Self::Blob(b) => b.len(),
            _ => 0,
        }
    }

    fn class(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Integer(_) => "INTEGER",
            Self::Real(_) => "REAL",
            Self::Text(_) => "TEXT",
            Self::Blob(_) => "BLOB",
        }
    }
}

/// A value ready to bind to a Postgres column.
#[derive(Debug, Clone, PartialEq)]
enum Bound {
    Int8(Option<i64>),
    Int4(Option<i32>),
    Int2(Option<i16>),
    Float8(Option<f64>),
    Float4(Option<f32>),
    Text(Option<String>),
    Bytea(Option<Vec<u8>>),
    Bool(Option<bool>),
}

/// `cell` for a column of `kind`, or why it does not fit (never the value itself: it may be
/// a customer's data).
fn bind(cell: Cell, kind: PgKind) -> Result<Bound, String> {
    let class = cell.class();
    let misfit = || format!("a {class} value does not fit a {kind:?} column");
    Ok(match (kind, cell) {
        (PgKind::Int8, Cell::Null) => Bound::Int8(None),
        (PgKind::Int4, Cell::Null) => Bound::Int4(None),
        (PgKind::Int2, Cell::Null) => Bound::Int2(None),
        (PgKind::Float8, Cell::Null) => Bound::Float8(None),
        (PgKind::Float4, Cell::Null) => Bound::Float4(None),
        (PgKind::Text, Cell::Null) => Bound::Text(None),
        (PgKind::Bytea, Cell::Null) => Bound::Bytea(None),
        (PgKind::Bool, Cell::Null) => Bound::Bool(None),
        (PgKind::Int8, Cell::Integer(i)) => Bound::Int8(Some(i)),
        (PgKind::Int4, Cell::Integer(i)) => {
            Bound::Int4(Some(i32::try_from(i).map_err(|_| misfit())?))
        }
        (PgKind::Int2, Cell::Integer(i)) => {
            Bound::Int2(Some(i16::try_from(i).map_err(|_| misfit())?))
        }
        (PgKind::Bool, Cell::Integer(i @ (0 | 1))) => Bound::Bool(Some(i == 1)),
        // An integer-valued REAL in an integer column (SQLite may store 3.0 there when the
        // column has no INTEGER affinity); a fraction would be silently rounded: refused.
        (PgKind::Int8, Cell::Real(f))
            if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 =>
        {
            Bound::Int8(Some(f as i64))
        }
        (PgKind::Float8, Cell::Real(f)) => Bound::Float8(Some(f)),
        (PgKind::Float8, Cell::Integer(i)) => Bound::Float8(Some(i as f64)),
        (PgKind::Float4, Cell::Real(f)) => Bound::Float4(Some(f as f32)),
        (PgKind::Text, Cell::Text(s)) => Bound::Text(Some(s)),
        (PgKind::Text, Cell::Blob(b)) => Bound::Text(Some(String::from_utf8(b).map_err(|_| {
            "a BLOB value that is not UTF-8 does not fit a Text column".to_owned()
        })?)),
        (PgKind::Bytea, Cell::Blob(b)) => Bound::Bytea(Some(b)),
        (PgKind::Bytea, Cell::Text(s)) => Bound::Bytea(Some(s.into_bytes())),
        _ => return Err(misfit()),
    })
}

/// The value at `index` by its storage class.
fn cell(row: &SqliteRow, index: usize) -> Result<Cell, sqlx::Error> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let class = raw.type_info().name().to_owned();
    Ok(match class.as_str() {
        "INTEGER" => Cell::Integer(row.try_get_unchecked(index)?),
        "REAL" => Cell::Real(row.try_get_unchecked(index)?),
        "TEXT" => Cell::Text(row.try_get_unchecked(index)?),
        _ => Cell::Blob(row.try_get_unchecked(index)?),
    })
}

/// Copies every row of `table` from `source` to `target`; returns how many.
pub async fn copy_table(
    source: &mut SqliteConnection,
    target: &mut PgConnection,
    table: &Table,
) -> anyhow::Result<u64> {
    let shown = printable(&table.name).into_owned();
    if table.columns.is_empty() {
        return Ok(0);
    }
    let columns: Vec<String> = table.columns.iter().map(|(c, _)| quoted(c)).collect();
    let columns = columns.join(", ");
    let order = if table.rowid { " ORDER BY rowid" } else { "" };
    let select = format!("SELECT {columns} FROM {}{order}", quoted(&table.name));
    let insert = format!("INSERT INTO {} ({columns}) ", quoted(&table.name));
    let per_chunk = CHUNK_ROWS.min(MAX_PARAMETERS / table.columns.len()).max(1);
    let mut rows = sqlx::query(&select).fetch(&mut *source);
    let mut chunk: Vec<Vec<Bound>> = Vec::with_capacity(per_chunk);
    let mut copied = 0u64;
    let mut bytes = 0usize;
    while let Some(row) = rows
        .try_next()
        .await
        .with_context(|| format!("cannot read the source's {shown}"))?
    {
        let mut values = Vec::with_capacity(table.columns.len());
        for (index, (column, kind)) in table.columns.iter().enumerate() {
            let value = cell(&row, index).with_context(|| {
                format!("cannot read {shown}.{} in the source", printable(column))
            })?;
            bytes += value.weight();
            values.push(bind(value, *kind).map_err(|why| {
                anyhow::anyhow!(
                    "{shown}.{} (row {}): {why}",
                    printable(column),
                    copied + chunk.len() as u64 + 1
                )
            })?);
        }
        chunk.push(values);
        if chunk.len() == per_chunk || bytes >= CHUNK_BYTES {
            copied += insert_chunk(target, &insert, &mut chunk)
                .await
                .with_context(|| format!("cannot write {shown} to the target"))?;
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        copied += insert_chunk(target, &insert, &mut chunk)
            .await
            .with_context(|| format!("cannot write {shown} to the target"))?;
    }
    Ok(copied)
}

/// One multi-row INSERT of everything in `chunk` (emptied).
async fn insert_chunk(
    target: &mut PgConnection,
    insert: &str,
    chunk: &mut Vec<Vec<Bound>>,
) -> Result<u64, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new(insert);
    query.push_values(chunk.drain(..), |mut b, row| {
        for value in row {
            match value {
                Bound::Int8(v) => b.push_bind(v),
                Bound::Int4(v) => b.push_bind(v),
                Bound::Int2(v) => b.push_bind(v),
                Bound::Float8(v) => b.push_bind(v),
                Bound::Float4(v) => b.push_bind(v),
                Bound::Text(v) => b.push_bind(v),
                Bound::Bytea(v) => b.push_bind(v),
                Bound::Bool(v) => b.push_bind(v),
            };
        }
    });
    Ok(query.build().execute(&mut *target).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_storage_class_binds_to_its_postgres_twin() {
        assert_eq!(
            bind(Cell::Integer(7), PgKind::Int8),
            Ok(Bound::Int8(Some(7)))
        );
        assert_eq!(
            bind(Cell::Real(0.5), PgKind::Float8),
            Ok(Bound::Float8(Some(0.5)))
        );
        assert_eq!(
            bind(Cell::Text("é".into()), PgKind::Text),
            Ok(Bound::Text(Some("é".into())))
        );
        assert_eq!(
            bind(Cell::Blob(vec![0, 159]), PgKind::Bytea),
            Ok(Bound::Bytea(Some(vec![0, 159])))
        );
        // A payload bound as text into a BLOB column is stored as TEXT by SQLite.
        assert_eq!(
            bind(Cell::Text("{}".into()), PgKind::Bytea),
            Ok(Bound::Bytea(Some(b"{}".to_vec())))
        );
        assert_eq!(
            bind(Cell::Integer(3), PgKind::Float8),
            Ok(Bound::Float8(Some(3.0)))
        );
        assert_eq!(
            bind(Cell::Real(3.0), PgKind::Int8),
            Ok(Bound::Int8(Some(3)))
        );
    }

    /// SQLite keeps what a value is, whatever its column says (datatype3.html §3: a BLOB
    /// column has no affinity; a REAL one stores an integer as REAL).
    #[tokio::test]
    async fn each_value_is_read_by_its_storage_class_not_its_column() {
        use sqlx::Connection as _;
        let mut c = SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        sqlx::query("CREATE TABLE t (payload BLOB, n INTEGER, r REAL, s TEXT, z INTEGER)")
            .execute(&mut c)
            .await
            .expect("table");
        sqlx::query("INSERT INTO t VALUES ('{\"a\":1}', 2.5, 2, x'00ff', NULL)")
            .execute(&mut c)
            .await
            .expect("row");
        let row = sqlx::query("SELECT payload, n, r, s, z FROM t")
            .fetch_one(&mut c)
            .await
            .expect("read");
        let cells: Vec<Cell> = (0..5).map(|i| cell(&row, i).expect("cell")).collect();
        assert_eq!(
            cells,
            [
                Cell::Text("{\"a\":1}".into()),
                Cell::Real(2.5),
                Cell::Real(2.0),
                Cell::Blob(vec![0, 0xff]),
                Cell::Null,
            ]
        );
    }

    #[test]
    fn a_null_takes_the_type_of_its_column() {
        assert_eq!(bind(Cell::Null, PgKind::Int8), Ok(Bound::Int8(None)));
        assert_eq!(bind(Cell::Null, PgKind::Text), Ok(Bound::Text(None)));
        assert_eq!(bind(Cell::Null, PgKind::Bytea), Ok(Bound::Bytea(None)));
        assert_eq!(bind(Cell::Null, PgKind::Float8), Ok(Bound::Float8(None)));
    }

    #[test]
    fn a_value_that_would_change_is_refused_without_showing_it() {
        for (cell, kind) in [
            (Cell::Real(2.5), PgKind::Int8),
            (Cell::Text("secret-ish".into()), PgKind::Int8),
            (Cell::Integer(1 << 40), PgKind::Int4),
            (Cell::Blob(vec![0xff, 0xfe]), PgKind::Text),
            (Cell::Integer(2), PgKind::Bool),
        ] {
            let why = bind(cell.clone(), kind).expect_err("refused");
            assert!(!why.contains("secret-ish"), "{why}");
            assert!(why.contains("does not fit"), "{cell:?} → {kind:?}: {why}");
        }
    }
}
