//! One reader for what operators write in TOML (config sections, rules, sequences): typed
//! getters that report each problem with its path and a hint, and keep reading, so that
//! one run lists everything wrong with a file.

use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::{Problem, Secret, parse_duration, resolve_secret};

/// A table being read, and its path (`server`, `rules[2].actions[0]`): a key's path is
/// `{path}.{key}`.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub table: &'a Table,
    pub path: &'a str,
}

impl<'a> At<'a> {
    pub fn new(table: &'a Table, path: &'a str) -> Self {
        Self { table, path }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.table.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    pub fn path_of(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }
}

/// Collects problems while values are read; `lookup` resolves `env:NAME` secrets (the
/// process environment in production).
pub struct Fields<'e> {
    problems: Vec<Problem>,
    lookup: &'e dyn Fn(&str) -> Option<String>,
}

const SECRET_FORMS: &str = "the value, env:NAME or file:/path";

impl<'e> Fields<'e> {
    pub fn new(lookup: &'e dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            problems: Vec::new(),
            lookup,
        }
    }

    pub fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// How many problems were found so far (compare before and after reading a part).
    pub fn count(&self) -> usize {
        self.problems.len()
    }

    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// Any value serde can read from TOML; `expected` words it for the message.
    pub fn typed<T: DeserializeOwned>(&mut self, at: At, key: &str, expected: &str) -> Option<T> {
        let value = at.get(key)?;
        match T::deserialize(value.clone()) {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(
                    at.path_of(key),
                    format!("must be {expected}, found {}", describe(value)),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, at: At, key: &str) -> Option<bool> {
        self.typed(at, key, "true or false")
    }

    /// A string; numbers and booleans are accepted as their text (environment values).
    pub fn string(&mut self, at: At, key: &str) -> Option<String> {
        let value = at.get(key)?;
        let text = as_text(value);
        if text.is_none() {
            self.problem(
                at.path_of(key),
                format!("must be a string, found {}", describe(value)),
            );
        }
        text
    }

    /// [`Self::string`], refusing a blank one; `what` says what the value is, in messages.
    pub fn scalar(&mut self, at: At, key: &str, required: bool, what: &str) -> Option<String> {
        let path = at.path_of(key);
        let Some(value) = at.get(key) else {
            if required {
                self.problem(path, format!("missing ({what})"));
            }
            return None;
        };
        match as_text(value) {
            Some(text) if text.trim().is_empty() => {
                self.problem(path, format!("is empty ({what})"));
                None
            }
            Some(text) => Some(text),
            None => {
                self.problem(
                    path,
                    format!("must be a string ({what}), found {}", describe(value)),
                );
                None
            }
        }
    }

    /// A string parsed with [`FromStr`]; `expected` words a good value for the message.
    pub fn parsed<T: FromStr>(&mut self, at: At, key: &str, expected: &str) -> Option<T> {
        let text = self.string(at, key)?;
        match text.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(at.path_of(key), format!("`{text}` is not {expected}"));
                None
            }
        }
    }

    /// An `http(s)://` base URL, without its trailing `/`.
    pub fn url(&mut self, at: At, key: &str) -> Option<String> {
        let text = self.string(at, key)?;
        if text.starts_with("http://") || text.starts_with("https://") {
            Some(text.trim_end_matches('/').to_owned())
        } else {
            self.problem(
                at.path_of(key),
                format!("`{text}` is not an http(s):// URL"),
            );
            None
        }
    }

    pub fn int(&mut self, at: At, key: &str, range: RangeInclusive<i64>) -> Option<i64> {
        let path = at.path_of(key);
        match at.get(key)? {
            Value::Integer(i) if range.contains(i) => Some(*i),
            Value::Integer(i) => {
                let (min, max) = (range.start(), range.end());
                self.problem(path, format!("{i} is out of range ({min}..={max})"));
                None
            }
            other => {
                let found = describe(other);
                self.problem(path, format!("must be a whole number, found {found}"));
                None
            }
        }
    }

    /// A duration such as `"3d"` (see [`parse_duration`]); `what` as for [`Self::scalar`].
    pub fn duration(&mut self, at: At, key: &str, what: &str) -> Option<Duration> {
        let text = self.scalar(at, key, false, what)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(at.path_of(key), e);
                None
            }
        }
    }

    /// One of `options`, case-insensitive; normalised to upper case.
    pub fn choice(&mut self, at: At, key: &str, options: &[&str]) -> Option<String> {
        let what = options.join(", ");
        let text = self.scalar(at, key, false, &format!("one of {what}"))?;
        let upper = text.trim().to_ascii_uppercase();
        if options.contains(&upper.as_str()) {
            Some(upper)
        } else {
            self.problem(at.path_of(key), format!("`{text}` is not one of {what}"));
            None
        }
    }

    /// A secret reference, resolved. `missing`: None when the key is optional, else the
    /// hint of the "missing (…)" message.
    pub fn secret(&mut self, at: At, key: &str, missing: Option<&str>) -> Option<Secret> {
        let path = at.path_of(key);
        let Some(value) = at.get(key) else {
            if let Some(hint) = missing {
                self.problem(path, format!("missing ({hint})"));
            }
            return None;
        };
        let Some(reference) = value.as_str() else {
            self.problem(
                path,
                format!(
                    "must be a string ({SECRET_FORMS}), found {}",
                    describe(value)
                ),
            );
            return None;
        };
        self.resolve(path, reference)
    }

    /// Resolves a secret reference found at `path` (the message never shows the value).
    pub fn resolve(&mut self, path: impl Into<String>, reference: &str) -> Option<Secret> {
        match resolve_secret(reference, self.lookup) {
            Ok(secret) => Some(secret),
            Err(e) => {
                self.problem(path, e.to_string());
                None
            }
        }
    }

    /// Whether `name` is a HubSpot internal property name; reported at `path` if not.
    pub fn property_name(&mut self, path: impl Into<String>, name: &str) -> bool {
        let valid = is_property_name(name);
        if !valid {
            self.problem(
                path,
                "must be a HubSpot internal property name (lowercase letters, digits, _)",
            );
        }
        valid
    }

    /// Reports each of `keys` that is not `known`, under `{path}.{key}`; `message(hint)`
    /// words the problem, the hint being `did you mean …? ` for a near miss, else empty.
    pub fn unknown_keys<'k>(
        &mut self,
        path: &str,
        keys: impl IntoIterator<Item = &'k String>,
        known: &[&str],
        message: impl Fn(&str) -> String,
    ) {
        for key in keys {
            if !known.contains(&key.as_str()) {
                let hint = nearest(key, known.iter().copied())
                    .map(|k| format!("did you mean {k}? "))
                    .unwrap_or_default();
                self.problem(format!("{path}.{key}"), message(&hint));
            }
        }
    }
}

