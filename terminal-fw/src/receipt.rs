//! Receipts (签购单) and the settlement slip, as text.

use std::fmt::Write as _;

use crate::store::LogEntry;

/// Which copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copy {
    /// 商户存根 / merchant copy.
    Merchant,
    /// 持卡人存根 / cardholder copy.
    Cardholder,
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, (fen % 100).abs())
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "sale" => "SALE 消费",
        "qr-sale" => "QR SALE 付款码",
        "void" => "VOID 消费撤销",
        "refund" => "REFUND 退货",
        "balance" => "BALANCE 余额查询",
        "pre-auth" => "PRE-AUTH 预授权",
        "pre-auth-void" => "PRE-AUTH VOID 预授权撤销",
        "completion" => "AUTH COMPLETE 预授权完成",
        "completion-void" => "COMPLETE VOID 预授权完成撤销",
        "adjustment" => "ADJUST 结算调整",
        "tip" => "TIP 追加小费",
        _ => "TRANSACTION",
    }
}

/// One transaction's receipt. The card number is already masked in the log.
pub fn receipt(
    e: &LogEntry,
    merchant_name: &str,
    mid: &str,
    tid: &str,
    copy: Copy,
    reprint: bool,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "========== 签购单 POS RECEIPT ==========");
    let _ = writeln!(s, "MERCHANT  {merchant_name}");
    let _ = writeln!(s, "MID       {mid}");
    let _ = writeln!(s, "TID       {tid}    OPERATOR {}", e.operator);
    let _ = writeln!(s, "CARD      {}", e.masked_pan);
    let _ = writeln!(s, "TYPE      {}", kind_name(&e.kind));
    let _ = writeln!(s, "BATCH     {:06}    TRACE {:06}", e.batch, e.stan);
    if let Some(o) = e.original_stan {
        let _ = writeln!(s, "ORIG TRACE {o:06}");
    }
    let _ = writeln!(s, "RRN       {}    AUTH {}", e.rrn, e.auth_code);
    let _ = writeln!(s, "DATE/TIME {}", e.when);
    let _ = writeln!(s, "AMOUNT    RMB {}", yuan(e.amount_fen));
    let _ = writeln!(
        s,
        "RESULT    {}",
        if e.rc == "00" {
            "APPROVED".to_owned()
        } else {
            format!("DECLINED {}", crate::codes::describe(&e.rc))
        }
    );
    if reprint {
        let _ = writeln!(s, "*** REPRINT 重打印 ***");
    }
    let _ = writeln!(
        s,
        "{}",
        match copy {
            Copy::Merchant =>
                "-- MERCHANT COPY 商户存根 --\nCARDHOLDER SIGNATURE 持卡人签名: ____________",
            Copy::Cardholder => "-- CARDHOLDER COPY 持卡人存根 --",
        }
    );
    s
}

/// The settlement slip.
pub fn settlement_slip(
    tid: &str,
    mid: &str,
    batch: u32,
    sales: (i64, u32),
    refunds: (i64, u32),
    balanced: bool,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "========== 结算单 SETTLEMENT ==========");
    let _ = writeln!(s, "MID {mid}   TID {tid}   BATCH {batch:06}");
    let _ = writeln!(s, "SALES    {:>4}   RMB {:>12}", sales.1, yuan(sales.0));
    let _ = writeln!(s, "REFUNDS  {:>4}   RMB {:>12}", refunds.1, yuan(refunds.0));
    let _ = writeln!(s, "NET             RMB {:>12}", yuan(sales.0 - refunds.0));
    let _ = writeln!(
        s,
        "{}",
        if balanced {
            "BALANCED 对账平"
        } else {
            "NOT BALANCED 对账不平 (batch uploaded)"
        }
    );
    s
}
