//! The terminal's transactions, as frames on the wire and as flows with the switch.
//!
//! ```text
//! financial request:  persist reversal ─▶ send ─▶ reply? ─┬─ MAC ok ─▶ log + clear reversal
//!                                                         └─ timeout / bad MAC: reversal stays,
//!                                                            sent before anything else next time
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use codec::framing::FrameCodec;
use codec::{Dialect, FieldInput, Framing, Message, MessageBuilder, Mti, decode};
use futures_util::{SinkExt, StreamExt};
use hsm_sim::ClearPin;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::Framed;

use crate::cipher::{Cipher, WorkingKeys};
use crate::store::{Follows, LogEntry, Store, StoreError};

mod preauth;
pub use preauth::PREAUTH_BATCHES;
pub use preauth::PreauthRef;

/// Largest reply frame the terminal reads (the 2-byte length allows no more).
const MAX_FRAME: usize = 65_535;

/// A transaction that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// No working keys: sign on first.
    #[error("not signed on: sign on first")]
    NotSignedOn,
    /// The terminal was never set up (no TID, MID or TMK).
    #[error("terminal not initialised: run `terminal-fw init`")]
    NotInitialised,
    /// The switch could not be reached.
    #[error("switch unreachable at {addr}: {source}")]
    Unreachable {
        /// Address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No reply in time; a reversal will be sent first next time.
    #[error("no reply from the switch in time (a reversal is pending)")]
    Timeout,
    /// The reply's MAC is wrong; a reversal will be sent first next time.
    #[error("the reply's MAC is wrong (a reversal is pending)")]
    BadReplyMac,
    /// Sign-on keys failed their check values.
    #[error("working keys from sign-on fail their check values: refused")]
    BadKeys,
    /// The reply could not be read.
    #[error("unreadable reply: {0}")]
    BadReply(String),
    /// Bad input from the user.
    #[error("{0}")]
    Input(String),
    /// State.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Operator rules.
    #[error(transparent)]
    Operator(#[from] crate::operators::OperatorError),
}

/// A card as read (swiped, inserted or keyed).
#[derive(Clone)]
pub struct Card {
    /// Card number.
    pub pan: String,
    /// Expiry YYMM, if read.
    pub expiry: Option<String>,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Card({})", codec::mask::pan(&self.pan))
    }
}

/// An answered transaction.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Response code.
    pub rc: String,
    /// RRN.
    pub rrn: String,
    /// Authorisation code.
    pub auth_code: String,
    /// Balance field 54, for balance inquiries.
    pub balance: Option<String>,
    /// The log entry written, for receipts.
    pub entry: Option<LogEntry>,
    /// The reply frame.
    pub reply: Vec<u8>,
}

/// An amount in fen and a count.
pub type Totals = (i64, u32);

/// A settlement's result.
#[derive(Clone, Debug)]
pub struct Settlement {
    /// Whether the switch agreed with the terminal's totals.
    pub balanced: bool,
    /// Sales that stand: amount, count.
    pub sales: Totals,
    /// Refunds: amount, count.
    pub refunds: Totals,
    /// The batch settled.
    pub batch: u32,
}

const TPDU: [u8; 5] = [0x60, 0x00, 0x03, 0x00, 0x00];
const HEADER: [u8; 6] = [0x60, 0x31, 0x00, 0x31, 0x10, 0x03];

/// The terminal: its state, its connection to the switch.
pub struct Terminal {
    /// Persistent state.
    pub store: Store,
    addr: SocketAddr,
    stream: Option<Framed<Box<dyn Io>, FrameCodec>>,
    /// Dial TLS with this, when set.
    tls: Option<TlsConnector>,
    /// How long to wait for a reply.
    pub timeout: Duration,
    tid: String,
    mid: String,
    /// TDES or SM4.
    cipher: Cipher,
    /// Load-generator terminals keep STAN and batch in memory and persist no reversal or log.
    volatile: Option<Volatile>,
}

