//! An issuer simulator: a standalone card issuer speaking ISO 8583:1987 on TCP, for tests,
//! demos and load tests (`issuer-sim`). It is the issuer's side of the switch's issuer
//! links, as `terminal-fw` is the terminal's: it shares only the wire format and the crypto
//! with the switch, never its code.
//!
//! ```text
//!  switch ──[len][0200 | 0220 | 0420/0421 | 0800 …][64 X9.19]──▶ issuer-sim
//!         ◀──[len][0210 | 0230 | 0430 | 0810 …][39, 38, 54][64]──
//! ```
//!
//! It holds its own cards (PVVs under its own PVK, computed at start from the test PINs in
//! its configuration) and balances; it verifies every MAC with the zone MAC key and every
//! PIN block under the zone PIN key. Reversals and advices are recognised by field 90 and
//! applied once however often they come. Knobs make it slow, drop replies, answer garbage
//! or close the connection.
//!
//! It serves any byte stream ([`IssuerSim::serve`]): TCP from [`IssuerSim::start`], or a
//! simulated network in a deterministic simulation.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use codec::framing::FrameCodec;
use codec::{Dialect, FieldInput, Message, MessageBuilder, Mti};
use futures_util::{SinkExt, StreamExt};
use hsm_sim::primitives::pvv::validation_from_pan;
use hsm_sim::{
    ClearPin, EncryptedPinBlock, Hsm, HsmConfig, Ibm3624, KeyAlgorithm, KeyUsage, Lmk,
    MacAlgorithm, PinFormat, SealedKey,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

/// Largest frame on a line.
pub const MAX_FRAME: usize = 8192;

/// The network management request (echo).
const ECHO: Mti = match Mti::new(*b"0800") {
    Some(m) => m,
    None => panic!("invalid MTI constant"),
};

/// Field 7 now: MMDDhhmmss, UTC.
fn transmission_time() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The built-in simulator configuration (test data).
pub const DEMO_ISSUER_TOML: &str = include_str!("../demo-issuer.toml");

/// The simulator's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Where to listen.
    pub listen: String,
    /// `iso87-binary` or `iso87-ascii`.
    #[serde(default = "binary")]
    pub dialect: String,
    /// `sm4`: the zone keys are SM4 (the 16-byte SM4 PIN block in 52, the SM4 CBC-MAC in
    /// 64); absent or `tdes`: TDES (ISO format 0, X9.19).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Zone PIN key (shared with the switch), clear: test keys only.
    pub zpk_clear: String,
    /// Zone MAC key (shared with the switch), clear: test keys only.
    pub zak_clear: String,
    /// The simulator's own PVK, clear: its cards' PINs are checked as IBM 3624 offsets as
    /// long as the PIN (every digit counts), standard decimalisation table.
    pub pvk_clear: String,
    /// Milliseconds before each answer.
    #[serde(default)]
    pub delay_ms: u64,
    /// Send 0800 echoes on connections idle this long (off when absent).
    #[serde(default)]
    pub echo_interval_secs: Option<u64>,
    /// Cards.
    #[serde(default)]
    pub cards: Vec<SimCard>,
}

fn binary() -> String {
    "iso87-binary".into()
}

/// A card of the simulated issuer (test data).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimCard {
    /// Card number.
    pub pan: String,
    /// PIN (test data).
    pub pin: String,
    /// Opening balance, fen.
    pub balance_fen: i64,
}

impl SimConfig {
    /// The built-in configuration.
    pub fn demo() -> Result<Self> {
        Self::from_toml(DEMO_ISSUER_TOML)
    }

    /// From TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| anyhow!("issuer simulator configuration: {e}"))
    }
}

/// Behaviour switches, changeable while it runs.
#[derive(Debug, Default)]
pub struct Knobs {
    /// Milliseconds before each answer.
    pub delay_ms: AtomicU64,
    /// Process requests but never answer.
    pub drop_replies: AtomicBool,
    /// Answer every request with a frame of garbage.
    pub garbage: AtomicBool,
    /// Answer the next this many requests with garbage (then answer normally).
    pub garbage_next: AtomicU32,
    /// Close the connection on every request, unprocessed.
    pub close: AtomicBool,
}

/// What a booked request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Booked {
    /// A sale (or a stand-in sale's advice).
    Sale,
    /// A void of a sale or completion.
    Void,
    /// A refund.
    Refund,
    /// A pre-authorisation: a hold, nothing taken.
    PreAuth,
    /// A pre-authorisation's void: the hold released.
    PreAuthVoid,
    /// A completion: the hold becomes a debit.
    Completion,
}

