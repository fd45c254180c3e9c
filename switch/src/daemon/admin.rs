//! The admin endpoint: operators change cards in a running switch (`switch admin card …`),
//! on the metrics listener (localhost by default), behind a token.
//!
//! ```text
//!  switch admin card block --pan P --who alice
//!      POST /admin/card   Authorization: Bearer <admin.token>
//!           {"pan":"…","action":"block","status":"lost","who":"alice"}
//!      ─▶ journal: UPDATE accounts … ; INSERT INTO admin_log (time, who, action, masked PAN)
//!      ─▶ memory: the card as the journal has it now
//!      ◀─ 200 {"pan":"622202*********0017","status":"lost",…}     (the PAN masked, always)
//!  GET /admin/card?pan=P ─▶ the card as the journal has it
//!  POST /admin/card {"action":"add","pan","expiry","offset"|"pvv","balance_fen"|…}
//!       a new card on an on-us route, with its PIN data (never a PIN)
//!  GET /admin/terminal?tid=T            its merchant, session, open batch and totals
//!  POST /admin/terminal {"tid","action":"force-signon"}   its session ended: the next
//!       request answers A0 (sign on again), at every node
//!  POST /admin/terminal {"tid","action":"disable"|"enable"}  disabled: every request,
//!       sign-on included, answers 58, at every node (its session ended)
//!  GET /admin/batch?tid=T[&batch=N]     a batch's totals as settlement would count them
//!  GET /admin/issuer                    each issuer: lines up, drained, queue
//!  POST /admin/issuer {"name","action":"drain"|"up"}   drained: no new requests (its
//!       cards answer 91, or stand-in) while queued reversals still go, at every node
//!  POST /admin/reload                   the configuration read again and applied (200,
//!       what changed) or refused with nothing changed (422, why)
//! ```
//!
//! The token is 32 random bytes, hex, in a file made (0600) at the first start beside the
//! journal (`admin.token`). A wrong or missing token gets 401; an unknown card 404. Other
//! nodes on the same PostgreSQL see the change at their next commit on the card (a sale's
//! funds check includes the card's status) or read (declines and balances read the
//! journal).

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::journal::{AccountRecord, AdminEntry, CardChange};
use crate::model::{AccountId, BatchNo, CardStatus, Tid};
use crate::pipeline::Switch;
use crate::state::accounts::Account;

/// The token in `path`, made there (0600, never overwritten) when there is none.
pub fn token(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    if let Ok(t) = std::fs::read_to_string(path) {
        let t = t.trim().to_owned();
        if t.len() >= 32 {
            return Ok(t);
        }
        anyhow::bail!("{}: not an admin token (too short)", path.display());
    }
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| anyhow::anyhow!("random number generator failure"))?;
    let t = hex::encode(b);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = match opts.open(path) {
        Ok(f) => f,
        // Another process on the same directory made it first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Ok(std::fs::read_to_string(path)?.trim().to_owned());
        }
        Err(e) => {
            return Err(e).with_context(|| format!("creating the admin token {}", path.display()));
        }
    };
    std::io::Write::write_all(&mut f, format!("{t}\n").as_bytes())?;
    tracing::info!(path = %path.display(), "admin token created");
    Ok(t)
}

/// A change asked for.
#[derive(Debug, Deserialize)]
struct CardRequest {
    pan: String,
    action: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    credit_limit_fen: Option<i64>,
    #[serde(default)]
    who: Option<String>,
    /// `add`: YYMM.
    #[serde(default)]
    expiry: Option<String>,
    /// `add`: a debit card's opening balance, fen.
    #[serde(default)]
    balance_fen: Option<i64>,
    /// `add`: the IBM 3624 offset of its PIN.
    #[serde(default)]
    offset: Option<String>,
    /// `add`: the Visa PVV of its PIN (a legacy range).
    #[serde(default)]
    pvv: Option<String>,
}

