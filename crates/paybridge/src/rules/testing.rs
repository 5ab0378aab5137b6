//! Helpers shared by the rules' tests: compile a config text, read a fixture, the starter.

use std::collections::{BTreeMap, HashMap};

use toml::{Table, Value};

use super::{RuleSet, Step};
use crate::domain::PaymentFact;
use crate::stripe::normalise;

pub const NOW: i64 = 1_790_000_000_000;
pub const DAY_MS: i64 = 86_400_000;

/// The `[[rules]]` and `[sequences]` of a config text, compiled with these environment
/// variables; the problems as text.
pub fn compile_with_env(text: &str, env: &[(&str, &str)]) -> Result<RuleSet, Vec<String>> {
    let table: Table = toml::from_str(text).expect("test TOML is valid");
    let rules = match table.get("rules") {
        Some(Value::Array(rules)) => rules.clone(),
        _ => Vec::new(),
    };
    let sequences: BTreeMap<String, Value> = match table.get("sequences") {
        Some(Value::Table(t)) => t.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    };
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    RuleSet::compile(&rules, &sequences, &|n| env.get(n).cloned())
        .map_err(|problems| problems.iter().map(ToString::to_string).collect())
}

pub fn compile(text: &str) -> Result<RuleSet, Vec<String>> {
    compile_with_env(text, &[])
}

pub fn problems(text: &str) -> Vec<String> {
    compile(text).err().unwrap_or_default()
}

/// One rule `a` on invoice.paid with the given actions, and a sequence `recover`.
pub fn rule_with(actions: &str) -> String {
    format!(
        "[[rules]]\nname = \"a\"\non = [\"invoice.paid\"]\nactions = [{actions}]\n\
         [sequences.recover]\nsteps = [{{ after = \"0h\", actions = [{{ type = \
         \"create_note\", body = \"x\" }}] }}]\n"
    )
}

pub fn fact(name: &str) -> PaymentFact {
    let path = format!("{}/fixtures/stripe/{name}", env!("CARGO_MANIFEST_DIR"));
    normalise(&std::fs::read(path).expect("fixture")).expect("normalises")
}

/// The rules of `paybridge init`'s starter config.
pub fn starter() -> RuleSet {
    compile(crate::config::STARTER).unwrap_or_else(|p| panic!("the starter compiles: {p:#?}"))
}

pub fn keys(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(|s| s.key.as_str()).collect()
}
