//! What the POS's screens ask of the terminal: operators and passwords in its store,
//! transactions with the switch, the log. Every refusal comes back as words for the
//! screen, never as a panic.
//!
//! ```text
//!  Job::Open(item)   ─▶ role and permission ─▶ its form, or the log's candidates (Pick)
//!  Job::Picked(e)    ─▶ the form for that transaction
//!  Job::Run(task, v) ─▶ Operators / Terminal ─▶ the receipt, slip or message (Show)
//! ```

use super::app::{Go, Job, Outcome, Pick, PickFor, Screen, Task};
use super::keypad::Typed;
use super::text::{Label, Lang, says};
use crate::codes;
use crate::operators::{OperatorError, Operators, Permission, Role};
use crate::receipt::{self, Copy};
use crate::store::LogEntry;
use crate::terminal::{Answer, Card, PreauthRef, Terminal, TxnError};

/// What the POS knows besides its terminal.
pub struct Device {
    /// The terminal.
    pub terminal: Terminal,
    /// The merchant's name on receipts.
    pub merchant_name: String,
    /// The switch, as the settings screen shows it.
    pub switch: String,
    /// The screens' language.
    pub lang: Lang,
}

/// Why a job was refused, in words.
fn refused(e: impl std::fmt::Display) -> Outcome {
    Outcome::Refused(e.to_string())
}

fn card(pan: &str) -> Card {
    Card {
        pan: pan.to_owned(),
        expiry: None,
    }
}

fn fen(v: &str) -> u64 {
    v.parse().unwrap_or(0)
}

/// The permission a menu item needs, and whether only those who transact may use it.
fn needs(go: &Go) -> Option<Permission> {
    match go {
        Go::Form(Task::Sale | Task::Balance | Task::Qr | Task::Preauth) | Go::SignOn => {
            Some(Permission::Transact)
        }
        Go::Pick(PickFor::Complete) => Some(Permission::Transact),
        Go::Pick(
            PickFor::Void | PickFor::Refund | PickFor::PreauthVoid | PickFor::CompleteVoid,
        ) => Some(Permission::VoidRefund),
        Go::Pick(PickFor::Query) | Go::Reprint => Some(Permission::Query),
        Go::Form(Task::Settle) => Some(Permission::Settle),
        _ => None,
    }
}

impl Device {
    fn say(&self, l: Label) -> String {
        self.lang.say(l)
    }

    /// Does `job` for `operator` (none before login).
    pub async fn run(&mut self, operator: Option<&str>, job: Job) -> Outcome {
        let op = operator.unwrap_or("");
        match job {
            Job::Run(Task::Login, v) => self.login(&v[0], &v[1]),
            Job::Run(task, v) => match self.task(op, task, &v).await {
                Ok(o) => o,
                Err(o) => o,
            },
            Job::Open(go) => self.open(op, go).await,
            Job::Picked(purpose, e) => self.picked(purpose, e),
            Job::Reprint(e) => Outcome::screen(self.receipt_screen(&e, true)),
        }
    }

    fn login(&mut self, no: &str, pw: &str) -> Outcome {
        let ops = Operators::new(&mut self.terminal.store);
        match ops.and_then(|mut o| o.login(no, pw)) {
            Ok(_) => Outcome::LoggedIn(no.to_owned()),
            Err(OperatorError::MustChange(_)) => {
                // The factory password: a new one, typed twice, before anything else.
                let mut f = Task::ChangeAtLogin {
                    no: no.to_owned(),
                    old: Typed::new(pw),
                }
                .form();
                f.note = Some(format!(
                    "请修改出厂密码 Operator {no} must change its factory password (6 digits, not all one digit, not a run)"
                ));
                Outcome::screen(Screen::Form(f))
            }
            Err(e) => refused(e),
        }
    }

    /// A menu item: who may, then its form or its list.
    async fn open(&mut self, op: &str, go: Go) -> Outcome {
        if let Some(p) = needs(&go) {
            let Ok(ops) = Operators::new(&mut self.terminal.store) else {
                return refused("the terminal's state cannot be read");
            };
            if Role::of(op) == Some(Role::Admin) {
                return refused(self.say(says::NOT_FOR_ROLE));
            }
            if let Err(e) = ops.require(op, p) {
                return refused(e);
            }
        }
        match go {
            Go::Form(task) => Outcome::screen(Screen::Form(task.form())),
            Go::Pick(purpose) => match self.candidates(purpose) {
                Ok(entries) if entries.is_empty() => refused(self.say(says::NOTHING)),
                Ok(entries) => Outcome::screen(Screen::Pick(Pick {
                    purpose,
                    entries,
                    sel: 0,
                })),
                Err(e) => refused(e),
            },
            Go::Menu(m) => Outcome::screen(Screen::Menu {
                menu: m,
                sel: 0,
                note: None,
            }),
            Go::Reprint => {
                let last = self.terminal.batch().ok().and_then(|b| {
                    crate::history::newest(&self.terminal.store, b, 1, |e| e.kind != "balance")
                        .ok()
                        .flatten()
                });
                match last {
                    Some(e) => Outcome::screen(self.receipt_screen(&e, true)),
                    None => refused(self.say(says::NOTHING)),
                }
            }
            Go::SignOn => self.sign_on(op).await,
            Go::Parameters => Outcome::screen(self.parameters()),
        }
    }

