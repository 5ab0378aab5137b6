//! `paybridge events list|show`: read the store directly, so they work with the server down.

use std::io::Write;

use anyhow::Context as _;

use crate::cli::{EventsCommand, ListArgs};
use crate::config::Settings;
use crate::domain::{Clock, EventId, EventStatus};
use crate::store::{EventFilter, Store};

pub async fn run(command: EventsCommand, settings: Settings) -> anyhow::Result<()> {
    let store = Store::open(&settings.store.url, Clock::system()).await?;
    let result = match command {
        EventsCommand::List(args) => list(&store, args).await,
        EventsCommand::Show { id } => show(&store, &id).await,
    };
    store.close().await;
    result
}

async fn list(store: &Store, args: ListArgs) -> anyhow::Result<()> {
    let status = args
        .status
        .as_deref()
        .map(str::parse::<EventStatus>)
        .transpose()
        .map_err(|e| crate::UsageError(format!("--status: {e}")))?;
    let events = store
        .list_events(&EventFilter {
            status,
            kind: args.kind,
            customer: args.customer,
            after: None,
            limit: args.limit,
        })
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &events)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<32} {:<36} {:<15} {:<22} {:>3}  {}",
        "ID", "TYPE", "STATUS", "CUSTOMER", "TRY", "RECEIVED"
    )?;
    for e in events {
        writeln!(
            out,
            "{:<32} {:<36} {:<15} {:<22} {:>3}  {}{}",
            e.id,
            e.kind,
            e.status,
            e.customer.as_deref().unwrap_or("-"),
            e.attempts,
            format_ms(e.received_at),
            e.last_error
                .map(|err| format!("  last error: {err}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

async fn show(store: &Store, id: &str) -> anyhow::Result<()> {
    let id = EventId::parse(id).map_err(|e| crate::UsageError(e.to_string()))?;
    let record = store
        .get_event(&id)
        .await?
        .with_context(|| format!("no event {id} in the store"))?;
    let e = &record.summary;
    let mut out = std::io::stdout().lock();
    writeln!(out, "event      {}", e.id)?;
    writeln!(out, "type       {}", e.kind)?;
    writeln!(out, "status     {}", e.status)?;
    writeln!(out, "customer   {}", e.customer.as_deref().unwrap_or("-"))?;
    writeln!(out, "contact    {}", e.contact_id.as_deref().unwrap_or("-"))?;
    writeln!(out, "created    {}", format_ms(e.created * 1000))?;
    writeln!(
        out,
        "received   {} (via {})",
        format_ms(e.received_at),
        e.source
    )?;
    writeln!(out, "attempts   {}", e.attempts)?;
    if let Some(err) = &e.last_error {
        writeln!(out, "last error {err}")?;
    }
    writeln!(
        out,
        "payload    {}",
        match &record.payload {
            Some(p) => format!("{} bytes kept", p.len()),
            None => "purged (past store.payload_retention_days)".into(),
        }
    )?;
    Ok(())
}

pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}