/// What happened to one simulated transaction.
#[derive(Clone, Debug)]
struct Txn {
    kind: Booked,
    pan: String,
    amount_fen: i64,
    /// Balance change it made (negative: money taken from the card).
    delta_fen: i64,
    reversed: bool,
    voided: bool,
    refunded_fen: i64,
    /// A pre-authorisation: completed.
    completed: bool,
    /// For a void or refund: the sale's key; for a completion or a pre-authorisation's
    /// void: the pre-authorisation's.
    original: Option<String>,
}

impl Txn {
    /// A reversal that came before what it reverses: when that is booked, nothing moves.
    fn reversed_before_booked() -> Self {
        Self {
            reversed: true,
            ..Self::new(Booked::Sale, String::new(), 0, 0, None)
        }
    }

    fn new(
        kind: Booked,
        pan: String,
        amount_fen: i64,
        delta_fen: i64,
        original: Option<String>,
    ) -> Self {
        Self {
            kind,
            completed: false,
            pan,
            amount_fen,
            delta_fen,
            reversed: false,
            voided: false,
            refunded_fen: 0,
            original,
        }
    }
}

struct Card {
    offset: String,
    balance_fen: i64,
    /// Held by open pre-authorisations, fen.
    held_fen: i64,
}

struct SimState {
    hsm: Hsm,
    dialect: &'static Dialect,
    mac_algorithm: MacAlgorithm,
    pin_format: PinFormat,
    zpk: SealedKey,
    zak: SealedKey,
    pvk: SealedKey,
    cards: std::sync::Mutex<HashMap<String, Card>>,
    /// By (STAN, transmission time, acquirer id): field 90's middle.
    txns: std::sync::Mutex<HashMap<String, Txn>>,
    received: std::sync::Mutex<BTreeMap<String, u32>>,
    reversals_applied: AtomicU32,
    bad_macs: AtomicU32,
    echoes_sent: AtomicU32,
    auth: AtomicU32,
    knobs: Arc<Knobs>,
    echo_interval: Option<Duration>,
}

/// A running simulator.
pub struct IssuerSim {
    /// Where it listens, one address per listener.
    pub addrs: Vec<SocketAddr>,
    /// Its knobs.
    pub knobs: Arc<Knobs>,
    state: Arc<SimState>,
    stops: Vec<watch::Sender<bool>>,
    /// Stops the connections given by [`IssuerSim::serve`].
    stop_served: watch::Sender<bool>,
}

impl IssuerSim {
    /// Starts on `listeners` (at least one).
    pub async fn start(cfg: &SimConfig, listeners: Vec<TcpListener>) -> Result<Self> {
        let mut sim = Self::new(cfg)?;
        for l in listeners {
            sim.addrs.push(l.local_addr()?);
            let (stop, stopped) = watch::channel(false);
            sim.stops.push(stop);
            tokio::spawn(accept(l, Arc::clone(&sim.state), stopped));
        }
        Ok(sim)
    }

