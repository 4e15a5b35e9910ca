//! Abuse limits checked before execution (aliases after parsing; depth and complexity after
//! validation), each refused with BAD_USER_INPUT and `extensions.limit` naming the limit.
//! The same extension records per-operation metrics and names the operation on the request's
//! log span, and gives every error without a code the code BAD_USER_INPUT (parse and
//! validation errors are the client's). It also checks the one validation rule async-graphql
//! leaves out: a subscription selects a single root field.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, Pos, Response, ServerError, ServerResult, ValidationResult, Variables};

use crate::config::Config;
use crate::telemetry::operation_label;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
}

/// The extension factory: the limits, and the documents already parsed and checked.
pub struct QueryLimits {
    limits: Limits,
    documents: Arc<DocumentCache>,
}

impl QueryLimits {
    pub fn from_config(config: &Config) -> Self {
        QueryLimits {
            limits: Limits {
                max_depth: config.max_query_depth,
                max_complexity: config.max_query_complexity,
                max_aliases: config.max_query_aliases,
            },
            documents: Arc::default(),
        }
    }
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            limits: self.limits,
            documents: self.documents.clone(),
            operation: Mutex::new(None),
            cached: Mutex::new(None),
        })
    }
}

/// Clients send the same few query texts over and over; parsing and validating each one once
/// saves most of the per-request cost of GraphQL. Only small documents are kept, at most
/// `MAX_ENTRIES` of them, so the cache's memory stays bounded.
#[derive(Default)]
struct DocumentCache {
    entries: Mutex<HashMap<Arc<str>, CachedDocument>>,
}

#[derive(Clone)]
struct CachedDocument {
    doc: ExecutableDocument,
    /// Set once the document passed validation, if validation cannot depend on variables.
    validated: Option<ValidationResult>,
}

impl DocumentCache {
    const MAX_ENTRIES: usize = 512;
    const MAX_QUERY_BYTES: usize = 4096;

    fn get(&self, query: &str) -> Option<CachedDocument> {
        self.entries.lock().ok()?.get(query).cloned()
    }

    fn put(&self, query: Arc<str>, doc: ExecutableDocument) {
        if query.len() > Self::MAX_QUERY_BYTES {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(query, CachedDocument { doc, validated: None });
        }
    }

    fn validated(&self, query: &str, result: ValidationResult) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.get_mut(query)
        {
            entry.validated = Some(result);
        }
    }
}

struct PerRequest {
    limits: Limits,
    documents: Arc<DocumentCache>,
    /// The operation's name once parsed, for metrics.
    operation: Mutex<Option<String>>,
    /// The query text and what the cache knew of it, between parsing and validation.
    cached: Mutex<Option<(Arc<str>, Option<ValidationResult>)>>,
}

/// A refusal before execution.
pub fn limit_error(limit: &'static str, message: String) -> ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, e| {
            e.set("code", "BAD_USER_INPUT");
            e.set("limit", limit);
        })
        .into_server_error(async_graphql::Pos::default())
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let mut response = next.run(ctx).await;
        for error in &mut response.errors {
            let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
            if !has_code {
                error.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
            }
        }
        let operation = operation_label(self.operation.lock().ok().and_then(|o| o.clone()).as_deref());
        let outcome = if response.errors.is_empty() { "ok" } else if response.data == async_graphql::Value::Null { "rejected" } else { "partial" };
        metrics::counter!("concierge_graphql_requests_total", "operation" => operation.clone(), "outcome" => outcome).increment(1);
        metrics::histogram!("concierge_graphql_request_duration_seconds", "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let (doc, validated) = match self.documents.get(query) {
            Some(hit) => (hit.doc, hit.validated),
            None => {
                let doc = next.run(ctx, query, variables).await?;
                let key: Arc<str> = Arc::from(query);
                self.documents.put(key, doc.clone());
                (doc, None)
            }
        };
        if validation_is_reusable(&doc)
            && let Ok(mut cached) = self.cached.lock()
        {
            *cached = Some((Arc::from(query), validated));
        }
        if let Some(name) = single_operation_name(&doc) {
            tracing::Span::current().record("operation", name.as_str());
            if let Ok(mut op) = self.operation.lock() {
                *op = Some(name);
            }
        }
        let aliases = count_aliases(&doc);
        if aliases > self.limits.max_aliases {
            return Err(limit_error(
                "aliases",
                format!("the query has {aliases} aliases; at most {} are allowed", self.limits.max_aliases),
            ));
        }
        if let Some(second) = second_subscription_root(&doc) {
            return Err(async_graphql::Error::new("a subscription selects exactly one root field")
                .extend_with(|_, e| e.set("code", "BAD_USER_INPUT"))
                .into_server_error(second));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let cached = self.cached.lock().ok().and_then(|mut c| c.take());
        let result = match cached {
            // Validated before, and nothing in it depends on variables: same verdict now.
            Some((_, Some(result))) => result,
            Some((query, None)) => {
                let result = next.run(ctx).await?;
                self.documents.validated(&query, result);
                result
            }
            None => next.run(ctx).await?,
        };
        if result.depth > self.limits.max_depth {
            return Err(vec![limit_error(
                "depth",
                format!("the query is nested {} levels deep; at most {} are allowed", result.depth, self.limits.max_depth),
            )]);
        }
        if result.complexity > self.limits.max_complexity {
            return Err(vec![limit_error(
                "complexity",
                format!("the query's complexity is {}; at most {} is allowed", result.complexity, self.limits.max_complexity),
            )]);
        }
        Ok(result)
    }
}

