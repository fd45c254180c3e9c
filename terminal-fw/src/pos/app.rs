//! The POS's screens and what keys do on them: a state machine with no I/O. What needs the
//! terminal's store or the switch is handed out as a [`Job`] and comes back as an
//! [`Outcome`] (see `job`).
//!
//! ```text
//!  Login ─(operator, password)─▶ Main menu ─(1-9, 0, *, ↑↓ Enter)─▶ Form ─(Enter on the last
//!    ▲                            │                                  field)─▶ Busy ─▶ Show
//!    └────────── Esc ─────────────┘  Pick (a transaction from the log) ─▶ Form     (receipt)
//!                                    Pre-authorisation and Management menus ─▶ Form
//! ```

use super::keypad::{Entry, Kind, Typed};
use super::text::{Label, Lang, says};
use crate::store::LogEntry;
use crate::terminal::PreauthRef;

/// A key as the POS knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `0`–`9`.
    Digit(char),
    /// Confirm (确认).
    Enter,
    /// Correct (更正).
    Back,
    /// Cancel (取消).
    Esc,
    /// Up.
    Up,
    /// Down.
    Down,
    /// `*`: reprint.
    Star,
}

/// What a finished form does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Task {
    /// Operator number and password.
    Login,
    /// A factory password changed at login: new, again.
    ChangeAtLogin {
        /// The operator.
        no: String,
        /// The factory password it logged in with.
        old: Typed,
    },
    /// Card, amount, PIN.
    Sale,
    /// Card, PIN.
    Balance,
    /// Payment code, amount.
    Qr,
    /// The payment password the switch asked for.
    QrPassword {
        /// The payment code.
        code: String,
        /// Fen.
        amount: u64,
    },
    /// Card, supervisor password.
    Void {
        /// The sale's trace.
        stan: u32,
    },
    /// Card, amount, supervisor password.
    Refund {
        /// The sale's RRN.
        rrn: String,
        /// Its date, MMDD.
        mmdd: String,
    },
    /// Card, amount, PIN.
    Preauth,
    /// Card, supervisor password.
    PreauthVoid(PreauthRef),
    /// Card, amount.
    Complete(PreauthRef),
    /// Card, supervisor password.
    CompleteVoid {
        /// The completion's trace.
        stan: u32,
    },
    /// Supervisor password.
    Settle,
    /// Administrator password, cashier, password, again.
    AddCashier,
    /// Administrator password, cashier.
    RemoveCashier,
    /// Administrator password.
    ResetSupervisor,
    /// Administrator password, cashier, permissions (digits 1-4).
    Permissions,
    /// Old, new, again (the operator logged in).
    ChangePassword,
    /// The supervisor's: old, new, again.
    VoidPassword,
}

