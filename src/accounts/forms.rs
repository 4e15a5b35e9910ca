//! Connect forms, as GraphQL shows them: mail and calendar connectors describe their forms
//! the same way (the connector SDK's `Descriptor`).

use async_graphql::{Json, SimpleObject};
use concierge_connector_sdk::{AuthMethod, FieldKind};

#[derive(Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum MailAuthMethod {
    /// The user types the mailbox's password (or an app password) into the form.
    Password,
    /// The user signs in at the provider.
    #[graphql(name = "OAUTH2")]
    Oauth2,
}

impl From<AuthMethod> for MailAuthMethod {
    fn from(auth: AuthMethod) -> Self {
        match auth {
            AuthMethod::Password => MailAuthMethod::Password,
            AuthMethod::OAuth2 => MailAuthMethod::Oauth2,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum ConnectorFieldType {
    Text,
    Host,
    Port,
    Number,
    Email,
    Select,
    Checkbox,
    Date,
}

#[derive(SimpleObject)]
pub struct ConnectorFieldChoice {
    /// What to send in `settings`.
    value: String,
    label: String,
}

/// One field of a connector's connect form; its value goes in `settings[key]`.
#[derive(SimpleObject)]
pub struct ConnectorField {
    key: String,
    label: String,
    #[graphql(name = "type")]
    kind: ConnectorFieldType,
    required: bool,
    /// Used when the field is left out.
    default: Option<Json<serde_json::Value>>,
    choices: Vec<ConnectorFieldChoice>,
    help: Option<String>,
}

/// A connector's connect form, as GraphQL shows it (mail and calendar connectors alike).
pub fn form_fields(descriptor: &concierge_connector_sdk::Descriptor) -> Vec<ConnectorField> {
    descriptor
        .fields
        .iter()
        .map(|f| ConnectorField {
            key: f.key.to_owned(),
            label: f.label.clone(),
            kind: match f.kind {
                FieldKind::Text => ConnectorFieldType::Text,
                FieldKind::Host => ConnectorFieldType::Host,
                FieldKind::Port => ConnectorFieldType::Port,
                FieldKind::Number => ConnectorFieldType::Number,
                FieldKind::Email => ConnectorFieldType::Email,
                FieldKind::Select => ConnectorFieldType::Select,
                FieldKind::Checkbox => ConnectorFieldType::Checkbox,
                FieldKind::Date => ConnectorFieldType::Date,
            },
            required: f.required,
            default: f.default.clone().map(Json),
            choices: f.choices.iter().map(|c| ConnectorFieldChoice { value: c.value.clone(), label: c.label.clone() }).collect(),
            help: f.help.clone(),
        })
        .collect()
}