/// `add`: a card the journal does not hold, on an on-us route, with its PIN data (never a
/// PIN), active.
async fn add(switch: Arc<Switch>, req: CardRequest) -> Response {
    let pan = req.pan.trim().to_owned();
    let Some(account) = account_of(&switch, &pan) else {
        return error(StatusCode::BAD_REQUEST, "pan: 12 to 19 digits");
    };
    if !crate::model::luhn_ok(&pan) {
        return error(StatusCode::BAD_REQUEST, "pan: the check digit is wrong");
    }
    let rules = switch.rules();
    let Some(route) = rules.routes.route(&pan) else {
        return error(StatusCode::BAD_REQUEST, "pan: no route for this BIN");
    };
    if route.issuer.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "pan: routed to a remote issuer, not on-us",
        );
    }
    let expiry = match req.expiry.as_deref() {
        Some(e)
            if e.len() == 4
                && e.bytes().all(|b| b.is_ascii_digit())
                && (1..=12).contains(&e[2..].parse::<u32>().unwrap_or(0)) =>
        {
            e.parse::<u32>().unwrap_or(0)
        }
        _ => return error(StatusCode::BAD_REQUEST, "expiry: YYMM"),
    };
    let digits = |v: &str, r: std::ops::RangeInclusive<usize>| {
        r.contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
    };
    let pin = match (req.offset.as_deref(), req.pvv.as_deref()) {
        (Some(o), None) if digits(o, 4..=12) => crate::journal::PinCheck::Ibm3624 {
            offset: o.to_owned(),
        },
        (None, Some(p)) if digits(p, 4..=4) => crate::journal::PinCheck::VisaPvv {
            pvv: p.to_owned(),
            pvki: rules.pin_verification.as_ref().map_or(1, |k| k.pvki),
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give offset (4 to 12 digits) or pvv (4 digits), never a PIN",
            );
        }
    };
    let (balance_fen, credit_limit_fen) = match route.card_type {
        crate::model::CardType::Credit => (0, req.credit_limit_fen.unwrap_or(0).max(0)),
        _ => (req.balance_fen.unwrap_or(0).max(0), 0),
    };
    let record = AccountRecord {
        account,
        masked_pan: codec::mask::pan(&pan),
        card_type: route.card_type,
        status: CardStatus::Active,
        expiry,
        pin,
        balance_fen,
        credit_limit_fen,
        pin_tries: 0,
        preauth_fen: 0,
    };
    let entry = entry(&switch, req.who, "add", record.masked_pan.clone());
    let r = record.clone();
    match switch
        .journal()
        .write(move |b| b.add_card(&r, &entry))
        .await
    {
        Ok(true) => {
            switch
                .state()
                .accounts
                .insert(account, Account::from_record(&record));
            answer(
                StatusCode::OK,
                serde_json::to_string(&CardView::from(&record)).unwrap_or_default(),
            )
        }
        Ok(false) => error(StatusCode::CONFLICT, "the journal holds this card already"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("journal: {e}")),
    }
}

/// A card as the endpoint shows it: the PAN masked.
#[derive(Debug, Serialize)]
struct CardView {
    pan: String,
    card_type: &'static str,
    status: &'static str,
    expiry: u32,
    balance_fen: i64,
    credit_limit_fen: i64,
    pin_tries: u8,
    /// Held by open pre-authorisations.
    preauth_fen: i64,
}

impl From<&AccountRecord> for CardView {
    fn from(a: &AccountRecord) -> Self {
        Self {
            pan: a.masked_pan.clone(),
            card_type: a.card_type.as_str(),
            status: a.status.as_str(),
            expiry: a.expiry,
            balance_fen: a.balance_fen,
            credit_limit_fen: a.credit_limit_fen,
            pin_tries: a.pin_tries,
            preauth_fen: a.preauth_fen,
        }
    }
}

/// The log entry of an operator's action now (`who` blank or absent: `unknown`).
fn entry(
    switch: &Switch,
    who: Option<String>,
    action: &'static str,
    subject: String,
) -> AdminEntry {
    AdminEntry {
        at: switch.clock.now(),
        who: who
            .filter(|w| !w.trim().is_empty())
            .unwrap_or_else(|| "unknown".into()),
        action,
        subject,
    }
}

