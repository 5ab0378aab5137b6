//! Amounts in a currency's minor unit, as Stripe sends them, and their major-unit forms.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    /// Minor units (cents), as Stripe sends them.
    pub minor: i64,
    /// ISO code, lowercase as Stripe writes it.
    pub currency: String,
}

/// Stripe's zero-decimal currencies (amounts are already in major units).
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
/// Stripe's three-decimal currencies.
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

impl Money {
    pub fn new(minor: i64, currency: &str) -> Self {
        Self {
            minor,
            currency: currency.to_ascii_lowercase(),
        }
    }

    pub fn decimals(&self) -> u32 {
        if ZERO_DECIMAL.contains(&self.currency.as_str()) {
            0
        } else if THREE_DECIMAL.contains(&self.currency.as_str()) {
            3
        } else {
            2
        }
    }

    /// Major units as a plain decimal string (HubSpot number properties): `49.00`, `5000`.
    pub fn major_string(&self) -> String {
        let decimals = self.decimals();
        if decimals == 0 {
            return self.minor.to_string();
        }
        let scale = 10i64.pow(decimals);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / scale as u64,
            abs % scale as u64,
            width = decimals as usize
        )
    }

    /// For people: `$49.00`, `€12.50`, `¥5000`, `49.00 CHF`.
    pub fn display(&self) -> String {
        let symbol = match self.currency.as_str() {
            "usd" => Some("$"),
            "eur" => Some("€"),
            "gbp" => Some("£"),
            "jpy" => Some("¥"),
            "inr" => Some("₹"),
            _ => None,
        };
        match symbol {
            Some(s) if self.minor < 0 => {
                format!("-{s}{}", self.major_string().trim_start_matches('-'))
            }
            Some(s) => format!("{s}{}", self.major_string()),
            None => format!(
                "{} {}",
                self.major_string(),
                self.currency.to_ascii_uppercase()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_units_by_currency() {
        assert_eq!(Money::new(4900, "usd").major_string(), "49.00");
        assert_eq!(Money::new(5, "EUR").major_string(), "0.05");
        assert_eq!(Money::new(-1000, "usd").major_string(), "-10.00");
        assert_eq!(Money::new(5000, "jpy").major_string(), "5000");
        assert_eq!(Money::new(1234, "kwd").major_string(), "1.234");
        assert_eq!(Money::new(4900, "usd").display(), "$49.00");
        assert_eq!(Money::new(4900, "chf").display(), "49.00 CHF");
        assert_eq!(Money::new(-4900, "gbp").display(), "-£49.00");
    }
}