impl Task {
    /// The form that asks what this task needs.
    pub fn form(self) -> Form {
        use says::*;
        let card = Step::new(CARD, Kind::Digits { min: 12, max: 19 });
        let amount = Step::new(AMOUNT, Kind::Amount);
        let secret = |l| Step::new(l, Kind::Secret { len: 6 });
        let cashier = Step::new(CASHIER_NO, Kind::Digits { min: 2, max: 2 });
        let (title, steps) = match &self {
            Task::Login => (
                LOGIN,
                vec![
                    Step::new(OPERATOR_NO, Kind::Digits { min: 2, max: 2 }),
                    secret(PASSWORD),
                ],
            ),
            Task::ChangeAtLogin { .. } => {
                (CHANGE_PASSWORD, vec![secret(NEW_PASSWORD), secret(AGAIN)])
            }
            Task::Sale => (SALE, vec![card, amount, secret(PIN)]),
            Task::Balance => (BALANCE, vec![card, secret(PIN)]),
            Task::Qr => (
                QR,
                vec![Step::new(CODE, Kind::Digits { min: 16, max: 24 }), amount],
            ),
            Task::QrPassword { .. } => (QR, vec![secret(CODE_PASSWORD)]),
            Task::Void { .. } => (VOID, vec![card, secret(SUPERVISOR)]),
            Task::Refund { .. } => (REFUND, vec![card, amount, secret(SUPERVISOR)]),
            Task::Preauth => (PREAUTH, vec![card, amount, secret(PIN)]),
            Task::PreauthVoid(_) => (PREAUTH_VOID, vec![card, secret(SUPERVISOR)]),
            Task::Complete(_) => (COMPLETE, vec![card, amount]),
            Task::CompleteVoid { .. } => (COMPLETE_VOID, vec![card, secret(SUPERVISOR)]),
            Task::Settle => (SETTLE, vec![secret(SUPERVISOR)]),
            Task::AddCashier => (
                ADD_CASHIER,
                vec![secret(ADMIN), cashier, secret(NEW_PASSWORD), secret(AGAIN)],
            ),
            Task::RemoveCashier => (REMOVE_CASHIER, vec![secret(ADMIN), cashier]),
            Task::ResetSupervisor => (RESET_SUPERVISOR, vec![secret(ADMIN)]),
            Task::Permissions => (
                PERMISSIONS,
                vec![
                    secret(ADMIN),
                    cashier,
                    Step::new(PERMISSION_SET, Kind::Digits { min: 0, max: 4 }),
                ],
            ),
            Task::ChangePassword => (
                CHANGE_PASSWORD,
                vec![secret(OLD_PASSWORD), secret(NEW_PASSWORD), secret(AGAIN)],
            ),
            Task::VoidPassword => (
                VOID_PASSWORD,
                vec![secret(OLD_PASSWORD), secret(NEW_PASSWORD), secret(AGAIN)],
            ),
        };
        let values = steps.iter().map(|_| Entry::default()).collect();
        Form {
            title,
            task: self,
            steps,
            at: 0,
            values,
            note: None,
        }
    }
}

/// One field of a form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// What it asks.
    pub label: Label,
    /// What it takes.
    pub kind: Kind,
}

impl Step {
    fn new(label: Label, kind: Kind) -> Self {
        Self { label, kind }
    }
}

/// A form being filled in, field by field.
#[derive(Clone, Debug)]
pub struct Form {
    /// Its title.
    pub title: Label,
    /// What it does when filled in.
    pub task: Task,
    /// Its fields.
    pub steps: Vec<Step>,
    /// The field being typed.
    pub at: usize,
    /// What was typed.
    pub values: Vec<Entry>,
    /// Why the last try failed.
    pub note: Option<String>,
}

/// The menus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Menu {
    /// 主菜单.
    Main,
    /// 预授权.
    Preauth,
    /// 管理.
    Manage,
}

/// Where a menu item goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Go {
    /// A form.
    Form(Task),
    /// A transaction picked from the log first.
    Pick(PickFor),
    /// Another menu.
    Menu(Menu),
    /// Sign on (签到).
    SignOn,
    /// The last receipt again (重打印).
    Reprint,
    /// The terminal's settings (终端参数).
    Parameters,
}

impl Menu {
    /// Its title.
    pub fn title(self) -> Label {
        match self {
            Menu::Main => says::MAIN_MENU,
            Menu::Preauth => says::PREAUTH_MENU,
            Menu::Manage => says::MANAGE,
        }
    }

