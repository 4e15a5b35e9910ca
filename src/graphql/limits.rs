//! Abuse limits checked before execution (aliases and the selections a document expands to
//! after parsing, before validation spends anything on it; depth and complexity after
//! validation), each refused with BAD_USER_INPUT and `extensions.limit` naming the limit.
//! Who may introspect is decided here too (`CONCIERGE_INTROSPECTION`), and the errors of a
//! caller who may not lose their "Did you mean" suggestions. Every error message's echo of
//! the client's input is capped ([`cap_echoes`]).
//! The same extension records per-operation metrics and names the operation on the request's
//! log span, and gives every error without a code the code BAD_USER_INPUT (parse and
//! validation errors are the client's). It also checks the one validation rule async-graphql
//! leaves out: a subscription selects a single root field.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest, NextResolve, NextSubscribe,
    NextValidation, ResolveInfo,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, Pos, Request, Response, ServerError, ServerResult, ValidationResult, Variables};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use super::context::{Reader, RequestAuth};
use crate::config::{Config, Introspection};
use crate::services::Services;
use crate::telemetry::operation_label;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    /// Selections a document may expand to ([`selection_cost`]), without and with an account.
    pub max_selections_anonymous: usize,
    pub max_selections: usize,
    pub introspection: Introspection,
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
                max_selections_anonymous: config.max_selections_anonymous,
                max_selections: config.max_selections.max(config.max_selections_anonymous),
                introspection: config.introspection,
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
            schema_hidden: Arc::default(),
            non_null_root_failed: AtomicBool::new(false),
            reader: Mutex::new(None),
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
    /// Set when this caller may not introspect: `__schema` and `__type` are refused, and
    /// suggestions are taken out of error messages.
    schema_hidden: Arc<AtomicBool>,
    /// A root field whose type is non-null failed: by the specification ("Handling Field
    /// Errors") the error propagates to the root, and `data` is null.
    non_null_root_failed: AtomicBool,
    /// The language the caller reads, for error messages: from `Accept-Language` when the
    /// request is prepared, then the signed-in user's once a root field has looked them up.
    reader: Mutex<Option<Reader>>,
}

/// Who is asking: over HTTP in the request's data, over WebSocket in the connection's.
fn request_auth<'a>(ctx: &ExtensionContext<'a>, request: &'a Request) -> Option<&'a RequestAuth> {
    request.data.get(&TypeId::of::<RequestAuth>()).and_then(|d| d.downcast_ref::<RequestAuth>()).or_else(|| ctx.data_opt::<RequestAuth>())
}

