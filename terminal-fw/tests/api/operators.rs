//! Operator rules: passwords, factory passwords, lockout (surviving a restart), roles.

use terminal_fw::operators::{FACTORY_ADMIN, FACTORY_SUPERVISOR, OperatorError, Operators, Role};

use crate::{store, temp_dir};

#[test]
fn factory_passwords_must_change_and_rules_hold() {
    let dir = temp_dir("ops");
    let mut s = store(&dir, "10000101");
    let mut ops = Operators::new(&mut s).unwrap();
    assert!(matches!(
        ops.login("00", FACTORY_SUPERVISOR),
        Err(OperatorError::MustChange(_))
    ));
    assert!(matches!(
        ops.login("99", FACTORY_ADMIN),
        Err(OperatorError::MustChange(_))
    ));
    for weak in ["111111", "123456", "654321", "12345", "abcdef"] {
        assert!(
            matches!(
                ops.change_password("00", FACTORY_SUPERVISOR, weak),
                Err(OperatorError::WeakPassword(_))
            ),
            "{weak}"
        );
    }
    assert!(
        matches!(
            ops.change_password("00", "999999", "246802"),
            Err(OperatorError::WrongPassword { .. })
        ),
        "the old password is needed"
    );
    ops.change_password("00", FACTORY_SUPERVISOR, "246802")
        .unwrap();
    assert_eq!(ops.login("00", "246802").unwrap(), Role::Supervisor);
    ops.change_password("99", FACTORY_ADMIN, "135790").unwrap();
    // Only the administrator adds cashiers; cashiers are 01-98.
    assert!(ops.add_cashier("246802", "01", "102938").is_err());
    assert!(matches!(
        ops.add_cashier("135790", "00", "102938"),
        Err(OperatorError::NotAllowed(_))
    ));
    ops.add_cashier("135790", "01", "102938").unwrap();
    assert_eq!(ops.login("01", "102938").unwrap(), Role::Cashier);
    ops.login_to_transact("01", "102938").unwrap();
    // The administrator never transacts.
    assert!(matches!(
        ops.login_to_transact("99", "135790"),
        Err(OperatorError::NotAllowed(_))
    ));
    // The supervisor resets a cashier's password; it must be changed at next login.
    ops.reset_password("246802", "01", "112233").unwrap();
    assert!(matches!(
        ops.login("01", "112233"),
        Err(OperatorError::MustChange(_))
    ));
    ops.change_password("01", "112233", "998877").unwrap();
    ops.login("01", "998877").unwrap();
    ops.remove_cashier("135790", "01").unwrap();
    assert!(matches!(
        ops.login("01", "998877"),
        Err(OperatorError::Unknown(_))
    ));
    // No password is stored in clear.
    let db = std::fs::read(dir.join("terminal.db")).unwrap();
    for pw in ["246802", "135790", "998877"] {
        assert!(
            !db.windows(6).any(|w| w == pw.as_bytes()),
            "{pw} stored in clear"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lockout_after_five_failures_survives_restart() {
    let dir = temp_dir("lock");
    {
        let mut s = store(&dir, "10000102");
        let mut ops = Operators::new(&mut s).unwrap();
        ops.change_password("99", FACTORY_ADMIN, "135790").unwrap();
        ops.add_cashier("135790", "02", "102938").unwrap();
        ops.lock_secs = 2;
        for remaining in [4, 3, 2, 1] {
            assert!(
                matches!(ops.login("02", "000001"), Err(OperatorError::WrongPassword { remaining: r, .. }) if r == remaining)
            );
        }
        assert!(matches!(
            ops.login("02", "000001"),
            Err(OperatorError::Locked { .. })
        ));
        assert!(
            matches!(ops.login("02", "102938"), Err(OperatorError::Locked { .. })),
            "even the right password"
        );
    }
    // A restart does not lift the lock.
    let mut s = terminal_fw::Store::open(&dir).unwrap();
    let mut ops = Operators::new(&mut s).unwrap();
    assert!(matches!(
        ops.login("02", "102938"),
        Err(OperatorError::Locked { .. })
    ));
    // Once the lock time (2 s here) has passed, the right password works.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    assert_eq!(ops.login("02", "102938").unwrap(), Role::Cashier);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A locked supervisor is reset by the administrator to the factory password, which must be
/// changed at its next login; the reset is recorded. The wrong-password message states how
/// long the lock lasts.
#[test]
fn the_administrator_resets_a_locked_supervisor() {
    let dir = temp_dir("ops-reset");
    let mut s = store(&dir, "10000102");
    let mut ops = Operators::new(&mut s).unwrap();
    ops.change_password("99", FACTORY_ADMIN, "135790").unwrap();
    ops.change_password("00", FACTORY_SUPERVISOR, "246802")
        .unwrap();
    let first = ops.login("00", "000001").unwrap_err().to_string();
    assert!(first.contains("locked for 10 min"), "{first}");
    for _ in 0..4 {
        let _ = ops.login("00", "000001");
    }
    assert!(matches!(
        ops.authorise_supervisor("246802"),
        Err(OperatorError::Locked { .. })
    ));
    // Only the administrator, with its password.
    assert!(ops.reset_supervisor("000000").is_err());
    ops.reset_supervisor("135790").unwrap();
    assert!(matches!(
        ops.login("00", FACTORY_SUPERVISOR),
        Err(OperatorError::MustChange(_))
    ));
    ops.change_password("00", FACTORY_SUPERVISOR, "192837")
        .unwrap();
    ops.authorise_supervisor("192837").unwrap();
    let events = ops.events().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].1.as_str(),
            events[0].2.as_str(),
            events[0].3.as_str()
        ),
        ("99", "reset to the factory password", "00")
    );
}
