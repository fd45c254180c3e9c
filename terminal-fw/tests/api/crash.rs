//! Crash safety: a reversal persisted before a request is sent reaches the switch exactly
//! once after a crash, whether the request went out or not.

use terminal_fw::{Card, Terminal};

use crate::{store, switch, temp_dir};

fn count(dir: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(dir.join("journal.db"))
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn crash_before_and_after_sending() {
    let sw_dir = temp_dir("crash-switch");
    let sw = switch(&sw_dir).await;
    let card = Card {
        pan: "6222021000000000017".into(),
        expiry: None,
    };
    for (i, sent) in [(0u32, false), (1, true)] {
        let dir = temp_dir("crash-terminal");
        let tid = format!("1000030{i}");
        let stan;
        {
            let s = store(&dir, &tid);
            let mut t = Terminal::open(s, sw.terminal_addr).unwrap();
            assert_eq!(t.sign_on("01").await.unwrap().rc, "00");
            let frame = t.sale_frame(&card, "123456", 4_200, "01").unwrap();
            stan = codec::decode(codec::Dialect::cup_pos(), &frame)
                .unwrap()
                .digits(11)
                .unwrap()
                .to_u64()
                .unwrap();
            let rev = t.reversal_of(&frame).unwrap();
            t.store.put_reversal(&rev).unwrap();
            if sent {
                t.send_only(&frame).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            // Power cut: the terminal goes away without reading any reply.
        }
        let s = terminal_fw::Store::open(&dir).unwrap();
        assert!(
            s.pending_reversal().unwrap().is_some(),
            "the reversal survived"
        );
        let mut t = Terminal::open(s, sw.terminal_addr).unwrap();
        // Anything next sends the reversal first.
        assert_eq!(t.echo().await.unwrap(), "00");
        let b = t.balance(&card, "123456", "01").await.unwrap();
        assert_eq!(b.rc, "00");
        assert!(t.store.pending_reversal().unwrap().is_none());
        let where_ = format!("tid = '{tid}' AND stan = {stan}");
        assert_eq!(
            count(
                &sw_dir,
                &format!("SELECT COUNT(*) FROM transactions WHERE mti = '0400' AND {where_}")
            ),
            1,
            "exactly one reversal"
        );
        let sales = count(
            &sw_dir,
            &format!(
                "SELECT COUNT(*) FROM transactions WHERE mti = '0200' AND kind = 'sale' AND {where_}"
            ),
        );
        assert_eq!(sales, i64::from(sent));
        if sent {
            let reversed = count(
                &sw_dir,
                &format!("SELECT reversed FROM transactions WHERE mti = '0200' AND {where_}"),
            );
            assert_eq!(reversed, 1, "the sale that went out was reversed");
        }
        // No money moved either way: the card holds 10,000.00.
        assert_eq!(&b.balance.unwrap()[8..], "000001000000");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    sw.shutdown().await;
    std::fs::remove_dir_all(&sw_dir).unwrap();
}
