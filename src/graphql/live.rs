//! Live subscriptions that cost little while idle.
//!
//! Every subscription field here is fed by one fan-out [`Topic`]. Kept as async-graphql runs
//! it, an idle subscription holds the operation's whole execution state: about 7 KiB, sized
//! for the busiest moment of its life, most of it never used between events. Over WebSocket,
//! [`LiveExecutor`] runs a subscription differently:
//!
//! 1. It runs the operation once with a *plan* slot in the request's data. The field's resolver
//!    does what it always does (checks the viewer, its arguments, that the contact or mailbox
//!    is theirs) and, through [`feed`], leaves its topic listener and a filter in the slot
//!    instead of returning a long-running stream.
//! 2. While idle, the subscription is that listener, the filter, and the request's text.
//! 3. For each change the filter accepts, it runs the operation again with the change in the
//!    request's data. The resolver checks again (so a user who lost access is told and stops
//!    hearing; a failure of the store is told too, but the subscription goes on) and
//!    [`feed`] turns the change into the item, which is then executed against the client's
//!    selection set as usual. This is how the GraphQL specification describes a subscription
//!    event: execute the selection set with the event as its source.
//!
//! A resolver never sees which of these is happening: it calls [`feed`]. Outside the
//! WebSocket executor (a test calling `execute_stream`), [`feed`] returns an ordinary stream.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use async_graphql::{Context, Data, Executor, Request, Response, Variables};
use futures_util::stream::{self, BoxStream};
use futures_util::{Stream, StreamExt as _, future};

use super::ConciergeSchema;
use super::context::ContextExt as _;
use crate::error::Result;
use crate::fanout::{Change, Lagged, Topic, TopicStream};

/// What an execution of a subscription field is for, put in the request's data by
/// [`LiveExecutor`].
enum Live {
    /// Set-up: leave the field's listener in the slot and yield nothing.
    Plan(Arc<Mutex<Vec<Plan>>>),
    /// One change the field's listener heard.
    Event(Arc<LiveEvent>),
}

/// A subscription field's listener, waiting for its next change.
struct Plan {
    changes: TopicStream,
    /// Whether a change is for this field: only those (and lags) run the operation again.
    accepts: Box<dyn Fn(&Change) -> bool + Send + Sync>,
    /// What the field keeps from one change to the next.
    state: Arc<dyn Any + Send + Sync>,
}

struct LiveEvent {
    change: Result<Change, Lagged>,
    state: Arc<dyn Any + Send + Sync>,
    /// Set when the field's resolver got as far as [`feed`]: its checks passed.
    reached: AtomicBool,
}

/// The stream a subscription field returns: the items `item` makes of the changes on `topic`
/// that `accepts` (a lag is always passed on, as `Err`; `item` decides what the client hears
/// of it). `state` is kept for the subscription's life and handed to every call of `item`.
pub fn feed<T, S, A, F, Fut>(
    ctx: &Context<'_>,
    topic: Topic,
    state: S,
    accepts: A,
    item: F,
) -> Result<BoxStream<'static, async_graphql::Result<T>>>
where
    T: Send + 'static,
    S: Send + Sync + 'static,
    A: Fn(&Change) -> bool + Send + Sync + 'static,
    F: Fn(Arc<S>, Result<Change, Lagged>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<async_graphql::Result<T>>> + Send + 'static,
{
    match ctx.data_opt::<Live>() {
        Some(Live::Plan(slot)) => {
            let changes = ctx.services()?.fanout.subscribe(topic);
            let plan = Plan { changes, accepts: Box::new(accepts), state: Arc::new(state) };
            slot.lock().unwrap_or_else(|e| e.into_inner()).push(plan);
            Ok(stream::empty().boxed())
        }
        // `LiveExecutor` runs the operation only for changes the plan's `accepts` took.
        Some(Live::Event(event)) => {
            event.reached.store(true, Ordering::Release);
            match event.state.clone().downcast::<S>() {
                Ok(state) => Ok(stream::once(item(state, event.change.clone())).filter_map(future::ready).boxed()),
                Err(_) => Ok(stream::empty().boxed()),
            }
        }
        None => {
            let state = Arc::new(state);
            let changes = ctx.services()?.fanout.subscribe(topic);
            Ok(changes
                .filter(move |c| future::ready(c.as_ref().map_or(true, &accepts)))
                // Boxed: `then` keeps room for its future even while idle.
                .then(move |c| Box::pin(item(state.clone(), c)))
                .filter_map(future::ready)
                .boxed())
        }
    }
}

/// The schema as the WebSocket protocol runs it: queries and mutations as usual,
/// subscriptions as described in the module's documentation.
#[derive(Clone)]
pub struct LiveExecutor(pub ConciergeSchema);

impl Executor for LiveExecutor {
    async fn execute(&self, request: Request) -> Response {
        self.0.execute(request).await
    }

    fn execute_stream(&self, request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let session = session_data.unwrap_or_default();
        let text = RequestText {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
        };
        let slot = Arc::<Mutex<Vec<Plan>>>::default();
        let setup = self.0.execute_stream_with_session_data(request.data(Live::Plan(slot.clone())), session.clone());
        Box::pin(LiveStream { schema: self.0.clone(), session, text, phase: Phase::SettingUp(setup, slot) })
    }
}

/// What it takes to run the operation again.
struct RequestText {
    query: String,
    operation_name: Option<String>,
    variables: Variables,
}

impl RequestText {
    fn request(&self) -> Request {
        let mut request = Request::new(self.query.clone()).variables(self.variables.clone());
        request.operation_name = self.operation_name.clone();
        request
    }
}

struct LiveStream {
    schema: ConciergeSchema,
    session: Arc<Data>,
    text: RequestText,
    phase: Phase,
}

impl LiveStream {
    /// Runs the operation again, for one change or (with `None`) the ordinary way.
    fn run(&self, live: Option<Live>) -> BoxStream<'static, Response> {
        let request = self.text.request();
        let request = match live {
            Some(live) => request.data(live),
            None => request,
        };
        self.schema.execute_stream_with_session_data(request, self.session.clone())
    }
}

