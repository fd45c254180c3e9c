//! A test terminal: builds frames with the codec and the HSM's pure primitives, the way a
//! POS does, and talks to the switch over real TCP.

use std::time::Duration;

use codec::framing::FrameCodec;
use codec::{Dialect, Message, MessageBuilder, Mti, decode};
use futures_util::{SinkExt, StreamExt};
use hsm_sim::ClearPin;
use hsm_sim::primitives::cipher::DesKey;
use hsm_sim::primitives::sm4::{self, Sm4Key};
use hsm_sim::primitives::{mac, pinblock};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// A byte stream: TCP, or TLS over TCP.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A connection cut into frames by the codec's one length-prefix codec (2-byte length).
pub type Line = Framed<Box<dyn Io>, FrameCodec>;

/// `s`, framed.
pub fn framed(s: impl Io + 'static) -> Line {
    Framed::new(
        Box::new(s) as Box<dyn Io>,
        FrameCodec::new(codec::Framing::U16, 65_535),
    )
}

/// The next frame on `line`, `None` when it closes.
pub async fn read_frame(line: &mut Line) -> Option<Vec<u8>> {
    line.next().await?.ok().map(|f| f.to_vec())
}

/// The demo TMK (test key).
pub const DEMO_TMK: &str = "0123456789ABCDEFFEDCBA9876543210";
/// Demo cards (test data).
pub const DEBIT: &str = "6222021000000000017";
pub const LOW: &str = "6222021000000000025";
pub const LOST: &str = "6222021000000000033";
pub const CREDIT: &str = "6250941000000009";

/// A terminal's keys, counters and frames, without a connection: what a POS knows.
#[derive(Clone)]
pub struct Pos {
    pub tid: String,
    pub mid: String,
    pub tpk: Option<Vec<u8>>,
    pub tak: Option<Vec<u8>>,
    pub batch: u32,
    pub stan: u32,
    /// The last PIN block sent (to check it never shows up anywhere).
    pub last_pin_block: Option<[u8; 8]>,
    /// An SM4 (国密) terminal: SM4 keys, PIN block and MAC.
    pub sm4: bool,
}

/// A key's first 4 check-value bytes, as field 62 carries them.
type CheckValue = fn(&[u8]) -> Vec<u8>;

/// A [`Pos`] on a TCP connection to the switch.
pub struct Terminal {
    pub stream: Line,
    pub pos: Pos,
}

impl std::ops::Deref for Terminal {
    type Target = Pos;
    fn deref(&self) -> &Pos {
        &self.pos
    }
}

impl std::ops::DerefMut for Terminal {
    fn deref_mut(&mut self) -> &mut Pos {
        &mut self.pos
    }
}

/// A decoded reply, owning its bytes.
pub struct Reply {
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn msg(&self) -> Message<'_> {
        decode(Dialect::cup_pos(), &self.bytes).expect("reply decodes")
    }
    pub fn rc(&self) -> String {
        self.msg().text(39).unwrap_or("").to_owned()
    }
    pub fn text(&self, n: u8) -> Option<String> {
        self.msg().text(n).map(str::to_owned)
    }
    pub fn digits(&self, n: u8) -> Option<String> {
        self.msg().digits(n).map(|d| d.to_string())
    }
}

pub const HEADER: [u8; 11] = [
    0x60, 0x00, 0x03, 0x00, 0x00, 0x60, 0x31, 0x00, 0x31, 0x10, 0x03,
];

impl Terminal {
    /// An SM4 terminal connected to `addr`.
    pub async fn connect_sm4(addr: std::net::SocketAddr, tid: &str) -> Self {
        let mut t = Self::connect(addr, tid).await;
        t.pos = Pos::new_sm4(tid);
        t
    }