    /// Its items: the key, the label, where it goes.
    pub fn items(self) -> Vec<(char, Label, Go)> {
        use says::*;
        match self {
            Menu::Main => vec![
                ('1', SALE, Go::Form(Task::Sale)),
                ('2', VOID, Go::Pick(PickFor::Void)),
                ('3', REFUND, Go::Pick(PickFor::Refund)),
                ('4', BALANCE, Go::Form(Task::Balance)),
                ('5', QR, Go::Form(Task::Qr)),
                ('6', PREAUTH_MENU, Go::Menu(Menu::Preauth)),
                ('7', QUERY, Go::Pick(PickFor::Query)),
                ('8', SETTLE, Go::Form(Task::Settle)),
                ('9', SIGN_ON, Go::SignOn),
                ('0', MANAGE, Go::Menu(Menu::Manage)),
                ('*', REPRINT, Go::Reprint),
            ],
            Menu::Preauth => vec![
                ('1', PREAUTH, Go::Form(Task::Preauth)),
                ('2', PREAUTH_VOID, Go::Pick(PickFor::PreauthVoid)),
                ('3', COMPLETE, Go::Pick(PickFor::Complete)),
                ('4', COMPLETE_VOID, Go::Pick(PickFor::CompleteVoid)),
            ],
            Menu::Manage => vec![
                ('1', ADD_CASHIER, Go::Form(Task::AddCashier)),
                ('2', REMOVE_CASHIER, Go::Form(Task::RemoveCashier)),
                ('3', RESET_SUPERVISOR, Go::Form(Task::ResetSupervisor)),
                ('4', PERMISSIONS, Go::Form(Task::Permissions)),
                ('5', CHANGE_PASSWORD, Go::Form(Task::ChangePassword)),
                ('6', VOID_PASSWORD, Go::Form(Task::VoidPassword)),
                ('7', PARAMETERS, Go::Parameters),
            ],
        }
    }
}

/// What a transaction is picked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickFor {
    /// A sale of the open batch, to void.
    Void,
    /// A sale of the open or last settled batch, to refund.
    Refund,
    /// A pre-authorisation, to release.
    PreauthVoid,
    /// A pre-authorisation, to complete.
    Complete,
    /// A completion of the open batch, to void.
    CompleteVoid,
    /// Anything in the log, to look at (交易查询).
    Query,
}

/// A transaction picked from the log.
#[derive(Clone, Debug)]
pub struct Pick {
    /// What for.
    pub purpose: PickFor,
    /// The candidates, newest first.
    pub entries: Vec<LogEntry>,
    /// The one selected.
    pub sel: usize,
}

/// A screen.
#[derive(Clone, Debug)]
pub enum Screen {
    /// A form.
    Form(Form),
    /// A menu.
    Menu {
        /// Which.
        menu: Menu,
        /// The item selected.
        sel: usize,
        /// What the last choice said (a permission refused, say).
        note: Option<String>,
    },
    /// A transaction to pick.
    Pick(Pick),
    /// Waiting for the switch.
    Busy(Label),
    /// A result: a receipt, a slip, a message.
    Show {
        /// Its title.
        title: Label,
        /// Its lines.
        lines: Vec<String>,
        /// The transaction shown, for `*` (reprint).
        entry: Option<LogEntry>,
    },
}

/// What the POS asks of the terminal.
#[derive(Clone, Debug)]
pub enum Job {
    /// A form filled in.
    Run(Task, Vec<Typed>),
    /// A menu item chosen: permission checked, then its form or list.
    Open(Go),
    /// A transaction picked.
    Picked(PickFor, LogEntry),
    /// A receipt again.
    Reprint(LogEntry),
}

/// What a job came to.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Go to this screen.
    Screen(Box<Screen>),
    /// Logged in as this operator: the main menu.
    LoggedIn(String),
    /// Refused: back where it was, saying why.
    Refused(String),
}

impl Outcome {
    /// Go to `s`.
    pub fn screen(s: Screen) -> Self {
        Self::Screen(Box::new(s))
    }
}

/// The POS.
#[derive(Debug)]
pub struct App {
    /// The screen now.
    pub screen: Screen,
    /// The screen a refusal goes back to.
    back: Option<Screen>,
    /// The operator logged in.
    pub operator: Option<String>,
    /// The language.
    pub lang: Lang,
    /// What waits to be done.
    pub job: Option<Job>,
    /// Esc on the login screen: the POS is off.
    pub quit: bool,
}

impl App {
    /// Powered on: the login screen.
    pub fn new(lang: Lang) -> Self {
        Self {
            screen: Screen::Form(Task::Login.form()),
            back: None,
            operator: None,
            lang,
            job: None,
            quit: false,
        }
    }

    fn main_menu(note: Option<String>) -> Screen {
        Screen::Menu {
            menu: Menu::Main,
            sel: 0,
            note,
        }
    }