    /// A simulator that listens nowhere yet: [`IssuerSim::serve`] gives it connections.
    pub fn new(cfg: &SimConfig) -> Result<Self> {
        let hsm = Hsm::new(
            Lmk::test(),
            &HsmConfig {
                allow_test_keys: true,
                pin_failures_per_window: 1_000_000,
                ..HsmConfig::default()
            },
        )
        .map_err(|e| anyhow!("hsm: {e}"))?;
        let sm4 = match cfg.algorithm.as_deref() {
            None | Some("tdes") => false,
            Some("sm4") => true,
            Some(other) => return Err(anyhow!("algorithm {other:?}: tdes or sm4")),
        };
        let import = |usage, hex_key: &str, what: &str, sm4: bool| -> Result<SealedKey> {
            let bytes = hex::decode(hex_key).with_context(|| format!("{what}: not hex"))?;
            let alg = if sm4 {
                KeyAlgorithm::Sm4
            } else {
                KeyAlgorithm::des_for_len(bytes.len()).map_err(|e| anyhow!("{what}: {e}"))?
            };
            hsm.import_clear_key(usage, alg, &bytes)
                .map_err(|e| anyhow!("{what}: {e}"))
        };
        let zpk = import(KeyUsage::Zpk, &cfg.zpk_clear, "zpk_clear", sm4)?;
        let zak = import(KeyUsage::Zak, &cfg.zak_clear, "zak_clear", sm4)?;
        // The PVK is the issuer's own, TDES either way.
        let pvk = import(KeyUsage::Pvk, &cfg.pvk_clear, "pvk_clear", false)?;
        let mut cards = HashMap::new();
        for (i, c) in cfg.cards.iter().enumerate() {
            let pin = ClearPin::new(&c.pin).map_err(|e| anyhow!("cards[{i}].pin: {e}"))?;
            let offset = validation_from_pan(&c.pan)
                .and_then(|v| hsm.generate_ibm3624_offset(&pvk, &IBM3624, &v, &pin))
                .map_err(|e| anyhow!("cards[{i}]: {e}"))?;
            cards.insert(
                c.pan.clone(),
                Card {
                    offset,
                    balance_fen: c.balance_fen,
                    held_fen: 0,
                },
            );
        }
        let knobs = Arc::new(Knobs::default());
        knobs.delay_ms.store(cfg.delay_ms, Ordering::Relaxed);
        let state = Arc::new(SimState {
            hsm,
            dialect: if sm4 {
                Dialect::builtin_sm4(&cfg.dialect)
            } else {
                Dialect::builtin(&cfg.dialect)
            }
            .map_err(|e| anyhow!("dialect: {e}"))?,
            mac_algorithm: if sm4 {
                MacAlgorithm::Sm4CbcMac
            } else {
                MacAlgorithm::X919
            },
            pin_format: if sm4 { PinFormat::Sm4 } else { PinFormat::Iso0 },
            zpk,
            zak,
            pvk,
            cards: std::sync::Mutex::new(cards),
            txns: std::sync::Mutex::new(HashMap::new()),
            received: std::sync::Mutex::new(BTreeMap::new()),
            reversals_applied: AtomicU32::new(0),
            bad_macs: AtomicU32::new(0),
            echoes_sent: AtomicU32::new(0),
            auth: AtomicU32::new(100_000),
            knobs: Arc::clone(&knobs),
            echo_interval: cfg.echo_interval_secs.map(Duration::from_secs),
        });
        Ok(Self {
            addrs: Vec::new(),
            knobs,
            state,
            stops: Vec::new(),
            stop_served: watch::channel(false).0,
        })
    }

    /// Serves one connection (any byte stream) until it closes or the simulator stops.
    pub fn serve<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(&self, stream: S) {
        tokio::spawn(connection(
            stream,
            Arc::clone(&self.state),
            self.stop_served.subscribe(),
        ));
    }

    /// Binds `cfg.listen` and starts.
    pub async fn bind(cfg: &SimConfig) -> Result<Self> {
        let l = TcpListener::bind(&cfg.listen)
            .await
            .with_context(|| format!("listen {}", cfg.listen))?;
        Self::start(cfg, vec![l]).await
    }

    /// What a card's open pre-authorisations hold, fen.
    pub fn held(&self, pan: &str) -> Option<i64> {
        self.state.cards.lock().ok()?.get(pan).map(|c| c.held_fen)
    }

    /// A card's balance, fen.
    pub fn balance(&self, pan: &str) -> Option<i64> {
        self.state
            .cards
            .lock()
            .ok()?
            .get(pan)
            .map(|c| c.balance_fen)
    }

    /// Requests received with this MTI.
    pub fn received(&self, mti: &str) -> u32 {
        self.state
            .received
            .lock()
            .map_or(0, |r| r.get(mti).copied().unwrap_or(0))
    }

    /// Reversals that undid a transaction (repeats not counted).
    pub fn reversals_applied(&self) -> u32 {
        self.state.reversals_applied.load(Ordering::Relaxed)
    }

    /// Requests whose MAC did not verify.
    pub fn bad_macs(&self) -> u32 {
        self.state.bad_macs.load(Ordering::Relaxed)
    }

    /// Echoes the simulator sent.
    pub fn echoes_sent(&self) -> u32 {
        self.state.echoes_sent.load(Ordering::Relaxed)
    }

    /// Stops listener `i` and closes its connections.
    pub fn stop_listener(&self, i: usize) {
        if let Some(s) = self.stops.get(i) {
            let _ = s.send(true);
        }
    }

    /// Stops everything.
    pub fn shutdown(&self) {
        for s in &self.stops {
            let _ = s.send(true);
        }
        let _ = self.stop_served.send(true);
    }
}

