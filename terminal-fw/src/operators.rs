//! Operators and passwords (操作员号及密码).
//!
//! | number | role | may |
//! | --- | --- | --- |
//! | `00` | supervisor (主管) | authorise voids, refunds and settlement; reset cashiers' passwords |
//! | `99` | system administrator (系统管理员) | add and remove cashiers, change settings; never transact |
//! | `01`–`98` | cashiers (操作员) | log in and transact |
//!
//! Passwords are 6 digits, never all one digit (`111111`) nor a run (`123456`, `654321`).
//! They are stored only as salted PBKDF2-HMAC-SHA256 hashes. `00` and `99` start with
//! factory passwords that must be changed at the first login. After 5 wrong passwords in a
//! row an operator is locked for a while (频繁登录失败); counters and locks are persisted.

use std::num::NonZeroU32;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::pbkdf2;
use ring::rand::SecureRandom;
use rusqlite::{OptionalExtension, params};
use subtle::ConstantTimeEq;

use crate::store::{Store, StoreError};

/// Factory password of the supervisor (00): must be changed at the first login.
pub const FACTORY_SUPERVISOR: &str = "123456";
/// Factory password of the administrator (99): must be changed at the first login.
pub const FACTORY_ADMIN: &str = "000000";
/// Wrong passwords in a row before a lock.
pub const MAX_FAILURES: u32 = 5;

/// What a cashier may do, as the administrator sets it (all four by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// 交易: sale, QR sale, balance inquiry, sign-on.
    Transact,
    /// 撤销/退货: void and refund (the supervisor's password is still needed).
    VoidRefund,
    /// 查询: the transaction log and reprints.
    Query,
    /// 结算: settlement (the supervisor's password is still needed).
    Settle,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 4] = [
        Permission::Transact,
        Permission::VoidRefund,
        Permission::Query,
        Permission::Settle,
    ];

    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transact => "transact",
            Self::VoidRefund => "void-refund",
            Self::Query => "query",
            Self::Settle => "settle",
        }
    }

    /// Its name on the POS (Chinese).
    pub fn label(self) -> &'static str {
        match self {
            Self::Transact => "交易",
            Self::VoidRefund => "撤销/退货",
            Self::Query => "查询",
            Self::Settle => "结算",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// What an operator is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `00`.
    Supervisor,
    /// `99`.
    Admin,
    /// `01`–`98`.
    Cashier,
}

impl Role {
    /// The role of an operator number, if it is one.
    pub fn of(no: &str) -> Option<Role> {
        if no.len() != 2 || !no.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(match no {
            "00" => Role::Supervisor,
            "99" => Role::Admin,
            _ => Role::Cashier,
        })
    }
}

/// Why an operator action was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Not `00`, `99` or `01`–`98`, or no such operator.
    #[error("operator {0} does not exist")]
    Unknown(String),
    /// Wrong password.
    #[error(
        "wrong password ({remaining} tries left before the operator is locked for {} min)",
        .lock_secs.div_ceil(60)
    )]
    WrongPassword {
        /// Tries left.
        remaining: u32,
        /// How long the lock lasts.
        lock_secs: u64,
    },
    /// Locked after too many failures.
    #[error("operator locked after {MAX_FAILURES} wrong passwords; try again in {seconds} s")]
    Locked {
        /// Seconds until the lock ends.
        seconds: u64,
    },
    /// The factory password must be changed first (the operator's number).
    #[error(
        "operator {0} still has its factory password: change it first with `terminal-fw operator passwd --operator {0}`"
    )]
    MustChange(String),
    /// The new password breaks a rule.
    #[error("password rejected: {0}")]
    WeakPassword(&'static str),
    /// The operator's role does not allow this.
    #[error("{0}")]
    NotAllowed(&'static str),
    /// The administrator has not given this cashier the permission.
    #[error(
        "operator {operator} may not do this: it needs the {} ({}) permission, which the administrator (99) gives with `terminal-fw operator permit`",
        .permission.as_str(),
        .permission.label()
    )]
    NotPermitted {
        /// The cashier.
        operator: String,
        /// What it lacks.
        permission: Permission,
    },
    /// The state could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for OperatorError {
    fn from(e: rusqlite::Error) -> Self {
        OperatorError::Store(StoreError::Sql(e))
    }
}