/// What a volatile (load-generator) terminal keeps in memory instead of its store.
struct Volatile {
    stan: u32,
    batch: u32,
    /// The working keys, scheduled once at sign-on instead of read, opened and scheduled
    /// for every PIN block and MAC.
    keys: Option<Arc<WorkingKeys>>,
}

/// A connection to the switch: TCP, or TLS over TCP.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

fn reply_text(m: &Message<'_>, n: u8) -> String {
    m.text(n).unwrap_or_default().to_owned()
}

impl Terminal {
    /// Key injection and set-up: TID, MID, TMK (sealed under the device secret), TDES.
    pub fn init(store: &mut Store, tid: &str, mid: &str, tmk_hex: &str) -> Result<(), TxnError> {
        Self::init_with(store, tid, mid, tmk_hex, Cipher::Tdes)
    }

    /// [`Terminal::init`] for a terminal of `cipher` (an SM4 terminal takes a 16-byte SM4
    /// TMK).
    pub fn init_with(
        store: &mut Store,
        tid: &str,
        mid: &str,
        tmk_hex: &str,
        cipher: Cipher,
    ) -> Result<(), TxnError> {
        if tid.len() != 8 || mid.len() != 15 {
            return Err(TxnError::Input("TID is 8 characters and MID 15".into()));
        }
        let tmk = zeroize::Zeroizing::new(
            hex::decode(tmk_hex).map_err(|_| TxnError::Input("the TMK must be hex".into()))?,
        );
        if !cipher.takes_tmk(&tmk) {
            return Err(TxnError::Input(match cipher {
                Cipher::Tdes => "the TMK must be 8, 16 or 24 bytes".into(),
                Cipher::Sm4 => "an SM4 TMK is 16 bytes (32 hex characters)".into(),
            }));
        }
        store.set_many(&[
            ("tid", tid.as_bytes()),
            ("mid", mid.as_bytes()),
            ("algorithm", cipher.as_str().as_bytes()),
        ])?;
        store.set_secret("tmk", &tmk)?;
        Ok(())
    }

    /// A terminal over `store`, talking to the switch at `addr`.
    pub fn open(store: Store, addr: SocketAddr) -> Result<Self, TxnError> {
        let tid = store.get_text("tid")?.ok_or(TxnError::NotInitialised)?;
        let mid = store.get_text("mid")?.ok_or(TxnError::NotInitialised)?;
        let cipher = match store.get_text("algorithm")? {
            Some(a) => Cipher::parse(&a).ok_or(TxnError::NotInitialised)?,
            None => Cipher::Tdes,
        };
        Ok(Self {
            store,
            addr,
            stream: None,
            tls: None,
            timeout: Duration::from_secs(30),
            tid,
            mid,
            cipher,
            volatile: None,
        })
    }

    /// Dials the switch over TLS with `connector` from the next connection on.
    pub fn with_tls(&mut self, connector: TlsConnector) {
        self.tls = Some(connector);
        self.stream = None;
    }

    /// Makes this a load-generator terminal: STAN and batch in memory, no reversal persisted
    /// and no log written, so the generator spends its CPU on frames, PIN blocks and MACs.
    /// A real terminal never runs like this.
    pub fn make_volatile(&mut self) -> Result<(), TxnError> {
        let keys = match self.open_keys() {
            Ok(k) => Some(Arc::new(k)),
            Err(TxnError::NotSignedOn) => None,
            Err(e) => return Err(e),
        };
        self.volatile = Some(Volatile {
            stan: self.store.get_u32("stan")?,
            batch: self.store.get_u32("batch")?.max(1),
            keys,
        });
        Ok(())
    }

    /// The next STAN: persisted before use, except for volatile terminals.
    fn next_stan(&mut self) -> Result<u32, TxnError> {
        match &mut self.volatile {
            Some(v) => {
                v.stan = v.stan % 999_999 + 1;
                Ok(v.stan)
            }
            None => Ok(self.store.next_stan()?),
        }
    }