impl Drop for IssuerSim {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept(l: TcpListener, state: Arc<SimState>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            a = l.accept() => match a {
                Ok((s, peer)) => {
                    tracing::info!(%peer, "issuer-sim: connection");
                    let _ = s.set_nodelay(true);
                    tokio::spawn(connection(s, Arc::clone(&state), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "issuer-sim: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    s: S,
    state: Arc<SimState>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut sink, mut frames) =
        Framed::new(s, FrameCodec::new(state.dialect.framing(), MAX_FRAME)).split();
    let (tx, mut rx) = mpsc::channel::<Option<Vec<u8>>>(1024);
    let mut last = tokio::time::Instant::now();
    let echo_every = state.echo_interval.unwrap_or(Duration::from_secs(86_400));
    let mut stan = 0u32;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            out = rx.recv() => match out {
                Some(Some(frame)) => {
                    last = tokio::time::Instant::now();
                    if sink.send(frame).await.is_err() { break; }
                }
                // A knob asked to close.
                Some(None) | None => break,
            },
            inc = frames.next() => match inc {
                Some(Ok(frame)) => {
                    last = tokio::time::Instant::now();
                    if state.knobs.close.load(Ordering::Relaxed) {
                        break;
                    }
                    let state = Arc::clone(&state);
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let reply = answer(&state, &frame);
                        let delay = state.knobs.delay_ms.load(Ordering::Relaxed);
                        if delay > 0 {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                        }
                        if state.knobs.drop_replies.load(Ordering::Relaxed) {
                            return;
                        }
                        let garbage = state.knobs.garbage.load(Ordering::Relaxed)
                            || state
                                .knobs
                                .garbage_next
                                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok();
                        let reply = if garbage {
                            Some(b"\x02\x10garbage, not ISO 8583".to_vec())
                        } else {
                            reply
                        };
                        if let Some(r) = reply {
                            let _ = tx.send(Some(r)).await;
                        }
                    });
                }
                _ => break,
            },
            _ = tokio::time::sleep_until(last + echo_every), if state.echo_interval.is_some() => {
                last = tokio::time::Instant::now();
                stan = stan % 999_999 + 1;
                let mut b = MessageBuilder::new(ECHO);
                b.set(7, transmission_time())
                    .set(11, format!("{stan:06}"))
                    .set(70, "301");
                if let Ok(v) = b.encode_to_vec(state.dialect) {
                    state.echoes_sent.fetch_add(1, Ordering::Relaxed);
                    if sink.send(v).await.is_err() { break; }
                }
            }
        }
    }
}

/// Field 90's middle (STAN, time, acquirer) of a request itself.
fn own_key(msg: &Message<'_>) -> Option<String> {
    Some(format!(
        "{}{}{:0>11}",
        msg.digits(11)?,
        msg.digits(7)?,
        msg.digits(32)?.to_string()
    ))
}

/// The original named by field 90.
fn original_key(msg: &Message<'_>) -> Option<String> {
    msg.digits(90)?.to_string().get(4..31).map(str::to_owned)
}

fn pan_of(msg: &Message<'_>) -> Option<String> {
    if let Some(p) = msg.digits(2) {
        return Some(p.to_string());
    }
    let t = msg.digits(35)?.to_string();
    t.split(['D', '=']).next().map(str::to_owned)
}

/// The answer to one frame (`None`: nothing to say).
fn answer(state: &SimState, frame: &[u8]) -> Option<Vec<u8>> {
    let msg = match codec::decode(state.dialect, frame) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "issuer-sim: undecodable request");
            return None;
        }
    };
    let mti = msg.mti();
    if mti.is_response() {
        return None;
    }
    if let Ok(mut r) = state.received.lock() {
        *r.entry(mti.to_string()).or_default() += 1;
    }
    let mut b = MessageBuilder::new(mti.response());
    for n in [2, 3, 4, 7, 11, 12, 13, 25, 32, 37, 41, 42, 49, 70, 90] {
        if let Some(f) = msg.field(n) {
            b.set(
                n,
                FieldInput::Wire {
                    data: std::borrow::Cow::Owned(f.wire().to_vec()),
                    units: f.units(),
                },
            );
        }
    }
    if mti.as_str() == "0800" {
        b.set(39, "00");
        return b.encode_to_vec(state.dialect).ok();
    }
    let mac_ok = msg.binary(64).is_some_and(|m| {
        state
            .hsm
            .verify_mac(&state.zak, state.mac_algorithm, msg.mac_data(), &m)
            .unwrap_or(false)
    });
    let (rc, extra) = if mac_ok {
        decide(state, &msg)
    } else {
        state.bad_macs.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(mti = %mti, "issuer-sim: bad MAC");
        ("A0", Extra::None)
    };
    b.set(39, rc);
    match extra {
        Extra::Auth(a) => {
            b.set(38, a);
        }
        Extra::Balance(bal) => {
            b.set(
                54,
                format!(
                    "1002156{}{:012}",
                    if bal < 0 { 'D' } else { 'C' },
                    bal.unsigned_abs()
                ),
            );
        }
        Extra::None => {}
    }
    let mut out = Vec::with_capacity(256);
    b.encode_with_mac(state.dialect, &mut out, |data| {
        state
            .hsm
            .generate_mac(&state.zak, state.mac_algorithm, data)
            .ok()
            .map(|m| m.field64())
    })
    .ok()?;
    Some(out)
}