    /// A key pressed.
    pub fn key(&mut self, key: Key) {
        if self.job.is_some() {
            return;
        }
        let screen = std::mem::replace(&mut self.screen, Screen::Busy(says::PROCESSING));
        self.screen = match screen {
            Screen::Form(f) => self.form_key(f, key),
            Screen::Menu { menu, sel, note } => self.menu_key(menu, sel, note, key),
            Screen::Pick(p) => self.pick_key(p, key),
            Screen::Show {
                title,
                lines,
                entry,
            } => match (key, entry) {
                (Key::Star, Some(e)) => {
                    let back = Screen::Show {
                        title,
                        lines,
                        entry: Some(e.clone()),
                    };
                    self.start(Job::Reprint(e), back)
                }
                (Key::Enter | Key::Esc, _) => Self::main_menu(None),
                (_, entry) => Screen::Show {
                    title,
                    lines,
                    entry,
                },
            },
            s @ Screen::Busy(_) => s,
        };
    }

    /// Hands out a job: the screen shows Busy until it comes back; `back` is where a
    /// refusal returns.
    fn start(&mut self, job: Job, back: Screen) -> Screen {
        self.job = Some(job);
        self.back = Some(back);
        Screen::Busy(says::PROCESSING)
    }

    fn form_key(&mut self, mut f: Form, key: Key) -> Screen {
        let step = f.steps[f.at];
        match key {
            Key::Digit(c) => f.values[f.at].digit(step.kind, c),
            Key::Back => f.values[f.at].back(),
            Key::Esc if f.task == Task::Login => {
                self.quit = true;
            }
            Key::Esc => return Self::main_menu(None),
            Key::Enter if f.values[f.at].complete(step.kind) => {
                f.note = None;
                if f.at + 1 < f.steps.len() {
                    f.at += 1;
                } else {
                    let values = f.values.iter().map(|e| Typed::new(e.text())).collect();
                    let task = f.task.clone();
                    // Typed again from the start if refused.
                    let again = task.clone().form();
                    return self.start(Job::Run(task, values), Screen::Form(again));
                }
            }
            _ => {}
        }
        Screen::Form(f)
    }

    fn menu_key(&mut self, menu: Menu, mut sel: usize, note: Option<String>, key: Key) -> Screen {
        let items = menu.items();
        let choose = |this: &mut Self, i: usize| {
            let go = items[i].2.clone();
            let here = Screen::Menu {
                menu,
                sel: i,
                note: None,
            };
            match go {
                Go::Menu(m) => Screen::Menu {
                    menu: m,
                    sel: 0,
                    note: None,
                },
                go => this.start(Job::Open(go), here),
            }
        };
        match key {
            Key::Up => sel = sel.checked_sub(1).unwrap_or(items.len() - 1),
            Key::Down => sel = (sel + 1) % items.len(),
            Key::Enter => return choose(self, sel),
            Key::Digit(_) | Key::Star => {
                if let Some(i) = items.iter().position(|i| Some(i.0) == key_char(key)) {
                    return choose(self, i);
                }
            }
            Key::Esc if menu == Menu::Main => {
                // Log out: the next operator logs in.
                self.operator = None;
                return Screen::Form(Task::Login.form());
            }
            Key::Esc => return Self::main_menu(None),
            _ => {}
        }
        Screen::Menu { menu, sel, note }
    }

    fn pick_key(&mut self, mut p: Pick, key: Key) -> Screen {
        let n = p.entries.len();
        match key {
            Key::Up if n > 0 => p.sel = p.sel.checked_sub(1).unwrap_or(n - 1),
            Key::Down if n > 0 => p.sel = (p.sel + 1) % n,
            Key::Enter if n > 0 => {
                let e = p.entries[p.sel].clone();
                let purpose = p.purpose;
                return self.start(Job::Picked(purpose, e), Screen::Pick(p));
            }
            Key::Esc => return Self::main_menu(None),
            _ => {}
        }
        Screen::Pick(p)
    }

