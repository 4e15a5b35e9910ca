//! `me.freeBusy` over 31 days for a user with 3 CalDAV calendars holding 2,000 events, a third
//! of them recurring. Measures the sync of those 2,000 events (`syncCalendarAccount`), then the
//! latency of `freeBusy` over a 31-day window, one query after another (p50, p95, p99, max,
//! queries/s) and with a few in flight (throughput), and the gateway's resident set after.
//!
//! The CalDAV server is a private Radicale (`scripts/calendar-lab`, stopped at the end); the
//! gateway is the release binary as a child process (SQLite in a temp dir). The events are
//! made here, deterministically (a fixed-seed LCG), over the 90 days around the measured month
//! (March 2027 in Europe/Berlin, which holds the change to summer time): two thirds single
//! events of 30–90 minutes in working hours (a few all day), one third recurring (weekly on two
//! days, unbounded; daily with COUNT; weekly with COUNT, an EXDATE and a moved instance; every
//! other week until the span's end). The account is connected and its 3 calendars made
//! conflict calendars while they are still empty, so the gateway's own first round (woken by
//! the connect) is over before the events arrive and `syncCalendarAccount` is the sync that
//! reads all 2,000, with nothing else syncing meanwhile.
//!
//! `BENCH_EVENTS` (default 2,000), `BENCH_QUERIES` (500) and `BENCH_IN_FLIGHT` (4) change the
//! run. Run with
//! `scripts/bench` or `cargo bench --bench free_busy` after `cargo build --release`; figures go
//! into BENCHMARKS.md. Exits non-zero when a query fails, the busy list is empty, or not every
//! event arrived.

#[path = "support/gateway.rs"]
mod gateway;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{Datelike as _, NaiveDate, NaiveDateTime, Weekday};
use futures_util::{StreamExt as _, stream};
use serde_json::{Value, json};

use gateway::Gateway;

const PASSWORD: &str = "Correct-Horse-9!battery";
const CALENDARS: [(&str, &str); 3] = [("work", "Work"), ("team", "Team"), ("personal", "Personal")];
/// PUTs to Radicale at once.
const PUTTING_AT_ONCE: usize = 4;
const WARM_UP: usize = 20;
/// The measured window: 31 days of March 2027 (summer time starts on the 28th).
const FROM: &str = "2027-03-01T00:00:00Z";
const TO: &str = "2027-04-01T00:00:00Z";
/// The events lie in the 90 days from here (30 days before the window, 29 after).
const SPAN_DAYS: i64 = 90;

const FREE_BUSY: &str =
    "query($f: DateTime!, $t: DateTime!) { me { freeBusy(from: $f, to: $t) { free { start end } busy { start end } } } }";
const EVENTS_QUERY: &str = "query($f: DateTime!, $t: DateTime!) { me { calendarEvents(from: $f, to: $t) { uid start end allDay busy } } }";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn span_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, 30).expect("date")
}

// ---------------------------------------------------------------------------------------
// The calendar lab

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

/// A private Radicale; stopped (and its folder removed) when dropped.
struct Lab {
    dir: PathBuf,
    url: String,
}

impl Lab {
    fn start() -> anyhow::Result<Lab> {
        let dir = tempfile::Builder::new().prefix("cl-bench-").tempdir_in("/tmp").context("lab dir")?.keep();
        // `start` wants a folder that does not exist or is empty; it is empty.
        let mut lab = Lab { dir, url: String::new() };
        let out = std::process::Command::new(script("calendar-lab"))
            .arg("start")
            .arg(&lab.dir)
            .output()
            .context("running scripts/calendar-lab")?;
        if !out.status.success() {
            bail!("scripts/calendar-lab start: {}", String::from_utf8_lossy(&out.stderr));
        }
        let info: Value = serde_json::from_slice(&out.stdout).context("calendar-lab printed no JSON")?;
        lab.url = info["url"].as_str().context("calendar-lab gave no url")?.to_owned();
        Ok(lab)
    }