enum Extra {
    None,
    Auth(String),
    Balance(i64),
}

/// The simulator's IBM 3624 parameters: every PIN digit counts.
const IBM3624: Ibm3624 = Ibm3624 {
    decimalisation: Ibm3624::STANDARD_TABLE,
    check: hsm_sim::CheckLength::WholePin,
};

fn pin_ok(state: &SimState, msg: &Message<'_>, pan: &str, offset: &str) -> bool {
    // TDES: 52. SM4: 63 as usage `SM` and the 16-byte block.
    let block: Option<Vec<u8>> = match state.pin_format {
        PinFormat::Sm4 => msg
            .binary(63)
            .and_then(|f| f.strip_prefix(b"SM".as_slice()).map(<[u8]>::to_vec)),
        _ => msg.binary(52).map(|b| b.into_owned()),
    };
    let Some(block) = block.and_then(|b| EncryptedPinBlock::new(&b).ok()) else {
        return false;
    };
    validation_from_pan(pan)
        .and_then(|v| {
            state.hsm.verify_pin_ibm3624(
                &state.zpk,
                &block,
                state.pin_format,
                pan,
                &state.pvk,
                &IBM3624,
                &v,
                offset,
            )
        })
        .unwrap_or(false)
}

/// Whether the reversal of the request with `key` came before it (the acquirer gave up on
/// it): the request is refused.
fn reversed_first(txns: &HashMap<String, Txn>, key: &str) -> bool {
    txns.get(key)
        .is_some_and(|t| t.reversed && t.pan.is_empty())
}

/// Reverses a pre-authorisation (its hold goes), its void (the hold again), a completion
/// (the money back, the hold again) or a completion's void (the completion stands again,
/// the hold goes); `false` when `key` is none of these.
fn reverse_hold_family(
    cards: &mut HashMap<String, Card>,
    txns: &mut HashMap<String, Txn>,
    key: &str,
) -> bool {
    let Some(t) = txns.get(key) else {
        return false;
    };
    let (kind, pan, amount, delta, refunded, voided, completed, original) = (
        t.kind,
        t.pan.clone(),
        t.amount_fen,
        t.delta_fen,
        t.refunded_fen,
        t.voided,
        t.completed,
        t.original.clone(),
    );
    let of_kind = original.as_ref().and_then(|k| txns.get(k)).map(|o| o.kind);
    let family = match kind {
        Booked::PreAuth | Booked::PreAuthVoid | Booked::Completion => true,
        Booked::Void => of_kind == Some(Booked::Completion),
        _ => false,
    };
    if !family {
        return false;
    }
    // (balance change, hold change)
    let (mut balance, mut held) = (0, 0);
    match kind {
        Booked::PreAuth if !voided && !completed => held -= amount,
        Booked::PreAuthVoid => {
            if let Some(pre) = original.as_ref().and_then(|k| txns.get_mut(k))
                && pre.voided
                && !pre.reversed
            {
                pre.voided = false;
                held += pre.amount_fen;
            }
        }
        Booked::Completion if !voided => {
            balance -= delta + refunded;
            if let Some(pre) = original.as_ref().and_then(|k| txns.get_mut(k))
                && pre.completed
                && !pre.reversed
            {
                pre.completed = false;
                held += pre.amount_fen;
            }
        }
        Booked::Void => {
            let completion = original.as_ref().and_then(|k| txns.get_mut(k));
            let pre_key = match completion {
                Some(c) if c.voided && !c.reversed => {
                    c.voided = false;
                    balance -= delta;
                    c.original.clone()
                }
                _ => None,
            };
            if let Some(pre) = pre_key.as_ref().and_then(|k| txns.get_mut(k))
                && !pre.completed
                && !pre.voided
                && !pre.reversed
            {
                pre.completed = true;
                held -= pre.amount_fen;
            }
        }
        _ => {}
    }
    if let Some(c) = cards.get_mut(&pan) {
        c.balance_fen += balance;
        c.held_fen += held;
    }
    if let Some(t) = txns.get_mut(key) {
        t.reversed = true;
    }
    true
}