    /// A job's outcome.
    pub fn finish(&mut self, outcome: Outcome) {
        self.job = None;
        let back = self.back.take();
        self.screen = match outcome {
            Outcome::Screen(s) => *s,
            Outcome::LoggedIn(no) => {
                self.operator = Some(no);
                Self::main_menu(None)
            }
            Outcome::Refused(why) => match back {
                Some(Screen::Form(mut f)) => {
                    f.note = Some(why);
                    Screen::Form(f)
                }
                Some(Screen::Menu { menu, sel, .. }) => Screen::Menu {
                    menu,
                    sel,
                    note: Some(why),
                },
                _ => Self::main_menu(Some(why)),
            },
        };
    }
}

/// The menu key of a keypad key.
fn key_char(key: Key) -> Option<char> {
    match key {
        Key::Star => Some('*'),
        Key::Digit(c) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(app: &mut App, keys: &str) {
        for c in keys.chars() {
            app.key(match c {
                '\n' => Key::Enter,
                '<' => Key::Back,
                '^' => Key::Esc,
                '*' => Key::Star,
                c => Key::Digit(c),
            });
        }
    }

    #[test]
    fn login_then_a_sale_form_then_its_job() {
        let mut app = App::new(Lang::Both);
        typed(&mut app, "01\n102938\n");
        let Some(Job::Run(Task::Login, v)) = app.job.clone() else {
            panic!("{:?}", app.job)
        };
        assert_eq!(v, [Typed::new("01"), Typed::new("102938")]);
        assert!(
            !format!("{:?}", app.job).contains("102938"),
            "Debug shows no secret"
        );
        app.finish(Outcome::LoggedIn("01".into()));
        assert_eq!(app.operator.as_deref(), Some("01"));
        typed(&mut app, "1");
        let Some(Job::Open(Go::Form(Task::Sale))) = app.job.clone() else {
            panic!("{:?}", app.job)
        };
        app.finish(Outcome::screen(Screen::Form(Task::Sale.form())));
        // The card, an amount typed as on a POS with a correction, the PIN.
        typed(&mut app, "6222021000000000017\n1235<4\n123456\n");
        let Some(Job::Run(Task::Sale, v)) = app.job.clone() else {
            panic!("{:?}", app.job)
        };
        assert_eq!(v, ["6222021000000000017", "1234", "123456"].map(Typed::new));
    }

    #[test]
    fn a_refusal_goes_back_with_its_reason_and_esc_logs_out() {
        let mut app = App::new(Lang::Zh);
        typed(&mut app, "01\n111111\n");
        app.finish(Outcome::Refused("wrong password".into()));
        let Screen::Form(f) = &app.screen else {
            panic!()
        };
        assert_eq!(
            (f.task.clone(), f.note.as_deref()),
            (Task::Login, Some("wrong password"))
        );
        assert_eq!(f.values[0].text(), "", "typed again");
        typed(&mut app, "01\n102938\n");
        app.finish(Outcome::LoggedIn("01".into()));
        typed(&mut app, "^");
        assert!(app.operator.is_none());
        typed(&mut app, "^");
        assert!(app.quit, "Esc at login: off");
    }

    #[test]
    fn incomplete_fields_do_not_advance_and_menus_wrap() {
        let mut app = App::new(Lang::En);
        typed(&mut app, "1\n");
        let Screen::Form(f) = &app.screen else {
            panic!()
        };
        assert_eq!(f.at, 0, "one digit is no operator number");
        typed(&mut app, "1\n123456\n");
        app.finish(Outcome::LoggedIn("11".into()));
        app.key(Key::Up);
        let Screen::Menu { sel, .. } = &app.screen else {
            panic!()
        };
        assert_eq!(*sel, Menu::Main.items().len() - 1);
        typed(&mut app, "6");
        let Screen::Menu { menu, .. } = &app.screen else {
            panic!()
        };
        assert_eq!(*menu, Menu::Preauth, "a submenu opens without a job");
    }
}
