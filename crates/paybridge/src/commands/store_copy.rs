//! `paybridge store copy --from sqlite://… --to postgres://…`: moves a store to Postgres
//! (see `ops::store_copy`) and prints the rows of each table at both ends. Needs no config.

use crate::basics::printable;
use crate::cli::StoreCopyArgs;
use crate::ops::store_copy::{self, Copied, shown};

pub async fn run(args: StoreCopyArgs) -> anyhow::Result<()> {
    store_copy::check_urls(&args.from, &args.to)?;
    let (from, to) = (shown(&args.from), shown(&args.to));
    println!("copying {from} into {to}");
    let copied = store_copy::copy(&args.from, &args.to).await?;
    print!("{}", summary(&copied));
    println!(
        "copied (schema version {}); point store.url at {} and start the replicas",
        copied.schema_version, to
    );
    Ok(())
}

/// The table of counts: one line per table, source and target rows side by side.
fn summary(copied: &Copied) -> String {
    let names: Vec<String> = copied
        .tables
        .iter()
        .map(|t| printable(&t.table).into_owned())
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!("{:<width$}  {:>10}  {:>10}\n", "table", "source", "target");
    for (name, t) in names.iter().zip(&copied.tables) {
        out.push_str(&format!(
            "{name:<width$}  {:>10}  {:>10}\n",
            t.source, t.target
        ));
    }
    let (source, target) = copied
        .tables
        .iter()
        .fold((0, 0), |(s, t), c| (s + c.source, t + c.target));
    out.push_str(&format!(
        "{:<width$}  {source:>10}  {target:>10}\n",
        "total"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::store_copy::TableCount;

    #[test]
    fn the_summary_lines_up_and_escapes_what_a_terminal_would_obey() {
        let copied = Copied {
            schema_version: 52,
            tables: vec![
                TableCount {
                    table: "events".into(),
                    source: 12,
                    target: 12,
                },
                TableCount {
                    table: "x\u{1b}[2J".into(),
                    source: 3,
                    target: 3,
                },
            ],
        };
        let text = summary(&copied);
        assert!(!text.contains('\u{1b}'), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].starts_with("events ") && lines[1].ends_with("12          12"));
        assert!(lines[3].starts_with("total ") && lines[3].ends_with("15          15"));
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}