/// Whether the request's caller is signed in (a session, a personal or a service token).
/// The answer is kept in the request's `RequestAuth`, so resolvers do not look again.
async fn signed_in(ctx: &ExtensionContext<'_>, auth: Option<&RequestAuth>) -> bool {
    let (Some(auth), Some(services)) = (auth, ctx.data_opt::<std::sync::Arc<Services>>()) else { return false };
    matches!(auth.principal(services).await, Ok(Some(_)))
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
        if self.non_null_root_failed.load(Ordering::Relaxed) {
            response.data = async_graphql::Value::Null;
        }
        // Negotiated only when there is something to word.
        let language =
            if response.errors.is_empty() { None } else { self.reader.lock().ok().and_then(|r| r.as_ref().and_then(Reader::language)) };
        tidy_errors(&mut response, self.schema_hidden.load(Ordering::Relaxed), language.as_deref());
        let operation = operation_label(self.operation.lock().ok().and_then(|o| o.clone()).as_deref());
        let outcome = if response.errors.is_empty() {
            "ok"
        } else if response.data == async_graphql::Value::Null {
            "rejected"
        } else {
            "partial"
        };
        metrics::counter!("concierge_graphql_requests_total", "operation" => operation.clone(), "outcome" => outcome).increment(1);
        metrics::histogram!("concierge_graphql_request_duration_seconds", "operation" => operation).record(started.elapsed().as_secs_f64());
        response
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<async_graphql::Value>> {
        let root_non_null = info.path_node.parent.is_none() && info.return_type.ends_with('!');
        let root = info.path_node.parent.is_none();
        let resolved = next.run(ctx, info).await;
        if root_non_null && resolved.is_err() {
            self.non_null_root_failed.store(true, Ordering::Relaxed);
        }
        if root && resolved.is_err() {
            // The user, if this request looked them up, is known by now.
            if let Some(reader) = ctx.data_opt::<RequestAuth>().and_then(RequestAuth::reader)
                && let Ok(mut slot) = self.reader.lock()
            {
                *slot = Some(reader);
            }
        }
        resolved
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // The flag is set once the stream has started (the request is prepared inside it).
        let hidden = self.schema_hidden.clone();
        next.run(ctx, stream)
            .map(move |mut response| {
                tidy_errors(&mut response, hidden.load(Ordering::Relaxed), None);
                response
            })
            .boxed()
    }

    async fn prepare_request(&self, ctx: &ExtensionContext<'_>, request: Request, next: NextPrepareRequest<'_>) -> ServerResult<Request> {
        let allowed = match self.limits.introspection {
            Introspection::On => true,
            Introspection::Off => false,
            Introspection::Authenticated => signed_in(ctx, request_auth(ctx, &request)).await,
        };
        self.schema_hidden.store(!allowed, Ordering::Relaxed);
        if let Some(reader) = request_auth(ctx, &request).and_then(RequestAuth::reader)
            && let Ok(mut slot) = self.reader.lock()
        {
            *slot = Some(reader);
        }
        let mut request = if allowed { request } else { request.disable_introspection() };
        // The document's size is checked here, on a document parsed once and handed on:
        // async-graphql's own checks between parsing and validation (recursion depth, directives
        // per field) already walk every fragment spread expanded, so a fragment bomb must be
        // refused before them.
        let cost = {
            let cached = self.documents.get(&request.query);
            let doc = match &cached {
                Some(hit) => Some(&hit.doc),
                // A syntax error is left to async-graphql, which reports it as usual.
                None => request.parsed_query().ok(),
            };
            doc.map(|doc| self.size_of(doc)).transpose()?
        };
        if let Some(cost) = cost {
            self.check_selections(ctx, &request, cost).await?;
        }
        next.run(ctx, request).await
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
        if self.schema_hidden.load(Ordering::Relaxed)
            && let Some(at) = introspection_root(&doc)
        {
            let error = match self.limits.introspection {
                Introspection::Authenticated => crate::error::Error::Unauthenticated,
                _ => crate::error::Error::forbidden("introspection is off"),
            };
            return Err(async_graphql::Error::from(error).into_server_error(at));
        }
        if let Some(second) = second_subscription_root(&doc) {
            return Err(async_graphql::Error::new("a subscription selects exactly one root field")
                .extend_with(|_, e| e.set("code", "BAD_USER_INPUT"))
                .into_server_error(second));
        }
        Ok(doc)
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
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

/// Every error gets a code (BAD_USER_INPUT when it has none: parse and validation errors are
/// the client's), loses its suggestions when the caller may not introspect, and its echo of
/// the input is capped.
fn tidy_errors(response: &mut Response, schema_hidden: bool, language: Option<&str>) {
    super::errors::tidy(response, language);
    for error in &mut response.errors {
        if schema_hidden && let Some(at) = error.message.find(" Did you mean") {
            // A suggestion names fields of the schema this caller may not introspect.
            error.message.truncate(at);
        }
        if let Cow::Owned(capped) = cap_echoes(&error.message) {
            error.message = capped;
        }
    }
}

impl PerRequest {
    /// The document's aliases (refused past their limit) and the selections it expands to;
    /// a document whose fragments spread themselves is refused.
    fn size_of(&self, doc: &ExecutableDocument) -> ServerResult<u64> {
        let aliases = count_aliases(doc);
        if aliases > self.limits.max_aliases {
            return Err(limit_error(
                "aliases",
                format!("the query has {aliases} aliases; at most {} are allowed", self.limits.max_aliases),
            ));
        }
        selection_cost(doc).map_err(|FragmentCycle { fragment, pos }| {
            async_graphql::Error::new(format!("fragment {} spreads itself", excerpt(&fragment)))
                .extend_with(|_, e| e.set("code", "BAD_USER_INPUT"))
                .into_server_error(pos)
        })
    }

    /// Refuses a document that would expand to more selections than the caller's budget,
    /// before validation expands anything.
    async fn check_selections(&self, ctx: &ExtensionContext<'_>, request: &Request, cost: u64) -> ServerResult<()> {
        let (anonymous, signed) = (self.limits.max_selections_anonymous as u64, self.limits.max_selections as u64);
        if cost <= anonymous {
            return Ok(());
        }
        // Only a document over the anonymous budget costs a look at who is asking.
        let allowed = if cost > signed || signed_in(ctx, request_auth(ctx, request)).await { signed } else { anonymous };
        if cost <= allowed {
            return Ok(());
        }
        let whom = if allowed < signed { " without signing in" } else { "" };
        Err(limit_error(
            "selections",
            format!("the document expands to more than {allowed} fields and fragment spreads, the most allowed{whom}"),
        ))
    }
}

/// A fragment that spreads itself, directly or through others.
#[derive(Debug, PartialEq)]
pub struct FragmentCycle {
    pub fragment: String,
    pub pos: Pos,
}

/// How many fields, inline fragments and fragment spreads the document expands to, counting
/// each spread with everything its fragment expands to: what validation would walk. Every
/// operation and every fragment definition counts (validation visits both). Each fragment is
/// costed once and remembered, so this is linear in the document's size however the
/// fragments nest (a fragment spreading the previous one twice, 30 deep, is 2^30 here in
/// microseconds). A spread of an unknown fragment costs 1 (validation refuses it).
pub fn selection_cost(doc: &ExecutableDocument) -> Result<u64, FragmentCycle> {
    /// A selection set's own fields and inline fragments, and the fragments it spreads.
    fn direct<'a>(set: &'a SelectionSet, spreads: &mut Vec<(&'a str, Pos)>) -> u64 {
        set.items.iter().fold(0u64, |sum, item| {
            let own = match &item.node {
                Selection::Field(f) => 1 + direct(&f.node.selection_set.node, spreads),
                Selection::InlineFragment(i) => 1 + direct(&i.node.selection_set.node, spreads),
                Selection::FragmentSpread(spread) => {
                    spreads.push((spread.node.fragment_name.node.as_str(), spread.pos));
                    1
                }
            };
            sum.saturating_add(own)
        })
    }
    struct Fragment<'a> {
        own: u64,
        spreads: Vec<(&'a str, Pos)>,
    }
    let fragments: HashMap<&str, Fragment<'_>> = doc
        .fragments
        .iter()
        .map(|(name, f)| {
            let mut spreads = Vec::new();
            let own = direct(&f.node.selection_set.node, &mut spreads);
            (name.as_str(), Fragment { own, spreads })
        })
        .collect();
    // Each fragment's full cost, computed depth-first without recursion (a chain of fragments
    // may be as long as the document allows); `None` marks one being computed, so meeting it
    // again is a cycle.
    let mut cost: HashMap<&str, Option<u64>> = HashMap::with_capacity(fragments.len());
    for start in fragments.keys() {
        if cost.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        cost.insert(start, None);
        while let Some(&mut (name, ref mut next)) = stack.last_mut() {
            let fragment = &fragments[name];
            if let Some(&(spread, pos)) = fragment.spreads.get(*next) {
                *next += 1;
                match (fragments.contains_key(spread), cost.get(spread)) {
                    (false, _) | (true, Some(Some(_))) => {}
                    (true, Some(None)) => return Err(FragmentCycle { fragment: spread.to_owned(), pos }),
                    (true, None) => {
                        cost.insert(spread, None);
                        stack.push((spread, 0));
                    }
                }
                continue;
            }
            let total = fragment
                .spreads
                .iter()
                .map(|(spread, _)| cost.get(spread).copied().flatten().unwrap_or(0))
                .fold(fragment.own, u64::saturating_add);
            cost.insert(name, Some(total));
            stack.pop();
        }
    }
    let spread_cost =
        |spreads: &[(&str, Pos)]| spreads.iter().map(|(s, _)| cost.get(s).copied().flatten().unwrap_or(0)).fold(0, u64::saturating_add);
    let operations = doc.operations.iter().map(|(_, op)| {
        let mut spreads = Vec::new();
        direct(&op.node.selection_set.node, &mut spreads).saturating_add(spread_cost(&spreads))
    });
    let definitions = cost.values().map(|c| c.unwrap_or(0));
    Ok(operations.chain(definitions).fold(0, u64::saturating_add))
}

/// Where a query selects `__schema` or `__type` at its root, if it does (through fragments too).
fn introspection_root(doc: &ExecutableDocument) -> Option<Pos> {
    fn find<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, seen: &mut Vec<&'a str>) -> Option<Pos> {
        set.items.iter().find_map(|item| match &item.node {
            Selection::Field(f) => matches!(f.node.name.node.as_str(), "__schema" | "__type").then_some(f.pos),
            Selection::InlineFragment(i) => find(doc, &i.node.selection_set.node, seen),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if seen.contains(&name) {
                    return None;
                }
                seen.push(name);
                doc.fragments.get(&spread.node.fragment_name.node).and_then(|f| find(doc, &f.node.selection_set.node, seen))
            }
        })
    }
    doc.operations
        .iter()
        .filter(|(_, op)| op.node.ty == OperationType::Query)
        .find_map(|(_, op)| find(doc, &op.node.selection_set.node, &mut Vec::new()))
}