    /// The log's transactions a purpose can take, newest first.
    fn candidates(&self, purpose: PickFor) -> Result<Vec<LogEntry>, TxnError> {
        let batch = self.terminal.batch()?;
        let back = match purpose {
            PickFor::Refund | PickFor::Query => 1,
            PickFor::PreauthVoid | PickFor::Complete => crate::terminal::PREAUTH_BATCHES,
            _ => 0,
        };
        let mut out = Vec::new();
        for b in crate::history::newest_batches(batch, back) {
            out.extend(self.terminal.store.log(b)?.into_iter().rev().filter(|e| {
                let ok = e.rc == "00" && !e.voided;
                match purpose {
                    PickFor::Void => ok && e.kind == "sale",
                    PickFor::Refund => ok && matches!(e.kind.as_str(), "sale" | "completion"),
                    PickFor::PreauthVoid | PickFor::Complete => ok && e.kind == "pre-auth",
                    PickFor::CompleteVoid => ok && e.kind == "completion",
                    PickFor::Query => true,
                }
            }));
        }
        Ok(out)
    }

    fn picked(&mut self, purpose: PickFor, e: LogEntry) -> Outcome {
        let task = match purpose {
            PickFor::Void => Task::Void { stan: e.stan },
            PickFor::Refund => Task::Refund {
                rrn: e.rrn.clone(),
                mmdd: crate::history::date_of(&e).unwrap_or("0000").to_owned(),
            },
            PickFor::PreauthVoid => Task::PreauthVoid(PreauthRef::of(&e)),
            PickFor::Complete => Task::Complete(PreauthRef::of(&e)),
            PickFor::CompleteVoid => Task::CompleteVoid { stan: e.stan },
            PickFor::Query => return Outcome::screen(self.receipt_screen(&e, false)),
        };
        Outcome::screen(Screen::Form(task.form()))
    }

    /// A form filled in.
    async fn task(&mut self, op: &str, task: Task, v: &[Typed]) -> Result<Outcome, Outcome> {
        let t = &mut self.terminal;
        let answer = match task {
            Task::Login => return Ok(self.login(&v[0], &v[1])),
            Task::ChangeAtLogin { no, old } => {
                same(&v[0], &v[1], self.lang)?;
                Operators::new(&mut t.store)
                    .and_then(|mut o| o.change_password(&no, &old, &v[0]))
                    .map_err(refused)?;
                return Ok(Outcome::LoggedIn(no));
            }
            Task::Sale => t.sale(&card(&v[0]), &v[2], fen(&v[1]), op).await,
            Task::Balance => t.balance(&card(&v[0]), &v[1], op).await,
            Task::Qr => {
                let a = t.qr(&v[0], fen(&v[1]), None, op).await.map_err(refused)?;
                if a.rc == "55" {
                    // Above the password-free limit: the payment password, then again.
                    let mut f = Task::QrPassword {
                        code: v[0].to_string(),
                        amount: fen(&v[1]),
                    }
                    .form();
                    f.note = Some(codes::describe("55"));
                    return Ok(Outcome::screen(Screen::Form(f)));
                }
                Ok(a)
            }
            Task::QrPassword { code, amount } => t.qr(&code, amount, Some(&v[0]), op).await,
            Task::Void { stan } => t.void(&v[1], &card(&v[0]), stan, op).await,
            Task::Refund { rrn, mmdd } => {
                t.refund(&v[2], &card(&v[0]), fen(&v[1]), &rrn, &mmdd, op)
                    .await
            }
            Task::Preauth => t.preauth(&card(&v[0]), &v[2], fen(&v[1]), op).await,
            Task::PreauthVoid(of) => t.preauth_void(&v[1], &card(&v[0]), &of, op).await,
            Task::Complete(of) => t.complete(&card(&v[0]), &of, fen(&v[1]), op).await,
            Task::CompleteVoid { stan } => t.complete_void(&v[1], &card(&v[0]), stan, op).await,
            Task::Settle => {
                let s = t.settle(&v[0], op).await.map_err(refused)?;
                let slip = receipt::settlement_slip(
                    t.tid(),
                    t.mid(),
                    s.batch,
                    s.sales,
                    s.refunds,
                    s.balanced,
                );
                let _ = crate::history::keep_settlement_slip(&mut t.store, &slip);
                return Ok(Outcome::screen(Screen::Show {
                    title: says::SETTLE,
                    lines: slip.lines().map(str::to_owned).collect(),
                    entry: None,
                }));
            }
            Task::AddCashier => {
                same(&v[2], &v[3], self.lang)?;
                self.admin(|o| o.add_cashier(&v[0], &v[1], &v[2]))?;
                return Ok(self.done(format!("operator {} added", &*v[1])));
            }
            Task::RemoveCashier => {
                self.admin(|o| o.remove_cashier(&v[0], &v[1]))?;
                return Ok(self.done(format!("operator {} removed", &*v[1])));
            }
            Task::ResetSupervisor => {
                self.admin(|o| o.reset_supervisor(&v[0]))?;
                return Ok(self.done(format!(
                    "supervisor 00: factory password {}, to be changed at its next login",
                    crate::operators::FACTORY_SUPERVISOR
                )));
            }
            Task::Permissions => {
                let set: Vec<Permission> = v[2]
                    .chars()
                    .filter_map(|c| c.to_digit(10))
                    .filter_map(|d| Permission::ALL.get((d as usize).checked_sub(1)?).copied())
                    .collect();
                self.admin(|o| o.set_permissions(&v[0], &v[1], &set))?;
                let names: Vec<&str> = set.iter().map(|p| p.label()).collect();
                return Ok(self.done(format!("operator {}: [{}]", &*v[1], names.join(", "))));
            }
            Task::ChangePassword | Task::VoidPassword => {
                same(&v[1], &v[2], self.lang)?;
                let who = if task == Task::VoidPassword { "00" } else { op };
                Operators::new(&mut t.store)
                    .and_then(|mut o| o.change_password(who, &v[0], &v[1]))
                    .map_err(refused)?;
                return Ok(self.done(format!("operator {who}: password changed")));
            }
        };
        Ok(match answer {
            Ok(a) => Outcome::screen(self.answered(&a)),
            Err(e) => refused(e),
        })
    }