/// Authorisation and the issuer's books.
fn decide(state: &SimState, msg: &Message<'_>) -> (&'static str, Extra) {
    let mti = msg.mti().as_str().to_owned();
    let proc = msg.digits(3).map(|d| d.to_string()).unwrap_or_default();
    let amount = msg
        .digits(4)
        .and_then(|d| d.to_u64())
        .and_then(|a| i64::try_from(a).ok())
        .unwrap_or(0);
    let (Ok(mut cards), Ok(mut txns)) = (state.cards.lock(), state.txns.lock()) else {
        return ("96", Extra::None);
    };
    let auth = || {
        let n = state.auth.fetch_add(1, Ordering::Relaxed);
        Extra::Auth(format!("{:06}", n % 1_000_000))
    };
    match (mti.as_str(), proc.get(..2).unwrap_or("")) {
        // Reversals: undo the original once; always acknowledged.
        // Reversals come over a network that can reorder them: the books come out the same
        // whatever the order (a sale reversed is over, whatever is reversed after it; a
        // reversal of what is not booked yet waits for it, see the advice below).
        ("0420" | "0421", _) => {
            let Some(key) = original_key(msg) else {
                return ("30", Extra::None);
            };
            let Some(orig) = txns.get_mut(&key) else {
                // Not booked (yet): remember the reversal; a late advice of it books nothing.
                txns.insert(key, Txn::reversed_before_booked());
                return ("00", Extra::None);
            };
            if orig.reversed {
                return ("00", Extra::None);
            }
            if reverse_hold_family(&mut cards, &mut txns, &key) {
                state.reversals_applied.fetch_add(1, Ordering::Relaxed);
                return ("00", Extra::None);
            }
            let Some(orig) = txns.get_mut(&key) else {
                return ("00", Extra::None);
            };
            orig.reversed = true;
            let (pan, delta, amount, sale) = (
                orig.pan.clone(),
                orig.delta_fen,
                orig.amount_fen,
                orig.original.clone(),
            );
            let sale_over = sale
                .as_ref()
                .and_then(|k| txns.get(k))
                .is_some_and(|s| s.reversed);
            let orig = txns.get(&key).map(|t| (t.voided, t.refunded_fen));
            // A sale gives back what it still holds (nothing once voided, less what was
            // refunded); a void or refund takes back what it gave, unless its sale was
            // reversed since (that reversal settled the sale whole).
            let change = match (&sale, orig) {
                (None, Some((true, _))) => 0,
                (None, Some((false, refunded))) => -delta - refunded,
                (Some(_), _) if sale_over => 0,
                (Some(_), _) => -delta,
                (None, None) => 0,
            };
            if let Some(c) = cards.get_mut(&pan) {
                c.balance_fen += change;
            }
            // A reversed void lets the sale stand again; a reversed refund frees its amount.
            if let Some(sale) = sale.and_then(|k| txns.get_mut(&k))
                && !sale.reversed
            {
                if sale.voided {
                    sale.voided = false;
                } else {
                    sale.refunded_fen -= amount;
                }
            }
            state.reversals_applied.fetch_add(1, Ordering::Relaxed);
            ("00", Extra::None)
        }
        // Pre-authorisation: a hold on the card.
        ("0100", "03") => {
            let (Some(key), Some(pan)) = (own_key(msg), pan_of(msg)) else {
                return ("30", Extra::None);
            };
            let Some(card) = cards.get_mut(&pan) else {
                return ("14", Extra::None);
            };
            if !pin_ok(state, msg, &pan, &card.offset) {
                return ("55", Extra::None);
            }
            if reversed_first(&txns, &key) {
                return ("12", Extra::None);
            }
            if card.balance_fen - card.held_fen < amount {
                return ("51", Extra::None);
            }
            card.held_fen += amount;
            txns.insert(key, Txn::new(Booked::PreAuth, pan, amount, 0, None));
            ("00", auth())
        }
        // A pre-authorisation's void: its hold released.
        ("0100", "20") => {
            let (Some(key), Some(pre_key)) = (own_key(msg), original_key(msg)) else {
                return ("30", Extra::None);
            };
            if reversed_first(&txns, &key) {
                return ("12", Extra::None);
            }
            let Some(pre) = txns.get_mut(&pre_key).filter(|t| t.kind == Booked::PreAuth) else {
                return ("25", Extra::None);
            };
            if pre.reversed || pre.voided || pre.completed {
                return ("12", Extra::None);
            }
            if pre.amount_fen != amount {
                return ("64", Extra::None);
            }
            pre.voided = true;
            let pan = pre.pan.clone();
            if let Some(c) = cards.get_mut(&pan) {
                c.held_fen -= amount;
            }
            txns.insert(
                key,
                Txn::new(Booked::PreAuthVoid, pan, amount, 0, Some(pre_key)),
            );
            ("00", auth())
        }
        // A completion (advice, or request), naming its pre-authorisation in 90: the hold
        // becomes a debit, up to 115 % of it.
        ("0220" | "0221" | "0200", "00") if msg.field(90).is_some() => {
            let (Some(key), Some(pre_key)) = (own_key(msg), original_key(msg)) else {
                return ("30", Extra::None);
            };
            if reversed_first(&txns, &key) {
                return ("12", Extra::None);
            }
            if txns.contains_key(&key) {
                return ("00", auth());
            }
            let Some(pre) = txns.get_mut(&pre_key).filter(|t| t.kind == Booked::PreAuth) else {
                return ("25", Extra::None);
            };
            if pre.reversed || pre.voided || pre.completed {
                return ("12", Extra::None);
            }
            if amount * 100 > pre.amount_fen * 115 {
                return ("61", Extra::None);
            }
            let (pan, held) = (pre.pan.clone(), pre.amount_fen);
            let Some(card) = cards.get_mut(&pan) else {
                return ("14", Extra::None);
            };
            if card.balance_fen - card.held_fen + held < amount {
                return ("51", Extra::None);
            }
            card.balance_fen -= amount;
            card.held_fen -= held;
            if let Some(pre) = txns.get_mut(&pre_key) {
                pre.completed = true;
            }
            txns.insert(
                key,
                Txn::new(Booked::Completion, pan, amount, -amount, Some(pre_key)),
            );
            ("00", auth())
        }
        // Stand-in advice of a sale: the acquirer approved it; book it once.
        ("0220" | "0221", "00") => {
            let (Some(key), Some(pan)) = (own_key(msg), pan_of(msg)) else {
                return ("30", Extra::None);
            };
            if let std::collections::hash_map::Entry::Vacant(v) = txns.entry(key) {
                if let Some(c) = cards.get_mut(&pan) {
                    c.balance_fen -= amount;
                }
                v.insert(Txn::new(Booked::Sale, pan, amount, -amount, None));
            }
            ("00", Extra::None)
        }
        // Refund of an earlier sale.
        ("0220" | "0221", "20") => {
            let Some(key) = own_key(msg) else {
                return ("30", Extra::None);
            };
            if reversed_first(&txns, &key) {
                return ("12", Extra::None);
            }
            if txns.contains_key(&key) {
                return ("00", auth());
            }
            let sale = original_key(msg);
            let Some(orig) = sale.as_ref().and_then(|k| txns.get_mut(k)) else {
                return ("25", Extra::None);
            };
            if orig.reversed || orig.voided {
                return ("12", Extra::None);
            }
            if orig.refunded_fen + amount > orig.amount_fen {
                return ("61", Extra::None);
            }
            orig.refunded_fen += amount;
            let pan = orig.pan.clone();
            if let Some(c) = cards.get_mut(&pan) {
                c.balance_fen += amount;
            }
            txns.insert(key, Txn::new(Booked::Refund, pan, amount, amount, sale));
            ("00", auth())
        }
        // Void of an earlier sale.
        ("0200", "02") => {
            let Some(key) = own_key(msg) else {
                return ("30", Extra::None);
            };
            if reversed_first(&txns, &key) {
                return ("12", Extra::None);
            }
            let sale = original_key(msg);
            let Some(orig) = sale.as_ref().and_then(|k| txns.get_mut(k)) else {
                return ("25", Extra::None);
            };
            if !matches!(orig.kind, Booked::Sale | Booked::Completion)
                || orig.reversed
                || orig.voided
                || orig.refunded_fen > 0
            {
                return ("12", Extra::None);
            }
            if orig.amount_fen != amount {
                return ("64", Extra::None);
            }
            // The sale is undone; reversing the void lets it stand again. A completion's
            // pre-authorisation holds again.
            orig.voided = true;
            let (pan, back, pre) = (orig.pan.clone(), -orig.delta_fen, orig.original.clone());
            let held = match pre.as_ref().and_then(|k| txns.get_mut(k)) {
                Some(pre) if pre.completed && !pre.reversed => {
                    pre.completed = false;
                    pre.amount_fen
                }
                _ => 0,
            };
            if let Some(c) = cards.get_mut(&pan) {
                c.balance_fen += back;
                c.held_fen += held;
            }
            txns.insert(key, Txn::new(Booked::Void, pan, amount, back, sale));
            ("00", auth())
        }
        // Sale and balance inquiry.
        ("0200", "00" | "31") => {
            let (Some(key), Some(pan)) = (own_key(msg), pan_of(msg)) else {
                return ("30", Extra::None);
            };
            let Some(card) = cards.get_mut(&pan) else {
                return ("14", Extra::None);
            };
            if !pin_ok(state, msg, &pan, &card.offset) {
                return ("55", Extra::None);
            }
            if proc.starts_with("31") {
                return ("00", Extra::Balance(card.balance_fen));
            }
            if reversed_first(&txns, &key) {
                return ("12", Extra::None);
            }
            if card.balance_fen < amount {
                return ("51", Extra::None);
            }
            card.balance_fen -= amount;
            txns.insert(key, Txn::new(Booked::Sale, pan, amount, -amount, None));
            ("00", auth())
        }
        _ => ("12", Extra::None),
    }
}

