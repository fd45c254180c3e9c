//! Bad input: the daemon answers or closes cleanly and keeps serving.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{DEBIT, HEADER, Terminal};
use crate::{start, temp_dir, test_config};

/// Whether the switch closed the connection (EOF or reset) within 5 s.
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn still_serving(addr: std::net::SocketAddr) {
    let mut t = Terminal::connect(addr, "10000009").await;
    assert_eq!(t.sign_on().await.rc(), "00", "a new connection still works");
}

#[tokio::test]
async fn framing_attacks_close_cleanly() {
    let dir = temp_dir("bad");
    let mut cfg = test_config(&dir);
    cfg.limits.read_timeout_secs = 1;
    cfg.limits.max_frame_bytes = 1024;
    let sw = start(cfg).await;
    let addr = sw.terminal_addr;

    // Oversized: a length prefix over the maximum frame.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0xFF, 0xFF, 1, 2, 3]).await.unwrap();
    assert!(closed(&mut s).await, "oversized frame closes");
    still_serving(addr).await;

    // A length prefix that lies: 500 announced, 10 sent, then silence → read timeout.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0x01, 0xF4]).await.unwrap();
    s.write_all(&[0u8; 10]).await.unwrap();
    assert!(
        closed(&mut s).await,
        "a frame that never completes is closed"
    );
    still_serving(addr).await;

    // Only the length prefix, then silence.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0x00, 0x40]).await.unwrap();
    assert!(closed(&mut s).await, "a started frame times out");

    // A frame cut mid-way, then the client goes away.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0x00, 0x40, 0x60, 0x00]).await.unwrap();
    drop(s);
    still_serving(addr).await;

    // Garbage that is not even a header: closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0x00, 0x03, 0xDE, 0xAD, 0xBE]).await.unwrap();
    assert!(
        closed(&mut s).await,
        "an unreadable frame closes the connection"
    );
    still_serving(addr).await;

    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    for reason in ["oversized", "read_timeout", "undecodable"] {
        assert!(
            metrics.contains(&format!(
                "switch_frames_rejected_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted: {metrics}"
        );
    }
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn malformed_messages_get_response_codes() {
    let dir = temp_dir("malformed");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000010").await;
    t.sign_on().await;

    // A readable header and MTI, then a bad BCD nibble in field 3: 30.
    let mut b = t.sale_builder(DEBIT, Some("123456"), 100);
    let mut frame = t.seal(&mut b);
    let at = 11 + 2 + 8 + 1 + 10; // header, MTI, bitmap, field 2 prefix and 19 digits
    frame[at] = 0xAB;
    let r = t.exchange(&frame).await;
    assert_eq!(r.rc(), "30");
    assert_eq!(r.msg().mti().as_str(), "0210");

    // Truncated inside the fields, with a correct frame length: 30.
    let mut b = t.sale_builder(DEBIT, Some("123456"), 100);
    let frame = t.seal(&mut b);
    assert_eq!(t.exchange(&frame[..40]).await.rc(), "30");

    // An MTI the switch does not serve: 12.
    let mut b = t.builder("0600");
    b.set(11, "000001")
        .set(41, t.tid.clone())
        .set(42, t.mid.clone());
    let r = t
        .exchange(&b.encode_to_vec(codec::Dialect::cup_pos()).unwrap())
        .await;
    assert_eq!((r.rc().as_str(), r.msg().mti().as_str()), ("12", "0610"));

    // No TID at all: 30, still answered.
    let mut b = t.builder("0800");
    b.set(11, "000001").set(60, "00000001003");
    assert_eq!(
        t.exchange(&b.encode_to_vec(codec::Dialect::cup_pos()).unwrap())
            .await
            .rc(),
        "30"
    );

    // A stray response is ignored; the connection goes on.
    let mut b = t.builder("0210");
    b.set(11, "000001")
        .set(39, "00")
        .set(41, t.tid.clone())
        .set(42, t.mid.clone());
    t.send_raw(&b.encode_to_vec(codec::Dialect::cup_pos()).unwrap())
        .await;
    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");

    // Header bytes only (no MTI): closed, counted.
    t.send_raw(&HEADER).await;
    assert!(t.read_reply().await.is_none());
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn connection_limit_refuses_at_once() {
    let dir = temp_dir("limit");
    let mut cfg = test_config(&dir);
    cfg.limits.max_connections = 2;
    let sw = start(cfg).await;
    let mut a = Terminal::connect(sw.terminal_addr, "10000011").await;
    let mut b = Terminal::connect(sw.terminal_addr, "10000012").await;
    assert_eq!(a.sign_on().await.rc(), "00");
    assert_eq!(b.sign_on().await.rc(), "00");
    let mut third = TcpStream::connect(sw.terminal_addr).await.unwrap();
    assert!(closed(&mut third).await, "over the limit: closed at once");
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = Terminal::connect(sw.terminal_addr, "10000013").await;
    assert_eq!(c.sign_on().await.rc(), "00", "a slot freed");
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains("switch_connections_refused_total{reason=\"global_limit\"} 1"),
        "{metrics}"
    );
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn idle_connections_close_and_full_connections_refuse() {
    let dir = temp_dir("idle");
    let mut cfg = test_config(&dir);
    cfg.limits.idle_timeout_secs = 1;
    cfg.limits.read_timeout_secs = 1;
    cfg.limits.max_in_flight = 1;
    let sw = start(cfg).await;
    // Idle: no frame at all for a second.
    let mut s = TcpStream::connect(sw.terminal_addr).await.unwrap();
    assert!(closed(&mut s).await, "an idle connection is closed");

    // One request in flight at most: two sales in one write, the second refused with 96
    // while the first is being journalled.
    let mut t = Terminal::connect(sw.terminal_addr, "10000014").await;
    t.sign_on().await;
    let mut a = t.sale_builder(DEBIT, Some("123456"), 100);
    let mut b = t.sale_builder(DEBIT, Some("123456"), 200);
    let (fa, fb) = (t.seal(&mut a), t.seal(&mut b));
    // Both frames in one write.
    let mut both = codec::framing::framed(codec::Framing::U16, &fa).unwrap();
    both.extend(codec::framing::framed(codec::Framing::U16, &fb).unwrap());
    use tokio::io::AsyncWriteExt;
    t.stream.get_mut().write_all(&both).await.unwrap();
    let mut codes = vec![
        t.read_reply().await.unwrap().rc(),
        t.read_reply().await.unwrap().rc(),
    ];
    codes.sort();
    assert_eq!(codes, ["00", "96"]);
    let metrics = crate::e2e::reqwest_metrics(sw.metrics_addr).await;
    assert!(
        metrics.contains("switch_frames_rejected_total{reason=\"in_flight_full\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switch_frames_rejected_total{reason=\"idle_timeout\"}"),
        "{metrics}"
    );
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A bill payment (field 48 `KP77` plus its data, text as live UnionPay traffic carries it)
/// is a transaction the switch does not serve: a clean `12` under the terminal's MAC, not a
/// format error, and nothing journalled as money.
#[tokio::test]
async fn a_bill_payment_it_does_not_serve_is_declined_cleanly() {
    let dir = temp_dir("bill-payment");
    let sw = start(test_config(&dir)).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000001").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let mut b = t.sale_builder(DEBIT, None, 5_000);
    b.set(3, "170000")
        .set(48, "KP770123456789")
        .set(60, "48000001000".to_owned());
    let r = t.send_sealed(b).await;
    assert_eq!(r.rc(), "12");
    assert!(t.reply_mac_ok(&r), "answered under the session's MAC");
    assert_eq!(
        t.sale(DEBIT, "123456", 100).await.rc(),
        "00",
        "still serving"
    );
    sw.shutdown().await;
}