/// Strings as they are; numbers and booleans as their text; None for the rest.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What kind of TOML value this is, for messages ("found an array").
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// HubSpot internal property names: lowercase letters, digits and `_`.
pub fn is_property_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The candidate closest to `name`, if it is a likely typo (at most 3 edits away).
pub fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (c, edit_distance(name, c)))
        .filter(|(_, d)| *d <= 3)
        .min_by_key(|(_, d)| *d)
        .map(|(c, _)| c)
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T>(text: &str, f: impl FnOnce(&mut Fields, At) -> T) -> (T, Vec<String>) {
        let table: Table = toml::from_str(text).expect("test TOML");
        let lookup = |name: &str| (name == "SET").then(|| "from-env".to_owned());
        let mut fields = Fields::new(&lookup);
        let value = f(&mut fields, At::new(&table, "s"));
        let problems = fields
            .into_problems()
            .iter()
            .map(ToString::to_string)
            .collect();
        (value, problems)
    }

    #[test]
    fn getters_report_with_the_path_and_keep_going() {
        let (v, p) = read("n = 7\nt = \"x\"", |f, at| {
            (
                f.int(at, "n", 1..=5),
                f.int(at, "t", 1..=5),
                f.int(at, "absent", 1..=5),
            )
        });
        assert_eq!(v, (None, None, None));
        assert_eq!(
            p,
            [
                "s.n: 7 is out of range (1..=5)",
                "s.t: must be a whole number, found a string"
            ]
        );
        let (v, p) = read("a = 3\nb = \" \"\nc = [1]", |f, at| {
            (
                f.scalar(at, "a", true, "an id"),
                f.scalar(at, "b", true, "an id"),
                f.scalar(at, "c", true, "an id"),
                f.scalar(at, "d", true, "an id"),
                f.string(at, "c"),
            )
        });
        assert_eq!(v, (Some("3".into()), None, None, None, None));
        assert_eq!(
            p,
            [
                "s.b: is empty (an id)",
                "s.c: must be a string (an id), found an array",
                "s.d: missing (an id)",
                "s.c: must be a string, found an array"
            ]
        );
    }

    #[test]
    fn secrets_choices_and_unknown_keys() {
        let (v, p) = read("a = \"env:SET\"\nb = \"env:UNSET\"\nc = 1", |f, at| {
            (
                f.secret(at, "a", None).map(|s| s.expose().to_owned()),
                f.secret(at, "b", None),
                f.secret(at, "c", None),
                f.secret(at, "d", Some("give it")),
            )
        });
        assert_eq!(v, (Some("from-env".into()), None, None, None));
        assert!(p[0].starts_with("s.b: env var UNSET is not set"), "{p:?}");
        assert_eq!(
            p[1..],
            [
                "s.c: must be a string (the value, env:NAME or file:/path), found an integer",
                "s.d: missing (give it)"
            ]
        );
        let (v, p) = read("priority = \"high\"\ncolour = 1\nprioity = 2", |f, at| {
            let choice = f.choice(at, "priority", &["LOW", "HIGH"]);
            let keys: Vec<String> = at.table.keys().cloned().collect();
            f.unknown_keys(at.path, &keys, &["priority"], |hint| {
                format!("unknown key ({hint}known: priority)")
            });
            choice
        });
        assert_eq!(v.as_deref(), Some("HIGH"));
        assert_eq!(
            p,
            [
                "s.colour: unknown key (known: priority)",
                "s.prioity: unknown key (did you mean priority? known: priority)"
            ]
        );
    }

    #[test]
    fn names_and_distances() {
        assert!(is_property_name("stripe_customer_id"));
        assert!(!is_property_name("Stripe-ID"));
        assert!(!is_property_name(""));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            nearest("concurency", ["concurrency", "lease"].into_iter()),
            Some("concurrency")
        );
        assert_eq!(
            nearest("colour", ["concurrency", "lease"].into_iter()),
            None
        );
    }
}
