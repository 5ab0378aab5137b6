//! Newtypes for the identifiers we pass around, each with a `parse()` that says what is wrong.

use std::fmt;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than 255 characters")]
    TooLong { kind: &'static str },
    #[error("{kind} `{value}` has a character other than letters, digits, `_` or `-`")]
    BadCharacter { kind: &'static str, value: String },
    #[error("{kind} `{value}` does not start with `{prefix}`")]
    BadPrefix {
        kind: &'static str,
        value: String,
        prefix: &'static str,
    },
}

/// Stripe ids are case-sensitive ASCII strings of at most 255 characters
/// (research/stripe.md: "change id length (≤ 255 chars) or prefixes").
fn check(kind: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > 255 {
        return Err(IdError::TooLong { kind });
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(IdError::BadCharacter {
            kind,
            value: value.chars().take(80).collect(),
        });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal $(| $other:literal)*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, IdError> {
                check($kind, value)?;
                if !value.starts_with($prefix) $(&& !value.starts_with($other))* {
                    return Err(IdError::BadPrefix {
                        kind: $kind,
                        value: value.chars().take(80).collect(),
                        prefix: $prefix,
                    });
                }
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A Stripe event id (`evt_…`), the deduplication key of intake.
    EventId,
    "event id",
    "evt_"
);
string_id!(
    /// A Stripe customer id (`cus_…`), the lane of the queue and the link to the HubSpot contact.
    /// An Accounts v2 customer (`customer_account`, `acct_…`) is accepted too: Stripe
    /// documents "You can use this ID with any v1 API that accepts a customer_account
    /// parameter" and "You can also retrieve … customer-configured Accounts using the
    /// /v1/customers endpoint" (docs.stripe.com/connect/use-accounts-as-customers).
    CustomerId,
    "customer id",
    "cus_" | "acct_"
);

/// `bytes` random bytes as lowercase hex: run ids, worker ids, generated secrets.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_parse_and_refuse() {
        assert_eq!(
            EventId::parse("evt_1S4kPsQmT3xK8rLvJ3k5Lq7W")
                .map(|id| id.to_string())
                .as_deref(),
            Ok("evt_1S4kPsQmT3xK8rLvJ3k5Lq7W")
        );
        assert_eq!(EventId::parse(""), Err(IdError::Empty { kind: "event id" }));
        assert!(matches!(
            EventId::parse("cus_123"),
            Err(IdError::BadPrefix { .. })
        ));
        assert!(matches!(
            EventId::parse("evt_1; DROP TABLE"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            EventId::parse(&format!("evt_{}", "a".repeat(300))),
            Err(IdError::TooLong { .. })
        ));
        assert!(CustomerId::parse("cus_T7aLp4qZ9cXn2W").is_ok());
        assert!(CustomerId::parse("acct_1SM2xKQmT3xK8rLvHl").is_ok());
        assert!(CustomerId::parse("sub_1SM2xKQmT3xK8rLvHl").is_err());
    }
}