fn answer(code: StatusCode, body: String) -> Response {
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn error(code: StatusCode, message: &str) -> Response {
    answer(code, serde_json::json!({ "error": message }).to_string())
}

fn authorised(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

fn account_of(switch: &Switch, pan: &str) -> Option<AccountId> {
    let pan = pan.trim();
    ((12..=19).contains(&pan.len()) && pan.bytes().all(|b| b.is_ascii_digit()))
        .then(|| switch.account_id(pan))
}

async fn show(switch: Arc<Switch>, uri: Uri) -> Response {
    let pan = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("pan="))
        .unwrap_or_default()
        .to_owned();
    let Some(id) = account_of(&switch, &pan) else {
        return error(StatusCode::BAD_REQUEST, "pan: 12 to 19 digits");
    };
    match switch.journal().read(move |b| b.account(&id)).await {
        Ok(Some(a)) => answer(
            StatusCode::OK,
            serde_json::to_string(&CardView::from(&a)).unwrap_or_default(),
        ),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such card"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("journal: {e}")),
    }
}

async fn change(switch: Arc<Switch>, body: String) -> Response {
    let Ok(req) = serde_json::from_str::<CardRequest>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body: a JSON object with pan and action",
        );
    };
    if req.action == "add" {
        return add(switch, req).await;
    }
    let Some(account) = account_of(&switch, &req.pan) else {
        return error(StatusCode::BAD_REQUEST, "pan: 12 to 19 digits");
    };
    let (action, status, reset, limit): (&'static str, _, _, _) = match req.action.as_str() {
        "block" => {
            let s = match req.status.as_deref().unwrap_or("blocked") {
                "lost" => CardStatus::Lost,
                "stolen" => CardStatus::Stolen,
                "blocked" => CardStatus::Blocked,
                _ => return error(StatusCode::BAD_REQUEST, "status: lost, stolen or blocked"),
            };
            ("block", Some(s), false, None)
        }
        "unblock" => ("unblock", Some(CardStatus::Active), false, None),
        "reset-pin-tries" => ("reset-pin-tries", None, true, None),
        "set-limit" => match req.credit_limit_fen {
            Some(l) if l >= 0 => ("set-limit", None, false, Some(l)),
            _ => return error(StatusCode::BAD_REQUEST, "credit_limit_fen: 0 or more"),
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "action: add, block, unblock, reset-pin-tries or set-limit",
            );
        }
    };
    let who = req
        .who
        .filter(|w| !w.trim().is_empty())
        .unwrap_or_else(|| "unknown".into());
    let Some(masked_pan) = switch
        .journal()
        .read(move |b| b.account(&account))
        .await
        .ok()
        .flatten()
        .map(|a| a.masked_pan)
    else {
        return error(StatusCode::NOT_FOUND, "no such card");
    };
    let c = CardChange {
        account,
        masked_pan,
        action,
        status,
        reset_pin_tries: reset,
        credit_limit_fen: limit,
        who: who.clone(),
        at: switch.clock.now(),
    };
    match switch.journal().write(move |b| b.change_card(&c)).await {
        Ok(Some(rec)) => {
            switch
                .state()
                .accounts
                .refresh(&account, Account::from_record(&rec));
            tracing::warn!(who = %who, action, card = %rec.masked_pan, "card changed by an operator");
            answer(
                StatusCode::OK,
                serde_json::to_string(&CardView::from(&rec)).unwrap_or_default(),
            )
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no such card"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("journal: {e}")),
    }
}

fn query<'a>(uri: &'a Uri, key: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn tid_of(text: &str) -> Option<Tid> {
    (text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| Tid::parse(text))
        .flatten()
}

async fn terminal_show(switch: Arc<Switch>, uri: Uri) -> Response {
    let Some(tid) = query(&uri, "tid").and_then(tid_of) else {
        return error(StatusCode::BAD_REQUEST, "tid: 8 digits");
    };
    let rules = switch.rules();
    let Some(range) = rules.terminals.lookup(tid.as_str()) else {
        return error(StatusCode::NOT_FOUND, "no such terminal");
    };
    let (mid, merchant) = (range.mid.clone(), range.merchant_name.clone());
    let t = tid;
    let found = switch
        .journal()
        .read(move |b| {
            let s = b.session(&t)?;
            let totals = match &s {
                Some(s) => Some(b.batch_totals(&t, s.batch)?),
                None => None,
            };
            Ok((s, totals))
        })
        .await;
    match found {
        Ok((session, totals)) => answer(
            StatusCode::OK,
            serde_json::json!({
                "tid": tid.as_str(),
                "mid": mid,
                "merchant": merchant,
                "signed_on": session.is_some(),
                "disabled": switch.state().disabled_terminals.contains_key(&tid),
                "signed_on_utc": session.as_ref().map(|s| s.signed_on.iso_utc()),
                "operator": session.as_ref().and_then(|s| s.operator.clone()),
                "open_batch": session.as_ref().map(|s| s.batch.0),
                "sales_fen": totals.as_ref().map(|t| t.debit_fen),
                "sales": totals.as_ref().map(|t| t.debit_count),
                "refunds_fen": totals.as_ref().map(|t| t.credit_fen),
                "refunds": totals.as_ref().map(|t| t.credit_count),
            })
            .to_string(),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("journal: {e}")),
    }
}