    pub async fn connect(addr: std::net::SocketAddr, tid: &str) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        Self::on(stream, tid)
    }

    /// A terminal on a connection already open (TCP, or TLS over it).
    pub fn on(stream: impl Io + 'static, tid: &str) -> Self {
        Self {
            stream: framed(stream),
            pos: Pos::new(tid),
        }
    }

    /// Connects from the local address `source` (another loopback address, say 127.0.0.2).
    pub async fn connect_from(
        addr: std::net::SocketAddr,
        tid: &str,
        source: std::net::IpAddr,
    ) -> Self {
        Self::on(connect_from(addr, source).await, tid)
    }

    /// The same terminal (keys, counters) on a new connection to `addr`: another node.
    pub async fn redial(&mut self, addr: std::net::SocketAddr) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        self.stream = framed(stream);
    }

    pub async fn send_raw(&mut self, body: &[u8]) {
        self.stream.send(body).await.expect("write");
    }

    /// Reads one reply; `None` when the switch closed the connection or 5 s passed.
    pub async fn read_reply(&mut self) -> Option<Reply> {
        let read = async {
            read_frame(&mut self.stream)
                .await
                .map(|bytes| Reply { bytes })
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .ok()
            .flatten()
    }

    pub async fn exchange(&mut self, body: &[u8]) -> Reply {
        self.send_raw(body).await;
        self.read_reply().await.expect("a reply")
    }

    /// Signs on and installs the working keys from field 62 after checking their check
    /// values, as a terminal must.
    pub async fn sign_on(&mut self) -> Reply {
        let frame = self.pos.sign_on_frame();
        let reply = self.exchange(&frame).await;
        self.pos.install_keys(&reply);
        reply
    }

    pub async fn sale(&mut self, pan: &str, pin: &str, amount_fen: u64) -> Reply {
        let mut b = self.sale_builder(pan, Some(pin), amount_fen);
        let frame = self.seal(&mut b);
        self.exchange(&frame).await
    }

    pub async fn balance(&mut self, pan: &str, pin: &str) -> Reply {
        let mut b = self.balance_builder(pan, pin);
        let frame = self.seal(&mut b);
        self.exchange(&frame).await
    }

    /// Encodes and sends, returning the reply.
    pub async fn send_sealed(&mut self, mut b: MessageBuilder<'static>) -> Reply {
        let frame = self.seal(&mut b);
        self.exchange(&frame).await
    }

    pub async fn void(&mut self, pan: &str, amount_fen: u64, orig_stan: u32) -> Reply {
        let b = self.void_builder(pan, amount_fen, orig_stan, None);
        self.send_sealed(b).await
    }

    pub async fn refund(
        &mut self,
        pan: &str,
        amount_fen: u64,
        orig_rrn: &str,
        orig_mmdd: &str,
    ) -> Reply {
        let b = self.refund_builder(pan, amount_fen, orig_rrn, orig_mmdd);
        self.send_sealed(b).await
    }

    /// A reversal of the 0200 `original` (built earlier): same fields, MTI 0400, reason 98.
    pub async fn reverse(&mut self, original: &[u8]) -> Reply {
        let frame = self.reversal_frame(original);
        self.exchange(&frame).await
    }

    pub async fn qr(&mut self, code: &str, amount_fen: u64, password: Option<&str>) -> Reply {
        let b = self.qr_builder(code, amount_fen, password);
        self.send_sealed(b).await
    }

    /// Settlement with the terminal's totals: sales amount and count, refunds amount and count.
    pub async fn settle(
        &mut self,
        debit_fen: u64,
        debit_count: u32,
        credit_fen: u64,
        credit_count: u32,
    ) -> Reply {
        let frame = self
            .pos
            .settle_frame(debit_fen, debit_count, credit_fen, credit_count);
        self.exchange(&frame).await
    }

    /// Batch upload of (STAN, amount, "22" sale | "25" refund) for `batch`.
    pub async fn upload(&mut self, batch: u32, entries: &[(u32, u64, &str)], last: bool) -> Reply {
        let frame = self.pos.upload_frame(batch, entries, last);
        self.exchange(&frame).await
    }
}

