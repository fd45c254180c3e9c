//! The POS screen as a person uses it: tmux runs `terminal-fw pos`, `send-keys` types on
//! the keypad, `capture-pane` reads the screen. Skipped (saying so) where tmux is missing.

use std::process::Command;
use std::time::{Duration, Instant};

use terminal_fw::operators::{FACTORY_ADMIN, FACTORY_SUPERVISOR, Operators};

use crate::{store, switch, temp_dir};

/// A POS screen in a tmux session of its own, killed when dropped.
struct Screen {
    session: String,
}

impl Screen {
    /// `terminal-fw pos` on the terminal state in `state`, against `addr`; `None` without
    /// tmux.
    fn start(state: &std::path::Path, addr: &str, extra: &[&str]) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("tmux is not installed: the POS screen tests do not run");
            return None;
        }
        let session = format!(
            "tfw-pos-{}-{}",
            std::process::id(),
            state.file_name().unwrap().to_string_lossy()
        );
        let mut cmd = format!(
            "{} --state {} --switch {addr} pos",
            env!("CARGO_BIN_EXE_terminal-fw"),
            state.display()
        );
        for e in extra {
            cmd.push(' ');
            cmd.push_str(e);
        }
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "100", "-y", "34"])
            .arg(&cmd)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session");
        Some(Self { session })
    }

    /// Types: each word is a tmux key (`Enter`, `Escape`, `Down`, …) or characters.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["send-keys", "-t", &self.session, k])
                .status()
                .unwrap()
                .success();
            assert!(ok, "tmux send-keys {k}");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Digits typed one key at a time, as on a keypad.
    fn digits(&self, digits: &str) {
        for c in digits.chars() {
            self.keys(&[&c.to_string()]);
        }
    }

    /// A field typed and confirmed.
    fn enter(&self, digits: &str) {
        self.digits(digits);
        self.keys(&["Enter"]);
    }

    /// What the screen shows now.
    fn text(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `what` (10 s at most); the screen then.
    fn wait_for(&self, what: &str) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let t = self.text();
            if t.contains(what) {
                return t;
            }
            assert!(
                Instant::now() < end,
                "the screen never showed {what:?}:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the POS is still running.
    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A terminal with its passwords changed and cashier 01 (102938) added.
fn terminal(tid: &str) -> std::path::PathBuf {
    let dir = temp_dir(&format!("pos-{tid}"));
    let mut s = store(&dir, tid);
    let mut ops = Operators::new(&mut s).unwrap();
    ops.change_password("99", FACTORY_ADMIN, "135790").unwrap();
    ops.change_password("00", FACTORY_SUPERVISOR, "246802")
        .unwrap();
    ops.add_cashier("135790", "01", "102938").unwrap();
    dir
}

const DEBIT: &str = "6222021000000000017";

fn login(s: &Screen) {
    s.wait_for("操作员号 Operator no.");
    s.enter("01");
    s.enter("102938");
    s.wait_for("主菜单 Main menu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_signs_on_sells_voids_and_settles_on_the_pos_screen() {
    let sw_dir = temp_dir("pos-switch");
    let sw = switch(&sw_dir).await;
    let addr = sw.terminal_addr.to_string();
    let dir = terminal("10000601");
    let Some(s) = Screen::start(&dir, &addr, &[]) else {
        return;
    };
    login(&s);
    let menu = s.text();
    for item in [
        "1 消费 Sale",
        "2 撤销 Void",
        "3 退货 Refund",
        "4 余额查询 Balance",
        "5 付款码 QR sale",
        "6 预授权 Pre-authorisation",
        "7 交易查询 Transaction query",
        "8 结算 Settlement",
        "9 签到 Sign-on",
        "0 管理 Management",
        "* 重打印 Reprint",
    ] {
        assert!(menu.contains(item), "{item}:\n{menu}");
    }
    // The README's picture of the main menu is this screen's.
    let readme = include_str!("../../../README.md");
    let at = readme.find("### The POS screen").unwrap();
    let from = at + readme[at..].find("```text\n").unwrap() + 8;
    let picture = &readme[from..from + readme[from..].find("```").unwrap()];
    let rows: Vec<&str> = picture
        .lines()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' ' || c == '>'))
        .filter(|l| !l.is_empty() && !l.starts_with('┌') && !l.starts_with('└'))
        .collect();
    assert!(rows.len() >= 12, "{picture}");
    for row in rows {
        assert!(
            menu.contains(row),
            "README row {row:?} is not on the screen:\n{menu}"
        );
    }
    // Sign-on (9).
    s.keys(&["9"]);
    s.wait_for("BATCH 000001");
    s.keys(&["Enter"]);
    // A sale (1): the card, 12.34 typed as on a POS (a slip corrected), the PIN masked.
    s.keys(&["1"]);
    s.wait_for("请刷卡/插卡/输入卡号");
    s.enter(DEBIT);
    s.digits("125");
    s.keys(&["BSpace"]);
    s.digits("34");
    let shown = s.wait_for("12.34 CNY");
    assert!(shown.contains("12.34 CNY_"), "{shown}");
    s.keys(&["Enter"]);
    s.digits("123");
    let pin = s.wait_for("***_");
    assert!(!pin.contains("123_"), "the PIN is masked:\n{pin}");
    s.enter("456");
    let receipt = s.wait_for("签购单 POS RECEIPT");
    assert!(
        receipt.contains("SALE 消费")
            && receipt.contains("RMB 12.34")
            && receipt.contains("APPROVED")
            && receipt.contains("622202*********0017"),
        "{receipt}"
    );
    assert!(!receipt.contains(DEBIT), "no full card number on screen");
    s.keys(&["Enter"]);
    // A wrong PIN: the decline, in words, and no slip to sign.
    s.wait_for("主菜单 Main menu");
    s.keys(&["1"]);
    s.wait_for("请刷卡");
    s.enter(DEBIT);
    s.enter("500");
    s.enter("000000");
    let declined = s.wait_for("交易失败 Declined");
    assert!(declined.contains("55 密码错 Wrong PIN"), "{declined}");
    assert!(!declined.contains("SIGNATURE"), "{declined}");
    s.keys(&["Enter"]);
    // A void (2): the sale picked from the list, the card, the supervisor's password.
    s.wait_for("主菜单 Main menu");
    s.keys(&["2"]);
    let list = s.wait_for("请选择交易 Choose a transaction");
    assert!(list.contains("sale") && list.contains("12.34"), "{list}");
    s.keys(&["Enter"]);
    s.wait_for("请刷卡");
    s.enter(DEBIT);
    s.wait_for("主管密码 Supervisor password");
    s.enter("111111");
    let refused = s.wait_for("wrong password");
    assert!(refused.contains("locked for"), "{refused}");
    s.enter(DEBIT);
    s.enter("246802");
    let void = s.wait_for("VOID 消费撤销");
    assert!(void.contains("ORIG TRACE"), "{void}");
    s.keys(&["Enter"]);
    // The balance in yuan.
    s.wait_for("主菜单 Main menu");
    s.keys(&["4"]);
    s.wait_for("请刷卡");
    s.enter(DEBIT);
    s.enter("123456");
    s.wait_for("可用余额 Available balance: 10,000.00 CNY");
    s.keys(&["Enter"]);
    // Settlement (8): nothing stands, it balances.
    s.wait_for("主菜单 Main menu");
    s.keys(&["8"]);
    s.wait_for("主管密码");
    s.enter("246802");
    let slip = s.wait_for("BALANCED");
    assert!(slip.contains("000001"), "{slip}");
    s.keys(&["Enter"]);
    // Logged out (Esc), switched off (Esc).
    s.wait_for("主菜单 Main menu");
    s.keys(&["Escape"]);
    s.wait_for("操作员号 Operator no.");
    s.keys(&["Escape"]);
    let end = Instant::now() + Duration::from_secs(5);
    while s.alive() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!s.alive(), "Esc at the login screen switches the POS off");
    sw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_operator_and_a_permission_refused_say_why() {
    let dir = terminal("10000602");
    {
        let mut s = terminal_fw::Store::open(&dir).unwrap();
        let mut ops = Operators::new(&mut s).unwrap();
        ops.add_cashier("135790", "02", "204060").unwrap();
        ops.set_permissions("135790", "02", &[terminal_fw::operators::Permission::Query])
            .unwrap();
    }
    // No switch is needed: nothing here reaches it.
    let Some(s) = Screen::start(&dir, "127.0.0.1:9", &["--lang", "en"]) else {
        return;
    };
    s.wait_for("Operator no.");
    for _ in 0..5 {
        s.enter("01");
        s.enter("111111");
        std::thread::sleep(Duration::from_millis(150));
    }
    let locked = s.wait_for("locked");
    assert!(locked.contains("min") || locked.contains(" s"), "{locked}");
    assert!(!locked.contains("操作员"), "English only:\n{locked}");
    s.enter("01");
    s.enter("102938");
    s.wait_for("try again in");
    // Cashier 02 may query, not sell.
    s.enter("02");
    s.enter("204060");
    s.wait_for("Main menu");
    s.keys(&["1"]);
    let refused = s.wait_for("permission");
    assert!(refused.contains("operator 02 may not"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hotel_stay_and_management_on_the_pos_screen() {
    let sw_dir = temp_dir("pos-switch-hotel");
    let sw = switch(&sw_dir).await;
    let addr = sw.terminal_addr.to_string();
    let dir = terminal("10000603");
    let Some(s) = Screen::start(&dir, &addr, &[]) else {
        return;
    };
    login(&s);
    s.keys(&["9"]);
    s.wait_for("BATCH");
    s.keys(&["Enter"]);
    // 预授权 (6) → 1: 800.00 held.
    s.keys(&["6"]);
    s.wait_for("预授权完成撤销 Completion void");
    s.keys(&["1"]);
    s.wait_for("请刷卡");
    s.enter("6250941000000009");
    s.enter("80000");
    s.enter("654321");
    s.wait_for("PRE-AUTH 预授权");
    s.keys(&["Enter"]);
    // → 3: completed for 880.00 after picking it.
    s.wait_for("主菜单");
    s.keys(&["6"]);
    s.wait_for("预授权完成 Completion");
    s.keys(&["3"]);
    s.wait_for("pre-auth");
    s.keys(&["Enter"]);
    s.wait_for("请刷卡");
    s.enter("6250941000000009");
    s.enter("88000");
    let r = s.wait_for("AUTH COMPLETE 预授权完成");
    assert!(r.contains("RMB 880.00"), "{r}");
    s.keys(&["Enter"]);
    // Transaction query (7): the list, a receipt, its reprint (*).
    s.wait_for("主菜单");
    s.keys(&["7"]);
    s.wait_for("completion");
    s.keys(&["Enter"]);
    s.wait_for("AUTH COMPLETE");
    s.keys(&["*"]);
    s.wait_for("REPRINT 重打印");
    s.keys(&["Enter"]);
    // Management (0): the settings; the administrator resets the supervisor.
    s.wait_for("主菜单");
    s.keys(&["0"]);
    s.wait_for("终端参数 Terminal settings");
    s.keys(&["7"]);
    let settings = s.wait_for("TID       10000603");
    assert!(settings.contains(&addr), "{settings}");
    s.keys(&["Enter"]);
    s.wait_for("主菜单");
    s.keys(&["0"]);
    s.wait_for("重置主管密码");
    s.keys(&["3"]);
    s.wait_for("管理员密码 Administrator password");
    s.enter("135790");
    s.wait_for("factory password 123456");
    s.keys(&["Enter"]);
    sw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_a_qr_sale_with_its_password_and_a_new_cashier_on_the_pos_screen() {
    let sw_dir = temp_dir("pos-switch-more");
    let sw = switch(&sw_dir).await;
    let addr = sw.terminal_addr.to_string();
    let dir = terminal("10000604");
    let Some(s) = Screen::start(&dir, &addr, &[]) else {
        return;
    };
    login(&s);
    s.keys(&["9"]);
    s.wait_for("BATCH");
    s.keys(&["Enter"]);
    // A sale, then its refund (3) picked from the log: part of it.
    s.wait_for("主菜单");
    s.keys(&["1"]);
    s.wait_for("请刷卡");
    s.enter(DEBIT);
    s.enter("5000");
    s.enter("123456");
    s.wait_for("RMB 50.00");
    s.keys(&["Enter"]);
    s.wait_for("主菜单");
    s.keys(&["3"]);
    s.wait_for("50.00");
    s.keys(&["Enter"]);
    s.wait_for("请刷卡");
    s.enter(DEBIT);
    s.enter("2000");
    s.enter("246802");
    let r = s.wait_for("REFUND 退货");
    assert!(r.contains("RMB 20.00"), "{r}");
    s.keys(&["Enter"]);
    // A QR sale above the password-free limit: the payment password is asked, then it goes.
    s.wait_for("主菜单");
    s.keys(&["5"]);
    s.wait_for("请扫付款码");
    s.enter("280000000000000001");
    s.enter("120000");
    s.wait_for("请输入支付密码 Payment password");
    s.enter("888888");
    let q = s.wait_for("QR SALE 付款码");
    assert!(
        q.contains("RMB 1,200.00") || q.contains("RMB 1200.00"),
        "{q}"
    );
    s.keys(&["Enter"]);
    // The administrator adds cashier 03 (its password twice); 03 logs in.
    s.wait_for("主菜单");
    s.keys(&["0"]);
    s.wait_for("新增操作员");
    s.keys(&["1"]);
    s.wait_for("管理员密码");
    s.enter("135790");
    s.enter("03");
    s.enter("314159");
    s.enter("314158");
    s.wait_for("两次密码不一致 The two passwords differ");
    s.enter("135790");
    s.enter("03");
    s.enter("314159");
    s.enter("314159");
    s.wait_for("operator 03 added");
    s.keys(&["Enter"]);
    s.wait_for("主菜单");
    s.keys(&["Escape"]);
    s.wait_for("操作员号");
    s.enter("03");
    s.enter("314159");
    s.wait_for("操作员 Operator 03");
    sw.shutdown().await;
}
