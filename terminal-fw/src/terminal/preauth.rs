//! Pre-authorisation (预授权) and what follows it, and the adjustments, as a hotel's or a
//! restaurant's terminal sends them.
//!
//! ```text
//!  preauth       0100 3=030000 25=06 60.1=10  2/14, 4, 52 PIN          ─▶ 38 the auth code
//!  preauth-void  0100 3=200000 25=06 60.1=11  38, 61 = batch+trace+MMDD, 4 = held   (supervisor)
//!  complete      0200 3=000000 25=06 60.1=20  38, 61 as above, 4 = final amount
//!  complete-void 0200 3=200000 25=06 60.1=21  61 = batch+trace of the completion    (supervisor)
//!  adjust        0220 3=000000 25=00 60.1=32  61 = batch+trace of the sale, 4 = its new amount
//!  tip           0220 3=000000 25=00 60.1=34  61 as above, 4 = the tip
//! ```
//!
//! A pre-authorisation is named by its auth code; its batch, trace and date come from this
//! terminal's log when it holds it, else zeros and the date the operator gives. Holds are
//! not in the batch's totals; a completion counts as a sale, an adjustment changes the
//! sale it names.

use super::{Card, Terminal, TxnError};
use crate::store::{Follows, LogEntry};

/// What names a pre-authorisation: its auth code (38), and 61's batch, trace and date
/// (zeros when the terminal does not know them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreauthRef {
    /// Its auth code, 6 characters.
    pub auth_code: String,
    /// Its batch, 0 when unknown.
    pub batch: u32,
    /// Its trace, 0 when unknown.
    pub stan: u32,
    /// Its date, MMDD (`0000` when unknown).
    pub mmdd: String,
    /// Its amount, fen, when known (a void needs it).
    pub amount_fen: Option<i64>,
}

impl PreauthRef {
    /// From a log entry of an approved pre-authorisation.
    pub fn of(e: &LogEntry) -> Self {
        Self {
            auth_code: e.auth_code.clone(),
            batch: e.batch,
            stan: e.stan,
            mmdd: e.when.get(..4).unwrap_or("0000").to_owned(),
            amount_fen: Some(e.amount_fen),
        }
    }

    fn field61(&self) -> String {
        format!("{:06}{:06}{}", self.batch, self.stan, self.mmdd)
    }
}

/// What a request of the family is: MTI, processing code (3), condition code (25),
/// transaction type (60.1).
struct Shape(&'static str, &'static str, &'static str, &'static str);

/// How many batches back a pre-authorisation is looked for in the log.
pub const PREAUTH_BATCHES: u32 = 60;

impl Terminal {
    /// The approved pre-authorisation with `auth_code` in this terminal's log (the open
    /// batch and the ones before it), newest first.
    pub fn find_preauth(&self, auth_code: &str) -> Result<Option<LogEntry>, TxnError> {
        Ok(crate::history::newest(
            &self.store,
            self.batch()?,
            PREAUTH_BATCHES,
            |e| e.kind == "pre-auth" && e.rc == "00" && e.auth_code.trim() == auth_code.trim(),
        )?)
    }