    /// An administrator's operator change.
    fn admin(
        &mut self,
        f: impl FnOnce(&mut Operators<'_>) -> Result<(), OperatorError>,
    ) -> Result<(), Outcome> {
        Operators::new(&mut self.terminal.store)
            .and_then(|mut o| f(&mut o))
            .map_err(refused)
    }

    fn done(&self, what: String) -> Outcome {
        Outcome::screen(Screen::Show {
            title: says::DONE,
            lines: vec![what],
            entry: None,
        })
    }

    /// A transaction's answer on screen: the receipt, the balance, or the decline.
    fn answered(&self, a: &Answer) -> Screen {
        if a.rc != "00" {
            return Screen::Show {
                title: says::DECLINED,
                lines: vec![
                    format!("{}: {}", self.say(says::DECLINED), codes::describe(&a.rc)),
                    format!("RRN {}", a.rrn),
                ],
                entry: None,
            };
        }
        if let Some(b) = &a.balance {
            let line = match codes::balance_fen(b) {
                Some(f) => format!(
                    "{}: {} CNY",
                    self.say(says::AVAILABLE),
                    codes::yuan_grouped(f)
                ),
                None => format!("field 54: {b}"),
            };
            return Screen::Show {
                title: says::BALANCE,
                lines: vec![line],
                entry: None,
            };
        }
        match &a.entry {
            Some(e) => self.receipt_screen(e, false),
            None => Screen::Show {
                title: says::APPROVED,
                lines: vec![codes::describe(&a.rc)],
                entry: None,
            },
        }
    }

    fn receipt_screen(&self, e: &LogEntry, reprint: bool) -> Screen {
        let t = &self.terminal;
        let r = receipt::receipt(
            e,
            &self.merchant_name,
            t.mid(),
            t.tid(),
            Copy::Merchant,
            reprint,
        );
        Screen::Show {
            title: if e.rc == "00" {
                says::APPROVED
            } else {
                says::DECLINED
            },
            lines: r.lines().map(str::to_owned).collect(),
            entry: Some(e.clone()),
        }
    }

    fn parameters(&self) -> Screen {
        let t = &self.terminal;
        let batch = t
            .batch()
            .map_or_else(|e| e.to_string(), |b| format!("{b:06}"));
        Screen::Show {
            title: says::PARAMETERS,
            lines: vec![
                format!("TID       {}", t.tid()),
                format!("MID       {}", t.mid()),
                format!("SWITCH    {}", self.switch),
                format!("CIPHER    {}", t.cipher().as_str()),
                format!("BATCH     {batch}"),
            ],
            entry: None,
        }
    }

    /// Signs on for `op` (签到).
    async fn sign_on(&mut self, op: &str) -> Outcome {
        match self.terminal.sign_on(op).await {
            Ok(a) if a.rc == "00" => Outcome::screen(Screen::Show {
                title: says::SIGN_ON,
                lines: vec![
                    format!("{}: {}", self.say(says::SIGN_ON), codes::describe(&a.rc)),
                    format!("BATCH {:06}", self.terminal.batch().unwrap_or_default()),
                ],
                entry: None,
            }),
            Ok(a) => Outcome::screen(self.answered(&a)),
            Err(e) => refused(e),
        }
    }
}

/// Two passwords typed alike, else a refusal.
fn same(a: &str, b: &str, lang: Lang) -> Result<(), Outcome> {
    if a == b {
        Ok(())
    } else {
        Err(refused(lang.say(says::DIFFERENT)))
    }
}
