//! The PostgreSQL journal's schema after its migrations. Needs PostgreSQL
//! (`SWITCH_TEST_PG`, see `pg.rs`); without it the test says so and does nothing.

use switch::journal::postgres::Postgres;

use crate::pg::{Database, rows};

/// Index name and definition, for each index on `transactions`.
fn indexes(url: &str) -> Vec<(String, String)> {
    rows(
        url,
        "SELECT indexname::TEXT, indexdef FROM pg_indexes
         WHERE tablename = 'transactions' ORDER BY indexname",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}

#[test]
fn only_rows_looked_up_by_card_or_as_open_preauths_are_indexed_so() {
    let Some(db) = Database::new("pg_schema") else {
        return;
    };
    let mut pg = Postgres::connect(&db.url).unwrap();
    let applied = pg.migrate().unwrap();
    assert_eq!(applied, [1, 2, 3, 4, 5, 6]);
    let found = indexes(&db.url);
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "transactions_by_date",
            "transactions_pkey",
            "transactions_preauths_by_card",
            "transactions_preauths_by_day",
            "transactions_stand_in_by_card",
            "transactions_tid_batch_stan_mti_key",
        ]
    );
    let def = |name: &str| &found.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(
        def("transactions_stand_in_by_card")
            .ends_with("(pan_hash, local_date) WHERE (stand_in = 1)"),
        "{}",
        def("transactions_stand_in_by_card")
    );
    for name in [
        "transactions_preauths_by_card",
        "transactions_preauths_by_day",
    ] {
        assert!(
            def(name).ends_with("WHERE (kind = 'pre-auth'::text)"),
            "{}",
            def(name)
        );
    }
    // A second start applies nothing and changes nothing.
    assert!(
        Postgres::connect(&db.url)
            .unwrap()
            .migrate()
            .unwrap()
            .is_empty()
    );
    assert_eq!(indexes(&db.url), found);
}