/// Longest excerpt of the client's input an error message repeats.
pub const MAX_ECHO_CHARS: usize = 64;
/// Longest error message, whatever it quotes.
const MAX_MESSAGE_CHARS: usize = 512;

/// At most [`MAX_ECHO_CHARS`] of `input`, with "…" when cut.
pub fn excerpt(input: &str) -> Cow<'_, str> {
    match input.char_indices().nth(MAX_ECHO_CHARS) {
        None => Cow::Borrowed(input),
        Some((at, _)) => Cow::Owned(format!("{}…", &input[..at])),
    }
}

/// An error message with every quoted part (async-graphql quotes the values, names and
/// query text it complains about) cut to an excerpt, and the whole to [`MAX_MESSAGE_CHARS`]:
/// a 200 KB argument is not sent back. The one place messages are capped, for every error
/// of every request (HTTP, batch or WebSocket).
pub fn cap_echoes(message: &str) -> Cow<'_, str> {
    if message.chars().nth(MAX_ECHO_CHARS).is_none() {
        return Cow::Borrowed(message);
    }
    let capped: String = message
        .split('"')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { excerpt(part) } else { Cow::Borrowed(part) })
        .collect::<Vec<_>>()
        .join("\"");
    let capped = match capped.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &capped[..at]),
        None => capped,
    };
    if capped == message { Cow::Borrowed(message) } else { Cow::Owned(capped) }
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
        let doc =
            async_graphql::parser::parse_query("query Q { a: me { id } b: me { x: id ...F } } fragment F on User { y: email z: email }")
                .unwrap();
        assert_eq!(count_aliases(&doc), 5);
    }

    fn cost(query: &str) -> Result<u64, FragmentCycle> {
        selection_cost(&async_graphql::parser::parse_query(query).unwrap())
    }

    fn bomb(depth: usize, leaf: &str) -> String {
        let mut doc = format!("query {{ ...F{depth} }} fragment F0 on Query {{ {leaf} }}");
        for i in 1..=depth {
            doc.push_str(&format!(" fragment F{i} on Query {{ ...F{} ...F{} }}", i - 1, i - 1));
        }
        doc
    }

    #[test]
    fn selections_are_counted_through_fragments_without_expanding_them() {
        assert_eq!(cost("{ me { id email } }"), Ok(3));
        // The operation: me, its spread, and F's two fields; F's definition: its two fields.
        assert_eq!(cost("{ me { ...F } } fragment F on User { id email }"), Ok(4 + 2));
        assert_eq!(cost("{ ... on Query { me { id } } }"), Ok(3));
        // 2^30 leaves and as many spreads, counted in a blink.
        assert!(cost(&bomb(30, "__typename")).unwrap() > 1 << 31);
        assert_eq!(cost(&bomb(200, "__typename")), Ok(u64::MAX), "saturates, never overflows");
    }

    #[test]
    fn fragment_cycles_are_found() {
        assert_eq!(cost("{ ...A } fragment A on Query { ...A }").unwrap_err().fragment, "A");
        let cycle = cost("{ ...A } fragment A on Query { me { ...B } } fragment B on User { id ...C } fragment C on User { ...B }");
        assert!(["B", "C"].contains(&cycle.unwrap_err().fragment.as_str()), "either end of the loop");
        assert!(cost("{ ...A ...B } fragment A on Query { ...B } fragment B on Query { me { id } }").is_ok(), "a diamond is no cycle");
    }

    #[test]
    fn long_quoted_input_is_cut_in_messages() {
        let long = "x".repeat(20_000);
        let message = format!("Invalid value for argument \"email\", \"{long}\" is not a valid email");
        let capped = cap_echoes(&message);
        assert!(capped.chars().count() < 200, "{capped}");
        assert!(capped.starts_with("Invalid value for argument \"email\", \"xxx") && capped.contains("…\" is not"));
        assert_eq!(cap_echoes("short \"one\""), "short \"one\"");
        assert!(cap_echoes(&format!("unquoted {long}")).chars().count() <= MAX_MESSAGE_CHARS + 1);
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