/// Whether a validation verdict holds for every request with this text: one operation, and
/// no variables (their values can change argument checks and complexity).
fn validation_is_reusable(doc: &ExecutableDocument) -> bool {
    let mut operations = doc.operations.iter();
    matches!((operations.next(), operations.next()), (Some((_, op)), None) if op.node.variable_definitions.is_empty())
}

fn single_operation_name(doc: &ExecutableDocument) -> Option<String> {
    match &doc.operations {
        DocumentOperations::Single(_) => None,
        DocumentOperations::Multiple(ops) if ops.len() == 1 => ops.keys().next().map(|n| n.to_string()),
        DocumentOperations::Multiple(_) => None,
    }
}

/// Where a subscription selects a second root field, if one does. The GraphQL specification's
/// "single root field" rule: a subscription is one stream of one field's events.
/// async-graphql does not check it. Runs before validation, so fragment cycles are guarded.
fn second_subscription_root(doc: &ExecutableDocument) -> Option<Pos> {
    fn collect<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, seen: &mut Vec<&'a str>, keys: &mut Vec<&'a str>) -> Option<Pos> {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let key = f.node.response_key().node.as_str();
                    if !keys.contains(&key) {
                        keys.push(key);
                        if keys.len() > 1 {
                            return Some(f.pos);
                        }
                    }
                }
                Selection::InlineFragment(i) => {
                    if let Some(pos) = collect(doc, &i.node.selection_set.node, seen, keys) {
                        return Some(pos);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if seen.contains(&name) {
                        continue;
                    }
                    seen.push(name);
                    if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node)
                        && let Some(pos) = collect(doc, &fragment.node.selection_set.node, seen, keys)
                    {
                        return Some(pos);
                    }
                }
            }
        }
        None
    }
    doc.operations
        .iter()
        .filter(|(_, op)| op.node.ty == OperationType::Subscription)
        .find_map(|(_, op)| collect(doc, &op.node.selection_set.node, &mut Vec::new(), &mut Vec::new()))
}

/// Aliased fields in the document (each fragment counted once, where it is defined).
pub fn count_aliases(doc: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => usize::from(f.node.alias.is_some()) + walk(&f.node.selection_set.node),
                Selection::InlineFragment(i) => walk(&i.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    doc.operations.iter().map(|(_, op)| walk(&op.node.selection_set.node)).sum::<usize>()
        + doc.fragments.values().map(|f| walk(&f.node.selection_set.node)).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let doc = async_graphql::parser::parse_query(
            "query Q { a: me { id } b: me { x: id ...F } } fragment F on User { y: email z: email }",
        )
        .unwrap();
        assert_eq!(count_aliases(&doc), 5);
    }

    fn second_root(query: &str) -> Option<Pos> {
        second_subscription_root(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn a_subscription_selects_one_root_field() {
        assert_eq!(second_root("subscription { a { id } }"), None);
        // The same response key twice is one field.
        assert_eq!(second_root("subscription { a { id } a { name } }"), None);
        assert_eq!(second_root("subscription { ...F } fragment F on Subscription { a { id } }"), None);
        // Queries may select as many as they like.
        assert_eq!(second_root("query { a b c }"), None);

        assert_eq!(second_root("subscription { a { id } b { id } }"), Some(Pos { line: 1, column: 25 }));
        assert!(second_root("subscription { a { id } x: a { id } }").is_some(), "an alias is a second field");
        assert!(second_root("subscription { a ... on Subscription { b } }").is_some());
        assert!(second_root("subscription { a ...F } fragment F on Subscription { b }").is_some());
        // A fragment cycle (refused later by validation) does not loop here.
        assert_eq!(second_root("subscription { ...F } fragment F on Subscription { a ...F }"), None);
    }
}