#[derive(Debug, Deserialize)]
struct TerminalRequest {
    tid: String,
    action: String,
    #[serde(default)]
    who: Option<String>,
}

async fn terminal_change(switch: Arc<Switch>, body: String) -> Response {
    let Ok(req) = serde_json::from_str::<TerminalRequest>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body: a JSON object with tid and action",
        );
    };
    let Some(tid) = tid_of(&req.tid) else {
        return error(StatusCode::BAD_REQUEST, "tid: 8 digits");
    };
    if switch.rules().terminals.lookup(tid.as_str()).is_none() {
        return error(StatusCode::NOT_FOUND, "no such terminal");
    }
    let action: &'static str = match req.action.as_str() {
        "force-signon" => "force-signon",
        "disable" => "disable",
        "enable" => "enable",
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "action: force-signon, disable or enable",
            );
        }
    };
    let entry = entry(&switch, req.who, action, tid.as_str().to_owned());
    let who = entry.who.clone();
    let t = tid;
    let done = match action {
        "force-signon" => {
            switch
                .journal()
                .write(move |b| b.end_session(&t, &entry))
                .await
        }
        _ => {
            let enabled = action == "enable";
            switch
                .journal()
                .write(move |b| b.set_terminal_enabled(&t, enabled, &entry).map(|()| true))
                .await
        }
    };
    match done {
        Ok(had) => {
            match action {
                "enable" => {
                    switch.state().disabled_terminals.remove(&tid);
                }
                "disable" => {
                    switch.state().disabled_terminals.insert(tid, ());
                    switch.state().sessions.remove(&tid);
                }
                _ => {
                    switch.state().sessions.remove(&tid);
                }
            }
            tracing::warn!(who = %who, tid = %tid.as_str(), action, "terminal changed by an operator");
            answer(
                StatusCode::OK,
                serde_json::json!({
                    "tid": tid.as_str(),
                    "action": action,
                    "had_session": had,
                    "disabled": switch.state().disabled_terminals.contains_key(&tid),
                })
                .to_string(),
            )
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("journal: {e}")),
    }
}

async fn batch_show(switch: Arc<Switch>, uri: Uri) -> Response {
    let Some(tid) = query(&uri, "tid").and_then(tid_of) else {
        return error(StatusCode::BAD_REQUEST, "tid: 8 digits");
    };
    let asked = match query(&uri, "batch") {
        Some(b) => match b.parse::<u32>() {
            Ok(n) if n <= 999_999 => Some(BatchNo(n)),
            _ => return error(StatusCode::BAD_REQUEST, "batch: up to 6 digits"),
        },
        None => None,
    };
    let t = tid;
    let r = switch
        .journal()
        .read(move |b| {
            let batch = match asked {
                Some(n) => Some(n),
                None => b.session(&t)?.map(|s| s.batch),
            };
            match batch {
                Some(n) => Ok(Some((n, b.batch_totals(&t, n)?))),
                None => Ok(None),
            }
        })
        .await;
    match r {
        Ok(Some((n, t))) => answer(
            StatusCode::OK,
            serde_json::json!({
                "tid": tid.as_str(), "batch": n.0,
                "sales_fen": t.debit_fen, "sales": t.debit_count,
                "refunds_fen": t.credit_fen, "refunds": t.credit_count,
            })
            .to_string(),
        ),
        Ok(None) => error(StatusCode::NOT_FOUND, "no open batch for this terminal"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("journal: {e}")),
    }
}

fn issuers_show(switch: &Switch) -> Response {
    let list: Vec<_> = switch
        .issuers()
        .iter()
        .map(|i| {
            let q = switch.saf_queue(&i.name);
            serde_json::json!({
                "name": i.name,
                "lines": i.lines().iter().map(|l| serde_json::json!({"line": l.addr, "up": l.is_up()})).collect::<Vec<_>>(),
                "up": i.is_up(),
                "drained": i.is_drained(),
                "saf_queued": q.len(),
            })
        })
        .collect();
    answer(StatusCode::OK, serde_json::Value::from(list).to_string())
}

#[derive(Debug, Deserialize)]
struct IssuerRequest {
    name: String,
    action: String,
    #[serde(default)]
    who: Option<String>,
}