    fn add_user(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let out = std::process::Command::new(script("calendar-lab")).arg("add-user").arg(&self.dir).args([name, password]).output()?;
        if !out.status.success() {
            bail!("scripts/calendar-lab add-user: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !Path::new(&self.dir).join(".calendar-lab").exists() {
            // Never started: only the empty folder is left.
            let _ = std::fs::remove_dir(&self.dir);
            return;
        }
        let _ = std::process::Command::new(script("calendar-lab")).arg("stop").arg(&self.dir).output();
    }
}

/// Basic-auth DAV requests to the lab, as another calendar client would make them.
#[derive(Clone)]
struct Dav {
    http: reqwest::Client,
    home: String,
    user: String,
    password: String,
}

impl Dav {
    async fn make_calendar(&self, id: &str, name: &str) -> anyhow::Result<()> {
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>{name}</D:displayname>
    <C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>"#
        );
        let reply = self
            .http
            .request(reqwest::Method::from_bytes(b"MKCALENDAR")?, format!("{}{id}/", self.home))
            .basic_auth(&self.user, Some(&self.password))
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(body)
            .send()
            .await
            .context("MKCALENDAR")?;
        let status = reply.status();
        if !status.is_success() {
            bail!("MKCALENDAR {id}: {status} {}", reply.text().await.unwrap_or_default());
        }
        Ok(())
    }

    async fn put(&self, calendar: &str, name: &str, ics: String) -> anyhow::Result<()> {
        let reply = self
            .http
            .put(format!("{}{calendar}/{name}.ics", self.home))
            .basic_auth(&self.user, Some(&self.password))
            .header("Content-Type", "text/calendar; charset=utf-8")
            .body(ics)
            .send()
            .await
            .context("PUT")?;
        let status = reply.status();
        if !status.is_success() {
            bail!("PUT {calendar}/{name}.ics: {status} {}", reply.text().await.unwrap_or_default());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The events

/// A 64-bit LCG (Knuth's MMIX constants), fixed seed: the same events every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Mix {
    single: usize,
    all_day: usize,
    weekly_open: usize,
    daily: usize,
    weekly_exceptions: usize,
    fortnightly: usize,
}

fn ical(d: NaiveDateTime) -> String {
    d.format("%Y%m%dT%H%M%S").to_string()
}

fn byday(w: Weekday) -> &'static str {
    ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][w.num_days_from_monday() as usize]
}

/// A working day `days` after the span's start (a weekend moves on to Monday).
fn working_day(days: u64) -> NaiveDate {
    let mut d = span_start() + chrono::Duration::days(days as i64);
    while d.weekday().num_days_from_monday() >= 5 {
        d = d.succ_opt().expect("date");
    }
    d
}

/// A start in working hours (08:00–16:45 Berlin, on the quarter hour) and a length of 30–90
/// minutes.
fn working_time(rng: &mut Lcg, day: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    let start = day.and_hms_opt(8 + rng.below(9) as u32, 15 * rng.below(4) as u32, 0).expect("time");
    let end = start + chrono::Duration::minutes(30 + 15 * rng.below(5) as i64);
    (start, end)
}

