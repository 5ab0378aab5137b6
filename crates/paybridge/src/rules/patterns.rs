//! Event-type patterns: exact names or `*` globs such as `customer.subscription.*`.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypePatterns(Vec<String>);

impl TypePatterns {
    pub fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(patterns.into_iter().map(Into::into).collect())
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.0.iter().any(|p| glob_match(p, kind))
    }

    pub fn extend(&mut self, other: &TypePatterns) {
        for p in &other.0 {
            if !self.0.contains(p) {
                self.0.push(p.clone());
            }
        }
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// `*` matches any run of characters (including dots); everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(head) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if last {
            return remaining.ends_with(part);
        }
        match remaining.find(part) {
            Some(pos) => remaining = &remaining[pos + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "customer.subscription.*",
            "customer.subscription.updated"
        ));
        assert!(!glob_match("customer.subscription.*", "customer.updated"));
        assert!(glob_match("*", "invoice.paid"));
        assert!(glob_match("invoice.paid", "invoice.paid"));
        assert!(!glob_match("invoice.paid", "invoice.paid_out"));
        assert!(glob_match("*.payment_failed", "invoice.payment_failed"));
        assert!(glob_match("charge.*.created", "charge.dispute.created"));
        assert!(!glob_match("charge.*.created", "charge.dispute.closed"));
    }
}
