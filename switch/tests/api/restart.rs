//! Restart: balances, sessions, batches and the journal survive; a retransmission after the
//! restart is still recognised.

//!
//! These run on either journal: `SWITCH_TEST_JOURNAL=postgres` runs them on PostgreSQL.

use crate::client::{DEBIT, Terminal};
use crate::{JournalDb, journal_config as test_config, start, temp_dir};

#[tokio::test]
async fn restart_keeps_balances_sessions_and_duplicates() {
    let dir = temp_dir("restart");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000020").await;
    t.sign_on().await;
    assert_eq!(t.sale(DEBIT, "123456", 12_345).await.rc(), "00");
    let mut b = t.sale_builder(DEBIT, Some("123456"), 55_500);
    let last_sale = t.seal(&mut b);
    let first = t.exchange(&last_sale).await;
    assert_eq!(first.rc(), "00");
    sw.shutdown().await;

    let sw = start(test_config(&dir)).await;
    // The session survived: same keys, no new sign-on needed.
    let mut t2 = Terminal::connect(sw.terminal_addr, "10000020").await;
    t2.tpk = t.tpk.clone();
    t2.tak = t.tak.clone();
    t2.batch = t.batch;
    t2.stan = t.stan;
    let bal = t2.balance(DEBIT, "123456").await;
    assert_eq!(bal.rc(), "00");
    assert_eq!(
        bal.text(54).as_deref(),
        Some("1002156C000000932155"),
        "10000.00 - 123.45 - 555.00"
    );
    // The last sale sent again after the restart: same answer, no second debit.
    let again = t2.exchange(&last_sale).await;
    assert_eq!((again.rc(), again.text(37)), (first.rc(), first.text(37)));
    let bal = t2.balance(DEBIT, "123456").await;
    assert_eq!(bal.text(54).as_deref(), Some("1002156C000000932155"));
    sw.shutdown().await;

    let sales = JournalDb::of(&dir).number(
        "SELECT COUNT(*) FROM transactions WHERE kind = 'sale' AND response_code = '00'",
        &[],
    );
    assert_eq!(sales, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