    /// Terminal ID.
    pub fn tid(&self) -> &str {
        &self.tid
    }

    /// Merchant ID.
    pub fn mid(&self) -> &str {
        &self.mid
    }

    /// The open batch.
    pub fn batch(&self) -> Result<u32, TxnError> {
        if let Some(v) = &self.volatile {
            return Ok(v.batch);
        }
        Ok(self.store.get_u32("batch")?.max(1))
    }

    /// The working keys: a volatile terminal's scheduled ones, else read from the store
    /// (sealed there) and scheduled for this use.
    fn keys(&self) -> Result<Arc<WorkingKeys>, TxnError> {
        if let Some(k) = self.volatile.as_ref().and_then(|v| v.keys.as_ref()) {
            return Ok(Arc::clone(k));
        }
        self.open_keys().map(Arc::new)
    }

    fn open_keys(&self) -> Result<WorkingKeys, TxnError> {
        let tpk = self.store.get_secret("tpk")?.ok_or(TxnError::NotSignedOn)?;
        let tak = self.store.get_secret("tak")?.ok_or(TxnError::NotSignedOn)?;
        WorkingKeys::open(self.cipher, &tpk, &tak)
    }

    /// TDES or SM4.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    fn dialect(&self) -> &'static Dialect {
        self.cipher.dialect()
    }

    fn builder(&self, mti: &str) -> Result<MessageBuilder<'static>, TxnError> {
        let mti = Mti::parse(mti).ok_or_else(|| TxnError::Input(format!("bad MTI {mti}")))?;
        let mut b = MessageBuilder::new(mti);
        let mut h = TPDU.to_vec();
        h.extend_from_slice(&HEADER);
        b.header(h);
        Ok(b)
    }

    fn seal(&self, b: &mut MessageBuilder<'static>) -> Result<Vec<u8>, TxnError> {
        let keys = self.keys()?;
        let mut out = Vec::with_capacity(256);
        b.encode_with_mac(self.dialect(), &mut out, |d| Some(keys.mac(d)))
            .map_err(|e| TxnError::Input(e.to_string()))?;
        Ok(out)
    }

    /// Talks to the switch at `addr` from the next request on (another node).
    pub fn redial(&mut self, addr: SocketAddr) {
        self.addr = addr;
        self.stream = None;
    }

    async fn connect(&mut self) -> Result<&mut Framed<Box<dyn Io>, FrameCodec>, TxnError> {
        if self.stream.is_none() {
            let addr = self.addr;
            let unreachable = |source| TxnError::Unreachable { addr, source };
            let s = TcpStream::connect(addr).await.map_err(unreachable)?;
            let _ = s.set_nodelay(true);
            let io: Box<dyn Io> = match &self.tls {
                Some(tls) => {
                    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                    Box::new(tls.connect(name, s).await.map_err(unreachable)?)
                }
                None => Box::new(s),
            };
            self.stream = Some(Framed::new(io, FrameCodec::new(Framing::U16, MAX_FRAME)));
        }
        self.stream.as_mut().ok_or(TxnError::NotInitialised)
    }

    /// Writes `frame` (with its 2-byte length) without waiting for a reply.
    pub async fn send_only(&mut self, frame: &[u8]) -> Result<(), TxnError> {
        let addr = self.addr;
        let s = self.connect().await?;
        if let Err(source) = s.send(frame).await {
            self.stream = None;
            return Err(TxnError::Unreachable { addr, source });
        }
        Ok(())
    }

    /// Sends a frame and reads the reply.
    pub async fn exchange(&mut self, frame: &[u8]) -> Result<Vec<u8>, TxnError> {
        self.send_only(frame).await?;
        let timeout = self.timeout;
        let s = self.connect().await?;
        let read = async {
            match s.next().await {
                Some(frame) => frame.map(|f| f.to_vec()),
                None => Err(std::io::ErrorKind::UnexpectedEof.into()),
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(source)) => {
                self.stream = None;
                Err(TxnError::Unreachable {
                    addr: self.addr,
                    source,
                })
            }
            Err(_) => {
                self.stream = None;
                Err(TxnError::Timeout)
            }
        }
    }

    /// Sign-on: sends 0800 (60.3 = 003), checks field 62's check values and installs the
    /// working keys; refuses keys that fail their check values.
    pub async fn sign_on(&mut self, operator: &str) -> Result<Answer, TxnError> {
        self.send_pending_reversal().await?;
        let stan = self.next_stan()?;
        let mut b = self.builder("0800")?;
        b.set(11, format!("{stan:06}"))
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(60, format!("00{:06}003", self.batch()?))
            .set(63, format!("0{operator}"));
        let frame = b
            .encode_to_vec(self.dialect())
            .map_err(|e| TxnError::Input(e.to_string()))?;
        let reply = self.exchange(&frame).await?;
        let m = decode(self.dialect(), &reply).map_err(|e| TxnError::BadReply(e.to_string()))?;
        let rc = reply_text(&m, 39);
        if rc == "00" {
            let f62 = m.bytes(62).ok_or(TxnError::BadKeys)?;
            let tmk = self
                .store
                .get_secret("tmk")?
                .ok_or(TxnError::NotInitialised)?;
            // The keys come under the cipher the terminal was set up with; a 16-byte TMK
            // serves as either, so a terminal whose range the acquirer moved to the other
            // cipher learns it here: only the other cipher's check values then hold (and
            // only a holder of the TMK can make them).
            let (tpk, tak) = match self.cipher.open_sign_on(&tmk, f62) {
                Ok(keys) => keys,
                Err(TxnError::BadKeys) if tmk.len() == 16 => {
                    let other = self.cipher.other();
                    let keys = other.open_sign_on(&tmk, f62)?;
                    self.cipher = other;
                    self.store
                        .set_many(&[("algorithm", other.as_str().as_bytes())])?;
                    keys
                }
                Err(e) => return Err(e),
            };
            let batch = m
                .get("60.2")
                .ok()
                .flatten()
                .and_then(|v| v.digits())
                .and_then(|d| d.to_u64())
                .unwrap_or(1);
            self.store.set_secret("tpk", &tpk)?;
            self.store.set_secret("tak", &tak)?;
            self.store
                .set_many(&[("batch", batch.to_string().as_bytes())])?;
            if let Some(v) = &mut self.volatile {
                v.batch = batch as u32;
                v.keys = Some(Arc::new(WorkingKeys::open(self.cipher, &tpk, &tak)?));
            }
        }
        Ok(Answer {
            rrn: reply_text(&m, 37),
            auth_code: String::new(),
            balance: None,
            entry: None,
            rc,
            reply: reply.clone(),
        })
    }

    /// Sends the pending reversal, if any, before anything else. Cleared once the switch
    /// answers it (a reversal is always answered 00).
    pub async fn send_pending_reversal(&mut self) -> Result<Option<String>, TxnError> {
        if self.volatile.is_some() {
            return Ok(None); // volatile terminals persist no reversal
        }
        let Some(frame) = self.store.pending_reversal()? else {
            return Ok(None);
        };
        let reply = self.exchange(&frame).await?;
        let m = decode(self.dialect(), &reply).map_err(|e| TxnError::BadReply(e.to_string()))?;
        let rc = reply_text(&m, 39);
        self.store.clear_reversal()?;
        Ok(Some(rc))
    }

    fn pin_block(&mut self, pan: &str, pin: &str) -> Result<Vec<u8>, TxnError> {
        let keys = self.keys()?;
        let pin = ClearPin::new(pin)
            .map_err(|_| TxnError::Input("the PIN must be 4 to 12 digits".into()))?;
        keys.pin_block(&pin, pan)
    }

    fn card_fields(
        &mut self,
        b: &mut MessageBuilder<'static>,
        card: &Card,
        pin: Option<&str>,
    ) -> Result<(), TxnError> {
        b.set(2, card.pan.clone());
        if let Some(e) = &card.expiry {
            b.set(14, e.clone());
        }
        b.set(22, if pin.is_some() { "021" } else { "022" });
        if let Some(p) = pin {
            b.set(26, "12")
                .set(52, self.pin_block(&card.pan, p)?)
                .set(53, "2600000000000000");
        }
        Ok(())
    }

    /// The reversal of a 0200 request: same fields, MTI 0400, reason 98 (no reply).
    pub fn reversal_of(&mut self, original: &[u8]) -> Result<Vec<u8>, TxnError> {
        let m = decode(self.dialect(), original).map_err(|e| TxnError::BadReply(e.to_string()))?;
        let mut b = self.builder("0400")?;
        for n in [2u8, 3, 4, 11, 14, 22, 25, 41, 42, 49, 59, 60, 61] {
            if let Some(f) = m.field(n) {
                b.set(
                    n,
                    FieldInput::Wire {
                        data: std::borrow::Cow::Owned(f.wire().to_vec()),
                        units: f.units(),
                    },
                );
            }
        }
        b.set(39, "98");
        self.seal(&mut b)
    }

    /// A financial request: reversal persisted first (for requests that move money), the
    /// reply's MAC checked, the log written and the reversal cleared in one step.
    #[allow(clippy::too_many_arguments)]
    async fn financial(
        &mut self,
        frame: Vec<u8>,
        reversible: bool,
        kind: &str,
        masked: String,
        amount_fen: i64,
        operator: &str,
        follows: Follows,
    ) -> Result<Answer, TxnError> {
        self.send_pending_reversal().await?;
        if reversible && self.volatile.is_none() {
            let rev = self.reversal_of(&frame)?;
            self.store.put_reversal(&rev)?;
        }
        let reply = self.exchange(&frame).await?;
        let m = decode(self.dialect(), &reply).map_err(|e| TxnError::BadReply(e.to_string()))?;
        let rc = reply_text(&m, 39);
        let keys = self.keys()?;
        let mac_ok = m.bytes(64).is_some_and(|got| got == keys.mac(m.mac_data()));
        if !mac_ok && (rc == "00" || m.has(64)) {
            return Err(TxnError::BadReplyMac);
        }
        let req = decode(self.dialect(), &frame).map_err(|e| TxnError::BadReply(e.to_string()))?;
        let (time, date) = (reply_text(&m, 12), reply_text(&m, 13));
        let entry = LogEntry {
            stan: req.digits(11).and_then(|d| d.to_u64()).unwrap_or(0) as u32,
            batch: self.batch()?,
            kind: kind.to_owned(),
            masked_pan: masked,
            amount_fen,
            rrn: reply_text(&m, 37),
            auth_code: reply_text(&m, 38),
            rc: rc.clone(),
            when: format!(
                "{} {}",
                m.digits(13).map(|d| d.to_string()).unwrap_or(date),
                m.digits(12).map(|d| d.to_string()).unwrap_or(time)
            ),
            operator: operator.to_owned(),
            voided: false,
            original_stan: follows.original(),
        };
        if self.volatile.is_none() {
            self.store.log_and_clear(
                &entry,
                if rc == "00" {
                    follows
                } else {
                    Follows::Nothing
                },
            )?;
        }
        Ok(Answer {
            rrn: entry.rrn.clone(),
            auth_code: entry.auth_code.clone(),
            balance: m.text(54).map(str::to_owned),
            rc,
            entry: Some(entry),
            reply,
        })
    }

    /// Builds a sale frame (also used by tests to build and hold one).
    pub fn sale_frame(
        &mut self,
        card: &Card,
        pin: &str,
        amount_fen: u64,
        operator: &str,
    ) -> Result<Vec<u8>, TxnError> {
        let stan = self.next_stan()?;
        let mut b = self.builder("0200")?;
        self.card_fields(&mut b, card, Some(pin))?;
        b.set(3, "000000")
            .set(4, format!("{amount_fen:012}"))
            .set(11, format!("{stan:06}"))
            .set(25, "00")
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(60, format!("22{:06}000", self.batch()?))
            .set(63, format!("0{operator}"));
        self.seal(&mut b)
    }

    /// Sale (消费).
    pub async fn sale(
        &mut self,
        card: &Card,
        pin: &str,
        amount_fen: u64,
        operator: &str,
    ) -> Result<Answer, TxnError> {
        let frame = self.sale_frame(card, pin, amount_fen, operator)?;
        self.financial(
            frame,
            true,
            "sale",
            codec::mask::pan(&card.pan),
            amount_fen as i64,
            operator,
            Follows::Nothing,
        )
        .await
    }

    /// Balance inquiry (余额查询).
    pub async fn balance(
        &mut self,
        card: &Card,
        pin: &str,
        operator: &str,
    ) -> Result<Answer, TxnError> {
        let stan = self.next_stan()?;
        let mut b = self.builder("0200")?;
        self.card_fields(&mut b, card, Some(pin))?;
        b.set(3, "310000")
            .set(11, format!("{stan:06}"))
            .set(25, "00")
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(60, format!("01{:06}000", self.batch()?))
            .set(63, format!("0{operator}"));
        let frame = self.seal(&mut b)?;
        self.financial(
            frame,
            false,
            "balance",
            codec::mask::pan(&card.pan),
            0,
            operator,
            Follows::Nothing,
        )
        .await
    }

    /// Void (消费撤销) of the sale with trace `stan` in this batch; the supervisor password is
    /// checked here and never travels.
    pub async fn void(
        &mut self,
        supervisor_pw: &str,
        card: &Card,
        stan: u32,
        operator: &str,
    ) -> Result<Answer, TxnError> {
        crate::operators::Operators::new(&mut self.store)?.authorise_supervisor(supervisor_pw)?;
        let batch = self.batch()?;
        let original = self
            .store
            .log(batch)?
            .into_iter()
            .find(|e| e.stan == stan && (e.kind == "sale") && e.rc == "00")
            .ok_or_else(|| {
                TxnError::Input(format!(
                    "no approved sale with trace {stan:06} in this batch"
                ))
            })?;
        if original.voided {
            return Err(TxnError::Input(format!(
                "trace {stan:06} is already voided"
            )));
        }
        let new_stan = self.next_stan()?;
        let mut b = self.builder("0200")?;
        self.card_fields(&mut b, card, None)?;
        b.set(3, "200000")
            .set(4, format!("{:012}", original.amount_fen))
            .set(11, format!("{new_stan:06}"))
            .set(25, "00")
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(60, format!("23{batch:06}000"))
            .set(61, format!("{batch:06}{stan:06}"))
            .set(63, format!("0{operator}"));
        let frame = self.seal(&mut b)?;
        self.financial(
            frame,
            true,
            "void",
            codec::mask::pan(&card.pan),
            original.amount_fen,
            operator,
            Follows::Voids(stan),
        )
        .await
    }

    /// Refund (退货) of the sale with `rrn` made on `date_mmdd`; supervisor password checked here.
    pub async fn refund(
        &mut self,
        supervisor_pw: &str,
        card: &Card,
        amount_fen: u64,
        rrn: &str,
        date_mmdd: &str,
        operator: &str,
    ) -> Result<Answer, TxnError> {
        crate::operators::Operators::new(&mut self.store)?.authorise_supervisor(supervisor_pw)?;
        if rrn.len() != 12 || date_mmdd.len() != 4 {
            return Err(TxnError::Input(
                "the original RRN is 12 characters and its date MMDD".into(),
            ));
        }
        let stan = self.next_stan()?;
        let mut b = self.builder("0220")?;
        self.card_fields(&mut b, card, None)?;
        b.set(3, "200000")
            .set(4, format!("{amount_fen:012}"))
            .set(11, format!("{stan:06}"))
            .set(25, "00")
            .set(37, rrn.to_owned())
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(60, format!("25{:06}000", self.batch()?))
            .set(61, format!("000000000000{date_mmdd}"))
            .set(63, format!("0{operator}"));
        let frame = self.seal(&mut b)?;
        self.financial(
            frame,
            false,
            "refund",
            codec::mask::pan(&card.pan),
            amount_fen as i64,
            operator,
            Follows::Nothing,
        )
        .await
    }

    /// QR payment-code sale (付款码); the password goes as a PIN block formed with the code.
    pub async fn qr(
        &mut self,
        code: &str,
        amount_fen: u64,
        password: Option<&str>,
        operator: &str,
    ) -> Result<Answer, TxnError> {
        if !(16..=24).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TxnError::Input("a payment code is 16 to 24 digits".into()));
        }
        let stan = self.next_stan()?;
        let mut b = self.builder("0200")?;
        b.set(3, "000000")
            .set(4, format!("{amount_fen:012}"))
            .set(11, format!("{stan:06}"))
            .set(22, if password.is_some() { "031" } else { "032" })
            .set(25, "00")
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(59, format!("QR{code}"))
            .set(60, format!("22{:06}000", self.batch()?))
            .set(63, format!("0{operator}"));
        if let Some(p) = password {
            b.set(52, self.pin_block(code, p)?)
                .set(53, "2600000000000000");
        }
        let frame = self.seal(&mut b)?;
        self.financial(
            frame,
            true,
            "qr-sale",
            codec::mask::pan(code),
            amount_fen as i64,
            operator,
            Follows::Nothing,
        )
        .await
    }

    /// The batch's totals as the terminal sees them: sales that stand and refunds.
    pub fn totals(&self) -> Result<(Totals, Totals), TxnError> {
        let mut sales = (0i64, 0u32);
        let mut refunds = (0i64, 0u32);
        for e in self
            .store
            .log(self.batch()?)?
            .iter()
            .filter(|e| e.rc == "00")
        {
            match e.kind.as_str() {
                // A completion is a sale; holds and adjustments are not (an adjustment
                // changed its sale's amount in the log).
                "sale" | "qr-sale" | "completion" if !e.voided => {
                    sales = (sales.0 + e.amount_fen, sales.1 + 1)
                }
                "refund" => refunds = (refunds.0 + e.amount_fen, refunds.1 + 1),
                _ => {}
            }
        }
        Ok((sales, refunds))
    }

    /// Settlement (结算): totals in 48; when the switch disagrees, the batch is uploaded (批上送).
    /// The next batch opens either way.
    pub async fn settle(
        &mut self,
        supervisor_pw: &str,
        operator: &str,
    ) -> Result<Settlement, TxnError> {
        crate::operators::Operators::new(&mut self.store)?.authorise_supervisor(supervisor_pw)?;
        self.send_pending_reversal().await?;
        let batch = self.batch()?;
        let (sales, refunds) = self.totals()?;
        let balanced = self
            .send_settlement(batch, sales, refunds, operator)
            .await?;
        if !balanced {
            let entries: Vec<(u32, i64, &str)> = self
                .store
                .log(batch)?
                .iter()
                .filter(|e| {
                    e.rc == "00"
                        && (matches!(e.kind.as_str(), "sale" | "qr-sale" | "completion")
                            && !e.voided
                            || e.kind == "refund")
                })
                .map(|e| {
                    (
                        e.stan,
                        e.amount_fen,
                        match e.kind.as_str() {
                            "refund" => "25",
                            "completion" => "20",
                            _ => "22",
                        },
                    )
                })
                .collect();
            let chunks: Vec<_> = entries.chunks(16).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let last = i + 1 == chunks.len();
                let mut f48 = format!("{:02}", chunk.len());
                for (s, a, k) in *chunk {
                    f48.push_str(&format!("{s:06}{a:012}{k}"));
                }
                let stan = self.next_stan()?;
                let mut b = self.builder("0320")?;
                b.set(11, format!("{stan:06}"))
                    .set(41, self.tid.clone())
                    .set(42, self.mid.clone())
                    .set(48, f48)
                    .set(
                        60,
                        format!("00{batch:06}{}", if last { "202" } else { "201" }),
                    );
                let frame = self.seal(&mut b)?;
                self.exchange(&frame).await?;
            }
        }
        self.store
            .set_many(&[("batch", (batch + 1).to_string().as_bytes())])?;
        if let Some(v) = &mut self.volatile {
            v.batch = batch + 1;
        }
        Ok(Settlement {
            balanced,
            sales,
            refunds,
            batch,
        })
    }

    /// Sends a settlement (0500) of `batch` with these totals; whether the switch found it
    /// balanced. The batch is closed at the switch either way.
    async fn send_settlement(
        &mut self,
        batch: u32,
        sales: (i64, u32),
        refunds: (i64, u32),
        operator: &str,
    ) -> Result<bool, TxnError> {
        let stan = self.next_stan()?;
        let mut b = self.builder("0500")?;
        b.set(11, format!("{stan:06}"))
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(
                48,
                format!(
                    "{:012}{:03}{:012}{:03}0{:031}",
                    sales.0, sales.1, refunds.0, refunds.1, 0
                ),
            )
            .set(49, "156")
            .set(60, format!("00{batch:06}201"))
            .set(63, format!("0{operator}"));
        let frame = self.seal(&mut b)?;
        let reply = self.exchange(&frame).await?;
        let m = decode(self.dialect(), &reply).map_err(|e| TxnError::BadReply(e.to_string()))?;
        let keys = self.keys()?;
        if m.bytes(64) != Some(&keys.mac(m.mac_data())[..]) {
            return Err(TxnError::BadReplyMac);
        }
        if reply_text(&m, 39) != "00" {
            return Err(TxnError::BadReply(format!(
                "settlement answered {}",
                reply_text(&m, 39)
            )));
        }
        let f48 = m.digits(48).map(|d| d.to_string()).unwrap_or_default();
        Ok(f48.get(30..31) == Some("1"))
    }

    /// Load generator: closes the batch the switch holds open for this terminal (a
    /// settlement with zero totals), so a new run's trace numbers start in a new batch and
    /// never repeat an earlier run's (which the switch would answer `94`). Only for volatile
    /// terminals: a real one settles with its own totals.
    pub async fn close_open_batch(&mut self, operator: &str) -> Result<(), TxnError> {
        let Some(batch) = self.volatile.as_ref().map(|v| v.batch) else {
            return Err(TxnError::Input(
                "only a load-generator terminal closes its batch blind".into(),
            ));
        };
        self.send_settlement(batch, (0, 0), (0, 0), operator)
            .await?;
        if let Some(v) = &mut self.volatile {
            v.batch = batch % 999_999 + 1;
            v.stan = 0;
        }
        Ok(())
    }

    /// Echo test (回响).
    pub async fn echo(&mut self) -> Result<String, TxnError> {
        let stan = self.next_stan()?;
        let mut b = self.builder("0820")?;
        b.set(11, format!("{stan:06}"))
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(60, "00000000301");
        let frame = b
            .encode_to_vec(self.dialect())
            .map_err(|e| TxnError::Input(e.to_string()))?;
        let reply = self.exchange(&frame).await?;
        let m = decode(self.dialect(), &reply).map_err(|e| TxnError::BadReply(e.to_string()))?;
        Ok(reply_text(&m, 39))
    }
}