#[cfg(test)]
mod tests {
    //! The issuer's books, request by request (MACs are checked before `decide`).
    #![allow(clippy::unwrap_used)]

    use super::*;

    const PAN: &str = "6217001000000000011";
    const ACQUIRER: &str = "00000001";

    struct Books {
        sim: IssuerSim,
        stan: u32,
    }

    /// (MTI, STAN, time) of a request, as field 90 names it.
    type Ref = (&'static str, u32, &'static str);

    impl Books {
        fn new() -> Self {
            Self {
                sim: IssuerSim::new(&SimConfig::demo().unwrap()).unwrap(),
                stan: 0,
            }
        }

        fn balance(&self) -> i64 {
            self.sim.balance(PAN).unwrap()
        }

        /// Sends `mti` with processing code `proc` for `amount`, naming `original` in 90;
        /// its field 39 and its own reference.
        fn send(
            &mut self,
            mti: &'static str,
            proc: &str,
            amount: i64,
            original: Option<Ref>,
        ) -> (&'static str, Ref) {
            self.stan += 1;
            let time = "0302010000";
            let mut b = MessageBuilder::new(Mti::parse(mti).unwrap());
            b.set(2, PAN)
                .set(3, proc.to_owned())
                .set(4, format!("{amount:012}"))
                .set(7, time)
                .set(11, format!("{:06}", self.stan))
                .set(32, ACQUIRER);
            if let Some((m, s, t)) = original {
                b.set(90, format!("{m}{s:06}{t}{ACQUIRER:0>11}{:0>11}", 0));
            }
            let frame = b.encode_to_vec(self.sim.state.dialect).unwrap();
            let msg = codec::decode(self.sim.state.dialect, &frame).unwrap();
            let (rc, _) = decide(&self.sim.state, &msg);
            (rc, (mti, self.stan, time))
        }

