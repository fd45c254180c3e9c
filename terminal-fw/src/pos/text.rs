//! The screens' words: Chinese, English, or both side by side (`--lang zh|en|both`).

/// The screens' language.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// 中文.
    Zh,
    /// English.
    En,
    /// Both, Chinese first (default).
    #[default]
    Both,
}

impl Lang {
    /// From `zh`, `en` or `both`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "zh" => Some(Self::Zh),
            "en" => Some(Self::En),
            "both" => Some(Self::Both),
            _ => None,
        }
    }

    /// A label in this language.
    pub fn say(self, l: Label) -> String {
        match self {
            Self::Zh => l.0.to_owned(),
            Self::En => l.1.to_owned(),
            Self::Both => format!("{} {}", l.0, l.1),
        }
    }
}

/// A label: Chinese and English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(pub &'static str, pub &'static str);

/// The labels the screens use.
#[allow(missing_docs, reason = "a label's two languages are its documentation")]
pub mod says {
    use super::Label;

    pub const TITLE: Label = Label("银联POS", "UnionPay POS");
    pub const LOGIN: Label = Label("操作员签到", "Operator login");
    pub const OPERATOR_NO: Label = Label("操作员号", "Operator no.");
    pub const PASSWORD: Label = Label("密码", "Password");
    pub const MAIN_MENU: Label = Label("主菜单", "Main menu");
    pub const SALE: Label = Label("消费", "Sale");
    pub const VOID: Label = Label("撤销", "Void");
    pub const REFUND: Label = Label("退货", "Refund");
    pub const BALANCE: Label = Label("余额查询", "Balance");
    pub const QR: Label = Label("付款码", "QR sale");
    pub const PREAUTH_MENU: Label = Label("预授权", "Pre-authorisation");
    pub const QUERY: Label = Label("交易查询", "Transaction query");
    pub const SETTLE: Label = Label("结算", "Settlement");
    pub const SIGN_ON: Label = Label("签到", "Sign-on");
    pub const MANAGE: Label = Label("管理", "Management");
    pub const REPRINT: Label = Label("重打印", "Reprint");
    pub const PREAUTH: Label = Label("预授权", "Pre-auth");
    pub const PREAUTH_VOID: Label = Label("预授权撤销", "Pre-auth void");
    pub const COMPLETE: Label = Label("预授权完成", "Completion");
    pub const COMPLETE_VOID: Label = Label("预授权完成撤销", "Completion void");
    pub const OPERATORS: Label = Label("操作员管理", "Operators");
    pub const ADD_CASHIER: Label = Label("新增操作员", "Add cashier");
    pub const REMOVE_CASHIER: Label = Label("删除操作员", "Remove cashier");
    pub const RESET_SUPERVISOR: Label = Label("重置主管密码", "Reset supervisor");
    pub const PERMISSIONS: Label = Label("操作员权限", "Permissions");
    pub const CHANGE_PASSWORD: Label = Label("修改密码", "Change password");
    pub const VOID_PASSWORD: Label = Label("撤销消费密码", "Void password");
    pub const PARAMETERS: Label = Label("终端参数", "Terminal settings");
    pub const CARD: Label = Label("请刷卡/插卡/输入卡号", "Swipe, insert or key the card");
    pub const AMOUNT: Label = Label("金额", "Amount");
    pub const TIP: Label = Label("小费", "Tip");
    pub const PIN: Label = Label("请输入密码", "Enter PIN");
    pub const CODE: Label = Label("请扫付款码", "Scan the payment code");
    pub const CODE_PASSWORD: Label = Label("请输入支付密码", "Payment password");
    pub const SUPERVISOR: Label = Label("主管密码", "Supervisor password");
    pub const ADMIN: Label = Label("管理员密码", "Administrator password");
    pub const OLD_PASSWORD: Label = Label("原密码", "Old password");
    pub const NEW_PASSWORD: Label = Label("新密码", "New password");
    pub const AGAIN: Label = Label("再次输入", "Again");
    pub const CASHIER_NO: Label = Label("操作员号(01-98)", "Cashier no. (01-98)");
    pub const PERMISSION_SET: Label = Label(
        "权限 1交易 2撤销/退货 3查询 4结算",
        "Permissions 1 transact 2 void/refund 3 query 4 settle",
    );
    pub const PROCESSING: Label = Label("处理中…", "Processing…");
    pub const PICK: Label = Label("请选择交易", "Choose a transaction");
    pub const NOTHING: Label = Label("无交易", "No transactions");
    pub const KEYS_MENU: Label = Label(
        "数字键/↑↓选择 确认Enter 退出Esc",
        "Digits/↑↓ choose, Enter confirm, Esc back",
    );
    pub const KEYS_FORM: Label = Label(
        "确认Enter 更正Backspace 取消Esc",
        "Enter confirm, Backspace correct, Esc cancel",
    );
    pub const KEYS_SHOW: Label = Label(
        "确认Enter 重打印* 退出Esc",
        "Enter done, * reprint, Esc back",
    );
    pub const APPROVED: Label = Label("交易成功", "Approved");
    pub const DECLINED: Label = Label("交易失败", "Declined");
    pub const AVAILABLE: Label = Label("可用余额", "Available balance");
    pub const DIFFERENT: Label = Label("两次密码不一致", "The two passwords differ");
    pub const DONE: Label = Label("完成", "Done");
    pub const NOT_FOR_ROLE: Label = Label(
        "主管和管理员不能交易",
        "The supervisor and the administrator do not transact",
    );
    pub const QUIT: Label = Label("按Esc退出", "Esc quits");
}