async fn issuer_change(switch: Arc<Switch>, body: String) -> Response {
    let Ok(req) = serde_json::from_str::<IssuerRequest>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body: a JSON object with name and action",
        );
    };
    let Some(issuer) = switch
        .issuers()
        .iter()
        .find(|i| i.name == req.name)
        .cloned()
    else {
        return error(StatusCode::NOT_FOUND, "no such issuer");
    };
    let (action, drained): (&'static str, bool) = match req.action.as_str() {
        "drain" => ("drain", true),
        "up" => ("up", false),
        _ => return error(StatusCode::BAD_REQUEST, "action: drain or up"),
    };
    let entry = entry(&switch, req.who, action, issuer.name.clone());
    let name = issuer.name.clone();
    match switch
        .journal()
        .write(move |b| b.set_issuer_drained(&name, drained, &entry))
        .await
    {
        Ok(()) => {
            issuer.set_drained(drained);
            answer(
                StatusCode::OK,
                serde_json::json!({"name": issuer.name, "drained": issuer.is_drained(), "up": issuer.is_up()})
                    .to_string(),
            )
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("journal: {e}")),
    }
}

/// A handler behind the token.
macro_rules! guarded {
    ($switch:expr, $token:expr, |$($arg:ident : $ty:ty),*| $body:expr) => {{
        let (switch, token) = (Arc::clone(&$switch), Arc::clone(&$token));
        move |headers: HeaderMap, $($arg: $ty),*| {
            let (switch, token) = (Arc::clone(&switch), Arc::clone(&token));
            async move {
                if !authorised(&headers, &token) {
                    return error(StatusCode::UNAUTHORIZED, "admin token required");
                }
                let _ = &switch;
                $body(switch).await
            }
        }
    }};
}

/// `POST /admin/reload`: the configuration read again and applied, or nothing changed and
/// why (422).
async fn reload(reloader: Arc<super::reload::Reloader>) -> Response {
    match reloader.reload().await {
        Ok(outcome) => answer(
            StatusCode::OK,
            serde_json::to_string(&outcome).unwrap_or_default(),
        ),
        Err(e) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("configuration not applied, nothing changed: {e:#}"),
        ),
    }
}

/// The admin routes of `switch`, behind `token`; `reloader` applies configurations.
pub fn routes(
    switch: Arc<Switch>,
    token: Arc<String>,
    reloader: Arc<super::reload::Reloader>,
) -> Router {
    let reload_route = {
        let token = Arc::clone(&token);
        axum::routing::post(move |headers: HeaderMap| {
            let (reloader, token) = (Arc::clone(&reloader), Arc::clone(&token));
            async move {
                if !authorised(&headers, &token) {
                    return error(StatusCode::UNAUTHORIZED, "admin token required");
                }
                reload(reloader).await
            }
        })
    };
    let more = Router::new()
        .route("/admin/reload", reload_route)
        .route(
            "/admin/terminal",
            get(guarded!(switch, token, |uri: Uri| |s| terminal_show(
                s, uri
            )))
            .post(guarded!(switch, token, |body: String| |s| terminal_change(
                s, body
            ))),
        )
        .route(
            "/admin/batch",
            get(guarded!(switch, token, |uri: Uri| |s| batch_show(s, uri))),
        )
        .route(
            "/admin/issuer",
            get(guarded!(
                switch,
                token,
                |_uri: Uri| |s: Arc<Switch>| async move { issuers_show(&s) }
            ))
            .post(guarded!(switch, token, |body: String| |s| issuer_change(
                s, body
            ))),
        );
    more.route(
        "/admin/card",
        get({
            let (switch, token) = (Arc::clone(&switch), Arc::clone(&token));
            move |headers: HeaderMap, uri: Uri| {
                let (switch, token) = (Arc::clone(&switch), Arc::clone(&token));
                async move {
                    if !authorised(&headers, &token) {
                        return error(StatusCode::UNAUTHORIZED, "admin token required");
                    }
                    show(switch, uri).await
                }
            }
        })
        .post(move |headers: HeaderMap, body: String| {
            let (switch, token) = (Arc::clone(&switch), Arc::clone(&token));
            async move {
                if !authorised(&headers, &token) {
                    return error(StatusCode::UNAUTHORIZED, "admin token required");
                }
                change(switch, body).await
            }
        }),
    )
}

/// The client side, for `switch admin`: one HTTP/1.1 request to the admin endpoint at
/// `addr` with `token`; the status code and the body.
pub fn request(
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)
        .map_err(|e| anyhow::anyhow!("the admin endpoint {addr}: {e} (is the switch running?)"))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let body = body.unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP answer from {addr}"))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}