        fn advice(&mut self, amount: i64) -> Ref {
            let (rc, r) = self.send("0220", "000000", amount, None);
            assert_eq!(rc, "00");
            r
        }

        fn reverse(&mut self, of: Ref, amount: i64) {
            assert_eq!(self.send("0420", "000000", amount, Some(of)).0, "00");
        }
    }

    #[test]
    fn a_reversal_of_a_void_after_its_sale_was_reversed_takes_nothing() {
        for sale_first in [true, false] {
            let mut b = Books::new();
            let opening = b.balance();
            let sale = b.advice(1_000);
            let (rc, void) = b.send("0200", "020000", 1_000, Some(sale));
            assert_eq!(rc, "00");
            assert_eq!(b.balance(), opening, "voided");
            if sale_first {
                b.reverse(sale, 1_000);
                b.reverse(void, 1_000);
            } else {
                b.reverse(void, 1_000);
                b.reverse(sale, 1_000);
            }
            assert_eq!(b.balance(), opening, "sale reversed first: {sale_first}");
        }
    }

    #[test]
    fn a_reversal_of_a_refund_after_its_sale_was_reversed_takes_nothing() {
        for sale_first in [true, false] {
            let mut b = Books::new();
            let opening = b.balance();
            let sale = b.advice(1_000);
            let (rc, refund) = b.send("0220", "200000", 300, Some(sale));
            assert_eq!(rc, "00");
            assert_eq!(b.balance(), opening - 700);
            if sale_first {
                b.reverse(sale, 1_000);
                b.reverse(refund, 300);
            } else {
                b.reverse(refund, 300);
                b.reverse(sale, 1_000);
            }
            assert_eq!(b.balance(), opening, "sale reversed first: {sale_first}");
        }
    }

    #[test]
    fn a_reversal_before_what_it_reverses_leaves_nothing_booked() {
        let mut b = Books::new();
        let opening = b.balance();
        // The advice the reversal names has not come yet (the reversal takes the next
        // trace number, the advice the one after).
        let next = ("0220", b.stan + 2, "0302010000");
        b.reverse(next, 1_000);
        assert_eq!(b.advice(1_000), next);
        assert_eq!(b.balance(), opening, "the late advice books nothing");
        // A void that comes after its own reversal is refused.
        let sale = b.advice(500);
        let void_ref = ("0200", b.stan + 2, "0302010000");
        b.reverse(void_ref, 500);
        let (rc, _) = b.send("0200", "020000", 500, Some(sale));
        assert_eq!(rc, "12");
        assert_eq!(b.balance(), opening - 500);
    }
}
