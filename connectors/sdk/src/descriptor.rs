use serde::Serialize;
use serde_json::Value;

use crate::FieldError;

/// The values of a connector's connect form, keyed by [`Field::key`]: strings, numbers or
/// booleans. Never holds the password; that travels as [`crate::Credentials`].
pub type Settings = serde_json::Map<String, Value>;

/// How a connector signs in to the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AuthMethod {
    /// The user types a password (or an app password) into the form.
    Password,
    /// The user signs in at the provider, which grants a refreshable token.
    OAuth2,
}

/// What a connector can do besides receiving mail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// It sends mail through the account ([`crate::MailConnector::send`]).
    pub send: bool,
    /// The provider itself keeps sent mail in the account's Sent folder.
    pub provider_saves_sent: bool,
    /// The same sign-in also serves the account's calendars: the connector's kind is
    /// registered as a [`crate::CalendarConnector`] too.
    pub calendars: bool,
}

/// How a form field is rendered and what it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum FieldKind {
    Text,
    /// A host name or IP address.
    Host,
    /// A TCP port, 1–65535.
    Port,
    Number,
    Email,
    /// One of [`Field::choices`].
    Select,
    Checkbox,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
}

/// One choice of a [`FieldKind::Select`] field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

impl Choice {
    pub fn new(value: impl Into<String>, label: impl Into<String>) -> Choice {
        Choice { value: value.into(), label: label.into() }
    }
}

/// One field of a connect form.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Field {
    /// The settings key, stable across versions (`imap_host`).
    pub key: &'static str,
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
    pub default: Option<Value>,
    pub choices: Vec<Choice>,
    pub help: Option<String>,
}

impl Field {
    pub fn new(key: &'static str, label: impl Into<String>, kind: FieldKind) -> Field {
        Field { key, label: label.into(), kind, required: false, default: None, choices: Vec::new(), help: None }
    }

    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    pub fn default_value(mut self, value: impl Into<Value>) -> Field {
        self.default = Some(value.into());
        self
    }

    pub fn choices(mut self, choices: impl IntoIterator<Item = Choice>) -> Field {
        self.choices = choices.into_iter().collect();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Field {
        self.help = Some(help.into());
        self
    }
}

/// What a connector is, and the form that connects an account with it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Descriptor {
    /// Stable id, stored with every mailbox (`imap-smtp`, `gmail`). Lower case, digits, `-`.
    pub kind: &'static str,
    pub display_name: String,
    pub auth: AuthMethod,
    pub capabilities: Capabilities,
    pub fields: Vec<Field>,
    /// What the user needs to know before connecting, shown above the form ("iCloud needs an
    /// app-specific password: …").
    pub help: Option<String>,
}

impl Descriptor {
    /// Checks `settings` against the fields: unknown keys, required fields, types, ports,
    /// choices. Returns the settings with defaults filled in and numbers normalised.
    pub fn validate(&self, settings: &Settings) -> Result<Settings, FieldError> {
        if let Some(key) = settings.keys().find(|k| !self.fields.iter().any(|f| f.key == k.as_str())) {
            return Err(FieldError::new(key.clone(), "is not a setting of this connector"));
        }
        let mut out = Settings::new();
        for field in &self.fields {
            let value = match settings.get(field.key) {
                Some(Value::Null) | None => field.default.clone(),
                Some(Value::String(s)) if s.trim().is_empty() => field.default.clone(),
                Some(v) => Some(v.clone()),
            };
            let Some(value) = value else {
                if field.required {
                    return Err(FieldError::new(field.key, "is required"));
                }
                continue;
            };
            out.insert(field.key.to_owned(), check(field, value)?);
        }
        Ok(out)
    }

    /// The field with this key.
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }
}

fn check(field: &Field, value: Value) -> Result<Value, FieldError> {
    let bad = |why: &str| FieldError::new(field.key, why);
    match field.kind {
        FieldKind::Port | FieldKind::Number => {
            let n = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| bad("must be a whole number"))?;
            if field.kind == FieldKind::Port && !(1..=65535).contains(&n) {
                return Err(bad("must be a port between 1 and 65535"));
            }
            Ok(Value::from(n))
        }
        FieldKind::Checkbox => match value {
            Value::Bool(b) => Ok(Value::Bool(b)),
            Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            _ => Err(bad("must be true or false")),
        },
        FieldKind::Select => {
            let s = value.as_str().ok_or_else(|| bad("must be one of the choices"))?;
            if field.choices.iter().any(|c| c.value == s) {
                Ok(value)
            } else {
                let names: Vec<&str> = field.choices.iter().map(|c| c.value.as_str()).collect();
                Err(bad(&format!("must be one of {}", names.join(", "))))
            }
        }
        FieldKind::Host => {
            let s = value.as_str().ok_or_else(|| bad("must be a host name"))?.trim().to_ascii_lowercase();
            let valid = s.len() <= 253
                && !s.is_empty()
                && s.split('.')
                    .all(|label| !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            let ip = s.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok();
            if valid || ip { Ok(Value::String(s)) } else { Err(bad("must be a host name or IP address")) }
        }
        FieldKind::Email => {
            let s = value.as_str().ok_or_else(|| bad("must be an email address"))?.trim();
            match s.split_once('@') {
                Some((local, domain)) if !local.is_empty() && domain.contains('.') || domain == "localhost" => {
                    Ok(Value::String(s.to_owned()))
                }
                _ => Err(bad("must be an email address")),
            }
        }
        FieldKind::Date => {
            let s = value.as_str().ok_or_else(|| bad("must be a date (YYYY-MM-DD)"))?;
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad("must be a date (YYYY-MM-DD)"))?;
            Ok(value)
        }
        FieldKind::Text => match value {
            Value::String(s) if s.len() <= 1000 => Ok(Value::String(s)),
            Value::String(_) => Err(bad("is too long (at most 1000 characters)")),
            _ => Err(bad("must be text")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Descriptor {
        Descriptor {
            kind: "demo",
            display_name: "Demo".into(),
            auth: AuthMethod::Password,
            capabilities: Capabilities::default(),
            fields: vec![
                Field::new("host", "Server", FieldKind::Host).required(),
                Field::new("port", "Port", FieldKind::Port).default_value(993),
                Field::new("tls", "Security", FieldKind::Select)
                    .choices([Choice::new("ssl_tls", "SSL/TLS"), Choice::new("none", "None")])
                    .default_value("ssl_tls"),
            ],
            help: None,
        }
    }

    fn settings(v: Value) -> Settings {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn defaults_are_filled_in_and_ports_normalised() {
        let out = form().validate(&settings(serde_json::json!({"host": "Mail.Example.COM", "port": "143"}))).unwrap();
        assert_eq!(out["host"], "mail.example.com");
        assert_eq!(out["port"], 143);
        assert_eq!(out["tls"], "ssl_tls");
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases = [
            (serde_json::json!({}), "host"),
            (serde_json::json!({"host": "a b"}), "host"),
            (serde_json::json!({"host": "x.org", "port": 70000}), "port"),
            (serde_json::json!({"host": "x.org", "tls": "tls9"}), "tls"),
            (serde_json::json!({"host": "x.org", "colour": "red"}), "colour"),
        ];
        for (input, field) in cases {
            assert_eq!(form().validate(&settings(input.clone())).unwrap_err().field, field, "{input}");
        }
    }
}