enum Phase {
    /// The first run: its responses (errors, or a query's result) go to the client.
    SettingUp(BoxStream<'static, Response>, Arc<Mutex<Vec<Plan>>>),
    /// Waiting for the next change.
    Idle(Plan),
    /// Running the operation for one change; `internal` once it answered with an INTERNAL
    /// error (the store failing, say), which is no reason to stop listening.
    Running {
        plan: Plan,
        event: Arc<LiveEvent>,
        run: BoxStream<'static, Response>,
        internal: bool,
    },
    /// Several fields in one subscription, which the limits extension refuses before they get
    /// here: should one get through, async-graphql runs it the ordinary way.
    Ordinary(BoxStream<'static, Response>),
    Done,
}

impl Stream for LiveStream {
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Response>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.phase, Phase::Done) {
                Phase::Done => return Poll::Ready(None),
                Phase::Ordinary(mut run) => {
                    let polled = run.poll_next_unpin(cx);
                    if !matches!(polled, Poll::Ready(None)) {
                        this.phase = Phase::Ordinary(run);
                    }
                    return polled;
                }
                Phase::SettingUp(mut run, slot) => match run.poll_next_unpin(cx) {
                    Poll::Ready(None) => {
                        let mut plans = std::mem::take(&mut *slot.lock().unwrap_or_else(|e| e.into_inner()));
                        this.phase = match plans.len() {
                            0 => Phase::Done,
                            1 => Phase::Idle(plans.remove(0)),
                            _ => Phase::Ordinary(this.run(None)),
                        };
                    }
                    other => {
                        this.phase = Phase::SettingUp(run, slot);
                        return other;
                    }
                },
                Phase::Idle(mut plan) => match plan.changes.poll_next_unpin(cx) {
                    Poll::Pending => {
                        this.phase = Phase::Idle(plan);
                        return Poll::Pending;
                    }
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Ready(Some(change)) => {
                        if change.as_ref().is_ok_and(|c| !(plan.accepts)(c)) {
                            this.phase = Phase::Idle(plan);
                            continue;
                        }
                        let event = Arc::new(LiveEvent { change, state: plan.state.clone(), reached: AtomicBool::new(false) });
                        let run = this.run(Some(Live::Event(event.clone())));
                        this.phase = Phase::Running { plan, event, run, internal: false };
                    }
                },
                Phase::Running { plan, event, mut run, internal } => match run.poll_next_unpin(cx) {
                    Poll::Ready(None) => {
                        // The resolver's checks refused (it never reached `feed`): the viewer
                        // lost access, the client had the error, and the subscription ends.
                        // A failure of ours is told too, but the subscription goes on.
                        if event.reached.load(Ordering::Acquire) || internal {
                            this.phase = Phase::Idle(plan);
                        }
                    }
                    Poll::Ready(Some(response)) => {
                        let internal = internal || response.errors.iter().any(is_internal);
                        this.phase = Phase::Running { plan, event, run, internal };
                        return Poll::Ready(Some(response));
                    }
                    Poll::Pending => {
                        this.phase = Phase::Running { plan, event, run, internal };
                        return Poll::Pending;
                    }
                },
            }
        }
    }
}

fn is_internal(error: &async_graphql::ServerError) -> bool {
    error.extensions.as_ref().and_then(|e| e.get("code")) == Some(&async_graphql::Value::from("INTERNAL"))
}

/// The error item a subscriber gets when it fell behind: `LAGGED`, with how many `what` it
/// missed and what to reload.
pub fn lagged(Lagged(missed): Lagged, what: &str, reload: &str) -> async_graphql::Error {
    use async_graphql::ErrorExtensions as _;
    async_graphql::Error::new(format!("fell behind and missed {missed} {what}; {reload}")).extend_with(|_, e| {
        e.set("code", "LAGGED");
        e.set("missed", missed);
    })
}