    /// A request of the pre-authorisation family: card, processing code, amount, 25, 60.1,
    /// and what follows in `f`.
    fn preauth_request(
        &mut self,
        Shape(mti, processing, condition, type_code): Shape,
        card: &Card,
        pin: Option<&str>,
        amount_fen: u64,
        operator: &str,
        f: impl FnOnce(&mut codec::MessageBuilder<'static>),
    ) -> Result<Vec<u8>, TxnError> {
        let stan = self.next_stan()?;
        let mut b = self.builder(mti)?;
        self.card_fields(&mut b, card, pin)?;
        b.set(3, processing.to_owned())
            .set(4, format!("{amount_fen:012}"))
            .set(11, format!("{stan:06}"))
            .set(25, condition.to_owned())
            .set(41, self.tid.clone())
            .set(42, self.mid.clone())
            .set(49, "156")
            .set(60, format!("{type_code}{:06}000", self.batch()?))
            .set(63, format!("0{operator}"));
        f(&mut b);
        self.seal(&mut b)
    }

    /// Pre-authorisation (预授权): `amount_fen` held on the card, the cardholder's PIN.
    pub async fn preauth(
        &mut self,
        card: &Card,
        pin: &str,
        amount_fen: u64,
        operator: &str,
    ) -> Result<super::Answer, TxnError> {
        let frame = self.preauth_request(
            Shape("0100", "030000", "06", "10"),
            card,
            Some(pin),
            amount_fen,
            operator,
            |_| {},
        )?;
        let masked = codec::mask::pan(&card.pan);
        self.financial(
            frame,
            true,
            "pre-auth",
            masked,
            amount_fen as i64,
            operator,
            Follows::Nothing,
        )
        .await
    }

    /// Pre-authorisation void (预授权撤销) of the hold `of`; the supervisor password is
    /// checked here and never travels.
    pub async fn preauth_void(
        &mut self,
        supervisor_pw: &str,
        card: &Card,
        of: &PreauthRef,
        operator: &str,
    ) -> Result<super::Answer, TxnError> {
        crate::operators::Operators::new(&mut self.store)?.authorise_supervisor(supervisor_pw)?;
        let amount = of.amount_fen.ok_or_else(|| {
            TxnError::Input("the pre-authorised amount is not in the log: give it".into())
        })?;
        let (auth, f61) = (of.auth_code.clone(), of.field61());
        let frame = self.preauth_request(
            Shape("0100", "200000", "06", "11"),
            card,
            None,
            amount as u64,
            operator,
            |b| {
                b.set(38, auth).set(61, f61);
            },
        )?;
        let follows = if of.batch == self.batch()? {
            Follows::Voids(of.stan)
        } else {
            Follows::Nothing
        };
        let masked = codec::mask::pan(&card.pan);
        self.financial(
            frame,
            true,
            "pre-auth-void",
            masked,
            amount,
            operator,
            follows,
        )
        .await
    }

    /// Completion (预授权完成) of the hold `of` for `amount_fen` (up to the acquirer's
    /// tolerance above it).
    pub async fn complete(
        &mut self,
        card: &Card,
        of: &PreauthRef,
        amount_fen: u64,
        operator: &str,
    ) -> Result<super::Answer, TxnError> {
        let (auth, f61) = (of.auth_code.clone(), of.field61());
        let frame = self.preauth_request(
            Shape("0200", "000000", "06", "20"),
            card,
            None,
            amount_fen,
            operator,
            |b| {
                b.set(38, auth).set(61, f61);
            },
        )?;
        let masked = codec::mask::pan(&card.pan);
        self.financial(
            frame,
            true,
            "completion",
            masked,
            amount_fen as i64,
            operator,
            Follows::Nothing,
        )
        .await
    }

    /// An approved entry of the open batch of kind `kind` with trace `stan`, not voided.
    fn open_entry(&self, stan: u32, kinds: &[&str], what: &str) -> Result<LogEntry, TxnError> {
        let e = self
            .store
            .log(self.batch()?)?
            .into_iter()
            .find(|e| e.stan == stan && kinds.contains(&e.kind.as_str()) && e.rc == "00")
            .ok_or_else(|| {
                TxnError::Input(format!(
                    "no approved {what} with trace {stan:06} in this batch"
                ))
            })?;
        if e.voided {
            return Err(TxnError::Input(format!(
                "trace {stan:06} is already voided"
            )));
        }
        Ok(e)
    }

    /// Completion void (预授权完成撤销) of the completion with trace `stan` in this batch;
    /// the supervisor password is checked here.
    pub async fn complete_void(
        &mut self,
        supervisor_pw: &str,
        card: &Card,
        stan: u32,
        operator: &str,
    ) -> Result<super::Answer, TxnError> {
        crate::operators::Operators::new(&mut self.store)?.authorise_supervisor(supervisor_pw)?;
        let original = self.open_entry(stan, &["completion"], "completion")?;
        let batch = self.batch()?;
        let frame = self.preauth_request(
            Shape("0200", "200000", "06", "21"),
            card,
            None,
            original.amount_fen as u64,
            operator,
            |b| {
                b.set(61, format!("{batch:06}{stan:06}"));
            },
        )?;
        let masked = codec::mask::pan(&card.pan);
        self.financial(
            frame,
            true,
            "completion-void",
            masked,
            original.amount_fen,
            operator,
            Follows::Voids(stan),
        )
        .await
    }

    /// Settlement adjustment (结算调整, `tip` false: the sale's new amount) or tip
    /// adjustment (追加小费, `tip` true: the tip) of the sale with trace `stan` in this
    /// batch. Advices: no reversal.
    pub async fn adjust(
        &mut self,
        card: &Card,
        stan: u32,
        amount_fen: u64,
        tip: bool,
        operator: &str,
    ) -> Result<super::Answer, TxnError> {
        let original = self.open_entry(stan, &["sale", "completion"], "card sale")?;
        let batch = self.batch()?;
        let frame = self.preauth_request(
            Shape("0220", "000000", "00", if tip { "34" } else { "32" }),
            card,
            None,
            amount_fen,
            operator,
            |b| {
                b.set(61, format!("{batch:06}{stan:06}"));
            },
        )?;
        let new_amount = if tip {
            original.amount_fen + amount_fen as i64
        } else {
            amount_fen as i64
        };
        let masked = codec::mask::pan(&card.pan);
        self.financial(
            frame,
            false,
            if tip { "tip" } else { "adjustment" },
            masked,
            amount_fen as i64,
            operator,
            Follows::SetsAmount {
                stan,
                amount_fen: new_amount,
            },
        )
        .await
    }
}
