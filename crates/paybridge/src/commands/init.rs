//! `paybridge init`: write the commented starter config (every key of SPEC §5, a rule for
//! every playbook of SPEC §1). Needs no config itself.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::UsageError;
use crate::config::STARTER;

/// Writes the starter to `output` (default `./paybridge.toml`); an existing file is only
/// replaced with `force`.
pub fn run(output: Option<&Path>, force: bool) -> anyhow::Result<()> {
    let path = output.map_or_else(|| PathBuf::from("paybridge.toml"), Path::to_path_buf);
    write(&path, force)?;
    let shown = path.display();
    println!("wrote {shown}: a commented config with a rule for every playbook");
    println!("  it runs against the embedded HubSpot sandbox until you set [hubspot] token");
    println!("next:");
    println!("  paybridge --config {shown} setup    # create the HubSpot properties it writes");
    println!("  paybridge --config {shown} serve    # receive webhooks and run the rules");
    Ok(())
}

fn write(path: &Path, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // create_new: never clobber a file that appeared since we looked.
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(UsageError(format!(
                "{} already exists; pass --force to overwrite it, or --output FILE to write \
                 elsewhere",
                path.display()
            ))
            .into());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    };
    file.write_all(STARTER.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::app::load::load_from_str;

    #[test]
    fn writes_once_and_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("paybridge.toml");
        run(Some(&path), false).expect("first write");
        assert_eq!(std::fs::read_to_string(&path).expect("written"), STARTER);

        std::fs::write(&path, "# mine").expect("overwrite by hand");
        let err = run(Some(&path), false).expect_err("refused");
        assert!(err.is::<UsageError>(), "exit code 2: {err}");
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), "# mine");

        run(Some(&path), true).expect("forced");
        assert_eq!(std::fs::read_to_string(&path).expect("written"), STARTER);
    }

    #[test]
    fn the_starter_loads_without_any_environment_and_covers_every_action() {
        let loaded = load_from_str(
            Some(STARTER),
            Some(PathBuf::from("paybridge.toml")),
            &HashMap::new(),
        )
        .unwrap_or_else(|e| panic!("the starter must load: {e}"));
        assert!(
            loaded.settings.hubspot.token.is_none(),
            "no token: the embedded sandbox"
        );
        assert_eq!(loaded.settings.stripe.webhook_secrets.len(), 1);
        let ruleset = &loaded.rules;
        assert!(ruleset.rules.len() >= 7, "{:?}", ruleset.rules.len());
        assert!(ruleset.sequences.contains_key("payment_recovery"));
        for kind in crate::rules::action_types() {
            assert!(
                STARTER.contains(&format!("type = \"{kind}\"")),
                "the starter has no {kind} action"
            );
        }
        // Every §5 key is at least explained.
        for key in [
            "listen",
            "admin_listen",
            "admin_token",
            "max_body_bytes",
            "tls_cert",
            "tls_key",
            "url",
            "payload_retention_days",
            "pool_size",
            "webhook_secrets",
            "tolerance_secs",
            "api_key",
            "api_base",
            "replay_every",
            "reconcile_every",
            "reconcile_budget_share",
            "token",
            "api_version",
            "requests_per_10s",
            "search_per_s",
            "portal_id",
            "id_property",
            "match_email",
            "create_missing",
            "concurrency",
            "max_attempts",
            "slack_webhook_url",
            "minutes_per_action",
        ] {
            assert!(
                STARTER.contains(&format!("{key} =")),
                "{key} is not in the starter"
            );
        }
    }
}
