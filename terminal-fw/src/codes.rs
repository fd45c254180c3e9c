//! Response codes as a merchant reads them: the code, its meaning in Chinese and in English
//! (the CUP POS response code table), and the balance of field 54 in yuan.
//!
//! ```text
//!  39 = "55"                    ─▶ 55 密码错 Wrong PIN
//!  54 = "1002156C000000987655"  ─▶ 可用余额 Available balance: 9,876.55 CNY
//!        │ │ │  │└ amount (12 digits, fen)
//!        │ │ │  └ sign: C credit (positive), D debit (negative)
//!        │ │ └ currency (156: CNY)
//!        │ └ amount type (02: available)
//!        └ account type
//! ```

/// A response code's meaning: Chinese, English.
pub fn meaning(rc: &str) -> (&'static str, &'static str) {
    match rc {
        "00" => ("交易成功", "Approved"),
        "03" => ("商户未登记", "Invalid merchant"),
        "05" => ("不予承兑", "Do not honour"),
        "12" => ("无效交易", "Invalid transaction"),
        "13" => ("无效金额", "Invalid amount"),
        "14" => ("无效卡号", "Invalid card number"),
        "15" => ("无此发卡方", "No such issuer"),
        "25" => ("找不到原始交易", "Original not found"),
        "30" => ("报文格式错", "Format error"),
        "33" | "54" => ("过期卡", "Expired card"),
        "41" => ("挂失卡", "Lost card"),
        "43" => ("被窃卡", "Stolen card"),
        "51" => ("余额不足", "Insufficient funds"),
        "55" => ("密码错", "Wrong PIN"),
        "57" => ("不允许持卡人进行的交易", "Not permitted to cardholder"),
        "58" => ("不允许终端进行的交易", "Not permitted to terminal"),
        "61" => ("超出金额限制", "Exceeds the original amount"),
        "62" => ("受限制的卡", "Restricted card"),
        "64" => ("原始金额错误", "Original amount mismatch"),
        "65" => ("超出消费次数限制", "Frequency limit exceeded"),
        "75" => ("密码错误次数超限", "PIN tries exceeded"),
        "77" => ("请重新签到", "Batch mismatch: sign on again"),
        "91" => ("发卡方不能操作", "Issuer unavailable"),
        "94" => ("重复交易", "Duplicate transaction"),
        "96" => ("系统故障", "System malfunction"),
        "97" => ("终端未登记", "Terminal not registered"),
        "98" => ("发卡方超时", "Issuer timed out"),
        "A0" => ("请重新签到", "Sign on again (MAC)"),
        _ => ("交易失败", "Declined"),
    }
}

/// `55 密码错 Wrong PIN`.
pub fn describe(rc: &str) -> String {
    let (zh, en) = meaning(rc);
    format!("{rc} {zh} {en}")
}

/// The available balance of field 54 (CUP layout), in fen; `None` when it is not that
/// layout.
pub fn balance_fen(field54: &str) -> Option<i64> {
    let b = field54.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let sign = match b[7] {
        b'C' => 1,
        b'D' => -1,
        _ => return None,
    };
    let digits = field54.get(8..20)?;
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok().map(|v| sign * v)
}

/// Fen as yuan with thousands separators: `9,876.55`.
pub fn yuan_grouped(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let whole = (fen.unsigned_abs() / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", fen.unsigned_abs() % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_54_in_yuan() {
        assert_eq!(balance_fen("1002156C000000987655"), Some(987_655));
        assert_eq!(balance_fen("1002156D000000000100"), Some(-100));
        assert_eq!(balance_fen("junk"), None);
        assert_eq!(yuan_grouped(987_655), "9,876.55");
        assert_eq!(yuan_grouped(100_000_000), "1,000,000.00");
        assert_eq!(yuan_grouped(5), "0.05");
        assert_eq!(yuan_grouped(-123_456), "-1,234.56");
    }

    #[test]
    fn codes_read_in_both_languages() {
        assert_eq!(describe("55"), "55 密码错 Wrong PIN");
        assert_eq!(meaning("51").1, "Insufficient funds");
        assert_eq!(meaning("ZZ"), ("交易失败", "Declined"));
    }
}
