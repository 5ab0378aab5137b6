//! `paybridge events list|show`: read the store directly, so they work with the server down.

use std::io::Write;

use anyhow::Context as _;

use crate::basics::printable as p;
use crate::cli::{EventsCommand, ListArgs};
use crate::config::Settings;
use crate::domain::{Clock, EventId, EventStatus, time};
use crate::store::{EventFilter, Store};

pub async fn run(command: EventsCommand, settings: Settings) -> anyhow::Result<()> {
    let store = Store::open(&settings.store.url, Clock::system()).await?;
    let result = match command {
        EventsCommand::List(args) => list(&store, args).await,
        EventsCommand::Show { id, json } => show(&store, &id, json).await,
        EventsCommand::Retry { ids, dead } => retry(&store, ids, dead).await,
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
        "{:<32} {:<36} {:<15} {:<22} {:>3}  RECEIVED",
        "ID", "TYPE", "STATUS", "CUSTOMER", "TRY"
    )?;
    for e in events {
        writeln!(
            out,
            "{:<32} {:<36} {:<15} {:<22} {:>3}  {}{}",
            p(&e.id),
            p(&e.kind),
            e.status.to_string(),
            p(e.customer.as_deref().unwrap_or("-")),
            e.attempts,
            time::precise(e.received_at),
            e.last_error
                .map(|err| format!("  last error: {}", p(&err)))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

async fn retry(store: &Store, ids: Vec<String>, dead: bool) -> anyhow::Result<()> {
    let ids = if dead {
        store.dead_event_ids().await?
    } else {
        if ids.is_empty() {
            return Err(crate::UsageError("give event ids, or --dead".into()).into());
        }
        for id in &ids {
            EventId::parse(id).map_err(|e| crate::UsageError(e.to_string()))?;
        }
        ids
    };
    let back = store.retry_events(&ids).await?;
    for id in &ids {
        if !back.contains(id) {
            eprintln!("{id}: not retried (unknown, still pending, or ignored)");
        }
    }
    println!("{} event(s) queued again", back.len());
    Ok(())
}

async fn show(store: &Store, id: &str, json: bool) -> anyhow::Result<()> {
    let id = EventId::parse(id).map_err(|e| crate::UsageError(e.to_string()))?;
    let record = store
        .get_event(&id)
        .await?
        .with_context(|| format!("no event {id} in the store"))?;
    let steps = store.steps_of(id.as_str()).await?;
    let timeline = store.timeline(id.as_str()).await?;
    let summary = record
        .payload
        .as_deref()
        .map(crate::stripe::summary::summarise);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({
                "event": record.summary,
                "payload": summary,
                "steps": steps,
                "timeline": timeline,
            }),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let e = &record.summary;
    writeln!(out, "event      {}", p(&e.id))?;
    writeln!(out, "type       {}", p(&e.kind))?;
    writeln!(out, "status     {}", e.status)?;
    writeln!(
        out,
        "customer   {}",
        p(e.customer.as_deref().unwrap_or("-"))
    )?;
    writeln!(
        out,
        "contact    {}",
        p(e.contact_id.as_deref().unwrap_or("-"))
    )?;
    writeln!(out, "created    {}", time::precise(e.created * 1000))?;
    writeln!(
        out,
        "received   {} (via {})",
        time::precise(e.received_at),
        e.source
    )?;
    writeln!(out, "attempts   {}", e.attempts)?;
    if let Some(err) = &e.last_error {
        writeln!(out, "last error {}", p(err))?;
    }
    match &summary {
        Some(s) => {
            writeln!(out, "payload")?;
            for (k, v) in s.as_object().into_iter().flatten() {
                let value = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                writeln!(out, "  {:<18} {}", p(k), p(&value))?;
            }
        }
        None => writeln!(out, "payload    purged (past store.payload_retention_days)")?,
    }
    writeln!(out, "steps")?;
    if steps.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for s in &steps {
        writeln!(
            out,
            "  {:<44} {:<15} {:<8} {}{}",
            p(&s.key),
            p(&s.kind),
            p(&s.status),
            s.result.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            s.error
                .as_ref()
                .map(|e| format!(" error: {}", p(e)))
                .unwrap_or_default()
        )?;
    }
    writeln!(out, "timeline")?;
    for t in &timeline {
        writeln!(
            out,
            "  {} [attempt {}] {}",
            time::precise(t.at),
            t.attempt,
            p(&t.message)
        )?;
    }
    Ok(())
}
