//! The last word on a response's `errors`: every error has a `code`; several refused fields
//! of one input are spread into an error each (`Error::Fields`); an error with a `reason` is
//! worded in the caller's language; a refusal with no place in the document carries no
//! `locations`.

use async_graphql::{Response, ServerError, Value};

use crate::i18n;

/// Tidies `response.errors` for a caller who reads `language` (a supported tag), if known.
pub fn tidy(response: &mut Response, language: Option<&str>) {
    let errors = std::mem::take(&mut response.errors);
    for error in errors {
        for mut one in spread(error) {
            let extensions = one.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", "BAD_USER_INPUT");
            }
            if let Some(language) = language {
                localise(&mut one, language);
            }
            // async-graphql places an error raised outside the document at 0:0.
            one.locations.retain(|p| p.line != 0);
            response.errors.push(one);
        }
    }
}

/// An `Error::Fields` error as one error per field, each at the same path and locations.
fn spread(mut error: ServerError) -> Vec<ServerError> {
    let Some(Value::List(each)) = error.extensions.as_mut().and_then(|e| remove(e, "fieldErrors")) else { return vec![error] };
    each.into_iter()
        .filter_map(|entry| {
            let Value::Object(mut fields) = entry else { return None };
            let message = match fields.shift_remove("message") {
                Some(Value::String(m)) => m,
                _ => error.message.clone(),
            };
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            for (k, v) in fields {
                extensions.set(k.as_str(), v);
            }
            Some(ServerError {
                message,
                source: None,
                locations: error.locations.clone(),
                path: error.path.clone(),
                extensions: Some(extensions),
            })
        })
        .collect()
}

fn remove(extensions: &mut async_graphql::ErrorExtensionValues, key: &str) -> Option<Value> {
    let value = extensions.get(key).cloned()?;
    extensions.unset(key);
    Some(value)
}

/// Rewords an error that has a `reason` in `language`.
fn localise(error: &mut ServerError, language: &str) {
    let Some(extensions) = &error.extensions else { return };
    let Some(Value::String(reason)) = extensions.get("reason") else { return };
    if reason == "INVALID" {
        // A free-text refusal: its message is only in English.
        return;
    }
    let params: Vec<(&'static str, String)> = match extensions.get("params") {
        Some(Value::Object(p)) => p
            .iter()
            .filter_map(|(k, v)| {
                let name: &'static str = match k.as_str() {
                    "max" => "max",
                    _ => return None,
                };
                Some((name, value_text(v)))
            })
            .collect(),
        _ => Vec::new(),
    };
    let args: Vec<(&'static str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let id = format!("error-{}", reason.to_ascii_lowercase().replace('_', "-"));
    error.message = i18n::text(language, &id, &args);
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