fn vcalendar(body: &str) -> String {
    let mut out = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Concierge bench//free_busy//EN\r\n");
    for line in body.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// Event `i`: (its calendar, its resource name, its iCalendar text).
fn event(i: usize, rng: &mut Lcg, mix: &mut Mix) -> (usize, String, String) {
    let calendar = rng.below(CALENDARS.len() as u64) as usize;
    let uid = format!("bench-{i}@free-busy.example");
    let head = format!("BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20270101T000000Z\nSUMMARY:Bench event {i}\n");
    let tz = "TZID=Europe/Berlin";
    let body = if i % 3 != 2 {
        // Single events (two thirds).
        let day = working_day(rng.below(SPAN_DAYS as u64));
        if i.is_multiple_of(40) {
            mix.all_day += 1;
            let next = day.succ_opt().expect("date");
            format!("{head}DTSTART;VALUE=DATE:{}\nDTEND;VALUE=DATE:{}\nEND:VEVENT\n", day.format("%Y%m%d"), next.format("%Y%m%d"))
        } else {
            mix.single += 1;
            let (start, end) = working_time(rng, day);
            if i % 5 == 1 {
                // Some in UTC (Berlin is UTC+1 before the 28 March, +2 after: near enough).
                let (start, end) = (start - chrono::Duration::hours(1), end - chrono::Duration::hours(1));
                format!("{head}DTSTART:{}Z\nDTEND:{}Z\nEND:VEVENT\n", ical(start), ical(end))
            } else {
                format!("{head}DTSTART;{tz}:{}\nDTEND;{tz}:{}\nEND:VEVENT\n", ical(start), ical(end))
            }
        }
    } else {
        // Recurring events (a third), starting in the first 60 days of the span.
        let day = working_day(rng.below(60));
        let (start, end) = working_time(rng, day);
        let times = format!("DTSTART;{tz}:{}\nDTEND;{tz}:{}\n", ical(start), ical(end));
        let first = day.weekday();
        let other = first.succ().succ(); // two days on (Mon→Wed, Thu→Sat, …)
        let other = if other.num_days_from_monday() >= 5 { Weekday::Mon } else { other };
        match (i / 3) % 4 {
            0 => {
                mix.weekly_open += 1;
                format!("{head}{times}RRULE:FREQ=WEEKLY;BYDAY={},{}\nEND:VEVENT\n", byday(first), byday(other))
            }
            1 => {
                mix.daily += 1;
                format!("{head}{times}RRULE:FREQ=DAILY;COUNT={}\nEND:VEVENT\n", 5 + rng.below(11))
            }
            2 => {
                // Weekly, the second instance moved two hours later, the third deleted.
                mix.weekly_exceptions += 1;
                let week = chrono::Duration::days(7);
                let moved = start + week;
                let (moved_start, moved_end) = (moved + chrono::Duration::hours(2), end + week + chrono::Duration::hours(2));
                format!(
                    "{head}{times}RRULE:FREQ=WEEKLY;COUNT={}\nEXDATE;{tz}:{}\nEND:VEVENT\n\
                     BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20270101T000000Z\nSUMMARY:Bench event {i} (moved)\n\
                     RECURRENCE-ID;{tz}:{}\nDTSTART;{tz}:{}\nDTEND;{tz}:{}\nEND:VEVENT\n",
                    8 + rng.below(9),
                    ical(start + week + week),
                    ical(moved),
                    ical(moved_start),
                    ical(moved_end)
                )
            }
            _ => {
                mix.fortnightly += 1;
                let until = span_start() + chrono::Duration::days(SPAN_DAYS);
                format!(
                    "{head}{times}RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY={};UNTIL={}T000000Z\nEND:VEVENT\n",
                    byday(first),
                    until.format("%Y%m%d")
                )
            }
        }
    };
    (calendar, format!("bench-{i}"), vcalendar(&body))
}

// ---------------------------------------------------------------------------------------
// The gateway

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> anyhow::Result<Value> {
        gateway::gql(&self.http, &self.url, token, query, variables).await
    }

    async fn user(&self, email: &str) -> anyhow::Result<String> {
        Ok(gateway::sign_up(&self.http, &self.url, email, PASSWORD).await?.1)
    }

    /// One `freeBusy`: (time taken, busy spans, free spans).
    async fn free_busy(&self, token: &str) -> anyhow::Result<(Duration, usize, usize)> {
        let started = Instant::now();
        let data = self.gql(Some(token), FREE_BUSY, json!({ "f": FROM, "t": TO })).await?;
        let took = started.elapsed();
        let fb = &data["me"]["freeBusy"];
        let busy = fb["busy"].as_array().context("no busy list")?.len();
        let free = fb["free"].as_array().context("no free list")?.len();
        Ok((took, busy, free))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

struct Round {
    latencies: Vec<Duration>,
    wall: Duration,
    errors: usize,
    first_error: Option<String>,
    busy: usize,
    free: usize,
}

impl Round {
    fn line(&self) -> String {
        format!(
            "p50 {}, p95 {}, p99 {}, max {}; {:.0} queries/s ({} in {:.2} s, {} errors)",
            ms(percentile(&self.latencies, 50.0)),
            ms(percentile(&self.latencies, 95.0)),
            ms(percentile(&self.latencies, 99.0)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.latencies.len() as f64 / self.wall.as_secs_f64().max(1e-9),
            self.latencies.len(),
            self.wall.as_secs_f64(),
            self.errors
        )
    }
}

async fn measure(client: &Client, token: &str, queries: usize, in_flight: usize) -> Round {
    let started = Instant::now();
    let results: Vec<anyhow::Result<(Duration, usize, usize)>> =
        stream::iter(0..queries).map(|_| client.free_busy(token)).buffer_unordered(in_flight).collect().await;
    let wall = started.elapsed();
    let mut round = Round { latencies: Vec::with_capacity(queries), wall, errors: 0, first_error: None, busy: usize::MAX, free: 0 };
    for r in results {
        match r {
            Ok((took, busy, free)) => {
                round.latencies.push(took);
                round.busy = round.busy.min(busy);
                round.free = free;
            }
            Err(e) => {
                round.errors += 1;
                round.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    if round.busy == usize::MAX {
        round.busy = 0;
    }
    round.latencies.sort();
    round
}

/// Every calendar of the account synced at least once (its `lastSyncedAt` set).
async fn wait_until_synced(client: &Client, token: &str, calendars: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let data = client.gql(Some(token), "{ me { calendars { lastSyncedAt } } }", json!({})).await?;
        let list = data["me"]["calendars"].as_array().cloned().unwrap_or_default();
        if list.len() == calendars && list.iter().all(|c| !c["lastSyncedAt"].is_null()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the empty calendars were not synced within 60 s: {data}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run() -> anyhow::Result<bool> {
    let events_wanted = setting("BENCH_EVENTS", 2000).max(3);
    let queries = setting("BENCH_QUERIES", 500).max(1);
    let in_flight = setting("BENCH_IN_FLIGHT", 4).max(1);
    let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(16).timeout(Duration::from_secs(300)).build()?;

    // The CalDAV server, its user and 3 empty calendars.
    let lab = Lab::start()?;
    let (dav_user, dav_password) = ("bench", "bench-calendar-password");
    lab.add_user(dav_user, dav_password)?;
    let dav = Dav { http: http.clone(), home: format!("{}{dav_user}/", lab.url), user: dav_user.into(), password: dav_password.into() };
    for (id, name) in CALENDARS {
        dav.make_calendar(id, name).await?;
    }

    // The gateway, the user, their time zone, the account and its conflict calendars.
    // The calendar lab listens on loopback, which the outbound policy refuses by default.
    let gateway = Gateway::start_with(&[("CONCIERGE_CALENDAR_POLL_SECS", "3600"), ("CONCIERGE_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128")])?;
    let client = Client { http: http.clone(), url: format!("http://127.0.0.1:{}/graphql", gateway.port) };
    let token = client.user("freebusy@bench.example").await?;
    let zone = "mutation($i: UpdateAvailabilityInput!) { updateAvailability(input: $i) { timeZone } }";
    client.gql(Some(&token), zone, json!({ "i": { "timeZone": "Europe/Berlin" } })).await?;
    let connect = "mutation($i: ConnectCalendarAccountInput!) { connectCalendarAccount(input: $i) { id calendars { id name } } }";
    let input = json!({ "connector": "caldav", "username": dav_user, "password": dav_password, "settings": { "url": lab.url } });
    let data = client.gql(Some(&token), connect, json!({ "i": input })).await?;
    let account = data["connectCalendarAccount"]["id"].as_str().context("no calendar account")?.to_owned();
    let ids: Vec<Value> =
        data["connectCalendarAccount"]["calendars"].as_array().context("no calendars")?.iter().map(|c| c["id"].clone()).collect();
    if ids.len() != CALENDARS.len() {
        bail!("the account lists {} calendars, not {}: {data}", ids.len(), CALENDARS.len());
    }
    let set = "mutation($ids: [ID!]!) { setConflictCalendars(ids: $ids) { id primary checkConflicts synced } }";
    let data = client.gql(Some(&token), set, json!({ "ids": ids })).await?;
    let synced = data["setConflictCalendars"].as_array().map_or(0, |l| l.iter().filter(|c| c["synced"] == true).count());
    if synced != CALENDARS.len() {
        bail!("not every calendar is synced: {data}");
    }
    // The rounds woken by the connect and by setConflictCalendars read the empty calendars;
    // then nothing syncs until this bench asks (the poll is an hour).
    wait_until_synced(&client, &token, CALENDARS.len()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 2,000 events into the calendars.
    let mut rng = Lcg(0x5eed_f8ee_b05e_2027);
    let mut mix = Mix::default();
    let mut per_calendar = [0usize; 3];
    let events: Vec<(usize, String, String)> = (0..events_wanted)
        .map(|i| {
            let e = event(i, &mut rng, &mut mix);
            per_calendar[e.0] += 1;
            e
        })
        .collect();
    let bytes: usize = events.iter().map(|e| e.2.len()).sum();
    let putting = Instant::now();
    let puts: Vec<anyhow::Result<()>> = stream::iter(events)
        .map(|(calendar, name, ics)| {
            let dav = dav.clone();
            async move { dav.put(CALENDARS[calendar].0, &name, ics).await }
        })
        .buffer_unordered(PUTTING_AT_ONCE)
        .collect()
        .await;
    for p in puts {
        p?;
    }
    let put_in = putting.elapsed();
    eprintln!("{events_wanted} events stored in Radicale in {:.1} s", put_in.as_secs_f64());

    // The sync that reads them.
    let sync = "mutation($id: ID!) { syncCalendarAccount(id: $id) { status lastError } }";
    let syncing = Instant::now();
    let data = client.gql(Some(&token), sync, json!({ "id": account })).await?;
    let sync_took = syncing.elapsed();
    if data["syncCalendarAccount"]["status"] != "LIVE" {
        bail!("the sync did not end LIVE: {data}");
    }
    let rss_synced = gateway.rss_kib()?;

    // Sanity: the occurrences in the window, and every event somewhere in the 90 days
    // (calendarEvents takes at most 62 days: two halves).
    let in_window = client.gql(Some(&token), EVENTS_QUERY, json!({ "f": FROM, "t": TO })).await?;
    let in_window = in_window["me"]["calendarEvents"].as_array().cloned().unwrap_or_default();
    let window_uids: HashSet<String> = in_window.iter().filter_map(|o| o["uid"].as_str().map(str::to_owned)).collect();
    let mut uids = HashSet::new();
    let start = span_start().and_hms_opt(0, 0, 0).expect("time").and_utc();
    for (from, to) in [
        (start - chrono::Duration::days(1), start + chrono::Duration::days(45)),
        (start + chrono::Duration::days(45), start + chrono::Duration::days(SPAN_DAYS + 1)),
    ] {
        let data = client.gql(Some(&token), EVENTS_QUERY, json!({ "f": from.to_rfc3339(), "t": to.to_rfc3339() })).await?;
        for o in data["me"]["calendarEvents"].as_array().cloned().unwrap_or_default() {
            if let Some(uid) = o["uid"].as_str() {
                uids.insert(uid.to_owned());
            }
        }
    }

    // freeBusy over the 31 days.
    let warm = measure(&client, &token, WARM_UP, 1).await;
    let sequential = measure(&client, &token, queries, 1).await;
    let parallel = measure(&client, &token, queries, in_flight).await;
    let rss_after = gateway.rss_kib()?;

    println!("freeBusy: 3 CalDAV calendars (Radicale), {events_wanted} events over {SPAN_DAYS} days, window {FROM} → {TO}");
    println!(
        "  events: {} single timed, {} all day; recurring: {} weekly on two days (open-ended), {} daily with COUNT, \
         {} weekly with an EXDATE and a moved instance, {} every other week until the span's end",
        mix.single, mix.all_day, mix.weekly_open, mix.daily, mix.weekly_exceptions, mix.fortnightly
    );
    println!(
        "  per calendar: {} / {} / {}; {:.0} KiB of iCalendar; PUT into Radicale in {:.1} s ({PUTTING_AT_ONCE} at once)",
        per_calendar[0],
        per_calendar[1],
        per_calendar[2],
        bytes as f64 / 1024.0,
        put_in.as_secs_f64()
    );
    println!(
        "  syncCalendarAccount (all {events_wanted} new): {:.2} s ({:.0} events/s); events seen in the 90 days: {} of {events_wanted}",
        sync_took.as_secs_f64(),
        events_wanted as f64 / sync_took.as_secs_f64().max(1e-9),
        uids.len()
    );
    println!("  occurrences in the window (calendarEvents): {} from {} events", in_window.len(), window_uids.len());
    println!("  freeBusy answer: {} busy spans, {} free spans", sequential.busy, sequential.free);
    println!("  warm-up ({WARM_UP} queries): {}", warm.line());
    println!("  sequential, 1 in flight: {}", sequential.line());
    println!("  {in_flight} in flight: {}", parallel.line());
    println!("  gateway RSS: {:.1} MiB after the sync, {:.1} MiB after the queries", rss_synced as f64 / 1024.0, rss_after as f64 / 1024.0);

    let mut ok = true;
    for (what, round) in [("warm-up", &warm), ("sequential", &sequential), ("parallel", &parallel)] {
        if let Some(e) = &round.first_error {
            eprintln!("{what}: {} queries failed, the first: {e}", round.errors);
            ok = false;
        }
        if round.busy == 0 {
            eprintln!("{what}: a freeBusy answer had no busy spans");
            ok = false;
        }
    }
    if in_window.is_empty() {
        eprintln!("no occurrences in the window");
        ok = false;
    }
    if uids.len() != events_wanted {
        eprintln!("only {} of the {events_wanted} events were found after the sync", uids.len());
        ok = false;
    }
    drop(gateway);
    drop(lab);
    Ok(ok)
}

fn main() -> ExitCode {
    gateway::run_bench("free_busy", run())
}