/// Checks a new password against the rules.
pub fn check_password_rules(pw: &str) -> Result<(), OperatorError> {
    let d = pw.as_bytes();
    if d.len() != 6 || !d.iter().all(u8::is_ascii_digit) {
        return Err(OperatorError::WeakPassword("must be 6 digits"));
    }
    if d.iter().all(|c| *c == d[0]) {
        return Err(OperatorError::WeakPassword("all one digit"));
    }
    let steps: Vec<i16> = d
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    if steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1) {
        return Err(OperatorError::WeakPassword("a run of digits"));
    }
    Ok(())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hash(pw: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, n, salt, pw.as_bytes(), &mut out);
    out
}

/// An operator's stored record.
struct Stored {
    salt: Vec<u8>,
    hash: Vec<u8>,
    iterations: u32,
    must_change: bool,
    failures: u32,
    locked_until: u64,
}

/// Operator management over the terminal's store.
pub struct Operators<'s> {
    store: &'s mut Store,
    /// How long a lock lasts.
    pub lock_secs: u64,
}

impl<'s> Operators<'s> {
    /// Operators of `store`; creates `00` and `99` with factory passwords the first time.
    pub fn new(store: &'s mut Store) -> Result<Self, OperatorError> {
        let mut ops = Self {
            store,
            lock_secs: 600,
        };
        for (no, pw) in [("00", FACTORY_SUPERVISOR), ("99", FACTORY_ADMIN)] {
            if !ops.exists(no)? {
                ops.put(no, pw, true)?;
            }
        }
        Ok(ops)
    }

