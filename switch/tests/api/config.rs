//! Configuration: the demo set loads; bad configurations are refused with the key named.

use switch::Config;
use switch::config::DEMO_TOML;

#[test]
fn demo_configuration_is_valid_and_uses_test_keys() {
    let c = Config::demo().unwrap();
    assert!(c.uses_test_keys());
    assert!(!c.production);
    assert_eq!(c.listen.terminals.port(), 8583);
    assert_eq!(c.listen.metrics.port(), 9583);
    assert_eq!(c.cards.len(), 4);
}

fn err(text: &str) -> String {
    Config::from_toml(text, "test.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn errors_name_the_key() {
    let with = |from: &str, to: &str| DEMO_TOML.replacen(from, to, 1);
    let cases = [
        (
            with("tid_from = \"10000001\"", "tid_from = \"1000\""),
            "terminals[0].tid_from",
        ),
        (
            with("mid = \"898310048990001\"", "mid = \"short\""),
            "terminals[0].mid",
        ),
        (with("rate = \"0.50%\"", "rate = \"half\""), "fees[0].rate"),
        (
            with("expiry = \"2912\"", "expiry = \"29-12\""),
            "cards[0].expiry",
        ),
        (with("node_id = 1", "node_id = 100"), "journal.node_id"),
        (
            with("max_frame_bytes = 2048", "max_frame_bytes = 10"),
            "limits.max_frame_bytes",
        ),
        (
            with("[listen]", "[listen]\nbogus = 1"),
            "unknown field `bogus`",
        ),
        (
            with("max_connections = 10000", "max_connections = \"many\""),
            "line",
        ),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn fee_categories_are_checked() {
    let with = |from: &str, to: &str| {
        assert!(DEMO_TOML.contains(from), "{from}");
        DEMO_TOML.replacen(from, to, 1)
    };
    let free_credit = "category = \"public-welfare\"\nchannel = \"credit\"";
    let cases = [
        // A merchant's category with no rule for a channel: its transactions would be free
        // by accident.
        (
            with(
                free_credit,
                "category = \"public-welfare\"\nchannel = \"qr\"\nmcc = \"1234\"",
            ),
            "terminals[1]",
            "no [[fees]] rule of category \"public-welfare\" prices its credit transactions",
        ),
        // A category no rule names at all, set on a range.
        (
            with(
                "fee_category = \"standard\"",
                "fee_category = \"charity-shops\"",
            ),
            "terminals[0]",
            "merchant 898310048990001 is charity-shops (its fee_category)",
        ),
        // ...or given by the MCC table.
        (
            with(
                "[[fees]]",
                "[fee_categories]\n\"8062\" = \"hospitals\"\n\n[[fees]]\ncategory = \"hospitals\"\nchannel = \"debit\"\nrate = \"0%\"\n\n[[fees]]",
            ),
            "terminals[1]",
            "is hospitals (by its MCC \"8062\"), and no [[fees]] rule of category \"hospitals\" prices its credit",
        ),
        // A category in the table that no rule prices, even if no merchant has it yet.
        (
            with(
                "[[fees]]",
                "[fee_categories]\n\"5812\" = \"restaurants\"\n\n[[fees]]",
            ),
            "fee_categories.\"5812\"",
            "no [[fees]] rule has category \"restaurants\"",
        ),
        // Two rules for the same transactions.
        (
            with(
                free_credit,
                "category = \"public-welfare\"\nchannel = \"debit\"",
            ),
            "fees[7]",
            "prices the same transactions as fees[6]",
        ),
        // Rates outside 0–100 %.
        (
            with("rate = \"0.48%\"", "rate = \"148%\""),
            "fees[4].rate",
            "100 %",
        ),
        (
            with("rate = \"0.48%\"", "rate = \"-1%\""),
            "fees[4].rate",
            "not a percentage",
        ),
        (
            with("category = \"preferential\"", "category = \"Preferential\""),
            "fees[3].category",
            "not a category name",
        ),
        (
            with(
                "[[fees]]",
                "[fee_categories]\n\"58\" = \"standard\"\n\n[[fees]]",
            ),
            "fee_categories.\"58\"",
            "MCC",
        ),
    ];
    for (text, key, want) in cases {
        let e = err(&text);
        assert!(e.contains(key) && e.contains(want), "{key}, {want}: {e}");
    }
    // A narrower rule beside the category's is not an overlap.
    let narrower = with(
        "# 公益类",
        "[[fees]]\ncategory = \"standard\"\nchannel = \"debit\"\nrate = \"0.30%\"\nmerchant = \"898310048990001\"\n\n# 公益类",
    );
    Config::from_toml(&narrower, "test.toml").unwrap();
}

#[test]
fn production_refuses_test_keys() {
    let prod = DEMO_TOML.replacen("production = false", "production = true", 1);
    let e = err(&prod);
    assert!(e.contains("tmk_clear") && e.contains("production"), "{e}");
    // With sealed keys but still the demo LMK and card PINs: refused too.
    let prod = prod
        .replace(
            "tmk_clear = \"0123456789ABCDEFFEDCBA9876543210\"",
            "tmk_sealed = \"00\"",
        )
        .replacen(
            "pvk_clear = \"13345779133457791334577913345779\"",
            "pvk_sealed = \"00\"",
            1,
        );
    let e = err(&prod);
    assert!(
        e.contains("issuers[0].zpk_clear") && e.contains("production"),
        "{e}"
    );
    let prod = prod
        .replacen(
            "zpk_clear = \"A1B2C3D4E5F60718293A4B5C6D7E8F91\"",
            "zpk_sealed = \"00\"",
            1,
        )
        .replacen(
            "zak_clear = \"0E1F2C3D4A5B68798697A4B5C2D3E0F1\"",
            "zak_sealed = \"00\"",
            1,
        );
    let e = err(&prod);
    assert!(e.contains("cards[0].pin"), "{e}");
    let prod = prod
        .replace("pin = \"123456\"", "offset = \"123456\"")
        .replace("pin = \"654321\"", "offset = \"123456\"")
        .replace("pin = \"888888\"", "offset = \"123456\"");
    let e = err(&prod);
    assert!(e.contains("hsm.lmk_file"), "{e}");
}

#[test]
fn production_names_every_test_key_at_once() {
    let prod = DEMO_TOML.replacen("production = false", "production = true", 1);
    let e = err(&prod);
    for key in [
        "hsm.lmk_file",
        "terminals[0].tmk_clear",
        "terminals[1].tmk_clear",
        "terminals[2].tmk_clear",
        "terminals[3].tmk_clear",
        "issuer.pvk_clear",
        "issuers[0].zpk_clear",
        "issuers[0].zak_clear",
        "cards[0].pin",
        "cards[3].pin",
        "wallets[0].pin",
    ] {
        assert!(e.contains(key), "{key} in: {e}");
    }
    assert!(e.contains("the demo TMK"), "{e}");
    assert!(e.starts_with("13 test key or test data use(s)"), "{e}");
}