impl Pos {
    /// A terminal of the demo merchant, not signed on.
    pub fn new(tid: &str) -> Self {
        Self {
            tid: tid.to_owned(),
            mid: "898310048990001".to_owned(),
            tpk: None,
            tak: None,
            batch: 1,
            stan: 0,
            last_pin_block: None,
            sm4: false,
        }
    }

    /// An SM4 terminal of the demo merchant (TIDs 10003001–10003099), not signed on.
    pub fn new_sm4(tid: &str) -> Self {
        Self {
            sm4: true,
            ..Self::new(tid)
        }
    }

    /// The same terminal with its SM4 working keys used as if it were a TDES one (its TAK's
    /// first 8 bytes as a DES key): for forged MACs.
    pub fn clone_as_tdes(&self) -> Self {
        Self {
            tid: self.tid.clone(),
            mid: self.mid.clone(),
            tpk: self.tpk.clone(),
            tak: self.tak.as_ref().map(|k| k[..8].to_vec()),
            batch: self.batch,
            stan: self.stan + 100,
            last_pin_block: None,
            sm4: false,
        }
    }

    /// The dialect its requests are written in.
    pub fn dialect(&self) -> &'static Dialect {
        if self.sm4 {
            Dialect::cup_pos_sm4()
        } else {
            Dialect::cup_pos()
        }
    }

    pub fn next_stan(&mut self) -> String {
        self.stan += 1;
        format!("{:06}", self.stan)
    }

    pub fn builder(&self, mti: &str) -> MessageBuilder<'static> {
        let mut b = MessageBuilder::new(Mti::parse(mti).unwrap());
        b.header(HEADER.to_vec());
        b
    }

    /// A sign-on request (0800, 60.3 = 003) on the next trace number.
    pub fn sign_on_frame(&mut self) -> Vec<u8> {
        let stan = self.next_stan();
        let mut b = self.builder("0800");
        b.set(11, stan)
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(60, "00000001003".to_owned())
            .set(63, "001".to_owned());
        b.encode_to_vec(Dialect::cup_pos()).unwrap()
    }

    /// Installs the working keys of an approved sign-on reply after checking their check
    /// values, as a terminal must; whether it was approved.
    pub fn install_keys(&mut self, reply: &Reply) -> bool {
        if reply.rc() != "00" {
            return false;
        }
        let m = reply.msg();
        let f62 = m.bytes(62).expect("field 62");
        assert_eq!(f62.len(), 40);
        let tmk = hex::decode(DEMO_TMK).unwrap();
        let (tpk, tak, check): (Vec<u8>, Vec<u8>, CheckValue) = if self.sm4 {
            // PIN key | check value | MAC key (16 bytes) | check value, under the SM4 TMK.
            let tmk = Sm4Key::new(&tmk).unwrap();
            (
                tmk.decrypt_ecb(&f62[..16]).unwrap(),
                tmk.decrypt_ecb(&f62[20..36]).unwrap(),
                |k| sm4::check_value(k).unwrap()[..4].to_vec(),
            )
        } else {
            // PIN key | check value | MAC key (8 bytes) + 8 zero bytes | check value.
            assert_eq!(&f62[28..36], &[0u8; 8]);
            let tmk = DesKey::new(&tmk).unwrap();
            (
                tmk.decrypt_ecb(&f62[..16]).unwrap(),
                tmk.decrypt_ecb(&f62[20..28]).unwrap(),
                |k| DesKey::new(k).unwrap().encrypt([0; 8])[..4].to_vec(),
            )
        };
        assert_eq!(check(&tpk), f62[16..20], "TPK check value");
        assert_eq!(check(&tak), f62[36..40], "TAK check value");
        self.batch = m
            .get("60.2")
            .unwrap()
            .unwrap()
            .digits()
            .unwrap()
            .to_u64()
            .unwrap() as u32;
        self.tpk = Some(tpk);
        self.tak = Some(tak);
        true
    }

    pub fn pin_block(&mut self, pan: &str, pin: &str) -> Vec<u8> {
        if self.sm4 {
            let clear = sm4::pin_block(&ClearPin::new(pin).unwrap(), pan).unwrap();
            return Sm4Key::new(self.tpk.as_ref().expect("signed on"))
                .unwrap()
                .encrypt(clear)
                .to_vec();
        }
        let clear = pinblock::format0(&ClearPin::new(pin).unwrap(), pan).unwrap();
        self.last_pin_block = Some(clear);
        DesKey::new(self.tpk.as_ref().expect("signed on"))
            .unwrap()
            .encrypt(clear)
            .to_vec()
    }

    /// Encodes with the UnionPay MAC under the terminal's TAK.
    pub fn seal(&self, b: &mut MessageBuilder<'static>) -> Vec<u8> {
        if self.sm4 {
            let tak = Sm4Key::new(self.tak.as_ref().expect("signed on")).unwrap();
            let mut out = Vec::new();
            b.encode_with_mac(self.dialect(), &mut out, |data| {
                Some(sm4::pos_mac(&tak, data))
            })
            .unwrap();
            return out;
        }
        let tak = DesKey::new(self.tak.as_ref().expect("signed on")).unwrap();
        let mut out = Vec::new();
        b.encode_with_mac(Dialect::cup_pos(), &mut out, |data| {
            Some(mac::unionpay_ecb(&tak, data))
        })
        .unwrap();
        out
    }

    pub fn sale_builder(
        &mut self,
        pan: &str,
        pin: Option<&str>,
        amount_fen: u64,
    ) -> MessageBuilder<'static> {
        let stan = self.next_stan();
        let mut b = self.builder("0200");
        b.set(2, pan.to_owned())
            .set(3, "000000")
            .set(4, format!("{amount_fen:012}"))
            .set(11, stan)
            .set(22, if pin.is_some() { "021" } else { "022" })
            .set(25, "00")
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(60, format!("22{:06}000", self.batch))
            .set(63, "001");
        if let Some(p) = pin {
            let block = self.pin_block(pan, p);
            b.set(26, "12").set(52, block).set(53, "2600000000000000");
        }
        b
    }

    /// A pre-authorisation (0100, 60.1 = 10) of `amount_fen`, with a PIN.
    pub fn preauth_builder(
        &mut self,
        pan: &str,
        pin: &str,
        amount_fen: u64,
    ) -> MessageBuilder<'static> {
        let mut b = self.sale_builder(pan, Some(pin), amount_fen);
        b.set_mti(Mti::parse("0100").unwrap())
            .set(3, "030000")
            .set(25, "06")
            .set(60, format!("10{:06}000", self.batch));
        b
    }

    /// What names a pre-authorisation: its auth code (38) and 61 (batch, trace, MMDD;
    /// zeros say nothing).
    fn names_preauth(
        b: &mut MessageBuilder<'static>,
        auth_code: &str,
        batch: u32,
        stan: u32,
        mmdd: &str,
    ) {
        b.set(38, auth_code.to_owned())
            .set(61, format!("{batch:06}{stan:06}{mmdd}"));
    }

    /// A pre-authorisation void (0100, 60.1 = 11), without a PIN.
    pub fn preauth_void_builder(
        &mut self,
        pan: &str,
        amount_fen: u64,
        auth_code: &str,
        (batch, stan, mmdd): (u32, u32, &str),
    ) -> MessageBuilder<'static> {
        let mut b = self.sale_builder(pan, None, amount_fen);
        b.set_mti(Mti::parse("0100").unwrap())
            .set(3, "200000")
            .set(25, "06")
            .set(60, format!("11{:06}000", self.batch));
        Self::names_preauth(&mut b, auth_code, batch, stan, mmdd);
        b
    }

    /// A completion (0200, 60.1 = 20; `advice`: the offline 0220, 60.1 = 24), without a PIN.
    pub fn completion_builder(
        &mut self,
        pan: &str,
        amount_fen: u64,
        auth_code: &str,
        (batch, stan, mmdd): (u32, u32, &str),
        advice: bool,
    ) -> MessageBuilder<'static> {
        let mut b = self.sale_builder(pan, None, amount_fen);
        b.set(25, "06").set(
            60,
            format!("{}{:06}000", if advice { "24" } else { "20" }, self.batch),
        );
        if advice {
            b.set_mti(Mti::parse("0220").unwrap());
        }
        Self::names_preauth(&mut b, auth_code, batch, stan, mmdd);
        b
    }

    /// A completion void (0200, 60.1 = 21) of the completion with trace `orig_stan`.
    pub fn completion_void_builder(
        &mut self,
        pan: &str,
        amount_fen: u64,
        orig_stan: u32,
    ) -> MessageBuilder<'static> {
        let mut b = self.sale_builder(pan, None, amount_fen);
        b.set(3, "200000")
            .set(25, "06")
            .set(60, format!("21{:06}000", self.batch))
            .set(61, format!("{:06}{orig_stan:06}", self.batch));
        b
    }

    /// A settlement adjustment (0220, 60.1 = 32, `tip`: 34) of the sale with trace
    /// `orig_stan` in the open batch.
    pub fn adjust_builder(
        &mut self,
        pan: &str,
        amount_fen: u64,
        orig_stan: u32,
        tip: bool,
    ) -> MessageBuilder<'static> {
        let mut b = self.sale_builder(pan, None, amount_fen);
        b.set_mti(Mti::parse("0220").unwrap())
            .set(
                60,
                format!("{}{:06}000", if tip { "34" } else { "32" }, self.batch),
            )
            .set(61, format!("{:06}{orig_stan:06}", self.batch));
        b
    }

    pub fn balance_builder(&mut self, pan: &str, pin: &str) -> MessageBuilder<'static> {
        let stan = self.next_stan();
        let block = self.pin_block(pan, pin);
        let mut b = self.builder("0200");
        b.set(2, pan.to_owned())
            .set(3, "310000")
            .set(11, stan)
            .set(22, "021")
            .set(25, "00")
            .set(26, "12")
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(52, block)
            .set(53, "2600000000000000")
            .set(60, format!("01{:06}000", self.batch));
        b
    }

    /// Whether a reply's MAC verifies under the terminal's TAK.
    pub fn reply_mac_ok(&self, reply: &Reply) -> bool {
        let m = reply.msg();
        if self.sm4 {
            let tak = Sm4Key::new(self.tak.as_ref().unwrap()).unwrap();
            return m
                .bytes(64)
                .is_some_and(|got| got == sm4::pos_mac(&tak, m.mac_data()));
        }
        let tak = DesKey::new(self.tak.as_ref().unwrap()).unwrap();
        m.bytes(64)
            .is_some_and(|got| got == mac::unionpay_ecb(&tak, m.mac_data()))
    }

    pub fn void_builder(
        &mut self,
        pan: &str,
        amount_fen: u64,
        orig_stan: u32,
        pin: Option<&str>,
    ) -> MessageBuilder<'static> {
        self.void_in(pan, amount_fen, self.batch, orig_stan, pin)
    }

    /// A void of the sale with trace `orig_stan` in batch `orig_batch`.
    pub fn void_in(
        &mut self,
        pan: &str,
        amount_fen: u64,
        orig_batch: u32,
        orig_stan: u32,
        pin: Option<&str>,
    ) -> MessageBuilder<'static> {
        let mut b = self.sale_builder(pan, pin, amount_fen);
        b.set(3, "200000")
            .set(60, format!("23{:06}000", self.batch))
            .set(61, format!("{orig_batch:06}{orig_stan:06}"));
        b
    }

    pub fn refund_builder(
        &mut self,
        pan: &str,
        amount_fen: u64,
        orig_rrn: &str,
        orig_mmdd: &str,
    ) -> MessageBuilder<'static> {
        let stan = self.next_stan();
        let mut b = self.builder("0220");
        b.set(2, pan.to_owned())
            .set(3, "200000")
            .set(4, format!("{amount_fen:012}"))
            .set(11, stan)
            .set(22, "012")
            .set(25, "00")
            .set(37, orig_rrn.to_owned())
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(60, format!("25{:06}000", self.batch))
            .set(61, format!("000000000000{orig_mmdd}"))
            .set(63, "000");
        b
    }

    /// `frame` sealed again under the terminal's current TAK (a request it owes, sent again
    /// after a new sign-on).
    pub fn reseal(&self, frame: &[u8]) -> Vec<u8> {
        let m = decode(Dialect::cup_pos(), frame).unwrap();
        let mut b = MessageBuilder::new(m.mti());
        b.header(m.header().to_vec());
        for f in m.fields().filter(|f| f.number() != 64) {
            b.set(
                f.number(),
                codec::FieldInput::Wire {
                    data: std::borrow::Cow::Owned(f.wire().to_vec()),
                    units: f.units(),
                },
            );
        }
        self.seal(&mut b)
    }

    /// The reversal of the 0200 `original`, sealed.
    pub fn reversal_frame(&self, original: &[u8]) -> Vec<u8> {
        let m = decode(Dialect::cup_pos(), original).unwrap();
        let mut b = self.builder("0400");
        for n in [2u8, 3, 4, 11, 14, 22, 25, 41, 42, 49, 59, 60, 61] {
            if let Some(f) = m.field(n) {
                b.set(
                    n,
                    codec::FieldInput::Wire {
                        data: std::borrow::Cow::Owned(f.wire().to_vec()),
                        units: f.units(),
                    },
                );
            }
        }
        b.set(39, "98");
        self.seal(&mut b)
    }

    pub fn qr_builder(
        &mut self,
        code: &str,
        amount_fen: u64,
        password: Option<&str>,
    ) -> MessageBuilder<'static> {
        let stan = self.next_stan();
        let mut b = self.builder("0200");
        b.set(3, "000000")
            .set(4, format!("{amount_fen:012}"))
            .set(11, stan)
            .set(22, if password.is_some() { "031" } else { "032" })
            .set(25, "00")
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(59, format!("QR{code}"))
            .set(60, format!("22{:06}000", self.batch));
        if let Some(p) = password {
            let block = self.pin_block(code, p);
            b.set(52, block).set(53, "2600000000000000");
        }
        b
    }

    /// A settlement with the terminal's totals, sealed.
    pub fn settle_frame(
        &mut self,
        debit_fen: u64,
        debit_count: u32,
        credit_fen: u64,
        credit_count: u32,
    ) -> Vec<u8> {
        let stan = self.next_stan();
        let mut b = self.builder("0500");
        let totals = format!(
            "{debit_fen:012}{debit_count:03}{credit_fen:012}{credit_count:03}0{:031}",
            0
        );
        b.set(11, stan)
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(48, totals)
            .set(49, "156")
            .set(60, format!("00{:06}201", self.batch))
            .set(63, "000");
        self.seal(&mut b)
    }

    /// A batch upload of (STAN, amount, "22" sale | "25" refund) for `batch`, sealed.
    pub fn upload_frame(
        &mut self,
        batch: u32,
        entries: &[(u32, u64, &str)],
        last: bool,
    ) -> Vec<u8> {
        let stan = self.next_stan();
        let mut f48 = format!("{:02}", entries.len());
        for (s, a, k) in entries {
            f48.push_str(&format!("{s:06}{a:012}{k}"));
        }
        let mut b = self.builder("0320");
        b.set(11, stan)
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(48, f48)
            .set(
                60,
                format!("00{batch:06}{}", if last { "202" } else { "201" }),
            );
        self.seal(&mut b)
    }
}

/// A QR payment code of the demo wallet (test data).
pub const QR_CODE: &str = "280000000000000001";

/// A TCP connection to `addr` from the local address `source`.
pub async fn connect_from(addr: std::net::SocketAddr, source: std::net::IpAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(source, 0)).unwrap();
    let stream = socket.connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
}