    fn exists(&self, no: &str) -> Result<bool, OperatorError> {
        Ok(self
            .store
            .conn()
            .query_row("SELECT 1 FROM operators WHERE no = ?1", [no], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn put(&mut self, no: &str, pw: &str, must_change: bool) -> Result<(), OperatorError> {
        let mut salt = [0u8; 16];
        self.store
            .rng()
            .fill(&mut salt)
            .map_err(|_| OperatorError::Store(StoreError::Sealed))?;
        let iterations = self.store.pbkdf2_iterations;
        let h = hash(pw, &salt, iterations);
        self.store.conn().execute(
            "INSERT OR REPLACE INTO operators (no, salt, hash, iterations, must_change, failures, locked_until)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, 0)",
            params![no, &salt[..], &h[..], iterations, must_change],
        )?;
        Ok(())
    }

    /// Checks a password, counting failures and locking (both persisted). Returns whether
    /// the password must still be changed.
    fn verify(&mut self, no: &str, pw: &str) -> Result<bool, OperatorError> {
        let row = self
            .store
            .conn()
            .query_row(
                "SELECT salt, hash, iterations, must_change, failures, locked_until FROM operators WHERE no = ?1",
                [no],
                |r| {
                    Ok(Stored {
                        salt: r.get(0)?,
                        hash: r.get(1)?,
                        iterations: r.get(2)?,
                        must_change: r.get(3)?,
                        failures: r.get(4)?,
                        locked_until: r.get(5)?,
                    })
                },
            )
            .optional()?;
        let Stored {
            salt,
            hash: stored,
            iterations,
            must_change,
            failures,
            locked_until,
        } = row.ok_or_else(|| OperatorError::Unknown(no.to_owned()))?;
        let now = now_secs();
        if locked_until > now {
            return Err(OperatorError::Locked {
                seconds: locked_until - now,
            });
        }
        let ok: bool = hash(pw, &salt, iterations)[..].ct_eq(&stored[..]).into();
        if ok {
            self.store.conn().execute(
                "UPDATE operators SET failures = 0, locked_until = 0 WHERE no = ?1",
                [no],
            )?;
            return Ok(must_change);
        }
        let failures = failures + 1;
        let locked = if failures >= MAX_FAILURES {
            now + self.lock_secs
        } else {
            0
        };
        let failures_kept = if locked > 0 { 0 } else { failures };
        self.store.conn().execute(
            "UPDATE operators SET failures = ?2, locked_until = ?3 WHERE no = ?1",
            params![no, failures_kept, locked],
        )?;
        if locked > 0 {
            Err(OperatorError::Locked {
                seconds: self.lock_secs,
            })
        } else {
            Err(OperatorError::WrongPassword {
                remaining: MAX_FAILURES - failures,
                lock_secs: self.lock_secs,
            })
        }
    }

    /// Logs in: the operator's role, once the password is right and not a factory one.
    pub fn login(&mut self, no: &str, pw: &str) -> Result<Role, OperatorError> {
        let role = Role::of(no).ok_or_else(|| OperatorError::Unknown(no.to_owned()))?;
        if self.verify(no, pw)? {
            return Err(OperatorError::MustChange(no.to_owned()));
        }
        Ok(role)
    }

    /// Logs in a cashier to transact: the administrator never transacts.
    pub fn login_to_transact(&mut self, no: &str, pw: &str) -> Result<(), OperatorError> {
        match self.login(no, pw)? {
            Role::Admin => Err(OperatorError::NotAllowed(
                "the system administrator cannot transact",
            )),
            _ => Ok(()),
        }
    }

    /// Checks the supervisor password (voids, refunds, settlement).
    pub fn authorise_supervisor(&mut self, pw: &str) -> Result<(), OperatorError> {
        self.login("00", pw).map(|_| ())
    }

    /// Changes an operator's own password; the old one is needed (a factory one included).
    pub fn change_password(&mut self, no: &str, old: &str, new: &str) -> Result<(), OperatorError> {
        Role::of(no).ok_or_else(|| OperatorError::Unknown(no.to_owned()))?;
        self.verify(no, old)?;
        check_password_rules(new)?;
        if new == old {
            return Err(OperatorError::WeakPassword("same as the old password"));
        }
        self.put(no, new, false)
    }

    /// The administrator adds a cashier.
    pub fn add_cashier(&mut self, admin_pw: &str, no: &str, pw: &str) -> Result<(), OperatorError> {
        if self.login("99", admin_pw)? != Role::Admin {
            return Err(OperatorError::NotAllowed(
                "only the administrator adds cashiers",
            ));
        }
        if Role::of(no) != Some(Role::Cashier) {
            return Err(OperatorError::NotAllowed("cashiers are numbered 01 to 98"));
        }
        check_password_rules(pw)?;
        self.put(no, pw, false)
    }

    /// The administrator removes a cashier.
    pub fn remove_cashier(&mut self, admin_pw: &str, no: &str) -> Result<(), OperatorError> {
        self.login("99", admin_pw)?;
        if Role::of(no) != Some(Role::Cashier) {
            return Err(OperatorError::NotAllowed("only cashiers can be removed"));
        }
        if self
            .store
            .conn()
            .execute("DELETE FROM operators WHERE no = ?1", [no])?
            == 0
        {
            return Err(OperatorError::Unknown(no.to_owned()));
        }
        // A cashier added again under this number starts with every permission.
        self.store
            .conn()
            .execute("DELETE FROM operator_permissions WHERE no = ?1", [no])?;
        Ok(())
    }

    /// A cashier's permissions (the supervisor has them all).
    pub fn permissions(&self, no: &str) -> Result<Vec<Permission>, OperatorError> {
        if Role::of(no) != Some(Role::Cashier) {
            return Ok(Permission::ALL.to_vec());
        }
        let text: Option<String> = self
            .store
            .conn()
            .query_row(
                "SELECT permissions FROM operator_permissions WHERE no = ?1",
                [no],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match text {
            None => Permission::ALL.to_vec(),
            Some(t) => t.split(',').filter_map(Permission::parse).collect(),
        })
    }

    /// Refused unless `no` holds `permission`.
    pub fn require(&self, no: &str, permission: Permission) -> Result<(), OperatorError> {
        if self.permissions(no)?.contains(&permission) {
            Ok(())
        } else {
            Err(OperatorError::NotPermitted {
                operator: no.to_owned(),
                permission,
            })
        }
    }

    /// The administrator sets a cashier's permissions (recorded in the operator events).
    pub fn set_permissions(
        &mut self,
        admin_pw: &str,
        no: &str,
        permissions: &[Permission],
    ) -> Result<(), OperatorError> {
        if self.login("99", admin_pw)? != Role::Admin {
            return Err(OperatorError::NotAllowed(
                "only the administrator sets permissions",
            ));
        }
        if Role::of(no) != Some(Role::Cashier) || !self.exists(no)? {
            return Err(OperatorError::Unknown(no.to_owned()));
        }
        let text = Permission::ALL
            .into_iter()
            .filter(|p| permissions.contains(p))
            .map(Permission::as_str)
            .collect::<Vec<_>>()
            .join(",");
        self.store.conn().execute(
            "INSERT OR REPLACE INTO operator_permissions (no, permissions) VALUES (?1, ?2)",
            params![no, text],
        )?;
        let event = format!("permissions set to [{text}]");
        self.note("99", &event, no)
    }

    /// The administrator (99) resets a locked or forgotten supervisor (00): its password
    /// becomes the factory one, to be changed at its next login, and its lock ends. Recorded
    /// in the terminal's operator events. (The administrator's own recovery is
    /// `init --force`, a new terminal: nothing secret survives it.)
    pub fn reset_supervisor(&mut self, admin_pw: &str) -> Result<(), OperatorError> {
        if self.login("99", admin_pw)? != Role::Admin {
            return Err(OperatorError::NotAllowed(
                "only the administrator resets the supervisor",
            ));
        }
        self.put("00", FACTORY_SUPERVISOR, true)?;
        self.note("99", "reset to the factory password", "00")
    }

    /// Records an operator event (who did what to whom, when) in the terminal's state.
    fn note(&mut self, by: &str, event: &str, operator: &str) -> Result<(), OperatorError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.store.conn().execute(
            "INSERT INTO operator_events (time, by, event, operator) VALUES (?1, ?2, ?3, ?4)",
            params![now as i64, by, event, operator],
        )?;
        Ok(())
    }

    /// The operator events, oldest first: (UTC seconds, by, event, operator).
    pub fn events(&self) -> Result<Vec<(i64, String, String, String)>, OperatorError> {
        let mut q = self
            .store
            .conn()
            .prepare("SELECT time, by, event, operator FROM operator_events ORDER BY rowid")?;
        let rows = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The supervisor resets a cashier's password (the cashier changes it at next login).
    pub fn reset_password(
        &mut self,
        supervisor_pw: &str,
        no: &str,
        new: &str,
    ) -> Result<(), OperatorError> {
        self.authorise_supervisor(supervisor_pw)?;
        if Role::of(no) != Some(Role::Cashier) || !self.exists(no)? {
            return Err(OperatorError::Unknown(no.to_owned()));
        }
        check_password_rules(new)?;
        self.put(no, new, true)?;
        self.note("00", "password reset", no)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        for bad in [
            "111111", "123456", "654321", "345678", "12345", "1234567", "12a456",
        ] {
            assert!(check_password_rules(bad).is_err(), "{bad}");
        }
        for good in ["135790", "112233", "246802", "102938"] {
            assert!(check_password_rules(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn roles() {
        assert_eq!(Role::of("00"), Some(Role::Supervisor));
        assert_eq!(Role::of("99"), Some(Role::Admin));
        assert_eq!(Role::of("01"), Some(Role::Cashier));
        assert_eq!(Role::of("1"), None);
    }
}
