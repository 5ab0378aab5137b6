//! Secrets: given literally, as `env:NAME` or as `file:/path`, resolved once at start.
//! `Debug` and `Display` never show the value.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself. Call only where it is used (an HMAC key, a bearer header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

/// Serialised (in step details, JSON output) as `[redacted]`, never the value.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What went wrong resolving a secret reference; the message names the fix, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    EnvNotSet(String),
    FileUnreadable(String, String),
    Empty,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EnvNotSet(name) => write!(
                f,
                "env var {name} is not set (export it, or write the value as file:/path)"
            ),
            Self::FileUnreadable(path, why) => {
                write!(f, "cannot read secret file {path}: {why}")
            }
            Self::Empty => f.write_str("is empty (give the secret, env:NAME or file:/path)"),
        }
    }
}

/// Resolves `env:NAME`, `file:PATH` or a literal value. File contents are trimmed of
/// surrounding whitespace (a trailing newline is the usual accident).
/// `env` looks a variable up (the process environment in production).
pub fn resolve(
    reference: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, SecretError> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        match env(name) {
            Some(v) if !v.is_empty() => v,
            _ => return Err(SecretError::EnvNotSet(name.to_owned())),
        }
    } else if let Some(path) = reference.strip_prefix("file:") {
        std::fs::read_to_string(path)
            .map_err(|e| SecretError::FileUnreadable(path.to_owned(), e.to_string()))?
            .trim()
            .to_owned()
    } else {
        reference.to_owned()
    };
    if value.is_empty() {
        return Err(SecretError::Empty);
    }
    Ok(Secret(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("whsec_supersecret".into());
        assert!(!format!("{s:?} {s}").contains("supersecret"));
    }

    #[test]
    fn resolves_literal_and_file() {
        let no_env = |_: &str| None;
        assert_eq!(
            resolve("abc", &no_env).map(|s| s.expose().to_owned()),
            Ok("abc".into())
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n").expect("write");
        let r = resolve(&format!("file:{}", path.display()), &no_env);
        assert_eq!(r.map(|s| s.expose().to_owned()), Ok("from-file".into()));
        assert!(matches!(
            resolve("env:UNSET", &no_env),
            Err(SecretError::EnvNotSet(_))
        ));
        let env = |name: &str| (name == "SET").then(|| "v".to_owned());
        assert_eq!(
            resolve("env:SET", &env).map(|s| s.expose().to_owned()),
            Ok("v".into())
        );
    }
}
